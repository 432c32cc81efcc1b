"""Span-level evaluation: scores, entity confusion and bootstrap statistics on character spans.

Nothing here imports torch, Lightning or the augmentations; matplotlib is imported only to draw
a plot. Text-perturbation robustness is :mod:`bioner.augment.robustness`.
"""

from bioner.evaluation.bootstrap import (
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_intervals,
    paired_bootstrap,
)
from bioner.evaluation.confidence import SpanConfidence
from bioner.evaluation.confusion import ConfusionMatrix, confusion_matrix, error_rows
from bioner.evaluation.metrics import (
    SCHEMES,
    SpanEvaluation,
    evaluate,
    match_spans,
    prf,
    token_accuracy,
    validate_predictions,
)
from bioner.evaluation.robustness import robustness_metrics

__all__ = [
    "SCHEMES",
    "ConfusionMatrix",
    "SpanConfidence",
    "SpanEvaluation",
    "bootstrap_ci",
    "bootstrap_distribution",
    "bootstrap_intervals",
    "confusion_matrix",
    "error_rows",
    "evaluate",
    "match_spans",
    "paired_bootstrap",
    "prf",
    "robustness_metrics",
    "token_accuracy",
    "validate_predictions",
]
