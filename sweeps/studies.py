"""The README's studies on BC5CDR with MiniLM, CPU: adversarial training and augmentation.

``attack``: ``attack=none`` and every attack, each at the epsilon with the best devel strict F1
among ``ATTACK_CANDIDATES`` (seed 1; test is not looked at), then seeds 2 and 3 at that epsilon.
``augmentation``: each augmentation of ``AUGMENTATIONS`` with seeds 1-3 (its baseline is the
attack study's ``none``, the same training). ``cv``: 5-fold cross-validation of one setting.

``full`` (issue 19): the same comparison at the recipe users run, the quickstart's 4 epochs
(``trainer.max_epochs=4``), on ``--dataset``. On BC5CDR: ``none``, every attack and
``augmentation=noise`` (text-space training, for the robustness comparison), 3 seeds each; the
epsilons of ``fgsm`` and ``pgd`` are chosen on devel (seed 1) among ``FULL_CANDIDATES``, the
others keep the 1-epoch study's. It writes ``best_attack.json`` (the attack with the best mean
devel F1, and the attacks compared: ``--attacks fgsm`` gives a first answer sooner, but only a
pass over every attack makes a reference). On another corpus (``--dataset ncbi_disease``):
``none``, ``fgsm`` and the best BC5CDR attack, at BC5CDR's epsilons (``--reference``: the
BC5CDR study under the same ``--root`` when it ran there, else its recorded choices in
``sweeps/reference/full_bc5cdr``). Robustness runs on every run, as in the attack study; a run
scored before a text perturbation joined the suite gets it from ``bioner-eval`` on its best
checkpoint (:meth:`Runner.complete_robustness`). ``lowres``: the training documents cut to
``LOW_FRACTIONS`` of the corpus (``dataset.train_subset.fraction``, a subset drawn per seed),
with ``none``, the best BC5CDR attack and the two augmentations best on devel in the 1-epoch
augmentation study (``LOW_AUGMENTATIONS``), 3 seeds, robustness off; one ``final_runs.txt`` per
fraction. A subset gets the full recipe's number of updates, not its 4 epochs (which are 8
optimiser steps on 1% of BC5CDR): ``4 / fraction`` epochs, with devel scored (and the best
checkpoint chosen) every ``1 / fraction`` epochs, 4 times as in the full recipe.

Every job is one ``bioner-train experiment=attack_study`` run (robustness on for the attack study,
off for the others) in its own folder under ``<root>/<study>/``; ``--workers`` jobs run at once,
each on ``--threads`` CPU threads (two 1-thread jobs use a 2-core machine better than one 2-thread
job, and never oversubscribe it). A job whose ``metrics.json`` exists is skipped, and a job
that was killed continues from the ``last.ckpt`` of its last finished epoch (``ckpt_path=last``;
its ``wall_time_s`` then adds up the epochs each attempt finished, see ``runner.json``), so an
interrupted study continues where it stopped. With ``--archive DIR`` each job is also kept, as it
finishes, in ``DIR`` (same layout as ``--root``; :func:`bioner.reporting.archive_run`: config,
metrics and gzipped text-free test predictions, no checkpoint, about 110 kB for BC5CDR), and a
job that ``--root`` lacks but ``DIR`` holds is taken from there, not trained again: a study that
outlives its machine goes on from the archive (``docs/results/`` holds the archive of the
studies in docs/studies.md).
Each study ends by writing ``final_runs.txt``, the run folders of its table, for
``bioner-report``::

    BIONER_DATA_DIR=../shared/data python sweeps/studies.py attack --root logs/studies
    bioner-report $(cat logs/studies/attack/final_runs.txt) --baseline attack=none
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py augmentation --root logs/studies
    bioner-report $(cat logs/studies/augmentation/final_runs.txt) --baseline augmentation=none \
        --group-by dataset,model,attack,alignment,augmentation  # the baseline ran robustness too
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py cv --root logs/studies \
        --overrides augmentation=noise
    bioner-report $(cat logs/studies/cv/final_runs.txt)
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py full --dataset bc5cdr
    bioner-report $(cat logs/studies/full/bc5cdr/final_runs.txt) \
        --baseline attack=none,augmentation=none \
        --group-by dataset,model,attack,alignment,augmentation
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py full --dataset ncbi_disease
    BIONER_DATA_DIR=../shared/data python sweeps/studies.py lowres --dataset bc5cdr
    bioner-report $(cat logs/studies/lowres/bc5cdr/f0.1/final_runs.txt) \
        --baseline attack=none,augmentation=none \
        --group-by dataset,model,attack,alignment,augmentation

``--overrides`` are added to every job (for ``cv``, the setting cross-validated), e.g. a smoke run
with ``model=tiny data.limit_documents=30 trainer.limit_train_batches=2``.
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

import yaml

from bioner.reporting import archive_run
from bioner.utils.resume import kept_seconds

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
# The full-recipe study (4 epochs): the 1-epoch study's epsilon (now each attack's config default)
# and, for fgsm and pgd, a smaller one: the smaller candidate won every time at one epoch, and
# radii below it were never tried.
FULL_CANDIDATES = {
    "fgsm": [0.001, 0.0005],
    "fgm": [0.05],
    "pgd": [0.05, 0.02],
    "freelb": [0.05],
}
FULL_AUGMENTATIONS = ["noise"]
FULL_EPOCHS = 4
# The low-resource study: shares of the training documents, and the two augmentations with the
# best devel F1 in the 1-epoch augmentation study (docs/studies.md: noise 0.7710, mix 0.7662).
LOW_FRACTIONS = (0.1, 0.01)
LOW_AUGMENTATIONS = ["noise", "mix"]
# The BC5CDR full study's chosen epsilons and best attack as that study wrote them (see its
# README): the reference of the other corpora's studies when <root>/full/bc5cdr has none.
RECORDED_REFERENCE = Path(__file__).resolve().parent / "reference" / "full_bc5cdr"


class Runner:
    """Runs ``bioner-train`` jobs, each in ``root/<name>``, ``workers`` at a time."""

    def __init__(
        self,
        root: Path,
        workers: int,
        threads: int,
        overrides: list[str] | None = None,
        archive: Path | None = None,
    ) -> None:
        self.root = root
        self.workers = workers
        self.threads = threads
        self.overrides = list(overrides or [])  # added to every job, after its own
        # Where each finished job is kept (archive/<name>: bioner.reporting.archive_run, no
        # checkpoint, no corpus text) and taken back from when root has lost it.
        self.archive = archive

    def run(self, jobs: dict[str, list[str]]) -> dict[str, dict]:
        """Run the jobs not done yet; the metrics of every job, by name."""
        self._sync(list(jobs))
        todo = {n: o for n, o in jobs.items() if not (self.root / n / "metrics.json").is_file()}
        with ThreadPoolExecutor(self.workers) as pool:
            for name, code in zip(todo, pool.map(self._one, todo.items())):
                if code:
                    raise SystemExit(f"job {name} failed (exit {code}); see {self.root / name}")
        return {n: json.loads((self.root / n / "metrics.json").read_text()) for n in jobs}

    def _one(self, job: tuple[str, list[str]]) -> int:
        name, overrides = job
        folder = self.root / name
        if (folder / "metrics.json").is_file():  # finished by another process since the plan
            print(f"  {name}: done meanwhile, skipped", flush=True)
            return 0
        last = folder / "checkpoints" / "last.ckpt"
        resume = last.is_file()
        if resume:
            # An attempt starts by writing config.yaml; the time after its last epoch is lost.
            earlier = kept_seconds(folder / "runner.json", folder / "config.yaml", last)
        else:
            shutil.rmtree(folder, ignore_errors=True)  # killed before its first epoch: afresh
            folder.mkdir(parents=True)
            earlier = []
        started = time.perf_counter()
        code = self._launch(
            "bioner.train",
            [
                "experiment=attack_study",
                f"hydra.run.dir={folder}",
                "callbacks.rich_progress_bar=null",
                "trainer.enable_progress_bar=false",
                *overrides,
                *self.overrides,
                *(["ckpt_path=last"] if resume else []),
            ],
            folder / "stdout.log",
            append=resume,
        )
        seconds = time.perf_counter() - started
        print(f"  {name}: exit {code} after {seconds:.0f} s", flush=True)
        if code and resume:
            print(f"  {name} failed resuming {last}; delete {folder} to start it afresh")
        if code == 0 and earlier:
            self._add_earlier_attempts(folder, earlier)
        if code == 0:
            self._keep(name)
        return code

    def _keep(self, name: str) -> None:
        """Archive the finished job ``name`` (when there is an archive)."""
        if self.archive is not None:
            archive_run(self.root / name, self.archive / name)

    def _sync(self, names: list[str]) -> None:
        """Take back the archived jobs that root lacks (a run finished on another machine, or
        before root was lost), and archive the finished ones that the archive lacks."""
        if self.archive is None:
            return
        for name in names:
            done = (self.root / name / "metrics.json").is_file()
            kept = (self.archive / name / "metrics.json").is_file()
            if kept and not done:
                shutil.rmtree(self.root / name, ignore_errors=True)  # an unfinished attempt
                shutil.copytree(self.archive / name, self.root / name)
                print(f"  {name}: taken from {self.archive / name}", flush=True)
            elif done and not kept:
                self._keep(name)

    def _launch(self, module: str, args: list[str], log: Path, append: bool = False) -> int:
        """Run ``python -m module args`` on ``threads`` CPU threads, its output into ``log``;
        return its exit code."""
        threads = str(self.threads)
        env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        print("+", " ".join(args), flush=True)
        with open(log, "a" if append else "w") as out:
            cmd = [sys.executable, "-m", module, *args]
            return subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode

    @staticmethod
    def _add_earlier_attempts(folder: Path, earlier: list[float]) -> None:
        """A resumed job's ``metrics.json``: ``wall_time_s`` of the last attempt plus the work
        the earlier ones kept, and ``resumed`` (how many times)."""
        path = folder / "metrics.json"
        metrics = json.loads(path.read_text())
        metrics["wall_time_s"] = metrics["wall_time_s"] + sum(earlier)
        metrics["resumed"] = len(earlier)
        path.write_text(json.dumps(metrics, indent=2) + "\n")

    def complete_robustness(self, names: list[str]) -> None:
        """Score the text perturbations a run's robustness section lacks (kinds added to the
        suite after it ran) with ``bioner-eval`` on its best checkpoint, and add them to its
        ``metrics.json`` (``robustness_added`` says which and how).

        Each kind is seeded by its name (:func:`bioner.augment.robustness.text_robustness`), so
        a kind scored later is the one the run would have scored; the clean F1 of the two passes
        must agree, or nothing is added.
        """
        from bioner.attacks.robustness import TEXT_KINDS

        for name in names:
            folder = self.root / name
            metrics = json.loads((folder / "metrics.json").read_text())
            section = metrics.get("robustness")
            if not section:
                continue
            missing = [k for k in TEXT_KINDS if k not in section.get("text", {})]
            if not missing:
                continue
            config = yaml.safe_load((folder / "config.yaml").read_text())
            robustness = config["robustness"]
            synonyms = robustness["synonyms"]
            out = self.root / "robustness_added" / name  # not inside: a run folder holds one run
            args = [
                f"ckpt_path={folder / 'checkpoints' / 'best.ckpt'}",
                f"hydra.run.dir={out}",
                f"splits=[{robustness['split']}]",
                f"seed={config['seed']}",
                "bootstrap_samples=0",
                "robustness=default",
                "~robustness.attacks",  # text only
                "~robustness.epsilons",
                f"robustness.text_kinds=[{','.join(missing)}]",
                f"robustness.text_rate={robustness['text_rate']}",
                f"robustness.limit_documents={robustness['limit_documents'] or 'null'}",
                *([f"robustness.synonyms={synonyms}"] if synonyms else []),
            ]
            out.mkdir(parents=True, exist_ok=True)
            if self._launch("bioner.eval", args, out / "stdout.log"):
                raise SystemExit(f"scoring {missing} on {name} failed; see {out}")
            added = json.loads((out / "metrics.json").read_text())["robustness"]
            if abs(added["f1_clean"] - section["f1_clean"]) > 1e-9:
                raise SystemExit(
                    f"{name}: clean F1 {added['f1_clean']} in {out} is not the run's "
                    f"{section['f1_clean']}: not the same model or documents; nothing added"
                )
            section.setdefault("text", {}).update(added["text"])
            metrics["robustness_added"] = {"kinds": missing, "by": " ".join(["bioner-eval", *args])}
            (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            self._keep(name)

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


def cv_study(runner: Runner, folds: int) -> None:
    """``folds``-fold cross-validation of the setting given by the runner's overrides (seed 1)."""
    jobs = {
        f"fold{i}": ["seed=1", "robustness=none", f"cv.folds={folds}", f"cv.fold={i}"]
        for i in range(folds)
    }
    runner.run(jobs)
    runner.final(list(jobs))


