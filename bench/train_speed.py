"""Training speed and memory: bioner against the plain Hugging Face ``Trainer`` recipe.

Each recipe trains MiniLM on BC5CDR train for the same number of steps with batch size 32 and
learning rate 5e-5, in its own process (so peak memory is measured apart):

- ``hf_trainer``: ``bench/hf_trainer_baseline.py`` with ``Trainer`` defaults (fp32);
- ``hf_trainer_grouped``: the same with length-grouped sampling (fp32: the Trainer's strongest
  recipe on a CPU without native bf16, where its bf16 is emulated and many times slower);
- ``hf_trainer_bf16_grouped``: the same with ``bf16=True`` and length-grouped sampling;
- ``bioner``: ``bioner-train`` with its default CPU config (``trainer=cpu``, precision chosen by
  hardware, length-bucketed batches, dynamic padding).

The first ``--warmup-steps`` steps are not timed. With ``--epochs E`` every recipe instead trains
E full epochs and also reports devel strict F1 (bioner: test too). ``--dataset`` picks the corpus
of both sides (an IOB TSV corpus: bc5cdr, ncbi_disease, bc2gm, ...), ``--limit-documents N``
their first N sentences per split (smoke runs), and ``--predictions DIR`` makes the Trainer write
its devel and test word tags there (``bench/parity.py`` scores them with bioner's evaluation).
``--resume`` (with ``--epochs``) continues killed runs from their last epoch: bioner from
``<run dir>/checkpoints/last.ckpt``, the Trainer from its checkpoints in ``<run dir>/trainer``.

On a GPU (``--device auto``, the default, uses one when visible) bioner trains with
``trainer=gpu`` and the Trainer with ``use_cpu`` off. Both recipes load the same encoder: the
one bioner's config names (``--bioner-overrides model=...``), e.g. a BERT-base-shaped random
encoder, ``model=tiny model.hidden_size=768 model.num_layers=12 model.num_heads=12
model.intermediate_size=3072``. Timestamps wait for the GPU at the ends of the timed window
only. Each recipe reports peak host RSS (with where it sits: ``rss_mib`` at fit start, after
steps 1 and ``warmup``, at the end; ``rss_by_mapping_mib``) and peak GPU memory.
``--profile-steps N`` profiles N more steps of each recipe with ``torch.profiler`` and prints the
operators that take host and device time and the host-device synchronisations per step, with
the Python lines that caused them (``bench/measure.py``). Usage::

    BIONER_DATA_DIR=../shared/data python bench/train_speed.py --steps 60
    BIONER_DATA_DIR=../shared/data python bench/train_speed.py --epochs 3 \
        --recipes bioner,hf_trainer_bf16_grouped
    BIONER_DATA_DIR=../shared/data python bench/train_speed.py --steps 60 --warmup-steps 20 \
        --batch-size 128 --profile-steps 5 --recipes bioner,hf_trainer_bf16_grouped \
        --bioner-overrides model=tiny model.hidden_size=768 model.num_layers=12 \
        model.num_heads=12 model.intermediate_size=3072 data.max_tokens=null

``--rounds N`` runs the recipes N times, alternating (A, B, A, B, ...), and reports each recipe's
median rate (its runs under ``runs``) and the ratios of the medians: on a shared machine the
same 60 steps vary by 5 to 10% from run to run, as much as the ratios to resolve.

Each recipe also reports the real (non-padding) sub-word tokens per second of its timed steps,
``tokens_per_s``, with ``subwords_per_sentence`` and ``padding`` (padded over real tokens), and
the ratios ``token_speedup_vs_*``: over a window of steps the recipes' samplers train different
sentences, and sentences per second favour the window of shorter ones. Over whole epochs
(``--epochs``) both recipes train every sentence, and sentences per second compare directly.
``new_batch_shapes_timed`` counts the batch shapes first met in the timed steps (each costs
once), ``batch_shapes`` those of the whole run.

``bench/gpu.sh`` runs every GPU figure of the README. The script ends by printing one JSON line
with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L

# bench/ is on sys.path when run as a script
from measure import StepWindow

HERE = Path(__file__).resolve().parent
RECIPES = ("hf_trainer", "hf_trainer_grouped", "hf_trainer_bf16_grouped", "bioner")


class StepTimer(StepWindow, L.Callback):
    """Times bioner's training steps (:class:`measure.StepWindow`) as a Lightning callback.

    Counts the sentences of the timed batches: with ``data.max_tokens`` a batch of long sentences
    has fewer than ``batch_size`` members, so steps times batch size would overstate the rate.
    """

    def on_fit_start(self, trainer, pl_module) -> None:  # noqa: ANN001
        self.fit_start()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.step_start()
        self.count_batch(batch["attention_mask"])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.step_end()


def bioner_checkpoint(run_dir: str | Path) -> Path:
    """Where bioner's recipe keeps its last epoch's checkpoint (``--resume`` continues it)."""
    return Path(run_dir) / "checkpoints" / "last.ckpt"


def trainer_checkpoints(run_dir: str | Path) -> Path:
    """The folder of the Trainer recipe's epoch checkpoints with ``--resume``."""
    return Path(run_dir) / "trainer"


