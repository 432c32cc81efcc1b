"""Accuracy parity with the plain Hugging Face ``Trainer`` over seeds and corpora (issue 19).

Both sides train the same recipe: the quickstart's encoder (MiniLM), ``--lr`` 2e-4, ``--epochs``
4, batch 32, no warm-up (the Trainer's default), the seed, and the precision bioner chooses for
the hardware (the Trainer gets ``bf16`` when bioner trained in bf16). Each run is one process of
``bench/train_speed.py`` (its ``bioner`` recipe, and ``bench/hf_trainer_baseline.py``, the plain
``Trainer`` as ``run_ner.py`` uses it). The Trainer's word-level predictions are turned into spans
over the same documents that bioner scores (its reader, one document per sentence of the IOB file,
tags decoded as bioner decodes its own) and both sides are scored by :mod:`bioner.evaluation`:

- per corpus and side, devel and test strict F1, mean ± sd over the seeds, and the difference;
- a paired bootstrap over documents on the pooled seed-matched predictions and a sign-flip test
  over the seeds (``bench/preprocess_effect.py``'s :func:`paired_runs`), one-sided for "bioner
  scores higher";
- the wall time of each run.

Runs go to ``--out/<dataset>/<side>/s<seed>``: ``bioner`` (``bioner+<overrides>`` for an ablation,
so that ``--bioner-overrides alignment.decode_rule=argmax`` gets folders of its own) and
``hf_trainer`` (``hf_trainer_bf16``; ``+<model overrides>`` when the encoder is changed). A run
whose ``result.json`` exists is reused, so an interrupted comparison continues; a run killed
after an epoch continues from that epoch's checkpoint (``bench/train_speed.py --resume``), one
killed before starts afresh. ``--archive DIR`` keeps each finished run, as it finishes, in ``DIR``
(same layout; results and text-free predictions, no checkpoint) and takes back from there the runs
``--out`` lacks, so a comparison outlives its machine (``docs/results/parity`` holds the BC2GM
runs; the BC5CDR and NCBI-disease ones predate it); the gold of such runs is read from the corpus.
``--bioner-only`` trains bioner's side alone, to split a comparison across sessions. Usage::

    BIONER_DATA_DIR=../shared/data OMP_NUM_THREADS=1 python bench/parity.py \\
        --datasets bc5cdr,ncbi_disease,bc2gm --seeds 1,2,3
    # an ablation when bioner trails (the Trainer runs above are reused):
    BIONER_DATA_DIR=../shared/data python bench/parity.py --datasets bc5cdr --seeds 1,2,3 \\
        --bioner-overrides alignment.decode_rule=argmax module.fast_dropout=false
    # a smoke run of the whole pipeline (random tiny model, 30 sentences per split):
    BIONER_DATA_DIR=../shared/data python bench/parity.py --datasets bc5cdr,ncbi_disease \\
        --seeds 1,2 --epochs 1 --limit-documents 30 --out /tmp/parity --bioner-overrides model=tiny

The script prints a table and ends with one JSON line holding every figure (also written to
``--out/<side>.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import train_speed  # bench/ is on sys.path when run as a script
from hydra.utils import instantiate
from preprocess_effect import comparison_cells, paired_runs

from bioner.config import compose_config
from bioner.data.document import Document
from bioner.data.tags import tags_to_spans
from bioner.inference.formats import (
    TEXT_FREE_SUFFIX,
    predictions_file,
    write_jsonl,
    write_text_free_jsonl,
)
from bioner.utils.resume import kept_seconds

SPLITS = ("devel", "test")


def slug(overrides: list[str]) -> str:
    """A folder-name part for Hydra overrides: ``a.b=c`` -> ``a.b-c``, joined by ``+``."""
    return "+".join(re.sub(r"[^A-Za-z0-9._-]+", "_", o.replace("=", "-")) for o in overrides)


def side_names(bioner_overrides: list[str], hf_recipe: str) -> tuple[str, str]:
    """The folder names of the two sides: bioner's names all its overrides; the Trainer's only
    those that change what it trains (the encoder, ``model...``)."""
    bioner = "+".join(["bioner", slug(bioner_overrides)]) if bioner_overrides else "bioner"
    model = [o for o in bioner_overrides if o.lstrip("+~").startswith("model")]
    hf = "+".join([hf_recipe, slug(model)]) if model else hf_recipe
    return bioner, hf


def recipe_args(args: argparse.Namespace, dataset: str, seed: int, run_dir: Path) -> Any:
    """The arguments of one ``train_speed.run_recipe`` call (a full-epochs run)."""
    return argparse.Namespace(
        run_dir=str(run_dir),
        device=args.device,
        dataset=dataset,
        bioner_overrides=list(args.bioner_overrides),
        model=args.model,
        steps=0,
        warmup_steps=0,
        profile_steps=0,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=seed,
        epochs=args.epochs,
        limit_documents=args.limit_documents,
        predictions=str(run_dir / "tags"),
        resume=True,
    )


def run_side(
    recipe: str, run_dir: Path, args: argparse.Namespace, dataset: str, seed: int
) -> dict[str, Any]:
    """Train one side for one seed into ``run_dir`` unless done; its ``result.json``.

    A run killed after an epoch continues from that epoch's checkpoint; its ``wall_s`` adds the
    time each earlier attempt kept (``attempts.json``) and ``resumed`` says how many there were.
    """
    done = run_dir / "result.json"
    kept = None if args.archive is None else args.archive / run_dir.relative_to(args.out)
    if not done.is_file() and kept is not None and (kept / "result.json").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)  # an unfinished attempt of a kept run
        shutil.copytree(kept, run_dir)
        print(f"  {dataset} s{seed} {recipe}: taken from {kept}", flush=True)
    if done.is_file():
        if kept is not None and not (kept / "result.json").is_file():
            keep(run_dir, kept)
        return json.loads(done.read_text())
    started = run_dir / "attempt_started"  # touched when an attempt begins
    checkpoint = last_checkpoint(run_dir)
    if checkpoint is not None and started.is_file():
        earlier = kept_seconds(run_dir / "attempts.json", started, checkpoint)
        print(f"+ {dataset} s{seed} {recipe}: resuming from {checkpoint}", flush=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)  # killed before its first epoch: afresh
        run_dir.mkdir(parents=True)
        earlier = []
        print(f"+ {dataset} s{seed} {recipe} -> {run_dir}", flush=True)
    started.touch()
    began = time.perf_counter()
    if args.model is None:  # built only when a run trains (a resumed table needs no encoder)
        args.model = train_speed.encoder_folder(args)
    result = train_speed.run_recipe(recipe, recipe_args(args, dataset, seed, run_dir))
    result["wall_s"] = time.perf_counter() - began + sum(earlier)
    result["resumed"] = len(earlier)
    if recipe != "bioner":
        score_trainer(run_dir, dataset, args)
    done.write_text(json.dumps(result, indent=2) + "\n")
    print(f"  done in {result['wall_s']:.0f} s", flush=True)
    if kept is not None:
        keep(run_dir, kept)
    return result


def keep(run_dir: Path, kept: Path) -> None:
    """Archive a finished side run: what the table reads (``result.json``, bioner's
    ``metrics.json``, ``attempts.json``) and its predictions text-free, no checkpoint and no
    corpus text; ``result.json`` is written last, as in a run."""
    for split in SPLITS:
        source = predictions_file(run_dir, split)
        write_text_free_jsonl(source, kept / "predictions" / f"{split}{TEXT_FREE_SUFFIX}")
    for name in ("metrics.json", "attempts.json", "result.json"):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, kept / name)


def last_checkpoint(run_dir: Path) -> Path | None:
    """The file written last by a side's last epoch checkpoint: bioner's ``last.ckpt``, or the
    Trainer's newest ``checkpoint-<step>/trainer_state.json``; ``None`` before the first."""
    bioner = train_speed.bioner_checkpoint(run_dir)
    if bioner.is_file():
        return bioner
    states = train_speed.trainer_checkpoints(run_dir).glob("checkpoint-*/trainer_state.json")
    return max(states, key=lambda p: int(p.parent.name.split("-")[1]), default=None)


