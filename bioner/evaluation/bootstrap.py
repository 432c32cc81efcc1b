"""Bootstrap confidence intervals and the paired bootstrap test, resampling documents.

Documents, not sentences or mentions, are the resampled unit, because the sentences and mentions
of one abstract are not independent. Bootstrap sample ``i`` is the ``i``-th block of ``n_docs``
draws of ``numpy.random.default_rng(seed).integers(0, n_docs)``: a multiset of documents. Every
metric of :class:`~bioner.evaluation.metrics.SpanEvaluation` is a function of column totals of
its per-document counts, so a sample's totals are ``multiplicities @ counts`` and all samples
cost one matrix product; every metric (micro, per type, macro, boundary, overlap, partial, exact
match) gets an interval this way. In a sample the macro mean runs over the types that occur in
that sample.

Confidence interval (percentile method): the ``alpha / 2`` and ``1 - alpha / 2`` quantiles
(numpy's default linear interpolation) of the ``n`` bootstrap values. A type absent from a sample
(no gold and no predicted span of it) has undefined per-type scores there: they are NaN, left out
of the quantiles (``numpy.nanquantile``) rather than entered as 0, and
:func:`bootstrap_intervals` says how many samples defined each score.

Paired test (Berg-Kirkpatrick, Burkett and Klein, EMNLP 2012, "An Empirical Investigation of
Statistical Significance in NLP"): ``delta = m(A) - m(B)`` on all documents. Each sample scores
both systems on the *same* documents, giving ``delta_i``. The null hypothesis is "A is not better
than B". The bootstrap distribution of ``delta_i`` is centred near ``delta``, not 0, so it is
shifted by ``delta`` to stand for the null, and::

    p_value = #{i : delta_i >= 2 * delta} / n

(Berg-Kirkpatrick et al. count ``>``; ``>=`` makes identical systems, where every
``delta_i = delta = 0``, get ``p = 1`` rather than ``0``.) The test is one-sided: a negative
``delta`` gives ``p`` near or above 0.5; swap A and B to test the other direction. ``p`` moves in
steps of ``1 / n``, and ``p = 0`` means ``p < 1 / n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bioner.data.document import Document, Span
from bioner.evaluation.metrics import SpanEvaluation, evaluate

# Counts are not scores; they get no interval.
_NOT_SCORES = frozenset({"tp", "fp", "fn"})
# Upper bound on the size of one block of document multiplicities (n_samples x n_docs).
_BLOCK_CELLS = 4_000_000


def _check(n: int, alpha: float) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (number of bootstrap samples) must be a positive integer, not {n!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, not {alpha!r} (0.05 gives 95%)")


def _resampled_totals(counts: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Column totals of ``n`` document resamples of ``counts``: shape ``(n, n_columns)``."""
    n_docs = counts.shape[0]
    if n_docs == 0:
        raise ValueError("cannot bootstrap over zero documents")
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n_docs)
    totals = np.empty((n, counts.shape[1]))
    for lo in range(0, n, block):
        k = min(block, n - lo)
        draws = rng.integers(0, n_docs, size=(k, n_docs))
        # Row r: how many times each document was drawn into sample lo + r.
        offsets = n_docs * np.arange(k)[:, None]
        weights = np.bincount((draws + offsets).ravel(), minlength=k * n_docs).reshape(k, n_docs)
        totals[lo : lo + k] = weights @ counts
    return totals


def bootstrap_distribution(
    evaluation: SpanEvaluation, n: int = 1000, seed: int = 0
) -> dict[str, np.ndarray]:
    """The ``n`` bootstrap values of every score of ``evaluation`` (arrays of shape ``(n,)``)."""
    _check(n, 0.05)
    values = evaluation.metrics_from_counts(_resampled_totals(evaluation.counts, n, seed))
    return {k: v for k, v in values.items() if k not in _NOT_SCORES}


