"""The steps every entry point takes: start a run, build its parts and trainer, end it.

``bioner.train``, ``bioner.eval`` and ``bioner.pretrain`` read as a list of these steps, in the
manner of the lightning-hydra-template's ``train(cfg)``: each piece is instantiated from its
config group here, and the pieces hold the logic.
"""

from __future__ import annotations

import difflib
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from bioner.cli.app import check_config
from bioner.config import instantiate_node
from bioner.errors import ConfigError
from bioner.inference.export import export_pretrained
from bioner.runtime.checkpoints import best_checkpoint, last_checkpoint
from bioner.runtime.finish import Scoring, finish_evaluation
from bioner.runtime.run import (
    checkpoint_epoch,
    finish_loggers,
    instantiate_callbacks,
    log_config,
    log_outcome,
    prepare_run_dir,
    resume_command,
    training_outcome,
    warn_early_stopping_with_max_steps,
    write_run_readme,
)
from bioner.utils.callbacks import ConfigInCheckpoint, Throughput
from bioner.utils.checkpoint import StreamedCheckpointIO
from bioner.utils.log import get_logger
from bioner.utils.precision import resolve_precision

log = get_logger(__name__)


@dataclass
class Run:
    """A started run: its folder, its resolved config and when it started."""

    dir: Path
    resolved: dict[str, Any]
    started: float = field(default_factory=time.perf_counter)


def start_run(cfg: DictConfig, tf32: bool = True) -> Run:
    """Create the run folder (config saved), check the config and seed everything.

    Args:
        cfg: the composed config of the entry point.
        tf32: allow TF32 matmuls on a GPU (training; evaluation keeps full fp32 products).
    """
    started = time.perf_counter()
    run_dir, resolved = prepare_run_dir(cfg)
    check_config(cfg, resolved)  # before any weights load
    check_run_settings(resolved)
    if tf32 and torch.cuda.is_available():
        # TF32 matmuls on Ampere and later: much faster, accuracy unaffected for fine-tuning.
        torch.set_float32_matmul_precision("high")
    L.seed_everything(cfg.seed, workers=True)
    return Run(run_dir, resolved, started)


def check_run_settings(resolved: dict[str, Any]) -> None:
    """Refuse run settings that Lightning takes, then fails on inside the run (a traceback),
    trains wrongly with, or that fail only when the run is scored at its end, naming the key.

    Args:
        resolved: the run's resolved config.

    Raises:
        ConfigError: a negative ``trainer.gradient_clip_val`` (it would flip the gradients'
            sign), ``trainer.accumulate_grad_batches`` or ``trainer.check_val_every_n_epoch``
            below 1, ``trainer.max_epochs=-1`` without ``max_steps`` (no end to schedule the
            learning rate over), or a negative ``bootstrap_samples``.
    """
    trainer = resolved.get("trainer") or {}
    clip = trainer.get("gradient_clip_val")
    if clip is not None and not (isinstance(clip, int | float) and clip >= 0):
        raise ConfigError(
            f"trainer.gradient_clip_val={clip}: must be 0 or more (0 or null: no clipping); a "
            "negative norm would flip the sign of every clipped gradient"
        )
    for key, blank in (("accumulate_grad_batches", ""), ("check_val_every_n_epoch", " or null")):
        value = trainer.get(key)
        if (value is not None or not blank) and not (isinstance(value, int) and value >= 1):
            raise ConfigError(f"trainer.{key}={value}: must be a positive integer{blank}")
    if trainer.get("max_epochs") == -1 and trainer.get("max_steps", -1) in (-1, None):
        raise ConfigError(
            "trainer.max_epochs=-1 (no limit) without trainer.max_steps: the learning rate decays "
            "over the run's steps and needs their number; set trainer.max_epochs=<n> or "
            "trainer.max_steps=<n>"
        )
    samples = resolved.get("bootstrap_samples")
    if samples is not None and not (isinstance(samples, int) and samples >= 0):
        raise ConfigError(
            f"bootstrap_samples={samples}: must be 0 (no confidence intervals) or more, e.g. 1000"
        )


