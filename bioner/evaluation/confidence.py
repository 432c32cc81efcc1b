"""How far a predicted span's score can be trusted: calibration and the precision–recall trade-off.

Every decoded span carries the model's confidence in it (``Span.score``: the probability of its
type, averaged over its words; the CRF's marginal for ``module.head=crf``). Two questions a user
of the scores asks, answered on the scored split:

* **Is the score calibrated?** Of the spans scored about 0.8, are about 80% right? Spans are put
  in ten equal-width bins of score; a bin's *precision* is the share of its spans that are right
  (strict: a gold span has the same offsets and type), and the expected calibration error
  ``ECE = sum_b (n_b / N) |precision_b - mean score_b|`` (Guo et al. 2017, over spans rather than
  classes) is 0 for a calibrated model. The reliability diagram plots the bins.
* **What does a threshold buy?** Dropping the spans scored below ``min_score``
  (``postprocess=threshold``) trades recall for precision. The curve runs over every distinct
  score; ``average_precision`` is the area under it, as the step-wise sum over thresholds of
  ``(R_k - R_{k-1}) P_k``. Recall counts every gold mention, so it ends where the decoder's own
  recall ends, not at 1. ``best`` is the ``min_score`` on a grid of 0.01 steps with the highest
  F1 (the lowest such value where several tie): choose it on devel, apply it to test.

Predictions that a document's corpus cannot judge (``dataset=multi``, :func:`judged`) are left out,
as the span scores leave them out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bioner.data.document import Document, Span
from bioner.evaluation.metrics import validate_predictions

BINS = 10
# The min_score values that `best` tries: 0.00, 0.01, ..., 0.99.
GRID = np.round(np.arange(0, 100) / 100, 2)


@dataclass(frozen=True)
class SpanConfidence:
    """The scores of a split's predicted spans, and which of them are right.

    Attributes:
        scores: each predicted span's score.
        correct: whether it matches a gold span exactly (offsets and type).
        gold: the number of gold spans.
    """

    scores: np.ndarray
    correct: np.ndarray
    gold: int

    @classmethod
    def of(cls, docs: Sequence[Document], preds: Sequence[Sequence[Span]]) -> SpanConfidence | None:
        """The confidence of ``preds`` against ``docs``; ``None`` when a span has no score
        (spans read from a file written without them)."""
        scores: list[float] = []
        correct: list[bool] = []
        gold = 0
        for doc, spans in zip(docs, validate_predictions(docs, preds)):
            left = Counter((s.start, s.end, s.label) for s in doc.spans)
            gold += len(doc.spans)
            for span in spans:
                if span.score is None:
                    return None
                key = (span.start, span.end, span.label)
                scores.append(float(span.score))
                correct.append(left[key] > 0)
                left[key] -= 1
        return cls(np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool), gold)

    def _bins(self) -> np.ndarray:
        return np.minimum((self.scores * BINS).astype(int), BINS - 1)

    def reliability(self) -> list[dict[str, Any]]:
        """The non-empty bins of score: ``{low, high, spans, mean_score, precision}``."""
        which = self._bins()
        out = []
        for b in range(BINS):
            inside = which == b
            n = int(inside.sum())
            if n:
                out.append(
                    {
                        "low": b / BINS,
                        "high": (b + 1) / BINS,
                        "spans": n,
                        "mean_score": float(self.scores[inside].mean()),
                        "precision": float(self.correct[inside].mean()),
                    }
                )
        return out

    def ece(self) -> float:
        """Expected calibration error over the bins of :meth:`reliability` (0 without spans)."""
        n = len(self.scores)
        if not n:
            return 0.0
        return float(
            sum(b["spans"] / n * abs(b["precision"] - b["mean_score"]) for b in self.reliability())
        )

    def curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Precision and recall of the spans scored at least each distinct score (thresholds
        descending): ``(thresholds, precision, recall)``."""
        if not len(self.scores):
            return np.zeros(0), np.zeros(0), np.zeros(0)
        order = np.argsort(-self.scores, kind="stable")
        ranked, right = self.scores[order], self.correct[order]
        last = np.r_[ranked[1:] != ranked[:-1], True]  # the last span of each run of one score
        tp = np.cumsum(right)[last]
        kept = np.arange(1, len(ranked) + 1)[last]
        recall = tp / self.gold if self.gold else np.zeros(len(tp))
        return ranked[last], tp / kept, recall

    def average_precision(self) -> float:
        """The area under the precision–recall curve (step-wise; 0 without gold or spans)."""
        _, precision, recall = self.curve()
        return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))

    def at(self, min_score: float) -> dict[str, float | int]:
        """Precision, recall and F1 of the spans scored at least ``min_score``."""
        keep = self.scores >= min_score
        tp, kept = int(self.correct[keep].sum()), int(keep.sum())
        precision = tp / kept if kept else 0.0
        recall = tp / self.gold if self.gold else 0.0
        f1 = 2 * tp / (kept + self.gold) if kept + self.gold else 0.0
        return {
            "min_score": float(min_score),
            "spans": kept,
            "precision": precision,
            "recall": recall,
            "f1": f1,
        }

    def best(self) -> dict[str, float | int]:
        """:meth:`at` the ``min_score`` of :data:`GRID` with the highest F1 (the lowest of ties)."""
        points = [self.at(g) for g in GRID]
        return max(points, key=lambda p: (p["f1"], -p["min_score"]))

    def to_dict(self) -> dict[str, Any]:
        """The ``confidence`` section of a split in ``metrics.json``."""
        return {
            "spans": len(self.scores),
            "gold": self.gold,
            "ece": self.ece(),
            "average_precision": self.average_precision(),
            "every_span": self.at(0.0),
            "best": self.best(),
            "reliability": self.reliability(),
        }

    def plot(self, path: str | Path, title: str = "") -> Path:
        """Write the reliability diagram and the precision–recall curve to a PNG file."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig = Figure(figsize=(9, 4), layout="constrained")
        FigureCanvasAgg(fig)
        left, right = fig.subplots(1, 2)
        bins = self.reliability()
        left.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
        left.bar(
            [b["low"] for b in bins],
            [b["precision"] for b in bins],
            width=1 / BINS,
            align="edge",
            edgecolor="black",
            alpha=0.7,
        )
        left.plot([b["mean_score"] for b in bins], [b["precision"] for b in bins], "o", color="k")
        left.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="span score",
            ylabel="share of spans that are right",
            title=f"reliability (ECE {self.ece():.3f})",
        )
        _, precision, recall = self.curve()
        right.plot(recall, precision, drawstyle="steps-post")
        best, every = self.best(), self.at(0.0)
        right.plot(every["recall"], every["precision"], "s", color="grey", label="every span")
        right.plot(
            best["recall"],
            best["precision"],
            "o",
            color="C3",
            label=f"min_score {best['min_score']:.2f}: F1 {best['f1']:.3f}",
        )
        right.set(
            xlim=(0, 1),
            ylim=(0, 1.02),
            xlabel="recall",
            ylabel="precision",
            title=f"spans above a score (AP {self.average_precision():.3f})",
        )
        right.legend(loc="lower left")
        if title:
            fig.suptitle(title)
        fig.savefig(path, dpi=100)
        return path
