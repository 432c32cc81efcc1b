"""The README's studies on BC5CDR with MiniLM, CPU: adversarial training and augmentation.

``attack``: ``attack=none`` and every attack, each at the epsilon with the best devel strict F1
among ``ATTACK_CANDIDATES`` (seed 1; test is not looked at), then seeds 2 and 3 at that epsilon.
``augmentation``: each augmentation of ``AUGMENTATIONS`` with seeds 1-3 (its baseline is the
attack study's ``none``, the same training). ``cv``: 5-fold cross-validation of one setting.

Every job is one ``bioner-train experiment=attack_study`` run (robustness on for the attack study,
off for the others) in its own folder under ``<root>/<study>/``; ``--workers`` jobs run at once,
each on ``--threads`` CPU threads (two 1-thread jobs use a 2-core machine better than one 2-thread
job, and never oversubscribe it). A job whose ``metrics.json`` exists is skipped, so an
interrupted study continues where it stopped. Each study ends by writing ``final_runs.txt``, the
run folders of its table, for ``bioner-report``::

    BIONER_DATA_DIR=../shared/data python sweeps/studies.py attack --root logs/studies
    bioner-report $(cat logs/studies/attack/final_runs.txt) --baseline attack=none
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py augmentation --root logs/studies
    bioner-report $(cat logs/studies/augmentation/final_runs.txt) --baseline augmentation=none \
        --group-by dataset,model,attack,alignment,augmentation  # the baseline ran robustness too
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py cv --root logs/studies \
        --overrides augmentation=noise
    bioner-report $(cat logs/studies/cv/final_runs.txt)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Candidate epsilons per attack: a small and a large radius on each attack's scale (L-inf per
# coordinate for fgsm; L2 per token for the others; MiniLM's word embeddings: coordinates about
# 0.05, token norms about 1.1).
ATTACK_CANDIDATES = {
    "fgsm": [0.001, 0.005],
    "fgm": [0.05, 0.2],
    "pgd": [0.05, 0.2],
    "freelb": [0.05, 0.2],
}
# back_translation needs MarianMT from the hub, which this offline study cannot load.
AUGMENTATIONS = ["mention_replacement", "synonym", "token_replacement", "shuffle", "noise", "mix"]
SEEDS = (1, 2, 3)


class Runner:
    """Runs ``bioner-train`` jobs, each in ``root/<name>``, ``workers`` at a time."""

    def __init__(self, root: Path, workers: int, threads: int) -> None:
        self.root = root
        self.workers = workers
        self.threads = threads

    def run(self, jobs: dict[str, list[str]]) -> dict[str, dict]:
        """Run the jobs not done yet; the metrics of every job, by name."""
        todo = {n: o for n, o in jobs.items() if not (self.root / n / "metrics.json").is_file()}
        with ThreadPoolExecutor(self.workers) as pool:
            for name, code in zip(todo, pool.map(self._one, todo.items())):
                if code:
                    raise SystemExit(f"job {name} failed (exit {code}); see {self.root / name}")
        return {n: json.loads((self.root / n / "metrics.json").read_text()) for n in jobs}

    def _one(self, job: tuple[str, list[str]]) -> int:
        name, overrides = job
        folder = self.root / name
        shutil.rmtree(folder, ignore_errors=True)  # a killed run starts afresh
        folder.mkdir(parents=True)
        cmd = [
            sys.executable,
            "-m",
            "bioner.train",
            "experiment=attack_study",
            f"hydra.run.dir={folder}",
            "callbacks.rich_progress_bar=null",
            "trainer.enable_progress_bar=false",
            *overrides,
        ]
        threads = str(self.threads)
        env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        started = time.perf_counter()
        print("+", " ".join(cmd[3:]), flush=True)
        with open(folder / "stdout.log", "w") as log:
            code = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
        print(f"  {name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
        return code

    def final(self, names: list[str]) -> None:
        """Write the run folders of a study's table to ``final_runs.txt``."""
        lines = [str(self.root / n) for n in names]
        (self.root / "final_runs.txt").write_text("\n".join(lines) + "\n")


