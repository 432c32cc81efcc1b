"""Span-level evaluation: scores, entity confusion and bootstrap statistics on character spans.

Nothing here imports torch or Lightning; matplotlib is imported only to draw a plot.
"""

from bioner.evaluation.bootstrap import (
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_intervals,
    paired_bootstrap,
)
from bioner.evaluation.confusion import ConfusionMatrix, confusion_matrix
from bioner.evaluation.metrics import (
    SCHEMES,
    SpanEvaluation,
    evaluate,
    match_spans,
    prf,
    token_accuracy,
    validate_predictions,
)
from bioner.evaluation.robustness import (
    default_perturbations,
    robustness_metrics,
    text_robustness,
)

__all__ = [
    "SCHEMES",
    "ConfusionMatrix",
    "SpanEvaluation",
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_intervals",
    "confusion_matrix",
    "default_perturbations",
    "evaluate",
    "match_spans",
    "paired_bootstrap",
    "prf",
    "robustness_metrics",
    "text_robustness",
    "token_accuracy",
    "validate_predictions",
]
