"""Leaf helpers that import no other bioner package: the rank-zero logger, the precision choice,
checkpoint writing, the wall time of resumed jobs, and Lightning callbacks and loggers that know
no model in particular.

What turns a config into a run (run folders, the callback and logger groups, the evaluation
tail) is the application layer, :mod:`bioner.runtime`.
"""

from bioner.utils.precision import cpu_has_native_bf16, resolve_precision, tagging_precision

__all__ = ["cpu_has_native_bf16", "resolve_precision", "tagging_precision"]
