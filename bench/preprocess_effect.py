"""What text normalisation (``preprocess=...``) does to F1: paired runs over seeds and corpora.

For each corpus and seed, trains twice with everything equal but ``preprocess`` (``none``
against ``--preprocess``), then compares the two on the devel and test splits:

- per seed, the strict F1 of each and the difference;
- a **paired bootstrap** over documents (:func:`bioner.evaluation.paired_bootstrap`, as
  ``bioner-report --baseline`` does): the predictions of the seed-matched runs are pooled, the
  same documents are drawn for both systems, and the one-sided p-value is that of "preprocessing
  scores higher";
- a **sign-flip permutation test** over the per-seed differences (exact; with 3 seeds its
  smallest two-sided p-value is 0.25, so it can only flag a consistent sign, not significance).

Runs are written under ``--out/<dataset>/<none|shorthand+spelling>/s<seed>`` and reused when their
``metrics.json`` exists, so an interrupted benchmark continues. Usage::

    BIONER_DATA_DIR=../shared/data python bench/preprocess_effect.py \\
        --datasets bc5cdr_pubtator,ncbi_disease --seeds 1,2,3 \\
        --overrides experiment=quickstart logger=none
    # a smoke run of the whole pipeline (random tiny model, a few steps):
    BIONER_DATA_DIR=../shared/data python bench/preprocess_effect.py --seeds 1,2,3 \\
        --overrides model=tiny trainer.max_epochs=1 trainer.limit_train_batches=3 \\
        data.limit_documents=30 logger=none

The script prints a table and ends with one JSON line holding every figure.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bioner.config import compose_config
from bioner.data.document import Document
from bioner.evaluation import evaluate, paired_bootstrap
from bioner.inference.formats import predictions_file, read_jsonl, text_matches_hash
from bioner.train import train

QUIET = [
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "bootstrap_samples=0",
]


def folder(variant: str) -> str:
    """The folder of a ``preprocess`` choice: ``[shorthand,spelling]`` -> ``shorthand+spelling``."""
    return variant.strip("[]").replace(",", "+").replace(" ", "") or "none"


def run(out: Path, dataset: str, variant: str, seed: int, overrides: list[str]) -> Path:
    """Train one setting into its folder (unless done already); return the folder."""
    run_dir = out / dataset / folder(variant) / f"s{seed}"
    if not (run_dir / "metrics.json").is_file():
        cfg = compose_config(
            "train",
            [
                f"run_dir={run_dir}",
                "overwrite=true",  # what a killed attempt left there
                f"dataset={dataset}",
                f"seed={seed}",
                f"preprocess={variant}",
                *QUIET,
                *overrides,
            ],
        )
        train(cfg)
    return run_dir


def predictions(
    run_dir: Path, split: str, corpus: Mapping[str, Document] | None = None
) -> tuple[list[Document], list[list[Any]]]:
    """Gold documents and predicted spans of a run's split, by document id order. A text-free
    predictions file (an archived run) takes text and gold from ``corpus`` (documents by id),
    whose text must have the recorded SHA-256.

    Raises:
        SystemExit: a text-free record whose document ``corpus`` lacks or holds another text.
    """
    path = predictions_file(run_dir, split)
    records = sorted(read_jsonl(path), key=lambda r: r["id"])
    gold = []
    for r in records:
        if r["text"] is not None:
            gold.append(Document(r["id"], r["text"], sorted(r["gold"])))
            continue
        doc = (corpus or {}).get(r["id"])
        if doc is None or not text_matches_hash(doc.text, r["text_sha256"]):
            found = "is not in the corpus" if doc is None else "has another text in the corpus"
            raise SystemExit(
                f"{path}: document {r['id']} {found}; a text-free (archived) run is scored "
                "against the corpus it was trained on (BIONER_DATA_DIR)"
            )
        gold.append(Document(doc.id, doc.text, sorted(doc.spans)))
    return gold, [r["spans"] for r in records]


def sign_flip_p(deltas: list[float]) -> float:
    """Exact two-sided sign-flip permutation p-value of the mean of paired differences."""
    observed = abs(float(np.mean(deltas)))
    flips = list(itertools.product((1, -1), repeat=len(deltas)))
    hits = sum(
        abs(float(np.mean([s * d for s, d in zip(signs, deltas)]))) >= observed - 1e-12
        for signs in flips
    )
    return hits / len(flips)


def paired_runs(
    runs_a: list[Path],
    runs_b: list[Path],
    seeds: list[int],
    split: str,
    samples: int,
    corpus: Mapping[str, Document] | None = None,
) -> dict[str, Any]:
    """Two systems' seed-matched runs (``runs_a[i]`` and ``runs_b[i]`` trained with
    ``seeds[i]``) compared on ``split``: per-seed strict F1 (``f1_a``, ``f1_b``), the paired
    bootstrap of "A scores higher" on the pooled predictions, and the sign-flip test.
    ``corpus``: the split's documents by id, for text-free predictions (:func:`predictions`).

    Raises:
        SystemExit: two matched runs scored different documents or gold spans.
    """
    gold_all: list[Document] = []
    pred_a: list[list[Any]] = []
    pred_b: list[list[Any]] = []
    per_seed = []
    for seed, run_a, run_b in zip(seeds, runs_a, runs_b, strict=True):
        gold_a, a = predictions(run_a, split, corpus)
        gold_b, b = predictions(run_b, split, corpus)
        if [d.id for d in gold_a] != [d.id for d in gold_b] or [d.spans for d in gold_a] != [
            d.spans for d in gold_b
        ]:
            raise SystemExit(f"seed {seed}: {run_a} and {run_b} scored different {split} gold")
        f1_a = evaluate(gold_a, a).metrics()["f1"]
        f1_b = evaluate(gold_b, b).metrics()["f1"]
        per_seed.append({"seed": seed, "f1_a": f1_a, "f1_b": f1_b})
        gold_all += gold_a
        pred_a += a
        pred_b += b
    test = paired_bootstrap(gold_all, pred_a, pred_b, n=samples, seed=0)
    deltas = [s["f1_a"] - s["f1_b"] for s in per_seed]
    return {
        "split": split,
        "per_seed": per_seed,
        "delta_mean": float(np.mean(deltas)),
        "delta_sd": float(np.std(deltas, ddof=1)) if len(deltas) > 1 else 0.0,
        "pooled": test,
        "sign_flip_p": sign_flip_p(deltas),
    }


def compare(
    out: Path, dataset: str, variant: str, seeds: list[int], split: str, samples: int
) -> dict[str, Any]:
    """Per-seed F1 of both variants, the paired bootstrap and the sign-flip test on ``split``."""
    result = paired_runs(
        [out / dataset / folder(variant) / f"s{seed}" for seed in seeds],
        [out / dataset / "none" / f"s{seed}" for seed in seeds],
        seeds,
        split,
        samples,
    )
    for s in result["per_seed"]:
        s["f1_pre"], s["f1_none"] = s.pop("f1_a"), s.pop("f1_b")
    return {"dataset": dataset, **result}


def comparison_cells(result: dict[str, Any]) -> str:
    """The table cells of a :func:`paired_runs` result: Δ mean ± sd, pooled Δ [95% CI], the
    bootstrap's and the sign-flip test's p-values."""
    t = result["pooled"]
    return (
        f"{100 * result['delta_mean']:+.2f} ± {100 * result['delta_sd']:.2f} | "
        f"{100 * t['delta']:+.2f} [{100 * t['ci'][0]:+.2f}, {100 * t['ci'][1]:+.2f}] | "
        f"{t['p_value']:.3f} | {result['sign_flip_p']:.3f}"
    )


def table(rows: list[dict[str, Any]], variant: str) -> str:
    head = (
        f"| corpus | split | F1 none (per seed) | F1 {variant} (per seed) | Δ mean ± sd (points) "
        "| pooled Δ [95% CI] | p (bootstrap, one-sided) | p (sign flip) |"
    )
    lines = [head, "|" + " --- |" * 8]
    for r in rows:
        none = " / ".join(f"{s['f1_none']:.4f}" for s in r["per_seed"])
        pre = " / ".join(f"{s['f1_pre']:.4f}" for s in r["per_seed"])
        lines.append(f"| {r['dataset']} | {r['split']} | {none} | {pre} | {comparison_cells(r)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--datasets", default="bc5cdr_pubtator,ncbi_disease")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--preprocess", default="[shorthand,spelling]")
    parser.add_argument("--out", default="logs/bench/preprocess_effect")
    parser.add_argument("--samples", type=int, default=1000, help="paired bootstrap samples")
    parser.add_argument("--overrides", nargs="*", default=[], help="train overrides for all runs")
    args = parser.parse_args()
    out = Path(args.out)
    datasets = [d for d in args.datasets.split(",") if d]
    seeds = [int(s) for s in args.seeds.split(",")]
    variant = args.preprocess
    for dataset, seed in itertools.product(datasets, seeds):
        for name in ("none", variant):
            run(out, dataset, name, seed, list(args.overrides))
    rows = [
        compare(out, dataset, variant, seeds, split, args.samples)
        for dataset in datasets
        for split in ("devel", "test")
    ]
    print(table(rows, variant), flush=True)
    print(json.dumps({"preprocess": variant, "overrides": args.overrides, "results": rows}))


if __name__ == "__main__":
    main()