def _attack_job(attack: str, eps: float, seed: int) -> tuple[str, list[str]]:
    return f"{attack}_eps{eps}_s{seed}", [
        f"seed={seed}",
        f"attack={attack}",
        f"attack.epsilon={eps}",
    ]


def full_study(
    runner: Runner, dataset: str, attacks: list[str], reference: Path, seeds: list[int]
) -> None:
    """The attack study at the 4-epoch recipe on ``dataset`` (see the module docstring).

    ``reference``: the BC5CDR full study's folder, whose epsilons and best attack another corpus
    takes. Epsilons are chosen on devel with the first of ``seeds``.
    """
    recipe = [f"dataset={dataset}", f"trainer.max_epochs={FULL_EPOCHS}"]
    if dataset == "bc5cdr":
        select = {f"none_s{seeds[0]}": [f"seed={seeds[0]}", "attack=none"]}
        select |= dict(_attack_job(a, eps, seeds[0]) for a in attacks for eps in FULL_CANDIDATES[a])
        scores = runner.run({n: [*o, *recipe] for n, o in select.items()})
        chosen: dict[str, float] = {}
        for attack in attacks:
            tried = {
                eps: _devel_f1(scores[_attack_job(attack, eps, seeds[0])[0]])
                for eps in FULL_CANDIDATES[attack]
            }
            chosen[attack] = max(tried, key=tried.get)
            shown = ", ".join(f"{e}: {f:.4f}" for e, f in tried.items())
            print(f"{attack}: devel F1 {shown} -> epsilon {chosen[attack]}", flush=True)
        (runner.root / "chosen_epsilons.json").write_text(json.dumps(chosen, indent=2) + "\n")
    else:
        chosen, best = _reference(reference)
        attacks = list(dict.fromkeys(a if a != "best" else best["attack"] for a in attacks))
        chosen = {a: chosen[a] for a in attacks}
    jobs = {f"none_s{s}": [f"seed={s}", "attack=none"] for s in seeds}
    jobs |= dict(_attack_job(a, chosen[a], s) for a in attacks for s in seeds)
    augmentations = FULL_AUGMENTATIONS if dataset == "bc5cdr" else []
    jobs |= {
        f"aug-{g}_s{s}": [f"seed={s}", f"augmentation={g}"] for g in augmentations for s in seeds
    }
    scores = runner.run({n: [*o, *recipe] for n, o in jobs.items()})
    runner.complete_robustness(list(jobs))
    runner.final(list(jobs))
    if dataset == "bc5cdr":
        mean = {
            a: sum(_devel_f1(scores[_attack_job(a, chosen[a], s)[0]]) for s in seeds) / len(seeds)
            for a in attacks
        }
        best_attack = max(mean, key=mean.get)
        best = {
            "attack": best_attack,
            "epsilon": chosen[best_attack],
            "devel_f1_mean": mean,
            "compared": attacks,
        }
        (runner.root / "best_attack.json").write_text(json.dumps(best, indent=2) + "\n")
        print(f"best attack on devel (mean of {len(seeds)} seeds): {best_attack}", flush=True)


