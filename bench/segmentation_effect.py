"""What scoring on gold-free words costs a trained model on a document-level corpus.

Scored documents are segmented from their text alone (``CorpusReader.evaluation_document``);
before, their words were refined at gold span boundaries, which let the gold shape the input.
This tags the devel and test documents of ``--dataset`` both ways with one trained model and
prints the strict scores of each against the same character-offset gold. Usage::

    BIONER_DATA_DIR=../shared/data bioner-train experiment=quickstart dataset=bc5cdr_pubtator \\
        trainer.max_epochs=2 logger=none bootstrap_samples=0 run_dir=/tmp/ptrun
    BIONER_DATA_DIR=../shared/data python bench/segmentation_effect.py /tmp/ptrun
"""

from __future__ import annotations

import argparse

from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.evaluation import evaluate
from bioner.inference import Tagger


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("model", help="a bioner run folder or exported model folder")
    parser.add_argument("--dataset", default="bc5cdr_pubtator")
    args = parser.parse_args()
    tagger = Tagger.load(args.model, device="cpu")
    reader = instantiate(compose_config("data", [f"dataset={args.dataset}"]).dataset)
    for split in ("devel", "test"):
        docs = reader.load(split)  # training-style segmentation: words refined at gold spans
        refined = evaluate(docs, tagger.predict_documents(docs)).metrics()
        plain_docs = [reader.evaluation_document(doc) for doc in docs]
        plain = evaluate(docs, tagger.predict_documents(plain_docs)).metrics()
        print(
            f"{split}: strict F1 with gold-refined words {refined['f1']:.4f} "
            f"(P {refined['precision']:.4f}, R {refined['recall']:.4f}); text-only words "
            f"{plain['f1']:.4f} (P {plain['precision']:.4f}, R {plain['recall']:.4f}); "
            f"change {100 * (plain['f1'] - refined['f1']):+.2f} points",
            flush=True,
        )


if __name__ == "__main__":
    main()
