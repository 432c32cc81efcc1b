"""Helpers shared by the entry points: run folders, precision choice, loggers, callbacks, reports.

Nothing here knows about corpora or models; entry points wire these pieces together.
"""

from bioner.utils.precision import cpu_has_native_bf16, resolve_precision
from bioner.utils.run import (
    finish_loggers,
    instantiate_callbacks,
    instantiate_loggers,
    log_config,
    prepare_run_dir,
)

__all__ = [
    "cpu_has_native_bf16",
    "finish_loggers",
    "instantiate_callbacks",
    "instantiate_loggers",
    "log_config",
    "prepare_run_dir",
    "resolve_precision",
]
