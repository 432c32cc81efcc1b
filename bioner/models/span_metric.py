"""Span scores as a :class:`torchmetrics.Metric`: bioner's span evaluation for any Lightning loop.

:class:`SpanMetric` accumulates, per update, the counts that :func:`bioner.evaluation.evaluate`
computes per document (strict ``tp``/``fp``/``fn`` per type, the boundary, overlap and partial
counts, the exact-match tallies) in tensor states that torchmetrics sums across DDP ranks, and
:meth:`SpanMetric.compute` turns the totals into exactly the scores of
:meth:`~bioner.evaluation.SpanEvaluation.metrics` (same formulas, same code). It scores decoded
*character spans* per document; decoding tags or logits to spans stays with the caller.

bioner's own LightningModule does not use it: a document's windows may be predicted on different
ranks and can only be decoded once their logits are together, so
:class:`~bioner.models.module.TokenClassifier` gathers logits, decodes every document on every
rank and keeps the full :class:`~bioner.evaluation.SpanEvaluation` (per-document counts for the
bootstrap intervals, per-type tables, prediction files). Where a loop holds whole documents per
rank, this metric replaces that gathering.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

from bioner.data.document import Document, Span
from bioner.evaluation.metrics import (
    EXACT_MATCH,
    SCHEMES,
    SpanEvaluation,
    check_type_names,
    count_columns,
    document_counts,
    validate_predictions,
)

SpanLike = Span | tuple[int, int, str]


def _as_span(span: SpanLike, where: str) -> Span:
    if isinstance(span, Span):
        return span
    if isinstance(span, (tuple, list)) and len(span) == 3:
        return Span(int(span[0]), int(span[1]), str(span[2]))
    raise TypeError(f"{where}: {span!r} is neither a Span nor a (start, end, label) tuple")


class SpanMetric(Metric):
    """Strict span precision, recall and F1 (micro, per type, macro) and the other span scores
    of :func:`bioner.evaluation.evaluate`, accumulated over updates and reduced across ranks.

    States (summed across DDP ranks by torchmetrics): ``tp``, ``fp``, ``fn``, one entry per
    label (strict matching: same start, end and type); ``scheme_counts``, ``tp``/``fp``/``fn``
    of the ``boundary``, ``overlap`` and ``partial`` schemes; ``exact_match``, the sentence and
    document tallies. All are float64 (``partial`` gives half credit).

    Example, in a LightningModule that decodes whole documents on each rank::

        self.val_spans = SpanMetric(["Chemical", "Disease"])
        # validation_step: predicted spans and gold documents (or gold span lists)
        self.val_spans.update(pred_spans, gold_docs)
        # on_validation_epoch_end
        self.log_dict({f"val/{k}": v for k, v in self.val_spans.compute().items()})
        self.val_spans.reset()

    Args:
        labels: every entity type that gold or predicted spans may carry.
        **kwargs: torchmetrics' ``Metric`` options (``sync_on_compute``, ``process_group``...).

    Raises:
        ValueError: a label is repeated or named like a summary key (``macro``, ``boundary``...).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    tp: torch.Tensor
    fp: torch.Tensor
    fn: torch.Tensor
    scheme_counts: torch.Tensor
    exact_match: torch.Tensor

    def __init__(self, labels: Sequence[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.labels = [str(label) for label in labels]
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"SpanMetric: labels {self.labels} repeat a label")
        check_type_names(self.labels)
        self._label_index = {label: i for i, label in enumerate(self.labels)}
        zeros = torch.zeros(len(self.labels), dtype=torch.float64)
        for name in ("tp", "fp", "fn"):
            self.add_state(name, default=zeros.clone(), dist_reduce_fx="sum")
        schemes = torch.zeros(len(SCHEMES) - 1, 3, dtype=torch.float64)
        self.add_state("scheme_counts", default=schemes, dist_reduce_fx="sum")
        tallies = torch.zeros(len(EXACT_MATCH), dtype=torch.float64)
        self.add_state("exact_match", default=tallies, dist_reduce_fx="sum")

    def update(
        self,
        preds: Sequence[Sequence[SpanLike]],
        target: Sequence[Document | Sequence[SpanLike]],
    ) -> None:
        """Add documents: ``preds[i]`` are the spans predicted for ``target[i]``.

        Args:
            preds: per document, predicted :class:`~bioner.data.document.Span`\\ s or
                ``(start, end, label)`` tuples (character offsets), in any order.
            target: per document, the gold :class:`~bioner.data.document.Document` (its
                sentences count for ``exact_match_sentences``, its text bounds the offsets) or
                its gold spans (then the document is one sentence).

        Raises:
            ValueError: lengths differ, a span lies outside its document's text, or a label is
                not one of :attr:`labels`.
            TypeError: an item is not a span.
        """
        if len(preds) != len(target):
            raise ValueError(f"{len(preds)} prediction lists but {len(target)} gold documents")
        gold = [
            item
            if isinstance(item, Document)
            else Document(f"#{i}", "", [_as_span(s, f"gold[{i}]") for s in item])
            for i, item in enumerate(target)
        ]
        spans = [[_as_span(s, f"preds[{i}]") for s in p] for i, p in enumerate(preds)]
        # Documents carry their text, so offsets are checked; bare gold spans have none to check.
        with_text = [i for i, item in enumerate(target) if isinstance(item, Document)]
        checked = validate_predictions([gold[i] for i in with_text], [spans[i] for i in with_text])
        for i, sorted_spans in zip(with_text, checked):
            spans[i] = sorted_spans
        totals = np.zeros(len(count_columns(self.labels)))
        index = {c: k for k, c in enumerate(count_columns(self.labels))}
        for doc, pred in zip(gold, spans):
            for column, value in document_counts(doc, sorted(pred)).items():
                k = index.get(column)
                if k is None:
                    raise ValueError(
                        f"document {doc.id}: entity type {column[0][5:]!r} is not one of the "
                        f"metric's labels {self.labels}; pass it to SpanMetric(labels=...)"
                    )
                totals[k] += value
        self._add(totals)

    def _add(self, totals: np.ndarray) -> None:
        """Add column totals (in :func:`count_columns` order of :attr:`labels`) to the states."""
        n_schemes = 3 * len(SCHEMES)
        per_type = torch.as_tensor(totals[n_schemes : n_schemes + 3 * len(self.labels)])
        per_type = per_type.reshape(-1, 3).to(self.tp.device)
        self.tp += per_type[:, 0]
        self.fp += per_type[:, 1]
        self.fn += per_type[:, 2]
        # The strict family is the sum of the per-type counts; the other schemes follow it.
        schemes = torch.as_tensor(totals[3:n_schemes]).reshape(-1, 3)
        self.scheme_counts += schemes.to(self.scheme_counts.device)
        self.exact_match += torch.as_tensor(totals[-len(EXACT_MATCH) :]).to(self.exact_match.device)

    def compute(self) -> dict[str, torch.Tensor]:
        """Every score of :meth:`bioner.evaluation.SpanEvaluation.metrics`, as float64 tensors.

        Per-type keys (``f1_<Type>``...) appear for the labels seen in gold or predicted spans,
        as in :func:`~bioner.evaluation.evaluate`; the macro scores average over those labels.
        """
        per_type = torch.stack([self.tp, self.fp, self.fn], dim=1).cpu().numpy()
        # A label occurs in gold or predictions exactly when tp + fp + fn > 0.
        seen = sorted(label for label, row in zip(self.labels, per_type) if row.sum() > 0)
        strict = per_type.sum(axis=0)
        totals = np.concatenate(
            [
                strict,
                self.scheme_counts.cpu().numpy().reshape(-1),
                *(per_type[self._label_index[label]] for label in seen),
                self.exact_match.cpu().numpy(),
            ]
        )
        # One row, the totals: the same formulas as evaluate(...).metrics(), by the same code.
        evaluation = SpanEvaluation(["totals"], seen, count_columns(seen), totals[None, :])
        return {
            k: torch.as_tensor(float(v), dtype=torch.float64)
            for k, v in evaluation.metrics_from_counts(totals).items()
        }
