"""Sweeps: every run of the W&B sweep files and of the Optuna search space composes with its
values; real multiruns through the Optuna sweeper and the submitit launcher; DDP on Slurm starts
no process of its own (so it is safe in a multirun, unlike Lightning's re-launching ``ddp``)."""

from __future__ import annotations

import gzip
import itertools
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf
from test_train import QUIET, tiny_overrides

from bioner.attacks.robustness import TEXT_KINDS
from bioner.config import CONFIG_DIR, compose_config
from bioner.runtime import instantiate_callbacks

REPO = Path(__file__).resolve().parents[2]
SWEEP_FILES = sorted((REPO / "sweeps").glob("*.yaml"))
OPTUNA = CONFIG_DIR / "hparams_search" / "optuna.yaml"
# W&B's sweep distributions that this file knows how to sample (bounds min and max).
DRAW = {
    "uniform": lambda rng, low, high: rng.uniform(low, high),
    "log_uniform_values": lambda rng, low, high: math.exp(
        rng.uniform(math.log(low), math.log(high))
    ),
    "int_uniform": lambda rng, low, high: rng.randint(low, high),
}


def load_sweep(path: Path) -> dict[str, Any]:
    # `wandb sweep` reads the file with PyYAML (YAML 1.1), as here: 1e-5 would be a string.
    return yaml.safe_load(path.read_text())


def draw(spec: dict[str, Any], rng: random.Random) -> Any:
    """One value of a W&B sweep parameter, as random or Bayesian search could pick it."""
    if "value" in spec:
        return spec["value"]
    if "values" in spec:
        return rng.choice(spec["values"])
    return DRAW[spec["distribution"]](rng, spec["min"], spec["max"])


def edge_values(spec: dict[str, Any]) -> list[Any]:
    """A W&B sweep parameter's fixed value, listed values, or distribution bounds."""
    if "value" in spec:
        return [spec["value"]]
    return list(spec["values"]) if "values" in spec else [spec["min"], spec["max"]]


def sweep_runs(sweep: dict[str, Any], draws: int = 3) -> list[dict[str, Any]]:
    """The parameters of the runs a sweep can start: every point of a grid; for random and
    Bayesian search every combination of the bounds and listed values, and a few draws."""
    specs = sweep["parameters"]
    edges = [edge_values(spec) for spec in specs.values()]
    runs = [dict(zip(specs, combination)) for combination in itertools.product(*edges)]
    if sweep["method"] != "grid":
        rng = random.Random(0)
        runs += [{key: draw(spec, rng) for key, spec in specs.items()} for _ in range(draws)]
    return runs