def run_bioner(args: argparse.Namespace) -> dict:
    """Train with bioner's defaults in this process; print and return the figures."""
    from bioner.config import compose_config
    from bioner.train import train

    overrides = [
        "experiment=quickstart",
        f"run_dir={args.run_dir}",
        "overwrite=true",  # a scratch folder, reused run after run (ckpt_path=last continues)
        "logger=none",
        "callbacks.rich_progress_bar=null",
        f"data.batch_size={args.batch_size}",
        f"module.lr={args.lr}",
        "module.warmup_ratio=0.0",
        f"seed={args.seed}",
        f"dataset={args.dataset}",
        *([f"data.limit_documents={args.limit_documents}"] if args.limit_documents else []),
    ]
    if args.epochs:
        overrides += [f"trainer.max_epochs={args.epochs}", "test=true", "bootstrap_samples=0"]
        if args.resume and bioner_checkpoint(args.run_dir).is_file():
            overrides.append("ckpt_path=last")
    else:
        overrides += [
            f"trainer.max_steps={args.steps + args.profile_steps}",
            "train=true",
            "test=false",
            "trainer.limit_val_batches=0",
            "trainer.num_sanity_val_steps=0",
            "callbacks.early_stopping=null",
            # The Trainer recipe saves nothing (save_strategy="no"); a checkpoint at an epoch end
            # would land in the timed window.
            "callbacks.model_checkpoint=null",
            "callbacks.last_checkpoint=null",
        ]
    # The user's overrides last, so that they win (an ablation, test=false).
    cfg = compose_config("train", [*overrides, *args.bioner_overrides])
    timed = None if args.epochs else args.steps - args.warmup_steps
    timer = StepTimer(args.warmup_steps, timed, args.profile_steps)
    summary = train(cfg, extra_callbacks=[timer])
    result = {
        "recipe": "bioner",
        "precision": summary.get("precision"),
        "steps": timer.steps - args.warmup_steps if timed is None else timed,
        "seconds": timer.seconds,
        **timer.rates(),
        **timer.figures("bioner"),
    }
    if args.epochs:
        # Whole epochs, validation excluded (the Trainer recipe validates only at the end).
        rates = summary["train_sequences_per_s"]
        result["sentences_per_s"] = sum(rates) / len(rates)
        # The timer's window spans the validation between epochs too: the same rate per sub-word.
        result["tokens_per_s"] = result["sentences_per_s"] * result["subwords_per_sentence"]
        result["epoch_sentences_per_s"] = rates
        result["epochs"] = args.epochs
        for split in ("devel", "test"):  # absent with test=false (bench/attack_cost.py --epochs)
            if split in summary:
                result[f"{split}_f1"] = summary[split]["metrics"]["f1"]
    print(json.dumps(result))
    return result


def encoder_folder(args: argparse.Namespace) -> str:
    """The folder of the encoder that bioner trains, so that the Trainer recipes load the same.

    Built first when it is a ``model=tiny`` encoder (for example BERT-base-shaped on a GPU).
    """
    from hydra.utils import instantiate

    from bioner.config import compose_config

    cfg = compose_config("train", ["experiment=quickstart", "run_dir=.", *args.bioner_overrides])
    return instantiate(cfg.model).resolve()