def documents(dataset: str, split: str, args: argparse.Namespace) -> list[Document]:
    """The documents both sides score on ``split``: bioner's reader, as bioner evaluates."""
    overrides = [f"dataset={dataset}", *(o for o in args.bioner_overrides if "dataset" in o)]
    reader = instantiate(compose_config("data", overrides).dataset)
    return [reader.evaluation_document(d) for d in reader.load(split)]


def score_trainer(run_dir: Path, dataset: str, args: argparse.Namespace) -> None:
    """Turn the Trainer's word tags into ``predictions/<split>.jsonl`` over bioner's documents,
    the files bioner writes for its own runs."""
    for split in SPLITS:
        docs = documents(dataset, split, args)[: args.limit_documents]
        tags = json.loads((run_dir / "tags" / f"{split}.json").read_text())["tags"]
        if len(tags) != len(docs) or any(len(t) != len(d.words) for t, d in zip(tags, docs)):
            raise SystemExit(
                f"{run_dir / 'tags' / f'{split}.json'}: {len(tags)} tagged sentences do not match "
                f"the {len(docs)} documents of {dataset}/{split} word for word; the parity "
                "comparison needs an IOB corpus read one document per sentence"
            )
        # Decoded as bioner decodes its own tags (an I- after O starts an entity, as conlleval).
        spans = [tags_to_spans(d.words, t, "IOB2", on_invalid="repair") for d, t in zip(docs, tags)]
        write_jsonl(run_dir / "predictions" / f"{split}.jsonl", docs, spans)


