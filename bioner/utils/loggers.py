"""Experiment loggers whose defaults need a decision made at run time."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger

from bioner.utils.log import get_logger

log = get_logger(__name__)


def wandb_logged_in() -> bool:
    """Whether W&B credentials are at hand: ``WANDB_API_KEY`` or a netrc entry for the W&B host.

    This reads the same places ``wandb login`` writes to and never touches the network.
    """
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return host is not None and netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_logger(offline: bool | None = None, **kwargs: Any) -> WandbLogger:
    """A :class:`~lightning.pytorch.loggers.WandbLogger` that runs offline unless it can sync.

    Args:
        offline: ``True``/``False`` force the mode; ``None`` (the default) means online only when
            the user is logged in (:func:`wandb_logged_in`) and ``WANDB_MODE`` does not decide
            otherwise, so a fresh machine never stops at a login prompt. Offline runs can be
            uploaded later with ``wandb sync <run>/wandb/offline-run-*``.
        **kwargs: passed to ``WandbLogger`` (``project``, ``name``, ``save_dir``, ``tags``, ...).
    """
    if offline is None:
        # An explicit WANDB_MODE (offline, disabled, online) is the user's choice; wandb reads it.
        offline = "WANDB_MODE" not in os.environ and not wandb_logged_in()
        if offline:
            log.info("W&B runs offline (not logged in); set logger.wandb.offline=false to sync")
    if kwargs.get("save_dir") is not None:
        # wandb refuses to write into a folder that does not exist yet.
        Path(kwargs["save_dir"]).mkdir(parents=True, exist_ok=True)
    logger = WandbLogger(offline=offline, **kwargs)
    if logger._wandb_init.get("anonymous") is None:
        # Lightning always passes anonymous=None, on which wandb warns that "the anonymous
        # setting has no effect": a console line about nothing the user did.
        logger._wandb_init.pop("anonymous", None)
    return logger
