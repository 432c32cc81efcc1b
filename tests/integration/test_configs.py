"""Every config composes and instantiates; overrides reach the objects; hardware-based choices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from omegaconf import OmegaConf

from bioner.config import CONFIG_DIR, compose_config, instantiate_node
from bioner.data.readers import CorpusReader
from bioner.errors import ConfigError
from bioner.runtime import instantiate_callbacks, instantiate_loggers, prepare_run_dir, start_run
from bioner.runtime.build import check_run_settings
from bioner.utils import cpu_has_native_bf16, resolve_precision, tagging_precision
from bioner.utils import precision as precision_module
from bioner.utils.callbacks import ReseedEachBatch, Throughput
from bioner.utils.loggers import wandb_logged_in, wandb_logger


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def compose(tmp_path: Path, *overrides: str):
    return compose_config("train", [f"run_dir={tmp_path}", *overrides])


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_and_resolves(experiment: str, tmp_path: Path) -> None:
    cfg = compose(tmp_path, f"experiment={experiment}")
    resolved = OmegaConf.to_container(cfg, resolve=True)
    assert resolved["trainer"]["_target_"] == "lightning.pytorch.Trainer"


def test_quickstart_is_minilm_on_bc5cdr_on_the_cpu(tmp_path: Path) -> None:
    cfg = compose(tmp_path, "experiment=quickstart")
    assert (cfg.model.name, cfg.dataset.name, cfg.trainer.accelerator) == (
        "minilm",
        "bc5cdr",
        "cpu",
    )
    assert cfg.run_name == "bc5cdr_minilm_first_atk-none_aug-none_s42"


@pytest.mark.parametrize("dataset", options("dataset"))
def test_every_dataset_config_builds_a_reader_without_io(dataset: str, tmp_path: Path) -> None:
    # dataset=multi reads member corpora, each a dataset config of its own.
    members = [f"+dataset@dataset.corpora.{k}={k}" for k in ("bc5cdr", "ncbi_disease")]
    extra = members if dataset == "multi" else []
    cfg = compose(tmp_path, f"dataset={dataset}", f"paths.data_dir={tmp_path / 'nowhere'}", *extra)
    reader = instantiate(cfg.dataset)
    assert isinstance(reader, CorpusReader) and reader.name == cfg.dataset.name
    if dataset == "multi":
        assert list(reader.members) == ["bc5cdr", "ncbi_disease"]
        assert reader.entity_types == ["Chemical", "Disease"]
    assert cfg.run_name.startswith(f"{cfg.dataset.name}_biobert_first_")


@pytest.mark.parametrize("debug", options("debug"))
def test_every_debug_config_composes(debug: str, tmp_path: Path) -> None:
    cfg = compose(tmp_path, f"debug={debug}")
    assert "debug" in cfg.tags
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("trainer", options("trainer"))
def test_every_trainer_config_composes(trainer: str, tmp_path: Path) -> None:
    cfg = compose(tmp_path, f"trainer={trainer}")
    assert cfg.trainer.precision == "auto"
    assert cfg.trainer.use_distributed_sampler is False
    check_run_settings(OmegaConf.to_container(cfg, resolve=True))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # Lightning trains with it: clip_grad_norm_ then multiplies every gradient by a negative.
        ("trainer.gradient_clip_val=-1", r"trainer.gradient_clip_val=-1: must be 0 or more"),
        # Lightning fails inside the run (ZeroDivisionError).
        ("trainer.accumulate_grad_batches=0", r"trainer.accumulate_grad_batches=0: must be a"),
        ("trainer.check_val_every_n_epoch=0", r"trainer.check_val_every_n_epoch=0: must be a"),
        # Read when the run is scored, after training.
        ("bootstrap_samples=-1", r"bootstrap_samples=-1: must be 0"),
        # Lightning's "no limit": the learning-rate schedule had no end (a ValueError traceback
        # once the weights had loaded).
        ("trainer.max_epochs=-1", r"trainer.max_epochs=-1 \(no limit\) without trainer.max_steps"),
    ],
)
def test_run_settings_that_would_fail_later_stop_the_run_at_once(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        start_run(compose(tmp_path, override))
    # null: no clipping; 0: no intervals; no epoch limit, but a step limit.
    check_run_settings({"trainer": {"gradient_clip_val": None, "accumulate_grad_batches": 2}})
    check_run_settings({"trainer": {"accumulate_grad_batches": 1}, "bootstrap_samples": 0})
    check_run_settings(
        {"trainer": {"accumulate_grad_batches": 1, "max_epochs": -1, "max_steps": 100}}
    )


def test_a_value_lightning_s_trainer_refuses_names_the_trainer(tmp_path: Path) -> None:
    from bioner.runtime import build_trainer

    cfg = compose(tmp_path, "trainer.max_epochs=-5", "logger=none")
    run = start_run(cfg)
    with pytest.raises(ConfigError, match=r"^trainer: `max_epochs` must be a non-negative"):
        build_trainer(cfg, run, [])


@pytest.mark.parametrize("trainer", ["cpu", "ddp_sim"])
def test_cpu_trainers_instantiate(trainer: str, tmp_path: Path) -> None:
    cfg = compose(tmp_path, f"trainer={trainer}", "logger=none")
    callbacks = instantiate_callbacks(cfg.callbacks)
    built = instantiate(cfg.trainer, callbacks=callbacks, logger=False, precision="32-true")
    assert isinstance(built, L.Trainer)
    assert built.num_devices == (2 if trainer == "ddp_sim" else 1)


def test_callbacks_are_named_entries_that_overrides_reach(tmp_path: Path) -> None:
    cfg = compose(
        tmp_path, "callbacks.early_stopping.patience=7", "callbacks.rich_progress_bar=null"
    )
    callbacks = instantiate_callbacks(
        cfg.callbacks, attack=cfg.attack, augmentation=cfg.augmentation
    )
    kinds = {type(cb) for cb in callbacks}
    assert kinds == {
        ModelCheckpoint,
        EarlyStopping,
        LearningRateMonitor,
        ReseedEachBatch,
        Throughput,
    }
    stopper = next(cb for cb in callbacks if isinstance(cb, EarlyStopping))
    assert stopper.patience == 7 and stopper.monitor == "val/f1"
    best, last = (cb for cb in callbacks if isinstance(cb, ModelCheckpoint))
    assert Path(best.dirpath) == Path(last.dirpath) == tmp_path / "checkpoints"
    assert best.monitor == "val/f1" and best.filename == "best"
    assert last.monitor is None and last.filename == "last"


def test_a_callback_entry_without_target_is_an_error(tmp_path: Path) -> None:
    cfg = compose(tmp_path, "+callbacks.broken.patience=3")
    with pytest.raises(ConfigError, match="broken.*_target_"):
        instantiate_callbacks(cfg.callbacks)


@pytest.mark.parametrize(
    ("overrides", "build", "message"),
    [
        # A plain container (the attack is resolved first): Hydra gives no key; the group is it.
        (
            ["attack=pgd", "attack.steps=0"],
            lambda cfg: instantiate_callbacks(None, attack=cfg.attack),
            r"^attack: steps must be at least 1, not 0$",
        ),
        # Nested in a list: Hydra's full_key says `transforms0`; an override writes this.
        (
            ["augmentation=mix", "augmentation.transform.transforms.0.rate=3"],
            lambda cfg: instantiate_callbacks(None, augmentation=cfg.augmentation),
            r"^augmentation.transform.transforms.0: rate must be a probability in \[0, 1\]",
        ),
        # A node of the whole config, whose full_key is absolute.
        (
            ["postprocess=overlaps", "postprocess.overlaps.keep=big"],
            lambda cfg: instantiate_node(cfg.postprocess.overlaps, "postprocess.overlaps"),
            r"^postprocess.overlaps: keep='big': choose one of score, longest, nested$",
        ),
        # A member of dataset=multi: "dataset.filter..." is that member's key path.
        (
            [
                "dataset=multi",
                "+dataset@dataset.corpora.gm=bc2gm",
                "+dataset@dataset.corpora.ncbi=ncbi_disease",
                "dataset.corpora.gm.filter.min_chars=-1",
            ],
            lambda cfg: instantiate_node(cfg.dataset, "dataset"),
            r"^dataset.corpora.gm.filter.min_chars must be a non-negative integer or null",
        ),
        # A message that names its key already is left as it is.
        (
            ["alignment.unit=paragraph"],
            lambda cfg: instantiate_node(cfg.alignment, "alignment"),
            r"^alignment.unit='paragraph': choose one of sentence, document$",
        ),
    ],
)
def test_a_value_a_constructor_refuses_is_a_config_error_naming_its_key(
    tmp_path: Path, overrides: list[str], build, message: str
) -> None:
    cfg = compose(tmp_path, *overrides)
    with pytest.raises(ConfigError, match=message):
        build(cfg)


def test_user_errors_and_bugs_inside_a_constructor_pass_through(tmp_path: Path) -> None:
    from hydra.errors import InstantiationException

    # A ConfigError naming its own key is raised as the constructor wrote it, unwrapped.
    cfg = compose(tmp_path, "dataset.train_subset.fraction=0")
    with pytest.raises(ConfigError, match=r"^dataset.train_subset.fraction must be"):
        instantiate_node(cfg.dataset, "dataset")
    # Not a ValueError: a bug (or a missing module), which keeps Hydra's wrapper and traceback.
    node = {"_target_": "collections.OrderedDict", "x": {"_target_": "math.sqrt", "x": "a"}}
    with pytest.raises(InstantiationException, match="TypeError"):
        instantiate_node(node, "anything")
    # A ValueError that no raise statement wrote is a bug too ("0 is not in list" once named
    # a tokenizer that gave no sub-words as "data: 0 is not in list").
    for target, value in (("math.sqrt", -1), ("builtins.int", "a")):
        with pytest.raises(InstantiationException, match="ValueError"):
            instantiate_node({"_target_": target, "_args_": [value]}, "anything")


def test_attack_and_augmentation_none_add_no_callback_but_name_the_run(tmp_path: Path) -> None:
    cfg = compose(tmp_path)
    assert instantiate_callbacks(None, attack=cfg.attack, augmentation=cfg.augmentation) == []
    assert "atk-none_aug-none" in cfg.run_name


def test_attack_and_augmentation_callbacks_take_the_name_of_the_run(tmp_path: Path) -> None:
    cfg = compose(tmp_path, "attack=pgd", "augmentation=noise")
    attack, augmentation = instantiate_callbacks(
        None, attack=cfg.attack, augmentation=cfg.augmentation
    )
    assert (attack.name, augmentation.name) == ("pgd", "noise")
    assert "atk-pgd_aug-noise" in cfg.run_name
    custom = OmegaConf.create({"_target_": "bioner.utils.callbacks.Throughput"})
    assert [type(cb) for cb in instantiate_callbacks(None, custom=custom)] == [Throughput]


def test_logger_none_has_no_logger_and_no_lr_monitor(tmp_path: Path) -> None:
    cfg = compose(tmp_path, "logger=none")
    assert instantiate_loggers(cfg.logger) == []
    assert not any(
        isinstance(cb, LearningRateMonitor) for cb in instantiate_callbacks(cfg.callbacks)
    )


def test_csv_tensorboard_and_wandb_loggers_write_into_the_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = compose(tmp_path, "logger=[csv,tensorboard,wandb]")
    loggers = instantiate_loggers(cfg.logger)
    assert [type(lg) for lg in loggers] == [CSVLogger, TensorBoardLogger, WandbLogger]
    assert Path(loggers[0].log_dir) == tmp_path / "csv"
    assert Path(loggers[1].log_dir) == tmp_path / "tensorboard"
    assert loggers[2].save_dir == str(tmp_path)
    init = loggers[2]._wandb_init  # what wandb.init will get
    assert (init["name"], init["group"], init["project"]) == (cfg.run_name, "bc5cdr", "bioner")


def test_wandb_is_offline_unless_logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not wandb_logged_in()
    assert wandb_logger(save_dir=str(tmp_path / "w"))._offline is True
    netrc.write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    netrc.chmod(0o600)
    assert wandb_logged_in()
    assert wandb_logger()._offline is False
    assert wandb_logger(offline=True)._offline is True


def test_cpu_bf16_detection_reads_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(info)
    info.write_text("processor : 0\nflags : fpu avx512f avx512_bf16\n")
    assert cpu_has_native_bf16(info)
    info.write_text("flags : fpu amx_bf16 amx_tile\n")
    assert cpu_has_native_bf16(info)
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_precision_auto_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("16-mixed", "cpu") == "16-mixed"
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "32-true"


def test_tagging_precision_auto_follows_the_training_run(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    # What was asked for is kept, whatever the run or the hardware.
    assert tagging_precision("32", "bf16-mixed", cpu)[0] == "32"
    assert tagging_precision("bf16", "32-true", cpu)[0] == "bf16"
    # auto: bf16 only for a bf16 run, on hardware with native bf16.
    assert tagging_precision("auto", "bf16-mixed", cpu) == (
        "bf16",
        "trained in bf16-mixed, native bf16 on cpu",
    )
    assert tagging_precision("auto", "bf16-true", cpu)[0] == "bf16"
    for trained in ("32-true", "16-mixed", None):
        assert tagging_precision("auto", trained, cpu)[0] == "32"
    assert "not recorded" in tagging_precision("auto", None, cpu)[1]
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: False)
    assert tagging_precision("auto", "bf16-mixed", cpu) == (
        "32",
        "trained in bf16-mixed, but cpu has no native bf16",
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert tagging_precision("auto", "bf16-mixed", cuda)[0] == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert tagging_precision("auto", "bf16-mixed", cuda)[0] == "32"


def test_run_dir_must_be_given_outside_hydra(tmp_path: Path) -> None:
    cfg = compose_config("train", ["logger=none"])
    with pytest.raises(ValueError, match="run_dir=<folder>"):
        prepare_run_dir(cfg)
    cfg = compose(tmp_path / "run", "logger=none")
    run_dir, resolved = prepare_run_dir(cfg)
    assert run_dir == tmp_path / "run" and resolved["run_dir"] == str(run_dir)
    saved = OmegaConf.load(tmp_path / "run" / "config.yaml")
    assert saved.run_dir == str(tmp_path / "run") and saved.data.seed == cfg.seed


def test_eval_config_takes_the_dataset_from_the_checkpoint_unless_given(tmp_path: Path) -> None:
    cfg = compose_config("eval", ["ckpt_path=x.ckpt", f"run_dir={tmp_path}"])
    # No dataset chosen: a data_dir to move the training one to and a relabel rule to read it
    # with (null: as trained).
    assert OmegaConf.to_container(cfg.dataset) == {
        "data_dir": None,
        "relabel": {"map": None, "keep": None},
    }
    assert cfg.run_name == "checkpoint"
    cfg = compose_config(
        "eval", ["ckpt_path=x.ckpt", f"run_dir={tmp_path}", "dataset=ncbi_disease"]
    )
    assert cfg.dataset.name == "ncbi_disease" and cfg.run_name == "ncbi_disease"


def _user_config_dir(tmp_path: Path) -> Path:
    """A user's config folder outside the project, with an experiment of their own."""
    folder = tmp_path / "my_conf"
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "mine.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /dataset: ncbi_disease\n  - override /model: tiny\n"
        "module:\n  lr: 1.23e-4\n"
    )
    return folder


def test_a_user_config_folder_joins_the_search_path(tmp_path: Path) -> None:
    folder = _user_config_dir(tmp_path)
    cfg = compose(tmp_path, f"hydra.searchpath=[file://{folder}]", "experiment=mine")
    assert (cfg.dataset.name, cfg.model.name, cfg.module.lr) == ("ncbi_disease", "tiny", 1.23e-4)


def test_an_entry_point_takes_a_user_config_dir(tmp_path: Path) -> None:
    folder = _user_config_dir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(CONFIG_DIR.parents[1])}
    run = subprocess.run(
        [sys.executable, "-m", "bioner.train", "--config-dir", "my_conf", "experiment=mine"]
        + ["--cfg", "job"],
        cwd=folder.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    job = OmegaConf.create(run.stdout)
    assert (job.dataset.name, job.model.name, job.module.lr) == ("ncbi_disease", "tiny", 1.23e-4)