def build_datamodule(node: DictConfig, **parts: Any) -> L.LightningDataModule:
    """The data module of ``node`` with ``parts`` (reader, tokenizer, ...), its corpus prepared.

    Preparing it here stops a run with a missing corpus before any weights load; downloads happen
    only here.
    """
    datamodule = instantiate_node(node, "data", **parts)
    datamodule.prepare_data()
    return datamodule


def build_callbacks(
    cfg: DictConfig,
    store_config: dict[str, Any] | None = None,
    extra: Sequence[L.Callback] | None = None,
) -> list[L.Callback]:
    """The ``callbacks`` group, the ``attack`` and ``augmentation`` callbacks, then ``extra``.

    Args:
        cfg: the run's config.
        store_config: the resolved config to keep in every checkpoint (``bioner-eval`` rebuilds
            the run from it), or ``None``.
        extra: callbacks added by a calling program (benchmarks, notebooks).
    """
    callbacks = instantiate_callbacks(
        cfg.callbacks, attack=cfg.get("attack"), augmentation=cfg.get("augmentation")
    )
    if store_config is not None:
        callbacks.append(ConfigInCheckpoint(store_config))
    return [*callbacks, *(extra or [])]


# Monitorable beside the devel metrics: the Throughput callback's, and Lightning's own.
EPOCH_METRICS = ("train/sequences_per_s", "epoch", "step")