def summarise(
    dataset: str, names: tuple[str, str], seeds: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """bioner against the Trainer on one corpus: F1 and tests per split, wall times."""
    runs = {name: [args.out / dataset / name / f"s{s}" for s in seeds] for name in names}
    row: dict[str, Any] = {"dataset": dataset}
    for split in SPLITS:
        # The gold of archived (text-free) runs comes from the corpus.
        corpus = None
        if args.archive is not None:
            corpus = {d.id: d for d in documents(dataset, split, args)}
        row[split] = paired_runs(runs[names[0]], runs[names[1]], seeds, split, args.samples, corpus)
    for side, name in zip(("bioner", "hf"), names):
        walls = [json.loads((r / "result.json").read_text())["wall_s"] for r in runs[name]]
        row[f"wall_s_{side}"] = walls
    return row


def mean_sd(values: list[float]) -> str:
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{float(np.mean(values)):.4f} ± {sd:.4f}"


def table(rows: list[dict[str, Any]], names: tuple[str, str]) -> str:
    head = (
        f"| corpus | split | {names[0]} F1 | {names[1]} F1 | Δ mean ± sd (points) "
        "| pooled Δ [95% CI] | p (bootstrap, one-sided) | p (sign flip) | wall h (bioner / HF) |"
    )
    lines = [head, "|" + " --- |" * 9]
    for row in rows:
        for split in SPLITS:
            r = row[split]
            hours = [np.mean(row[f"wall_s_{side}"]) / 3600 for side in ("bioner", "hf")]
            lines.append(
                f"| {row['dataset']} | {split} | {mean_sd([s['f1_a'] for s in r['per_seed']])} | "
                f"{mean_sd([s['f1_b'] for s in r['per_seed']])} | {comparison_cells(r)} | "
                f"{hours[0]:.2f} / {hours[1]:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--datasets", default="bc5cdr,ncbi_disease,bc2gm")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("logs/bench/parity"))
    parser.add_argument("--samples", type=int, default=1000, help="paired bootstrap samples")
    parser.add_argument(
        "--limit-documents", type=int, default=None, help="first N sentences per split (smoke)"
    )
    parser.add_argument(
        "--hf-recipe",
        default="auto",
        choices=("auto", "hf_trainer", "hf_trainer_bf16", "hf_trainer_grouped"),
        help="auto: hf_trainer, with bf16 when bioner trained in bf16 (precision by hardware)",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="keep each finished run (result, metrics, text-free predictions; no checkpoint)\n"
        "under this folder, mirroring --out, and take back from it the runs --out lacks",
    )
    parser.add_argument(
        "--bioner-only",
        action="store_true",
        help="train bioner's side only (no Trainer, no table): to split a comparison across\n"
        "machines or sessions, with --archive",
    )
    parser.add_argument(
        "--bioner-overrides", nargs="*", default=[], help="extra Hydra overrides for bioner"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.device == "auto":
        import torch

        args.device = "gpu" if torch.cuda.is_available() else "cpu"
    args.model = None
    datasets = [d for d in args.datasets.split(",") if d]
    seeds = [int(s) for s in args.seeds.split(",")]

    names: tuple[str, str] | None = None
    for dataset in datasets:
        for seed in seeds:
            bioner_name, _ = side_names(args.bioner_overrides, "hf_trainer")
            ours = run_side(
                "bioner", args.out / dataset / bioner_name / f"s{seed}", args, dataset, seed
            )
            if args.bioner_only:
                continue
            recipe = args.hf_recipe
            if recipe == "auto":
                recipe = "hf_trainer_bf16" if "bf16" in str(ours.get("precision")) else "hf_trainer"
            names = side_names(args.bioner_overrides, recipe)
            run_side(recipe, args.out / dataset / names[1] / f"s{seed}", args, dataset, seed)
    if args.bioner_only:
        print(
            "bioner's runs done (--bioner-only); run again without it for the Trainer and the table"
        )
        return
    assert names is not None
    rows = [summarise(d, names, seeds, args) for d in datasets]
    print(table(rows, names), flush=True)
    figures = {
        "sides": list(names),
        "recipe": {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size},
        "bioner_overrides": args.bioner_overrides,
        "results": rows,
    }
    (args.out / f"{names[0]}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
