"""Helpers shared by the entry points: run folders, precision choice, loggers, callbacks, reports.

The entry points (``bioner.train``, ``bioner.eval``) wire these pieces together; the data,
model and evaluation packages never import from here (except the rank-zero logger).
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
