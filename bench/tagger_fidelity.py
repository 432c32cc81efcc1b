"""Does the Tagger give the spans a run's test score counted? Its spans against ``predictions/``.

A training run scores devel and test under its trainer's precision (``bf16-mixed`` on a GPU or
a CPU with native bf16) and writes the spans it scored to ``predictions/<split>.jsonl``. This
re-tags the same documents of the corpus with ``Tagger.load(run).predict_documents`` at each
``--precisions`` (``auto`` is the Tagger's default; see ``bioner.utils.precision.
tagging_precision``) and reports, per precision, the share of documents whose span sets equal
the run's, the span agreement ``2 |both| / (|tagger| + |run|)`` and the seconds the tagging took
(after a warm-up on the first 8 documents). Usage::

    BIONER_DATA_DIR=../shared/data python bench/tagger_fidelity.py --run <run> --dataset bc5cdr

The documents are those of ``dataset=<name>`` with its config's defaults; each must be in the
run's file with the same text (or, in a kept text-free file, the same text hash), else the
script stops and says so. It ends by printing one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

# bench/ is on sys.path when run as a script
from predict_speed import compare_spans


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--run", required=True, help="a bioner run folder (with predictions/)")
    parser.add_argument("--dataset", default="bc5cdr", help="the run's dataset config")
    parser.add_argument("--split", default="test")
    parser.add_argument("--precisions", default="auto,32,bf16")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)

    from hydra.utils import instantiate

    from bioner.config import compose_config
    from bioner.inference import Tagger
    from bioner.inference.formats import predictions_file, read_jsonl, text_matches_hash

    docs = instantiate(compose_config("data", [f"dataset={args.dataset}"]).dataset).load(args.split)
    records = {r["id"]: r for r in read_jsonl(predictions_file(args.run, args.split))}
    for doc in docs:
        record = records.get(doc.id)
        same = record is not None and (
            record["text"] == doc.text
            if record["text"] is not None
            else text_matches_hash(doc.text, record["text_sha256"])
        )
        if not same:
            raise SystemExit(
                f"{args.run}: document {doc.id} of {args.dataset} {args.split} is not in the run's "
                "predictions with the same text; give the run's --dataset"
            )
    run_spans = [set(records[doc.id]["spans"]) for doc in docs]
    figures: dict = {"run": args.run, "split": args.split, "documents": len(docs)}
    figures["run_spans"] = sum(len(s) for s in run_spans)
    for requested in args.precisions.split(","):
        tagger = Tagger.load(args.run, precision=requested, device="cpu")
        tagger.predict_documents(docs[:8])
        start = time.perf_counter()
        spans = [set(d) for d in tagger.predict_documents(docs)]
        seconds = time.perf_counter() - start
        compared = compare_spans(spans, run_spans)
        row = {
            "precision": tagger.members[0].precision,
            "documents_identical": compared["identical"],
            "span_agreement": compared["span_agreement"],
            "spans": compared["spans_ours"],
            "seconds": seconds,
        }
        figures[requested] = row
        print(
            f"{requested:>5} ({row['precision']}): run's spans in {row['documents_identical']} of "
            f"{len(docs)} documents, span agreement {row['span_agreement']:.5f}, "
            f"{seconds:.1f} s",
            flush=True,
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
