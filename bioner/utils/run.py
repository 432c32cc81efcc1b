"""Run folders and the instantiation of the callback and logger groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from bioner.config import named_entries
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
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(resolved)))
    log.info("Run folder: %s", run_dir.resolve())
    return run_dir, resolved


def instantiate_callbacks(
    callbacks: DictConfig | None, *extra: DictConfig | None
) -> list[L.Callback]:
    """Callbacks from the named entries of ``callbacks`` plus ``extra`` single-callback groups.

    ``extra`` holds group nodes such as ``attack`` and ``augmentation``: a node with a
    ``_target_`` is one callback, built from its other keys except ``name`` (which labels runs
    and dashboards); a node without one (``attack=none``) adds nothing.
    """
    out = [instantiate(node) for _, node in named_entries(callbacks, "callbacks")]
    for node in extra:
        if node is not None and "_target_" in node:
            # Resolved in place first: interpolations such as ${seed} point into the whole config.
            spec = OmegaConf.to_container(node, resolve=True)
            spec.pop("name", None)
            out.append(instantiate(spec))
    return out


def instantiate_loggers(loggers: DictConfig | None) -> list[Logger]:
    """Loggers from the named entries of the ``logger`` group (``logger=none``: none)."""
    return [instantiate(node) for _, node in named_entries(loggers, "logger")]


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
