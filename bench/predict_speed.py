"""Prediction speed and memory: bioner's ``Tagger`` against ``transformers.pipeline``.

Both tag the BC5CDR test sentences (raw text, one sentence per text) with the same exported
MiniLM model, each in its own process so that peak memory is measured apart:

- ``bioner``: ``Tagger.load(model, split_sentences=False).predict(texts)`` (each text is a
  sentence already), otherwise its defaults (``precision=auto``: bf16 for a model trained in
  bf16 on hardware with native bf16, else fp32; sorted by length and batched, sliding windows
  for long sentences); ``--precision 32`` or ``bf16`` sets it;
- ``pipeline``: ``transformers.pipeline("token-classification", model=..., aggregation_strategy=
  "first")`` called on the list of texts (``--pipeline-batch-size``, default 1: the pipeline's
  own default).

Figures: sentences per second for each (model loading and a warm-up pass on the first 32 texts
excluded), their ratio, peak RSS of each process, and how far their spans agree on the
sentences where both see the same words (the pipeline's words are those of the tokenizer's
pre-tokenizer within its truncation limit; bioner's come from ``bioner.data.tokenize``): the
share of those sentences with identical span sets and the span-level agreement
``2 |both| / (|bioner| + |pipeline|)``; and the strict F1 of each against the gold spans.

The two decide a word's entity differently by default: the pipeline takes the argmax *label* of
the word's first sub-word, bioner the argmax *type* after summing each type's ``B-``/``I-``
probabilities (``decode_rule=mass``, ``bioner.data.alignment``), which tags more words when the
model hesitates between ``B-X`` and ``I-X``. The bioner worker therefore also tags the texts
with ``Tagger(..., decode_rule="argmax")``, the pipeline's rule (untimed; ``--no-diagnose``
skips it), and the script reports the agreement and gold F1 of both rules (``agreement`` and
``agreement_argmax``): the latter tells any difference in words, windows or logits apart from
the rule.

The model: ``--model <run or exported folder>``, or ``--train`` to train MiniLM briefly
(``bioner-train experiment=quickstart trainer.max_steps=30``) into ``--run-dir`` first (reused
when already there). Usage::

    BIONER_DATA_DIR=../shared/data python bench/predict_speed.py --model /tmp/pred_run
    BIONER_DATA_DIR=../shared/data python bench/predict_speed.py --train --run-dir /tmp/pred_run

On a GPU (``--device auto``) both run there (``Tagger(device="cuda")``, ``pipeline(device=0)``);
compare at equal batch sizes with ``--pipeline-batch-size 32 --batch-size 32``.

The script ends by printing one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPES = ("bioner", "pipeline")
WARMUP = 32


def load_docs(limit: int | None) -> list:
    """The BC5CDR test sentences with their gold spans, one document each."""
    from hydra.utils import instantiate

    from bioner.config import compose_config

    reader = instantiate(compose_config("data", ["dataset=bc5cdr"]).dataset)
    docs = reader.load("test")
    return docs[:limit] if limit else docs


def load_texts(limit: int | None) -> list[str]:
    """The BC5CDR test sentences as raw text (the reader joins each sentence's tokens)."""
    return [doc.text for doc in load_docs(limit)]


def gold_f1(docs: list, spans: list) -> float:
    """Strict micro F1 of ``spans`` (``[start, end, type]`` per document) against the gold."""
    from bioner.data.document import Span
    from bioner.evaluation import evaluate

    predictions = [[Span(*s) for s in doc_spans] for doc_spans in spans]
    return evaluate(docs, predictions).metrics()["f1"]


def run_worker(args: argparse.Namespace) -> None:
    """Tag every text with one recipe in this process; write the figures and spans as JSON."""
    import torch

    texts = load_texts(args.limit)
    if args.worker == "bioner":
        from bioner.inference import Tagger

        # The texts are sentences already; the splitter would also cut the space-joined tokens
        # of "p = 0 . 003" at ". 0", giving bioner less context than the pipeline has.
        tagger = Tagger.load(
            args.model,
            batch_size=args.batch_size,
            precision=args.precision,
            split_sentences=False,
            device="cuda" if args.device == "gpu" else "cpu",
        )
        tagger.predict(texts[:WARMUP])
        start = time.perf_counter()
        predicted = tagger.predict(texts)  # returns host data: the GPU has finished
        seconds = time.perf_counter() - start
        spans = [[[s.start, s.end, s.label] for s in doc] for doc in predicted]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the diagnosis
        argmax = None
        if args.diagnose:
            # The same loaded models, decoded by the pipeline's rule, in the same precision.
            same_rule = Tagger(
                [(m.model, m.tokenizer, m.alignment) for m in tagger.members],
                batch_size=args.batch_size,
                precision=tagger.members[0].precision,
                split_sentences=False,
                device=str(tagger.device),
                decode_rule="argmax",
            )
            argmax = [[[s.start, s.end, s.label] for s in doc] for doc in same_rule.predict(texts)]
    else:
        from transformers import pipeline

        from bioner.inference.tagger import model_folder

        pipe = pipeline(
            "token-classification",
            model=str(model_folder(args.model)),
            aggregation_strategy="first",
            device=0 if args.device == "gpu" else -1,
        )
        pipe(texts[:WARMUP], batch_size=args.pipeline_batch_size)
        start = time.perf_counter()
        predicted = pipe(texts, batch_size=args.pipeline_batch_size)
        seconds = time.perf_counter() - start
        spans = [[[e["start"], e["end"], e["entity_group"]] for e in doc] for doc in predicted]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        argmax = None
        tagger = None
    result = {
        "recipe": args.worker,
        "precision": tagger.members[0].precision if tagger else "32",
        "sentences": len(texts),
        "seconds": seconds,
        "sentences_per_s": len(texts) / seconds,
        "peak_rss_mib": peak / 1024,
        "torch_threads": torch.get_num_threads(),
        "spans": spans,
        "spans_argmax": argmax,
    }
    Path(args.out).write_text(json.dumps(result))


def run_recipe(recipe: str, args: argparse.Namespace, out: Path) -> dict:
    """Run one recipe in a fresh process and return its figures."""
    cmd = [sys.executable, __file__, "--worker", recipe, "--out", str(out), "--model", args.model]
    cmd += ["--batch-size", str(args.batch_size), "--precision", args.precision]
    cmd += ["--pipeline-batch-size", str(args.pipeline_batch_size), "--device", args.device]
    if not args.diagnose:
        cmd.append("--no-diagnose")
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if done.returncode:
        raise RuntimeError(f"{recipe} failed:\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def pipeline_words(texts: list[str], model: str) -> list[list[tuple[int, int]]]:
    """The character ranges of the words the pipeline sees in each text (within truncation)."""
    from transformers import AutoTokenizer

    from bioner.inference.tagger import model_folder

    tokenizer = AutoTokenizer.from_pretrained(str(model_folder(model)))
    out = []
    for text in texts:
        enc = tokenizer(text, truncation=True, return_offsets_mapping=True)
        words: dict[int, list[int]] = {}
        for word, (s, e) in zip(enc.word_ids(), enc["offset_mapping"]):
            if word is not None:
                span = words.setdefault(word, [s, e])
                span[0], span[1] = min(span[0], s), max(span[1], e)
        out.append([tuple(words[w]) for w in sorted(words)])
    return out


def compare_spans(ours: list[set], theirs: list[set]) -> dict:
    """Two taggings of the same documents, as one set of hashable spans per document: how many
    documents have identical sets, and the span agreement ``2 |both| / (|ours| + |theirs|)``."""
    both = sum(len(a & b) for a, b in zip(ours, theirs, strict=True))
    n_ours, n_theirs = sum(map(len, ours)), sum(map(len, theirs))
    return {
        "identical": sum(a == b for a, b in zip(ours, theirs)),
        "span_agreement": 2 * both / (n_ours + n_theirs) if n_ours + n_theirs else 1.0,
        "spans_ours": n_ours,
        "spans_theirs": n_theirs,
        "spans_both": both,
    }


def agreement(texts: list[str], words: list, ours: list, theirs: list) -> dict:
    """Span agreement on the sentences where both tag the same words."""
    from bioner.data.tokenize import word_ranges

    kept = [i for i, (text, seen) in enumerate(zip(texts, words)) if seen == word_ranges(text)]
    c = compare_spans(
        [{tuple(s) for s in ours[i]} for i in kept], [{tuple(s) for s in theirs[i]} for i in kept]
    )
    return {
        "sentences_same_words": len(kept),
        "share_same_words": len(kept) / len(texts),
        "share_identical_spans": c["identical"] / len(kept) if kept else 0.0,
        "span_agreement": c["span_agreement"],
        "spans_bioner": c["spans_ours"],
        "spans_pipeline": c["spans_theirs"],
        "spans_both": c["spans_both"],
    }


def train_model(run_dir: Path) -> None:
    """Train MiniLM for 30 steps into ``run_dir`` (a few minutes on a CPU)."""
    cmd = [
        sys.executable,
        "-m",
        "bioner.train",
        "experiment=quickstart",
        "trainer.max_steps=30",
        "logger=none",
        f"run_dir={run_dir}",
        "overwrite=true",  # what a killed --train left there
        "bootstrap_samples=0",
        # Fewer steps than one epoch: no validation before the end, so nothing to stop on.
        "callbacks.early_stopping=null",
        "callbacks.rich_progress_bar=null",
    ]
    subprocess.run(cmd, check=True, env=os.environ)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", help="a bioner run folder or exported model folder")
    parser.add_argument("--train", action="store_true", help="train a MiniLM model first")
    parser.add_argument("--run-dir", default="/tmp/pred_run", help="where --train trains")
    parser.add_argument("--limit", type=int, default=None, help="first n test sentences only")
    parser.add_argument("--batch-size", type=int, default=64, help="bioner batch size")
    parser.add_argument(
        "--precision",
        default="auto",
        help="bioner precision: auto (the Tagger's default), 32, bf16",
    )
    parser.add_argument("--pipeline-batch-size", type=int, default=1)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument(
        "--device", choices=("auto", "cpu", "gpu"), default="auto", help="auto: the GPU if any"
    )
    parser.add_argument(
        "--no-diagnose",
        dest="diagnose",
        action="store_false",
        help="skip tagging with bioner's decode_rule=argmax (the pipeline's rule) as well",
    )
    parser.add_argument("--worker", choices=RECIPES, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.device == "auto":
        import torch

        args.device = "gpu" if torch.cuda.is_available() else "cpu"
    if args.worker:
        run_worker(args)
        return
    if args.train:
        run_dir = Path(args.run_dir)
        if not (run_dir / "model" / "config.json").is_file():
            train_model(run_dir)
        args.model = str(run_dir)
    if not args.model:
        parser.error("give --model <folder> or --train")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes.split(","):
            results[recipe] = run_recipe(recipe, args, Path(tmp) / f"{recipe}.json")
            r = results[recipe]
            print(
                f"{recipe:<10} {r['sentences_per_s']:7.1f} sentences/s "
                f"({r['sentences']} in {r['seconds']:.1f} s, {r['precision']}), "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
    figures: dict = {"model": args.model, "device": args.device, "bioner_precision": args.precision}
    figures["pipeline_batch_size"] = args.pipeline_batch_size
    docs = load_docs(args.limit)
    for name, r in results.items():
        figures[name] = {k: v for k, v in r.items() if not k.startswith("spans")}
        figures[name]["test_f1_strict"] = gold_f1(docs, r["spans"])
        if r.get("spans_argmax") is not None:
            figures[name]["test_f1_strict_argmax"] = gold_f1(docs, r["spans_argmax"])
    if {"bioner", "pipeline"} <= results.keys():
        ours, theirs = results["bioner"], results["pipeline"]
        figures["speedup"] = ours["sentences_per_s"] / theirs["sentences_per_s"]
        texts = [doc.text for doc in docs]
        words = pipeline_words(texts, args.model)
        figures["agreement"] = agreement(texts, words, ours["spans"], theirs["spans"])
        a = figures["agreement"]
        print(
            f"bioner / pipeline: {figures['speedup']:.2f}x; same words in "
            f"{a['share_same_words']:.1%} of sentences; there identical spans in "
            f"{a['share_identical_spans']:.1%}, span agreement {a['span_agreement']:.4f}"
        )
        print(
            f"strict test F1: bioner {figures['bioner']['test_f1_strict']:.4f}, "
            f"pipeline {figures['pipeline']['test_f1_strict']:.4f}"
        )
        if ours.get("spans_argmax") is not None:
            same = agreement(texts, words, ours["spans_argmax"], theirs["spans"])
            figures["agreement_argmax"] = same
            print(
                f"bioner with decode_rule=argmax (the pipeline's rule): identical spans in "
                f"{same['share_identical_spans']:.1%}, span agreement "
                f"{same['span_agreement']:.4f}, strict test F1 "
                f"{figures['bioner']['test_f1_strict_argmax']:.4f}"
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
