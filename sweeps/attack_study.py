"""The adversarial-training study: each attack against ``none``, epsilons chosen on devel.

1. Selection, seed 1: ``attack=none`` and, for every attack, each candidate epsilon
   (``CANDIDATES``); the epsilon with the best devel strict F1 is kept (test is not looked at).
2. Seeds 2 and 3 for ``none`` and for every attack at its chosen epsilon; with the seed-1 run of
   that epsilon, three seeds per setting.

Every run is ``bioner-train experiment=attack_study`` (MiniLM, BC5CDR, CPU, robustness on) in a
Hydra multirun under ``<root>/<phase>``. The script only runs and selects; ``bioner-report`` (or
``--summary``) makes the table. Usage::

    BIONER_DATA_DIR=../shared/data python sweeps/attack_study.py --root logs/attack_study

It skips runs whose ``metrics.json`` exists, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# Candidate epsilons per attack: a small and a large radius on each attack's scale (L-inf per
# coordinate for fgsm; L2 per token for the others; MiniLM's word embeddings: coordinates about
# 0.05, token norms about 1.1).
CANDIDATES = {
    "fgsm": [0.001, 0.005],
    "fgm": [0.05, 0.2],
    "pgd": [0.05, 0.2],
    "freelb": [0.05, 0.2],
}


def run(root: Path, name: str, overrides: list[str]) -> list[dict]:
    """One Hydra multirun in ``root/name`` (skipped when done); its jobs' metrics."""
    folder = root / name
    done = sorted(folder.glob("*/metrics.json"))
    if not done:
        cmd = [
            sys.executable,
            "-m",
            "bioner.train",
            "-m",
            "experiment=attack_study",
            f"hydra.sweep.dir={folder}",
            *overrides,
        ]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        done = sorted(folder.glob("*/metrics.json"))
    return [json.loads(p.read_text()) | {"run_dir": str(p.parent)} for p in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("logs/attack_study"))
    parser.add_argument("--attacks", default=",".join(CANDIDATES))
    args = parser.parse_args()
    attacks = args.attacks.split(",")

    run(args.root, "select_none", ["seed=1", "attack=none"])
    chosen: dict[str, float] = {}
    for attack in attacks:
        eps = ",".join(str(e) for e in CANDIDATES[attack])
        overrides = ["seed=1", f"attack={attack}", f"attack.epsilon={eps}"]
        jobs = run(args.root, f"select_{attack}", overrides)
        best = max(jobs, key=lambda m: m["devel"]["metrics"]["f1"])
        chosen[attack] = _epsilon(Path(best["run_dir"]))
        tried = ", ".join(
            f"{_epsilon(Path(j['run_dir']))}: {j['devel']['metrics']['f1']:.4f}" for j in jobs
        )
        print(f"{attack}: devel F1 {tried} -> epsilon {chosen[attack]}", flush=True)
    (args.root / "chosen_epsilons.json").write_text(json.dumps(chosen, indent=2) + "\n")
    run(args.root, "seeds_none", ["seed=2,3", "attack=none"])
    for attack in attacks:
        run(
            args.root,
            f"seeds_{attack}",
            ["seed=2,3", f"attack={attack}", f"attack.epsilon={chosen[attack]}"],
        )


def _epsilon(run_dir: Path) -> float:
    """The attack epsilon of a finished run (from its resolved ``config.yaml``)."""
    import yaml

    return float(yaml.safe_load((run_dir / "config.yaml").read_text())["attack"]["epsilon"])


if __name__ == "__main__":
    main()