def run_recipe(recipe: str, args: argparse.Namespace) -> dict:
    """Run one recipe in a fresh process and return its JSON line."""
    if recipe == "bioner":
        cmd = [sys.executable, __file__, "--worker", "--run-dir", args.run_dir]
        cmd += ["--device", args.device, "--dataset", args.dataset]
        if args.bioner_overrides:
            cmd += ["--bioner-overrides", *args.bioner_overrides]
        if args.resume:
            cmd.append("--resume")
    else:
        cmd = [sys.executable, str(HERE / "hf_trainer_baseline.py"), "--model", args.model]
        cmd += ["--device", args.device, "--dataset", args.dataset]
        if args.predictions:
            cmd += ["--predictions", args.predictions]
        if args.resume:
            cmd += ["--resume", str(trainer_checkpoints(args.run_dir))]
        if "bf16" in recipe:
            cmd.append("--bf16")
        if recipe.endswith("_grouped"):
            cmd.append("--group-by-length")
    cmd += [
        "--steps",
        str(args.steps),
        "--warmup-steps",
        str(args.warmup_steps),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--seed",
        str(args.seed),
        "--profile-steps",
        str(args.profile_steps),
    ]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.limit_documents:
        cmd += ["--limit-documents", str(args.limit_documents)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if out.returncode:
        raise RuntimeError(f"{recipe} failed:\n{out.stderr[-3000:]}")
    if args.profile_steps:
        print(out.stdout[out.stdout.find("== ") :].rsplit("\n{", 1)[0], flush=True)
    return json.loads(
        next(line for line in reversed(out.stdout.splitlines()) if line.startswith("{"))
    )


def median_run(runs: list[dict]) -> dict:
    """One recipe's figures over its rounds: the run of median speed (the lower middle one of
    an even number), with every run's rate under ``runs`` when there were several."""
    ordered = sorted(runs, key=lambda r: r["sentences_per_s"])
    middle = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        middle["runs"] = [r["sentences_per_s"] for r in runs]
        middle["peak_rss_mib_max"] = max(r["peak_rss_mib"] for r in runs)
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--run-dir", default="/tmp/bioner-bench-train")
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the recipes N times, alternating; medians"
    )
    parser.add_argument("--dataset", default="bc5cdr", help="an IOB TSV corpus of both recipes")
    parser.add_argument(
        "--limit-documents", type=int, default=None, help="first N sentences per split (smoke)"
    )
    parser.add_argument(
        "--predictions", default=None, help="--epochs: the Trainer's devel/test tags go here"
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "gpu"),
        default="auto",
        help="auto: the GPU when one is visible (bioner: trainer=gpu; the Trainer: use_cpu off)",
    )
    parser.add_argument(
        "--profile-steps",
        type=int,
        default=0,
        help="after the timed steps, profile this many with torch.profiler and print the tables",
    )
    parser.add_argument(
        "--bioner-overrides", nargs="*", default=[], help="extra Hydra overrides for bioner"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="--epochs: continue killed runs in --run-dir from their last epoch's checkpoint",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resume and not args.epochs:
        parser.error("--resume needs --epochs")
    if not args.epochs and args.steps <= args.warmup_steps:
        parser.error("--steps must exceed --warmup-steps: only the steps after those are timed")
    if args.rounds < 1 or (args.rounds > 1 and args.resume):
        parser.error("--rounds must be at least 1, and 1 with --resume")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.device == "auto":
        import torch

        args.device = "gpu" if torch.cuda.is_available() else "cpu"
    if args.worker:
        if args.device == "gpu":
            args.bioner_overrides = ["trainer=gpu", *args.bioner_overrides]
        run_bioner(args)
        return
    args.model = encoder_folder(args)

    runs: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for recipe in args.recipes.split(","):
            r = run_recipe(recipe, args)
            runs.setdefault(recipe, []).append(r)
            f1 = f"  devel F1 {r['devel_f1']:.4f}" if "devel_f1" in r else ""
            gpu = (
                f"  GPU {r['peak_gpu_allocated_mib']:7.0f} MiB"
                if "peak_gpu_allocated_mib" in r
                else ""
            )
            print(
                f"{recipe:<26} {r['sentences_per_s']:7.1f} sentences/s "
                f"{r['tokens_per_s']:8.0f} sub-words/s (padding {r['padding']:.3f}, "
                f"{r['new_batch_shapes_timed']} new batch shapes timed)  "
                f"peak RSS {r['peak_rss_mib']:7.0f} MiB{gpu}{f1}",
                flush=True,
            )
    results = {recipe: median_run(rs) for recipe, rs in runs.items()}
    figures = {"device": args.device, "batch_size": args.batch_size, "results": results}
    figures["rounds"] = args.rounds
    if "bioner" in results:
        ours = results["bioner"]
        for name in results:
            if name != "bioner":
                theirs = results[name]
                figures[f"speedup_vs_{name}"] = ours["sentences_per_s"] / theirs["sentences_per_s"]
                tokens = ours["tokens_per_s"] / theirs["tokens_per_s"]
                figures[f"token_speedup_vs_{name}"] = tokens
                print(
                    f"bioner / {name}: {figures[f'speedup_vs_{name}']:.2f}x sentences/s, "
                    f"{tokens:.2f}x sub-words/s"
                )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