def agent_command(sweep: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """The command line that ``wandb agent`` starts for a run (``wandb_agent.Agent``)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in run.items()}})
    macros |= {"env": ["/usr/bin/env"], "interpreter": ["python"], "program": [sweep["program"]]}
    command: list[str] = []
    for chunk in map(str, create_sweep_command(list(sweep["command"]))):
        macro = chunk.startswith("${") and chunk.endswith("}")
        command += (macros.get(chunk[2:-1]) or []) if macro else [chunk]
    return command


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of the scalar and list values of a nested dict."""
    if not isinstance(node, dict):
        return {prefix.rstrip("."): node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out |= leaves(value, f"{prefix}{key}.")
    return out


def is_group(key: str) -> bool:
    return (CONFIG_DIR / key).is_dir()


def is_global(group: str, option: str) -> bool:
    """Whether an option file is `@package _global_` (an experiment: merged after the groups)."""
    return "# @package _global_" in (CONFIG_DIR / group / f"{option}.yaml").read_text()


def option_leaves(group: str, option: str) -> dict[str, Any]:
    """The dotted keys (from the config root) that an option file sets, its defaults aside."""
    node = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml"))
    node.pop("defaults", None)
    return leaves(node, "" if is_global(group, option) else f"{group}.")


def assert_lands(cfg: DictConfig, params: dict[str, Any]) -> None:
    """Each parameter reached the composed config: a key holds its value; a group option's
    keys hold the option file's values unless a later override (a `_global_` experiment after
    the groups, a key on the command line after both) sets them."""
    expected: dict[str, Any] = {}
    groups = sorted((k for k in params if is_group(k)), key=lambda k: is_global(k, params[k]))
    for group in groups:
        expected |= option_leaves(group, str(params[group]))
    for key, value in params.items():
        if not is_group(key):
            expected = {k: v for k, v in expected.items() if not k.startswith(f"{key}.")}
            expected[key] = value
    raw = OmegaConf.to_container(cfg, resolve=False)
    for key, value in expected.items():
        found: Any = raw
        for part in key.split("."):
            assert isinstance(found, dict) and part in found, f"{key} is not in the config"
            found = found[part]
        assert found == value, f"{key}: {found!r} in the config, {value!r} expected"


def run_id(path: Path, run: dict[str, Any]) -> str:
    shown = (f"{v:.3g}" if isinstance(v, float) else str(v) for v in run.values())
    return f"{path.stem}[{','.join(f'{k}={v}' for k, v in zip(run, shown))}]"


SWEEP_RUNS = [
    pytest.param(path, run, id=run_id(path, run))
    for path in SWEEP_FILES
    for run in sweep_runs(load_sweep(path))
]


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.stem)
def test_sweep_files_are_valid_wandb_sweeps_of_bioner_train(path: Path) -> None:
    sweep = load_sweep(path)
    assert sweep["method"] in ("grid", "random", "bayes")
    assert sweep["metric"] == {"name": "val/f1", "goal": "maximize"}
    assert sweep["command"] == ["${env}", "bioner-train", "${args_no_hyphens}"]
    project = OmegaConf.load(CONFIG_DIR / "logger" / "wandb.yaml").wandb.project
    assert sweep["project"] == project  # the project the runs log to
    for key, spec in sweep["parameters"].items():
        kinds = {"value", "values", "distribution"} & set(spec)
        assert len(kinds) == 1, f"{path.name}: {key} needs one of value, values, distribution"
        if "distribution" in spec:
            assert sweep["method"] != "grid", f"{path.name}: a grid cannot sample {key}"
            assert spec["distribution"] in DRAW, f"{key}: teach test_sweeps.py to draw it"
            low, high = spec["min"], spec["max"]
            assert isinstance(low, int | float) and isinstance(high, int | float), (
                f"{path.name}: {key} bounds {low!r}, {high!r} must be numbers (write 1.0e-5)"
            )
            assert low < high


def test_sweep_runs_cover_the_whole_grid() -> None:
    grid = load_sweep(REPO / "sweeps" / "grid_attack_alignment_augmentation.yaml")
    runs = sweep_runs(grid)
    assert len(runs) == 6 * 3 * 8 == len({tuple(r.values()) for r in runs})
    assert {r["alignment"] for r in runs} == set(grid["parameters"]["alignment"]["values"])


@pytest.mark.parametrize(("path", "run"), SWEEP_RUNS)
def test_every_sweep_run_composes_with_its_values(
    path: Path, run: dict[str, Any], tmp_path: Path
) -> None:
    command = agent_command(load_sweep(path), run)
    assert command[:2] == ["/usr/bin/env", "bioner-train"]
    overrides = command[2:]
    assert all("=" in o and not o.startswith("-") for o in overrides), overrides
    cfg = compose_config("train", [*overrides, f"run_dir={tmp_path}"])
    assert_lands(cfg, run)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves


def optuna_params() -> dict[str, Any]:
    """The Optuna search space as the sweeper reads it: Optuna distributions by config key."""
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    params = OmegaConf.load(OPTUNA).hydra.sweeper.params
    distributions, fixed = create_params_from_overrides([f"{k}={v}" for k, v in params.items()])
    assert not fixed, f"{OPTUNA.name}: {sorted(fixed)} are not sweeps"
    return distributions


def test_optuna_sweeper_config_composes_and_builds_its_sampler(tmp_path: Path) -> None:
    # The hydra node (sweeper, launcher) is what compose_config leaves out; compose it here.
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["hparams_search=optuna", f"run_dir={tmp_path}", "seed=7"],
            return_hydra_config=True,
        )
    sweeper = cfg.hydra.sweeper
    assert cfg.hydra.mode.name == "MULTIRUN"
    assert (sweeper.direction, sweeper.n_jobs, sweeper.storage) == ("maximize", 1, None)
    assert sweeper.sampler.seed == 7  # the run's seed
    sampler = instantiate(sweeper.sampler)
    assert type(sampler).__name__ == "TPESampler"
    assert set(sweeper.params) == set(optuna_params())