def bootstrap_intervals(
    evaluation: SpanEvaluation, n: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[dict[str, tuple[float, float]], dict[str, int]]:
    """Percentile intervals of every score of ``evaluation`` and how many samples defined each.

    Returns:
        ``({metric: (low, high)}, {metric: samples that defined it})``; a score no sample
        defined gets no interval.
    """
    _check(n, alpha)
    intervals, defined = {}, {}
    for key, values in bootstrap_distribution(evaluation, n, seed).items():
        defined[key] = int(np.count_nonzero(~np.isnan(values)))
        if defined[key]:
            intervals[key] = _interval(values, alpha)
    return intervals, defined


def bootstrap_ci(
    gold: Sequence[Document],
    pred: Sequence[Sequence[Span]],
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals of every score, resampling documents.

    Args:
        gold: the gold documents.
        pred: ``pred[i]`` are the spans predicted for ``gold[i]``.
        n: number of bootstrap samples.
        seed: seed of the resampling; the same inputs and seed give the same intervals.
        alpha: ``1 - alpha`` is the coverage (0.05 gives a 95% interval).

    Returns:
        ``{metric: (low, high)}`` for every key of :meth:`SpanEvaluation.metrics` except the raw
        counts ``tp``, ``fp``, ``fn`` (per-type scores over the samples where the type occurs;
        :func:`bootstrap_intervals` also counts those samples).
    """
    return bootstrap_intervals(evaluate(gold, pred), n, seed, alpha)[0]


def _interval(values: np.ndarray, alpha: float) -> tuple[float, float]:
    low, high = np.nanquantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_bootstrap(
    gold: Sequence[Document],
    pred_a: Sequence[Sequence[Span]],
    pred_b: Sequence[Sequence[Span]],
    n: int = 1000,
    seed: int = 0,
    metric: str = "f1",
    alpha: float = 0.05,
) -> dict:
    """Paired bootstrap test of "system A scores higher than system B" on the same gold.

    Args:
        gold: the gold documents.
        pred_a: predictions of system A (``pred_a[i]`` for ``gold[i]``).
        pred_b: predictions of system B.
        n: number of bootstrap samples.
        seed: seed of the resampling.
        metric: any key of :meth:`SpanEvaluation.metrics` but the raw counts.
        alpha: coverage of the interval of the difference is ``1 - alpha``.

    Returns:
        ``{"metric", "a", "b", "delta", "p_value", "ci", "n", "n_defined"}``: the metric of A
        and of B, ``delta = a - b``, the one-sided p-value defined in the module docstring, the
        percentile interval ``(low, high)`` of ``delta_i``, and how many of the ``n`` samples
        defined ``delta_i`` (fewer than ``n`` for a type some samples lack).
    """
    _check(n, alpha)
    eval_a, eval_b = evaluate(gold, pred_a), evaluate(gold, pred_b)
    point_a, point_b = eval_a.metrics(), eval_b.metrics()
    if metric not in point_a or metric in _NOT_SCORES:
        choices = ", ".join(k for k in point_a if k not in _NOT_SCORES)
        raise ValueError(f"unknown metric {metric!r}; choose one of {choices}")
    if metric not in point_b:  # a per-type key for a type only system A has
        raise ValueError(f"metric {metric!r} is undefined for system B (type absent)")
    # One set of document draws for both systems: that is what makes the test paired.
    stacked = np.concatenate([eval_a.counts, eval_b.counts], axis=1)
    totals = _resampled_totals(stacked, n, seed)
    split = eval_a.counts.shape[1]
    delta_i = (
        eval_a.metrics_from_counts(totals[:, :split])[metric]
        - eval_b.metrics_from_counts(totals[:, split:])[metric]
    )
    delta = point_a[metric] - point_b[metric]
    # A per-type delta is undefined in samples without the type; they take no part.
    defined = delta_i[~np.isnan(delta_i)]
    if not defined.size:
        raise ValueError(f"metric {metric!r} is undefined in every bootstrap sample")
    return {
        "metric": metric,
        "a": point_a[metric],
        "b": point_b[metric],
        "delta": delta,
        "p_value": float(np.mean(defined >= 2 * delta)),
        "ci": _interval(defined, alpha),
        "n": n,
        "n_defined": int(defined.size),
    }
