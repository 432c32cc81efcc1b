"""Cost of adversarial training: time per training step of each attack relative to ``none``.

Trains MiniLM on BC5CDR train (batch 32, bioner's default CPU config, the quickstart experiment)
for the same steps under each attack, in one process after a common warm-up, and prints seconds
per step, the ratio to ``none`` and the target ratio:

- ``fgsm``, ``fgm``: at most 2.0x;
- ``pgd`` with K steps: at most (K + 1)x;
- ``freelb`` with K steps: at most (K + 0.5)x.
- ``vat`` with K power iterations: at most (K + 2)x (its own bound: the clean pass, K probes
  and the perturbed pass); with unannotated text (``--extra attack.unlabeled=<text>``) every
  pass also covers ``attack.unlabeled_ratio`` unannotated sequences per labelled one, and the
  bound grows by that factor: (K + 2)(1 + ratio)x.

Every attack sees the same batches (the data order is seeded), so the ratios compare like with
like; an untimed clean run comes first, so that one-off costs per batch shape fall on no attack.
On a GPU (``--device auto``) training uses ``trainer=gpu``.

That is the steady-state cost of a step. ``--epochs E`` measures what a training run pays
instead: each attack trains E full epochs in a fresh process (``bench/train_speed.py``'s
``bioner`` recipe: the quickstart, no warm-up run before it), and the ratio is of whole-epoch
throughput, training sequences per second with data loading, every batch shape's first-call costs
and the logging included, validation excluded (bioner's ``train/sequences_per_s``). Usage::

    BIONER_DATA_DIR=../shared/data python bench/attack_cost.py --steps 40
    BIONER_DATA_DIR=../shared/data python bench/attack_cost.py --attacks none,pgd \\
        --extra attack.steps=5
    BIONER_DATA_DIR=../shared/data python bench/attack_cost.py --attacks none,fgsm --epochs 1

The script ends by printing one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from measure import memory_figures  # bench/ is on sys.path when run as a script
from train_speed import StepTimer, run_recipe

from bioner.config import compose_config
from bioner.train import train


def target(attack: str, steps: int, unlabeled_ratio: float = 0.0) -> float | None:
    """The issue's bound on the cost ratio of ``attack`` (``None``: no bound); VAT's passes
    over ``unlabeled_ratio`` unannotated sequences per labelled one scale its bound."""
    bounds = {
        "fgsm": 2.0,
        "fgm": 2.0,
        "pgd": steps + 1.0,
        "freelb": steps + 0.5,
        "vat": (steps + 2.0) * (1.0 + unlabeled_ratio),
    }
    return bounds.get(attack)


def time_attack(attack: str, args: argparse.Namespace) -> dict:
    overrides = [
        "experiment=quickstart",
        f"attack={attack}",
        f"run_dir={args.run_dir}/{attack}",
        "overwrite=true",  # a scratch folder, reused run after run
        "logger=none",
        "callbacks.rich_progress_bar=null",
        "trainer.enable_progress_bar=false",
        "callbacks.early_stopping=null",
        "callbacks.model_checkpoint=null",
        "callbacks.last_checkpoint=null",
        f"trainer.max_steps={args.steps + args.warmup_steps}",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "test=false",
        f"seed={args.seed}",
        *(["trainer=gpu"] if args.device == "gpu" else []),
        *args.extra,
    ]
    if attack == "none":
        overrides = [o for o in overrides if not o.startswith("attack.")]
    cfg = compose_config("train", overrides)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer(args.warmup_steps, args.steps)
    summary = train(cfg, extra_callbacks=[timer])
    steps = int(cfg.attack.get("steps", 1)) if "steps" in cfg.attack else None
    unlabeled = float(cfg.attack.unlabeled_ratio) if cfg.attack.get("unlabeled") else 0.0
    return {
        "attack": attack,
        "steps": steps,
        "unlabeled_ratio": unlabeled,
        "seconds_per_step": timer.seconds / args.steps,
        "precision": summary.get("precision"),
        **memory_figures(),
    }


def epoch_rate(attack: str, args: argparse.Namespace) -> dict:
    """Train ``args.epochs`` full epochs under ``attack`` in a fresh process; its throughput."""
    recipe = argparse.Namespace(
        run_dir=f"{args.run_dir}/epochs/{attack}",
        device=args.device,
        dataset="bc5cdr",
        bioner_overrides=[f"attack={attack}", "test=false", *args.extra],
        steps=0,
        warmup_steps=0,
        profile_steps=0,
        batch_size=32,
        lr=2e-4,  # the quickstart's
        seed=args.seed,
        epochs=args.epochs,
        limit_documents=None,
        predictions=None,
        resume=False,
    )
    result = run_recipe("bioner", recipe)
    return {
        "attack": attack,
        "sequences_per_s": result["sentences_per_s"],
        "epoch_sequences_per_s": result["epoch_sentences_per_s"],
        "precision": result.get("precision"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--attacks", default="none,fgsm,fgm,pgd,freelb,vat")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per attack")
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--run-dir", default="/tmp/bioner-bench-attacks")
    parser.add_argument("--extra", nargs="*", default=[], help="more Hydra overrides")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="instead of timed steps: full epochs per attack, each in its own process",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "gpu"), default="auto", help="auto: the GPU if any"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.device == "auto":
        args.device = "gpu" if torch.cuda.is_available() else "cpu"
    attacks = args.attacks.split(",")
    if attacks[0] != "none":
        attacks.insert(0, "none")

    if args.epochs:
        rates = {a: epoch_rate(a, args) for a in attacks}
        base_rate = rates["none"]["sequences_per_s"]
        print(f"{'attack':<8} {'seq/s':>8} {'cost':>6}  per epoch")
        for name, r in rates.items():
            r["ratio"] = base_rate / r["sequences_per_s"]
            epochs = ", ".join(f"{x:.1f}" for x in r["epoch_sequences_per_s"])
            print(f"{name:<8} {r['sequences_per_s']:8.1f} {r['ratio']:5.2f}x  {epochs}")
        print(json.dumps({"device": args.device, "epochs": args.epochs, "results": rates}))
        return

    # An untimed first run: the first training in a process pays one-off costs per batch shape
    # (on a GPU, cuDNN attention plans are built per shape: measured, the first of five timed
    # runs took twice as long per step as clean training after it), which would otherwise fall
    # on whichever attack runs first. Every attack sees the same seeded batches.
    time_attack("none", args)
    results = {a: time_attack(a, args) for a in attacks}
    base = results["none"]["seconds_per_step"]
    print(f"{'attack':<8} {'K':>3} {'s/step':>8} {'ratio':>6} {'target':>7}")
    for name, r in results.items():
        r["ratio"] = r["seconds_per_step"] / base
        r["target"] = target(name, r["steps"] or 1, r["unlabeled_ratio"])
        r["within_target"] = r["target"] is None or r["ratio"] <= r["target"]
        bound = f"{r['target']:.1f}x" if r["target"] else "-"
        print(
            f"{name:<8} {r['steps'] or '-':>3} {r['seconds_per_step']:8.3f} "
            f"{r['ratio']:5.2f}x {bound:>7}"
        )
    print(
        json.dumps(
            {"device": args.device, "torch_threads": torch.get_num_threads(), "results": results}
        )
    )


if __name__ == "__main__":
    main()