def _devel_f1(metrics: dict) -> float:
    return metrics["devel"]["metrics"]["f1"]


def attack_study(runner: Runner, attacks: list[str]) -> None:
    """Choose each attack's epsilon on devel (seed 1), then run seeds 2 and 3 at it."""
    select = {"none_s1": ["seed=1", "attack=none"]}
    for attack in attacks:
        for eps in ATTACK_CANDIDATES[attack]:
            select[f"{attack}_eps{eps}_s1"] = [
                "seed=1",
                f"attack={attack}",
                f"attack.epsilon={eps}",
            ]
    chosen: dict[str, float] = {}
    scores = runner.run(select)
    for attack in attacks:
        tried = {
            eps: _devel_f1(scores[f"{attack}_eps{eps}_s1"]) for eps in ATTACK_CANDIDATES[attack]
        }
        chosen[attack] = max(tried, key=tried.get)
        shown = ", ".join(f"{e}: {f:.4f}" for e, f in tried.items())
        print(f"{attack}: devel F1 {shown} -> epsilon {chosen[attack]}", flush=True)
    (runner.root / "chosen_epsilons.json").write_text(json.dumps(chosen, indent=2) + "\n")

    seeds = {f"none_s{s}": [f"seed={s}", "attack=none"] for s in SEEDS[1:]}
    for attack in attacks:
        for s in SEEDS[1:]:
            seeds[f"{attack}_eps{chosen[attack]}_s{s}"] = [
                f"seed={s}",
                f"attack={attack}",
                f"attack.epsilon={chosen[attack]}",
            ]
    runner.run(seeds)
    runner.final(
        [f"none_s{s}" for s in SEEDS] + [f"{a}_eps{chosen[a]}_s{s}" for a in attacks for s in SEEDS]
    )


def augmentation_study(runner: Runner, augmentations: list[str], baseline: Path) -> None:
    """Each augmentation with seeds 1-3; the baseline is the attack study's ``none`` runs."""
    jobs = {
        f"{aug}_s{s}": [f"seed={s}", f"augmentation={aug}", "robustness=none"]
        for aug in augmentations
        for s in SEEDS
    }
    runner.run(jobs)
    none = [baseline / f"none_s{s}" for s in SEEDS]
    missing = [str(p) for p in none if not (p / "metrics.json").is_file()]
    if missing:
        raise SystemExit(f"the baseline runs are missing ({missing}): run the attack study first")
    names = [os.path.relpath(p, runner.root) for p in none] + list(jobs)
    runner.final(names)


def cv_study(runner: Runner, folds: int, overrides: list[str]) -> None:
    """``folds``-fold cross-validation of the setting given by ``overrides`` (seed 1)."""
    jobs = {
        f"fold{i}": ["seed=1", "robustness=none", f"cv.folds={folds}", f"cv.fold={i}", *overrides]
        for i in range(folds)
    }
    runner.run(jobs)
    runner.final(list(jobs))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("study", choices=["attack", "augmentation", "cv"])
    parser.add_argument("--root", type=Path, default=Path("logs/studies"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attacks", default=",".join(ATTACK_CANDIDATES))
    parser.add_argument("--augmentations", default=",".join(AUGMENTATIONS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--overrides", default="", help="cv: the setting, e.g. 'augmentation=mention_replacement'"
    )
    args = parser.parse_args()
    runner = Runner(args.root / args.study, args.workers, args.threads)
    if args.study == "attack":
        attack_study(runner, args.attacks.split(","))
    elif args.study == "augmentation":
        augmentation_study(runner, args.augmentations.split(","), args.root / "attack")
    else:
        cv_study(runner, args.folds, args.overrides.split())


if __name__ == "__main__":
    main()