def _reference(reference: Path) -> tuple[dict[str, float], dict]:
    """The chosen epsilons and the best attack of the BC5CDR full study."""
    files = [reference / "chosen_epsilons.json", reference / "best_attack.json"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(
            f"{', '.join(missing)} missing: run `sweeps/studies.py full --dataset bc5cdr` (same "
            f"--root) first, or pass --reference {RECORDED_REFERENCE} (the choices of the "
            "study in docs/studies.md); this study takes its epsilons and its best attack"
        )
    best = json.loads(files[1].read_text())
    print(f"epsilons and best attack from {reference}", flush=True)
    compared = best.get("compared", [])
    if set(compared) != set(FULL_CANDIDATES):
        raise SystemExit(
            f"{files[1]} is the best of {compared or 'an unrecorded set of attacks'}, not of "
            f"every attack ({', '.join(FULL_CANDIDATES)}): run `sweeps/studies.py full --dataset "
            "bc5cdr` (same --root) without --attacks first"
        )
    return json.loads(files[0].read_text()), best


def _default_reference(own: Path) -> Path:
    """``own`` (this root's BC5CDR full study) when it holds its choices, else the recorded ones."""
    if (own / "best_attack.json").is_file():
        return own
    return RECORDED_REFERENCE


def lowres_recipe(dataset: str, fraction: float) -> list[str]:
    """The full recipe on ``fraction`` of the training documents, with as many updates: the
    epochs scaled by ``1 / fraction``, devel scored every ``1 / fraction`` epochs (as many times
    as in the full recipe, and the best checkpoint chosen among those), no robustness."""
    every = max(1, round(1 / fraction))
    return [
        f"dataset={dataset}",
        f"dataset.train_subset.fraction={fraction}",
        f"trainer.max_epochs={FULL_EPOCHS * every}",
        f"trainer.check_val_every_n_epoch={every}",
        "robustness=none",
    ]


def lowres_study(
    runner: Runner, dataset: str, reference: Path, seeds: list[int], fractions: list[float]
) -> None:
    """``none``, the best BC5CDR attack and ``LOW_AUGMENTATIONS`` on ``fractions`` of the
    training documents of ``dataset`` (each seed its own subset)."""
    _, best = _reference(reference)
    settings = {"none": ["attack=none"]}
    settings[f"{best['attack']}_eps{best['epsilon']}"] = [
        f"attack={best['attack']}",
        f"attack.epsilon={best['epsilon']}",
    ]
    settings |= {f"aug-{g}": [f"augmentation={g}"] for g in LOW_AUGMENTATIONS}
    jobs = {
        f"f{fraction}/{name}_s{s}": [
            f"seed={s}",
            *overrides,
            *lowres_recipe(dataset, fraction),
        ]
        for fraction in fractions
        for name, overrides in settings.items()
        for s in seeds
    }
    runner.run(jobs)
    for fraction in fractions:
        names = [n for n in jobs if n.startswith(f"f{fraction}/")]
        Runner(runner.root / f"f{fraction}", 1, 1).final([n.split("/", 1)[1] for n in names])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("study", choices=["attack", "augmentation", "cv", "full", "lowres"])
    parser.add_argument("--root", type=Path, default=Path("logs/studies"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--attacks",
        default=None,
        help="attack: every attack; full: every attack on bc5cdr, 'fgsm,best' on other corpora "
        "(best: the best attack of the bc5cdr full study)",
    )
    parser.add_argument("--dataset", default="bc5cdr", help="full, lowres: the corpus")
    parser.add_argument(
        "--seeds",
        default=",".join(map(str, SEEDS)),
        help="full, lowres: the seeds (full chooses epsilons with the first)",
    )
    parser.add_argument(
        "--fractions",
        default=",".join(map(str, LOW_FRACTIONS)),
        help="lowres: shares of the training documents",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="full (other corpora), lowres: the folder with the BC5CDR full study's "
        "chosen_epsilons.json and best_attack.json (default: <root>/full/bc5cdr when it holds "
        "them, else the recorded sweeps/reference/full_bc5cdr)",
    )
    parser.add_argument(
        "--archive",
        type=Path,
        default=None,
        help="keep each finished run's record (config, metrics, text-free test predictions; no "
        "checkpoint) under this folder, mirroring --root, and take back from it the runs --root "
        "lacks: a study that outlives its machine goes on from the last archived run",
    )
    parser.add_argument("--augmentations", default=",".join(AUGMENTATIONS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--overrides",
        default="",
        help="added to every job; cv: the setting, e.g. 'augmentation=mention_replacement'",
    )
    args = parser.parse_args()
    root = args.root / args.study
    if args.study in ("full", "lowres"):
        root = root / args.dataset
    archive = None if args.archive is None else args.archive / root.relative_to(args.root)
    runner = Runner(root, args.workers, args.threads, args.overrides.split(), archive)
    reference = args.reference or _default_reference(args.root / "full" / "bc5cdr")
    seeds = [int(x) for x in args.seeds.split(",")]
    if args.study == "attack":
        attack_study(runner, (args.attacks or ",".join(ATTACK_CANDIDATES)).split(","))
    elif args.study == "augmentation":
        augmentation_study(runner, args.augmentations.split(","), args.root / "attack")
    elif args.study == "full":
        default = ",".join(FULL_CANDIDATES) if args.dataset == "bc5cdr" else "fgsm,best"
        full_study(runner, args.dataset, (args.attacks or default).split(","), reference, seeds)
    elif args.study == "lowres":
        fractions = [float(x) for x in args.fractions.split(",")]
        lowres_study(runner, args.dataset, reference, seeds, fractions)
    else:
        cv_study(runner, args.folds)


if __name__ == "__main__":
    main()
