"""Run folders and the instantiation of the callback and logger groups."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from bioner.cli.app import earlier_results, earlier_run_error, guards_run_dir
from bioner.config import instantiate_entries, instantiate_node
from bioner.utils.log import get_logger

log = get_logger(__name__)


def prepare_run_dir(cfg: DictConfig) -> tuple[Path, dict[str, Any]]:
    """Create the run folder ``cfg.run_dir``, save the resolved config there and print it.

    Resolving the whole config here also surfaces a broken interpolation before any weights
    are loaded.

    Returns:
        The run folder and the resolved config as plain containers.

    Raises:
        ValueError: ``run_dir`` cannot be resolved (a config composed outside a Hydra app must
            set ``run_dir=<folder>`` itself).
    """
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except InterpolationResolutionError as err:
        if "run_dir" in str(err) or "hydra" in str(err):
            raise ValueError(
                "run_dir is not set: outside a Hydra app (hydra.compose, notebooks, tests) add the "
                f"override run_dir=<folder> ({err})"
            ) from err
        raise
    run_dir = Path(resolved["run_dir"])
    if rank_zero_only.rank == 0:
        task = str(resolved.get("task_name", ""))
        if guards_run_dir(task, resolved.get("ckpt_path")):
            clear_earlier_run(run_dir, bool(resolved.get("overwrite", False)), task)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    log.info("Run folder: %s", run_dir.resolve())
    return run_dir, resolved


def clear_earlier_run(run_dir: Path, overwrite: bool, task: str) -> None:
    """Refuse to start a run of ``bioner-<task>`` in a folder that holds an earlier run's
    results, or remove them with ``overwrite=true``. Those are ``EARLIER_RESULTS[task]``
    (:mod:`bioner.cli.app`) only: other files stay, as do ``wandb/`` (its offline runs, one
    folder each, may wait for ``wandb sync``), the logs and ``.hydra/`` (Hydra has already
    written the new run's).

    Raises:
        ConfigError: the folder holds results and ``overwrite`` is false.
    """
    import shutil

    found = earlier_results(run_dir, task)
    if not found:
        return
    if not overwrite:
        raise earlier_run_error(run_dir, found, task)
    for path in found:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    log.warning("overwrite=true: removed the earlier run's %s from %s", len(found), run_dir)


def instantiate_callbacks(
    callbacks: DictConfig | None, **groups: DictConfig | None
) -> list[L.Callback]:
    """Callbacks from the named entries of ``callbacks`` plus single-callback ``groups``.

    ``groups`` maps a config key to its node, such as ``attack=cfg.attack``: a node with a
    ``_target_`` is one callback built from its parameters (``name`` among them, which labels
    runs and dashboards); a node without one (``attack=none``) adds nothing. A value that a
    constructor refuses is a :class:`~bioner.errors.ConfigError` naming its key.
    """
    out = instantiate_entries(callbacks, "callbacks")
    for key, node in groups.items():
        if node is not None and "_target_" in node:
            # Resolved in place first: interpolations such as ${seed} point into the whole config.
            out.append(instantiate_node(OmegaConf.to_container(node, resolve=True), key))
    return out


def instantiate_loggers(loggers: DictConfig | None) -> list[Logger]:
    """Loggers from the named entries of the ``logger`` group (``logger=none``: none)."""
    return instantiate_entries(loggers, "logger")


def log_config(loggers: list[Logger], resolved: dict[str, Any]) -> None:
    """Send the whole resolved config to every logger, so a new group reaches dashboards too."""
    for logger in loggers:
        logger.log_hyperparams(resolved)


def finish_loggers(loggers: list[Logger]) -> None:
    """Close an open W&B run, so that the next run in the same process starts its own."""
    if any(isinstance(logger, WandbLogger) for logger in loggers):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def checkpoint_epoch(path: str | Path) -> int:
    """The epoch a checkpoint of this run was saved in, read memory-mapped (not the weights)."""
    import torch

    state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    return int(state.get("epoch", -1))


def training_outcome(trainer: L.Trainer) -> dict[str, Any]:
    """How fitting ended: ``stop_reason`` in words, ``steps`` and ``epochs`` done, and the
    ``best_epoch`` and ``best_score`` of the checkpoint that is scored (``None`` without one).

    Lightning says why it stopped only in a console line about ``max_steps``/``max_epochs``, and
    early stopping says nothing at all; a run that ends early deserves a reason in its records.
    """
    from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

    reason = None
    if trainer.interrupted:
        reason = "interrupted"
    for callback in trainer.early_stopping_callbacks:
        if reason is None and callback.stopping_reason != EarlyStoppingReason.NOT_STOPPED:
            reason = f"early stopping ({callback.stopping_reason_message or callback.monitor})"
    max_steps, max_epochs = trainer.max_steps, trainer.max_epochs
    if reason is None and max_steps not in (None, -1) and trainer.global_step >= max_steps:
        reason = f"max_steps={max_steps} reached"
    if reason is None and max_epochs not in (None, -1) and trainer.current_epoch >= max_epochs:
        reason = f"max_epochs={max_epochs} reached"
    if reason is None:
        reason = "a callback or limit stopped it" if trainer.should_stop else "unknown"
    best_epoch = best_score = None
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor is not None and callback.best_model_path:
            best_score = float(callback.best_model_score)
            best_epoch = checkpoint_epoch(callback.best_model_path)
            break
    return {
        "stop_reason": reason,
        "steps": int(trainer.global_step),
        "epochs": int(trainer.current_epoch),
        "best_epoch": best_epoch,
        "best_score": best_score,
    }


def warn_early_stopping_with_max_steps(cfg: DictConfig) -> None:
    """Warn when ``trainer.max_steps`` is set while early stopping is on: it may end the run
    first, and ``max_steps`` reads as a promise of that many steps."""
    max_steps = cfg.trainer.get("max_steps")
    early = (cfg.get("callbacks") or {}).get("early_stopping")
    if max_steps in (None, -1) or not early:
        return
    log.warning(
        "trainer.max_steps=%s with early stopping on (%s, patience %s): training may stop "
        "sooner; callbacks.early_stopping=null turns it off",
        max_steps,
        early.get("monitor"),
        early.get("patience"),
    )


def log_outcome(loggers: list[Logger], outcome: dict[str, Any]) -> None:
    """Put the training outcome into each logger's run summary (W&B) or hyper-parameters."""
    flat = {f"training/{k}": v for k, v in outcome.items() if v is not None}
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(flat)
        else:
            logger.log_hyperparams(flat)


# What each entry of a run folder is, for its README (only entries present are listed).
RUN_FOLDER_ENTRIES = {
    "config.yaml": "the whole resolved config of the run",
    "checkpoint_config.yaml": "the training config of the scored checkpoint (an ensemble's first)",
    ".hydra/": "Hydra's composed config, its overrides (overrides.yaml) and Hydra's settings",
    "train.log": "the log of the run",
    "eval.log": "the log of the run",
    "checkpoints/": "best.ckpt (highest devel strict F1) and last.ckpt (to resume)",
    "metrics.json": "scores with 95% confidence intervals, per type, and how training ended",
    "predictions/": "predictions per split (.jsonl with character offsets, .conll)",
    "confusion_train.png": "confusion matrix of entity types on train",
    "confusion_devel.png": "confusion matrix of entity types on devel",
    "confusion_test.png": "confusion matrix of entity types on test",
    "confidence_train.png": "span scores on train: reliability, precision against recall",
    "confidence_devel.png": "span scores on devel: reliability, precision against recall",
    "confidence_test.png": "span scores on test: reliability, precision against recall",
    "errors_train.tsv": "every wrong, missed and spurious span on train, with its sentence",
    "errors_devel.tsv": "every wrong, missed and spurious span on devel, with its sentence",
    "errors_test.tsv": "every wrong, missed and spurious span on test, with its sentence",
    "robustness_epsilon.png": "F1 under attacks of growing strength",
    "model/": "a Hugging Face folder: bioner-predict model=... or transformers.pipeline",
    "wandb/": "the W&B run (offline runs: `wandb sync wandb/offline-run-*`)",
    "tensorboard/": "TensorBoard event files",
    "csv/": "CSV logs of the metrics",
}


def _command_line(task: str) -> tuple[str, list[str]]:
    """The console script and the overrides this run was started with (Hydra's record)."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    return f"bioner-{task}", overrides


def resume_command(run_dir: str | Path, task: str = "train") -> str:
    """The shell command that continues this run of ``bioner-<task>`` from its ``last.ckpt``:
    the same overrides, ``run_dir`` the run folder, ``ckpt_path=last``."""
    script, overrides = _command_line(task)
    kept = [o for o in overrides if not o.startswith(("run_dir=", "hydra.run.dir=", "ckpt"))]
    return shlex.join([script, *kept, f"run_dir={Path(run_dir).resolve()}", "ckpt_path=last"])


def write_run_readme(run_dir: str | Path, cfg: DictConfig, summary: dict[str, Any]) -> Path:
    """Write ``README.md`` into the run folder: what ran, how it ended, what is where, and the
    commands to evaluate, predict and resume. Call on global rank zero only.

    Args:
        run_dir: the run folder.
        cfg: the run's config.
        summary: what is known so far (``metrics.json``'s content, or less while running).
    """
    run_dir = Path(run_dir)
    task = str(cfg.get("task_name", "train"))
    script, overrides = _command_line(task)
    where = run_dir.resolve()
    lines = [f"# {summary.get('run_name', cfg.get('run_name', where.name))}", ""]
    lines += [f"Started with: `{shlex.join([script, *overrides])}`", ""]
    if summary.get("predictions"):  # bioner-eval predictions=<file>
        lines.append(
            f"- Scored the spans of `{summary['predictions']}` "
            f"({summary.get('predictions_format')}) against {summary.get('dataset')}."
        )
    training = summary.get("training")
    if training:
        best = training.get("best_epoch")
        lines.append(
            f"- Training stopped: {training['stop_reason']}, after {training['steps']} steps in "
            f"{training['epochs']} epochs; the best checkpoint is from epoch "
            f"{'(none)' if best is None else best}."
        )
    elif task == "train" and "test" not in summary:
        lines.append(
            "- Still running, or stopped before the end: resume it with the command below."
        )
    for split in ("train", "devel", "test"):  # train: a file of predictions scored on it
        section = summary.get(split)
        if section:
            f1 = section["metrics"]["f1"]
            ci = section.get("ci95", {}).get("f1")
            interval = f" (95% CI {ci[0]:.4f}-{ci[1]:.4f})" if ci else ""
            lines.append(
                f"- {split}: strict F1 {f1:.4f}{interval} on {section['documents']} documents."
            )
    lines += ["", "## What is here", ""]
    for name, what in RUN_FOLDER_ENTRIES.items():
        if (run_dir / name.rstrip("/")).exists() or name == "metrics.json" and "test" in summary:
            if name == "model/" and OmegaConf.select(cfg, "module.head") == "crf":
                what += (
                    "; the pipeline ignores the CRF's transitions (bioner.json's 'crf') and "
                    "reads each word's best tag alone: bioner-predict decodes as the run scored"
                )
            if name == "model/" and OmegaConf.select(cfg, "alignment.context"):
                what += (
                    "; the pipeline reads each text as it is given, without the neighbouring "
                    "sentences the model was trained to read (alignment.context): bioner-predict "
                    "adds them"
                )
            lines.append(f"- `{name}`: {what}")
    lines += ["", "## Next", "", "```sh"]
    if task == "train":
        lines += [
            f"bioner-eval ckpt_path={where}              # score it again (devel, test)",
            f"bioner-predict model={where} input=text.txt output=spans.jsonl",
        ]
        lines.append(f"{resume_command(where)}   # resume or extend (e.g. trainer.max_epochs=20)")
    else:
        lines.append(f"bioner-report {where}   # a results table")
    lines += ["```", ""]
    path = run_dir / "README.md"
    path.write_text("\n".join(lines))
    return path