@pytest.mark.parametrize("edge", ["low", "high"])
def test_every_optuna_parameter_is_a_config_key_that_takes_its_bounds(
    edge: str, tmp_path: Path
) -> None:
    distributions = optuna_params()
    assert set(distributions) == {
        "module.lr",
        "module.warmup_ratio",
        "module.dropout",
        "attack.epsilon",
        "attack.steps",
    }
    # Overrides written as the sweeper writes a trial's: f"{name}={value}".
    trial = {key: getattr(dist, edge) for key, dist in distributions.items()}
    overrides = [f"{key}={value}" for key, value in trial.items()]
    cfg = compose_config("train", ["hparams_search=optuna", f"run_dir={tmp_path}", *overrides])
    assert cfg.attack.name == "pgd"  # the search sets an attack that has epsilon and steps
    assert_lands(cfg, trial)
    assert isinstance(cfg.attack.steps, int)
    assert len(instantiate_callbacks(None, attack=cfg.attack)) == 1  # PGD takes the sampled values


def test_slurm_launcher_gives_one_task_per_gpu(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.gpus_per_node=4",
                "trainer=ddp_slurm",
                "trainer.num_nodes=2",
                f"run_dir={tmp_path}",
            ],
            return_hydra_config=True,
        )
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    params = launcher.params
    assert (params["gpus_per_node"], params["tasks_per_node"], params["nodes"]) == (4, 4, 2)
    assert params["partition"] == "gpu"


SLURM_TASK = {
    "SLURM_NTASKS": "2",
    "SLURM_NTASKS_PER_NODE": "2",
    "SLURM_NNODES": "1",
    "SLURM_NODEID": "0",
    "SLURM_JOB_NAME": "train",
    "SLURM_JOB_ID": "4242",
    "SLURM_NODELIST": "localhost",
    "MASTER_ADDR": "127.0.0.1",
}


def test_ddp_slurm_takes_its_ranks_from_slurm_and_starts_no_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = compose_config(
        "train",
        [
            f"run_dir={tmp_path}",
            "trainer=ddp_slurm",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
        ],
    )

    def build():
        return instantiate(cfg.trainer, callbacks=[], logger=False, precision="32-true")

    # Building a trainer sets Lightning's process-wide rank (rank_zero_only.rank); rank 1 would
    # silence every later test's rank-zero writes and logs, so it is restored afterwards.
    monkeypatch.setattr(rank_zero_only, "rank", getattr(rank_zero_only, "rank", 0), raising=False)
    # Without Slurm, Lightning's ddp launcher would run the command line again for rank 1.
    for name in [*SLURM_TASK, "LOCAL_RANK"]:
        monkeypatch.delenv(name, raising=False)
    assert not build().strategy.cluster_environment.creates_processes_externally

    # Under srun (task 1 of 2): Lightning reads its rank and leaves process creation to Slurm.
    monkeypatch.setenv("MASTER_PORT", "12910")  # undone after the test, as Lightning may set it
    for name, value in {**SLURM_TASK, "SLURM_PROCID": "1", "SLURM_LOCALID": "1"}.items():
        monkeypatch.setenv(name, value)
    trainer = build()
    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment)
    assert environment.creates_processes_externally
    assert (trainer.global_rank, trainer.local_rank, trainer.world_size) == (1, 1, 2)


def tiny_sweep(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path, *overrides: str, multirun: bool = True
) -> list[str]:
    """A multirun command of one-epoch tiny-BERT runs on 12 BC5CDR documents, in tmp_path/sweep
    (``multirun=False``: without ``-m``, for configs that set hydra.mode themselves)."""
    return [
        sys.executable,
        "-m",
        "bioner.train",
        *(["-m"] if multirun else []),
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        *QUIET,
        *tiny_overrides(tiny_model_dir),
        f"paths.data_dir={shared_data}",
        "data.limit_documents=12",
        "data.batch_size=4",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
        *overrides,
    ]


def run_tiny_sweep(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path, *overrides: str, multirun: bool = True
) -> dict[str, dict[str, Any]]:
    """Run :func:`tiny_sweep` to the end (it must succeed); the metrics of its jobs."""
    command = tiny_sweep(tmp_path, tiny_model_dir, shared_data, *overrides, multirun=multirun)
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return finished_jobs(tmp_path)