def check_monitors(callbacks: DictConfig | None, reader: Any) -> None:
    """Refuse, before training, a callback that monitors a devel metric that training never
    logs (a typo, a corpus key of ``dataset=multi`` that is not one): Lightning would stop the
    run with a traceback at the end of its first epoch.

    Training metrics (``train/loss``) are logged per step, not per epoch, so only
    ``train/sequences_per_s``, ``epoch`` and ``step`` can be monitored beside the devel metrics.

    Raises:
        ConfigError: naming the callback's key, the closest names and the devel metrics.
    """
    from bioner.models.module import scoring_metric_names

    types = list(reader.entity_types)
    corpora = list(getattr(reader, "scored_members", list)())
    names = scoring_metric_names("val", types, corpora)
    for key, node in (callbacks or {}).items():
        monitor = node.get("monitor") if isinstance(node, DictConfig) else None
        if monitor is None or monitor in names or monitor in EPOCH_METRICS:
            continue
        close = [n for n in names if n.endswith(f"/{monitor}")][:3]
        close = close or difflib.get_close_matches(str(monitor), names, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        unscored = [k for k in getattr(reader, "train_only", ()) if f"/{k}/" in str(monitor)]
        if unscored:
            hint = f" ({unscored[0]} is in dataset.train_only: it is trained on, never scored)"
        per_corpus = (
            f", and each corpus's val/<corpus>/f1 (<corpus>: {', '.join(corpora)})"
            if corpora
            else ""
        )
        raise ConfigError(
            f"callbacks.{key}.monitor={monitor}: training logs no metric of that name{hint}. "
            "The devel metrics are val/f1, val/precision, val/recall, val/loss, the macro, "
            "boundary, overlap and partial scores (val/f1_macro ...), each type's "
            f"val/f1_<type> (<type>: {', '.join(types)}){per_corpus}. Training metrics "
            "(train/loss) are logged per step, not per epoch, and cannot be monitored"
        )


def build_trainer(
    cfg: DictConfig, run: Run, loggers: list[Logger], callbacks: Sequence[L.Callback] = ()
) -> tuple[L.Trainer, str | int | None]:
    """The ``trainer`` group's Trainer with the precision for this hardware, and that precision.

    The loggers receive the whole resolved config with the precision chosen, not ``auto``
    (``config.yaml`` and the checkpoint keep ``auto``: the run's settings, which bioner-report
    groups by).
    """
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    trainer: L.Trainer = instantiate_node(
        cfg.trainer,
        "trainer",
        refused=(ValueError, MisconfigurationException),
        callbacks=list(callbacks),
        logger=loggers or False,
        precision=precision,
        plugins=[StreamedCheckpointIO()],
    )
    log_config(
        loggers,
        {**run.resolved, "trainer": {**run.resolved["trainer"], "precision": str(precision)}},
    )
    return trainer, precision


@contextmanager
def closing(loggers: list[Logger]) -> Iterator[list[Logger]]:
    """Finish the loggers (an open W&B run) however the run ends."""
    try:
        yield loggers
    finally:
        finish_loggers(loggers)


def release_training_state(trainer: L.Trainer, model: L.LightningModule) -> None:
    """Free the optimiser's moments and the gradients once fitting is over.

    They take three times the weights' memory and nothing after fitting reads them, while scoring
    the best checkpoint loads that file (weights and moments) beside them: freeing them first
    keeps the run's peak memory at the training peak.
    """
    for optimizer in trainer.optimizers:
        optimizer.state.clear()
    model.zero_grad(set_to_none=True)


def fit(
    cfg: DictConfig,
    run: Run,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    ckpt_path: str | None,
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Fit, then record how it ended (log line, loggers, the run's README); return the outcome
    (``metrics.json["training"]``)."""
    warn_early_stopping_with_max_steps(cfg)
    fit_or_exit(cfg, run, trainer, summary, model, datamodule, ckpt_path)
    release_training_state(trainer, model)
    outcome = training_outcome(trainer)
    best = outcome["best_epoch"]
    log.info(
        "training stopped: %s, after %d steps in %d epochs; best checkpoint from epoch %s",
        outcome["stop_reason"],
        outcome["steps"],
        outcome["epochs"],
        "(none)" if best is None else best,
    )
    if trainer.is_global_zero:
        log_outcome(trainer.loggers, outcome)
        write_run_readme(run.dir, cfg, {**summary, "training": outcome})
    return outcome


# A run stopped by a signal exits as a shell reports it: 128 + the signal's number.
INTERRUPTED_STATUS = {"SIGINT": 130, "SIGTERM": 143}


@contextmanager
def exit_on_signal(task: str, trainer: L.Trainer, then: Callable[[str], str]) -> Iterator[None]:
    """Around a trainer call (fit, validate, test): a call that a signal stops (``SIGINT``:
    Ctrl-C; ``SIGTERM``: a scheduler, ``timeout``, ``kill``) prints ``bioner-<task>:
    interrupted (<signal>) <then(signal)>`` on global rank zero and exits with 128 + the
    signal's number.

    Lightning exits with status 1 on Ctrl-C and with status **0** on SIGTERM, so that a job
    script or a sweep took a run killed half-way for a finished one; neither said what to do.
    """
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        yield
    except SystemExit as stop:  # Lightning's answer to Ctrl-C (exit 1) and to SIGTERM
        if isinstance(stop, SIGTERMException):
            signal = "SIGTERM"
        elif stop.code == 1 and isinstance(stop.__context__, KeyboardInterrupt):
            signal = "SIGINT"
        else:  # another exit (a callback's), or one of ours from an inner call: as it is
            raise
        if trainer.is_global_zero:
            print(f"bioner-{task}: interrupted ({signal}) {then(signal)}", file=sys.stderr)
        raise SystemExit(INTERRUPTED_STATUS[signal]) from None


def fit_or_exit(
    cfg: DictConfig,
    run: Run,
    trainer: L.Trainer,
    summary: dict[str, Any],
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    ckpt_path: str | None,
) -> None:
    """``trainer.fit``; a run that a signal stops says where it can go on from and records that
    in its README (:func:`exit_on_signal`)."""
    task = str(cfg.get("task_name", "train"))

    def then(signal: str) -> str:
        outcome = {**training_outcome(trainer), "stop_reason": f"interrupted ({signal})"}
        write_run_readme(run.dir, cfg, {**summary, "training": outcome})
        where = f"in epoch {trainer.current_epoch}, at step {trainer.global_step}."
        last = last_checkpoint(trainer)
        if last is None:
            off = "callbacks.last_checkpoint=null"
            return f"{where} No last.ckpt was written (no epoch ended, or {off})."
        return (
            f"{where} {last} holds the run as it was at the end of epoch "
            f"{checkpoint_epoch(last)}; continue with:\n  {resume_command(run.dir, task)}"
        )

    with exit_on_signal(task, trainer, then):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)


def training_records(cfg: DictConfig, callbacks: Sequence[L.Callback]) -> dict[str, Any]:
    """``metrics.json`` entries about how training ran: the fold (k-fold runs) and the training
    speed of each epoch (``callbacks.throughput``)."""
    records: dict[str, Any] = {}
    if cfg.cv.folds is not None:
        records["cv"] = {"folds": cfg.cv.folds, "fold": cfg.cv.fold}
    speeds = [rate for cb in callbacks if isinstance(cb, Throughput) for rate in cb.history]
    if speeds:
        records["train_sequences_per_s"] = speeds
    return records


def score_and_export(
    cfg: DictConfig,
    run: Run,
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    checkpoint: str | None,
    summary: dict[str, Any],
    metadata: dict[str, Any],
    scoring: Scoring | None = None,
) -> dict[str, Any]:
    """The end of a training run: score ``checkpoint`` (the best one) on devel and test, write
    the evaluation files and export the model folder; return ``metrics.json``'s content.

    Args:
        metadata: what the exported folder records beside the weights (alignment, entity types,
            dataset, encoder); the fitted preprocessing is added here.
        scoring: post-processing and robustness, built when the run started
            (:func:`~bioner.runtime.finish.build_scoring`); ``None``: built now.
    """
    if checkpoint is None:
        log.warning("no checkpoint to evaluate: scoring the weights as they are")
    summary = {**summary, "checkpoint": checkpoint}

    # Final scores of the best checkpoint on devel and test (with their predictions).
    def then(signal: str) -> str:
        return (
            "while the trained run was scored; its checkpoints are complete: "
            f"bioner-eval ckpt_path={Path(run.dir).resolve()} scores it"
        )

    with exit_on_signal(str(cfg.get("task_name", "train")), trainer, then):
        trainer.validate(model, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
        trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
    if not trainer.is_global_zero:
        return summary
    summary["wall_time_s"] = time.perf_counter() - run.started
    summary = finish_evaluation(cfg, run.dir, model, datamodule, trainer.loggers, summary, scoring)
    if datamodule.preprocess is not None:
        # bioner-predict rewrites raw text as training did (fitted state included).
        metadata = {**metadata, "preprocess": datamodule.preprocess.record()}
    transitions = model.transitions()
    if transitions is not None:
        # The crf head's learned transitions, as numbers: the Tagger decodes with them.
        metadata = {**metadata, "crf": transitions.record()}
    export_pretrained(model.model, datamodule.tokenizer, run.dir / "model", metadata)
    finish_run(cfg, run, summary)
    return summary


def export_metadata(
    cfg: DictConfig, run: Run, reader: Any, encoder: Any, precision: str | int | None
) -> dict[str, Any]:
    """What a training run's exported model folder records beside the weights (``bioner.json``):
    the alignment, the entity types, the dataset, the encoder and the precision it trained and
    was scored in (the Tagger's ``precision=auto`` tags in it where the hardware allows)."""
    return {
        "alignment": run.resolved["alignment"],
        "entity_types": reader.entity_types,
        "dataset": cfg.dataset.name,
        "encoder": encoder.name,
        "precision": str(precision),
    }


def scored_checkpoint(cfg: DictConfig, trainer: L.Trainer, ckpt_path: str | None) -> str | None:
    """The checkpoint a training run scores: the best one when it trained, else ``ckpt_path``."""
    return best_checkpoint(trainer) if cfg.train else ckpt_path


def finish_run(cfg: DictConfig, run: Run, summary: dict[str, Any]) -> None:
    """Complete the run's README and print where the run folder is (global rank zero)."""
    write_run_readme(run.dir, cfg, summary)
    log.info("Run folder: %s", Path(run.dir).resolve())
