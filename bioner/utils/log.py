"""Loggers that speak once per job, not once per process."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.utilities import rank_zero_only


class RankZeroLogger(logging.LoggerAdapter):
    """A :class:`logging.Logger` wrapper that drops records on every global rank but zero.

    Under DDP each process runs the whole entry point; without this every message would be
    printed once per process.
    """

    def __init__(self, name: str, extra: Mapping[str, object] | None = None) -> None:
        super().__init__(logging.getLogger(name), extra or {})

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        # rank_zero_only.rank is set from the launcher's environment, before any Trainer exists.
        if getattr(rank_zero_only, "rank", 0) == 0:
            super().log(level, msg, *args, **kwargs)


def get_logger(name: str) -> RankZeroLogger:
    """The rank-zero logger for module ``name`` (use ``get_logger(__name__)``)."""
    return RankZeroLogger(name)