def finished_jobs(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """metrics.json of every job folder of the sweep, by folder name."""
    return {
        p.parent.name: json.loads(p.read_text())
        for p in sorted((tmp_path / "sweep").glob("*/metrics.json"))
    }


@pytest.mark.slow
def test_optuna_search_of_two_trials_finishes_and_reports_the_best(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    jobs = run_tiny_sweep(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "hparams_search=optuna",  # a multirun by itself: no -m
        "hydra.sweeper.n_trials=2",
        "attack.steps=1",  # fixed: the trials stay cheap (a fixed value overrides a search)
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",  # SQLAlchemy 1.4 at work
        "hydra.sweeper.study_name=tiny",
        multirun=False,
    )
    assert sorted(jobs) == [
        "0_bc5cdr_tiny_first_atk-pgd_aug-none_s42",
        "1_bc5cdr_tiny_first_atk-pgd_aug-none_s42",
    ]
    space = optuna_params()
    lrs = []
    for name in jobs:
        run = yaml.safe_load((tmp_path / "sweep" / name / "config.yaml").read_text())
        assert run["attack"]["steps"] == 1
        assert space["module.lr"].low <= run["module"]["lr"] < space["module.lr"].high
        lrs.append(run["module"]["lr"])
    assert lrs[0] != lrs[1]  # two sampled trials, not the defaults
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == set(space) - {"attack.steps"}
    assert results["best_value"] == max(j["devel"]["metrics"]["f1"] for j in jobs.values())
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert len(study.trials) == 2 and study.best_value == results["best_value"]


@pytest.mark.slow
def test_submitit_local_multirun_runs_each_job_in_its_own_process(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    jobs = run_tiny_sweep(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "hydra/launcher=submitit_local",
        "hydra.launcher.timeout_min=10",
        "alignment=first,all",
    )
    assert sorted(jobs) == [
        "0_bc5cdr_tiny_first_atk-none_aug-none_s42",
        "1_bc5cdr_tiny_all_atk-none_aug-none_s42",
    ]
    # submitit's own folder: one log per job, written by the job's process.
    logs = sorted((tmp_path / "sweep" / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_slurm_multirun_with_ranks_started_as_srun_does(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """Two processes started the way `srun --ntasks-per-node=2 bioner-train -m ...` starts them
    (the Slurm launcher does the same for each job): DDP takes its ranks from Slurm and re-launches
    nothing, so each job folder is written once, with scores over every document (the ranks'
    predictions gathered)."""
    command = tiny_sweep(
        tmp_path,
        tiny_model_dir,
        shared_data,
        "trainer=ddp_slurm",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "alignment=first,all",
    )
    base = {**os.environ, **SLURM_TASK, "MASTER_PORT": str(free_port())}
    base.pop("LOCAL_RANK", None)
    logs = [tmp_path / f"rank{rank}.log" for rank in range(2)]
    processes = []
    try:
        for rank, log in enumerate(logs):
            with log.open("w") as out:  # files, not pipes: a full pipe would stall its rank
                processes.append(
                    subprocess.Popen(
                        command,
                        cwd=tmp_path,
                        env={**base, "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        for process, log in zip(processes, logs):
            assert process.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        for process in processes:
            process.kill()  # no-op for a finished process; stops a hung rank
    jobs = finished_jobs(tmp_path)
    assert sorted(jobs) == [
        "0_bc5cdr_tiny_first_atk-none_aug-none_s42",
        "1_bc5cdr_tiny_all_atk-none_aug-none_s42",
    ]
    for summary in jobs.values():
        assert summary["devel"]["documents"] == summary["test"]["documents"] == 12
    # Lightning names the ranks it re-launches train_ddp_process_<rank> (their Hydra log files).
    assert not list(tmp_path.rglob("*ddp_process*"))


def load_studies() -> Any:
    """``sweeps/studies.py`` as a module (``sweeps/`` is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("studies", REPO / "sweeps" / "studies.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # about 20 s: two dozen configs composed
def test_full_and_lowres_studies_plan_composable_jobs_and_choose_on_devel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full-recipe and low-resource studies without training: each job writes a devel F1
    that favours the smaller epsilon and FGM; the choices, the folders and the final runs follow
    from them, and every job's command line composes."""
    studies = load_studies()
    started: dict[str, list[str]] = {}

    def fake_job(self: Any, job: tuple[str, list[str]]) -> int:
        name, overrides = job
        started[str(self.root / name)] = [*overrides, *self.overrides]
        eps = next((float(o.split("=")[1]) for o in overrides if "epsilon" in o), 0.0)
        f1 = 0.5 - eps + (0.1 if "attack=fgm" in overrides else 0.0)
        (self.root / name).mkdir(parents=True)
        (self.root / name / "metrics.json").write_text(
            json.dumps({"devel": {"metrics": {"f1": f1}}})
        )
        return 0

    monkeypatch.setattr(studies.Runner, "_one", fake_job)
    root = tmp_path / "studies"
    with pytest.raises(SystemExit, match="run `sweeps/studies.py full --dataset bc5cdr`"):
        studies.lowres_study(
            studies.Runner(root / "lowres", 1, 1), "bc5cdr", root / "full" / "bc5cdr", [1], [0.1]
        )

    bc5cdr = root / "full" / "bc5cdr"
    attacks = list(studies.FULL_CANDIDATES)
    # A first pass with one attack: its best is no reference for the other corpora.
    studies.full_study(
        studies.Runner(bc5cdr, 2, 1, ["model=tiny"]), "bc5cdr", ["fgsm"], bc5cdr, [1]
    )
    with pytest.raises(SystemExit, match=r"best of \['fgsm'\], not of every attack"):
        studies.full_study(studies.Runner(root / "x", 1, 1), "ncbi_disease", ["best"], bc5cdr, [1])
    studies.full_study(
        studies.Runner(bc5cdr, 2, 1, ["model=tiny"]), "bc5cdr", attacks, bc5cdr, [1, 2]
    )
    chosen = json.loads((bc5cdr / "chosen_epsilons.json").read_text())
    assert chosen == {a: min(studies.FULL_CANDIDATES[a]) for a in attacks}
    assert json.loads((bc5cdr / "best_attack.json").read_text())["attack"] == "fgm"
    final = (bc5cdr / "final_runs.txt").read_text().split()
    assert [Path(p).name for p in final] == [
        "none_s1", "none_s2",
        *(f"{a}_eps{chosen[a]}_s{s}" for a in attacks for s in (1, 2)),
        "aug-noise_s1", "aug-noise_s2",
    ]  # fmt: skip
    unchosen = [p for p in started if "fgsm_eps0.001_" in p]
    assert [Path(p).name for p in unchosen] == ["fgsm_eps0.001_s1"]  # tried on seed 1 only

    ncbi = root / "full" / "ncbi_disease"
    studies.full_study(studies.Runner(ncbi, 1, 1), "ncbi_disease", ["fgsm", "best"], bc5cdr, [1])
    assert [Path(p).name for p in (ncbi / "final_runs.txt").read_text().split()] == [
        "none_s1", f"fgsm_eps{chosen['fgsm']}_s1", f"fgm_eps{chosen['fgm']}_s1"
    ]  # fmt: skip

    low = root / "lowres" / "bc5cdr"
    studies.lowres_study(studies.Runner(low, 1, 1), "bc5cdr", bc5cdr, [1], [0.1, 0.01])
    for fraction in ("0.1", "0.01"):
        names = [
            Path(p).name for p in (low / f"f{fraction}" / "final_runs.txt").read_text().split()
        ]
        assert names == ["none_s1", f"fgm_eps{chosen['fgm']}_s1", "aug-noise_s1", "aug-mix_s1"]

    # Every job composes as `bioner-train experiment=attack_study ...` and lands its settings.
    for folder, overrides in started.items():
        study, dataset, *rest = Path(folder).relative_to(root).parts
        cfg = compose_config(
            "train", ["experiment=attack_study", f"run_dir={tmp_path}", *overrides]
        )
        assert cfg.dataset.name == dataset
        if study == "lowres":
            fraction = float(rest[0][1:])  # f<fraction>/
            assert cfg.dataset.train_subset.fraction == fraction
            # The full recipe's updates: 40 epochs of 10%, devel every 10 (4 times); 400 of 1%.
            every = {0.1: 10, 0.01: 100}[fraction]
            assert cfg.trainer.check_val_every_n_epoch == every
            assert cfg.trainer.max_epochs == studies.FULL_EPOCHS * every
            assert cfg.robustness.get("_target_") is None
        else:
            assert cfg.trainer.max_epochs == studies.FULL_EPOCHS
            assert cfg.robustness._target_  # robustness on the final runs of the full study
        if "_eps" in rest[-1]:
            assert cfg.attack.epsilon == float(rest[-1].split("_eps")[1].split("_s")[0])


def test_recorded_bc5cdr_choices_are_a_complete_reference(tmp_path: Path) -> None:
    """The committed choices of the BC5CDR full study stand in when a root has not run it: a
    reference over every attack, its best attack at its own chosen epsilon; a root that ran the
    study uses its own."""
    studies = load_studies()
    own = tmp_path / "full" / "bc5cdr"
    assert studies._default_reference(own) == studies.RECORDED_REFERENCE
    chosen, best = studies._reference(studies.RECORDED_REFERENCE)
    assert set(chosen) == set(best["compared"]) == set(studies.FULL_CANDIDATES)
    assert all(chosen[a] in studies.FULL_CANDIDATES[a] for a in chosen)
    assert best["epsilon"] == chosen[best["attack"]]
    assert best["attack"] == max(best["devel_f1_mean"], key=best["devel_f1_mean"].get)
    own.mkdir(parents=True)
    (own / "best_attack.json").write_text("{}")
    assert studies._default_reference(own) == own


@pytest.mark.slow
def test_full_study_on_a_second_corpus_trains_the_reference_attack_with_robustness(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """``studies.py full --dataset ncbi_disease`` end to end on the tiny BERT (two one-step runs,
    on half the training documents): BC5CDR's best attack and epsilon, robustness scored, the
    train subset recorded, and a second call trains nothing."""
    reference = tmp_path / "full" / "bc5cdr"
    reference.mkdir(parents=True)
    (reference / "chosen_epsilons.json").write_text(json.dumps({"fgsm": 0.001, "fgm": 0.05}))
    best = {"attack": "fgm", "epsilon": 0.05, "compared": ["fgsm", "fgm", "pgd", "freelb"]}
    (reference / "best_attack.json").write_text(json.dumps(best))
    overrides = [
        *tiny_overrides(tiny_model_dir),
        f"paths.data_dir={shared_data}",
        "logger=none",
        "data.limit_documents=8",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "robustness.limit_documents=4",
        "dataset.train_subset.fraction=0.5",
        "bootstrap_samples=0",
    ]
    command = [
        sys.executable,
        str(REPO / "sweeps" / "studies.py"),
        "full",
        "--dataset",
        "ncbi_disease",
        "--attacks",
        "best",
        "--seeds",
        "1",
        "--root",
        str(tmp_path),
        "--overrides",
        " ".join(overrides),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    study = tmp_path / "full" / "ncbi_disease"
    runs = [Path(p) for p in (study / "final_runs.txt").read_text().split()]
    assert [p.name for p in runs] == ["none_s1", "fgm_eps0.05_s1"]
    for run in runs:
        metrics = json.loads((run / "metrics.json").read_text())
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["dataset"]["name"] == "ncbi_disease"
        assert metrics["robustness"]  # the full study scores robustness on its final runs
        subset = metrics["dataset_preparation"]["train_subset"]
        assert subset["kept"] == round(subset["documents"] / 2) and subset["seed"] == 1
    assert yaml.safe_load((runs[1] / "config.yaml").read_text())["attack"]["epsilon"] == 0.05
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "+ experiment" not in again.stdout  # resumed: nothing new


def tiny_study_job(tiny_model_dir: Path, shared_data: Path, text_kinds: list[str]) -> list[str]:
    """Overrides that make a study job a one-step run of the tiny BERT on 8 documents, scored on
    ``text_kinds`` of the robustness suite."""
    return [
        *tiny_overrides(tiny_model_dir),
        f"paths.data_dir={shared_data}",
        "logger=none",
        "data.limit_documents=8",
        "trainer.limit_train_batches=1",
        f"robustness.text_kinds=[{','.join(text_kinds)}]",
        "robustness.limit_documents=6",
        "bootstrap_samples=0",
    ]


@pytest.mark.slow
def test_a_killed_study_job_continues_from_its_last_epoch_and_gets_new_text_kinds(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    """A job that has a ``last.ckpt`` but no ``metrics.json`` (killed after an epoch) is resumed
    with ``ckpt_path=last``: it trains only the epochs left, and its wall time adds the work the
    killed attempt kept. A run scored on fewer text perturbations than the suite now has gets the
    others from ``bioner-eval``, the same as if it had scored them."""
    studies = load_studies()
    base = tiny_study_job(tiny_model_dir, shared_data, ["case", "typos_inside"])
    job = {"none_s1": ["seed=1", "attack=none"]}
    studies.Runner(tmp_path, 1, 1, [*base, "trainer.max_epochs=1"]).run(job)
    folder = tmp_path / "none_s1"
    first = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").unlink()  # as if killed after its first epoch
    studies.Runner(tmp_path, 1, 1, [*base, "trainer.max_epochs=2"]).run(job)
    resumed = json.loads((folder / "metrics.json").read_text())
    assert resumed["resumed"] == 1
    assert resumed["training"]["epochs"] == 2
    log = (folder / "stdout.log").read_text()
    assert log.count("epoch 0: ") == 1 and log.count("epoch 1: ") == 1  # epoch 0 not trained again
    assert "ckpt_path=last" in (folder / "config.yaml").read_text().replace(": ", "=")
    kept = json.loads((folder / "runner.json").read_text())["attempts_s"]
    assert len(kept) == 1 and 0 < kept[0] < first["wall_time_s"]
    assert resumed["wall_time_s"] > kept[0]

    runner = studies.Runner(tmp_path, 1, 1)
    # A job that another process finished after the study planned it is not run again.
    assert runner._one(("none_s1", ["seed=1", "attack=none"])) == 0
    assert json.loads((folder / "metrics.json").read_text()) == resumed
    runner.complete_robustness(["none_s1"])
    text = json.loads((folder / "metrics.json").read_text())["robustness"]["text"]
    assert set(text) == set(TEXT_KINDS)
    assert text["case"] == resumed["robustness"]["text"]["case"]  # kept as scored
    added = json.loads((folder / "metrics.json").read_text())["robustness_added"]
    assert added["kinds"] == [k for k in TEXT_KINDS if k not in ("case", "typos_inside")]
    # Scored again from scratch, a kind is the one that was added.
    shutil.copytree(folder, tmp_path / "again" / "none_s1", ignore=shutil.ignore_patterns("rob*"))
    again = tmp_path / "again" / "none_s1" / "metrics.json"
    metrics = json.loads(again.read_text())
    metrics["robustness"]["text"] = {"case": text["case"]}
    again.write_text(json.dumps(metrics))
    studies.Runner(tmp_path / "again", 1, 1).complete_robustness(["none_s1"])
    assert json.loads(again.read_text())["robustness"]["text"] == text


@pytest.mark.slow
def test_a_study_archives_each_finished_job_and_takes_it_back_on_a_new_machine(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--archive``: a finished job is kept (no checkpoint, text-free predictions) as it
    finishes and again when its robustness is completed; a root that lost the job takes it back
    instead of training it again, and the report reads it from the corpus."""
    from bioner.evaluation import evaluate
    from bioner.reporting import GoldSource, load_run

    studies = load_studies()
    base = [*tiny_study_job(tiny_model_dir, shared_data, ["case"]), "trainer.max_epochs=1"]
    root, kept = tmp_path / "machine1", tmp_path / "archive"
    job = {"none_s1": ["seed=1", "attack=none"]}
    studies.Runner(root, 1, 1, base, kept).run(job)
    assert (kept / "none_s1" / "metrics.json").read_text() == (
        root / "none_s1" / "metrics.json"
    ).read_text()
    assert not list(kept.rglob("*.ckpt"))
    records = (kept / "none_s1" / "predictions" / "test.jsonl.gz").read_bytes()
    records = gzip.decompress(records).decode().splitlines()
    assert {tuple(json.loads(r)) for r in records} == {("id", "text_sha256", "spans")}
    studies.Runner(root, 1, 1, archive=kept).complete_robustness(["none_s1"])
    metrics = json.loads((kept / "none_s1" / "metrics.json").read_text())
    assert set(metrics["robustness"]["text"]) == set(TEXT_KINDS)

    # Another machine: nothing under its root, the archive committed.
    other = tmp_path / "machine2"
    scores = studies.Runner(other, 1, 1, base, kept).run(job)
    assert "taken from" in capsys.readouterr().out
    assert not (other / "none_s1" / "stdout.log").exists()  # not trained again
    assert scores["none_s1"] == metrics
    # The report scores it against the corpus: the stored predictions give the run's F1.
    scored = GoldSource().load(load_run(other / "none_s1"), "test")
    assert scored.gold_source == "corpus"
    assert evaluate(scored.gold, scored.predictions).metrics()["f1"] == pytest.approx(
        metrics["test"]["metrics"]["f1"]
    )
    # A root that has the job and an archive that lacks it: the archive gets it.
    shutil.rmtree(kept)
    studies.Runner(other, 1, 1, base, kept).run(job)
    assert json.loads((kept / "none_s1" / "metrics.json").read_text()) == metrics
