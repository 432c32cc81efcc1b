"""Entity confusion matrix on character spans, with boundary errors counted apart.

Every gold span and every predicted span is counted exactly once, in one of six outcomes. Per
document, spans are paired one to one in two rounds:

1. Same-type pairs, matched as the ``overlap`` scheme of :mod:`bioner.evaluation.metrics` does
   (a maximum matching, with the most identical pairs among those). An identical pair is
   **correct** (diagonal of :attr:`ConfusionMatrix.exact`); otherwise it is a **boundary error**
   (diagonal of :attr:`ConfusionMatrix.boundary`).
2. The spans left over, paired the same way whatever their types (which now always differ). An
   identical span with another type is a **type error**, an off-diagonal cell of
   :attr:`ConfusionMatrix.exact`; an overlapping span with another type and other boundaries is a
   **type and boundary error**, an off-diagonal cell of :attr:`ConfusionMatrix.boundary`.

Gold spans still unpaired are **missed** (column ``none`` of ``exact``); predictions still
unpaired are **spurious** (row ``none`` of ``exact``). Rows are gold types, columns predicted
types. Hence the diagonal of ``exact`` sums to the strict true positives, the two diagonals
together to the ``overlap`` true positives, the row of type ``T`` over both matrices to the gold
spans of ``T``, and its column to the predictions of ``T``. Round 1 comes first: a gold span
overlapped both by a same-type prediction with other boundaries and by an identical prediction
of another type is a boundary error, and the other prediction is spurious.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bioner.data.document import Document, Span
from bioner.evaluation.metrics import match_spans, types_of, validate_predictions

NONE = "none"


@dataclass
class ConfusionMatrix:
    """Counts of gold type (rows) against predicted type (columns); see the module docstring.

    Attributes:
        labels: the entity types, sorted, then ``"none"``; row and column order of both matrices.
        exact: identical-span pairs (diagonal correct, off-diagonal type errors), plus missed gold
            spans in column ``none`` and spurious predictions in row ``none``.
        boundary: overlapping pairs with different boundaries (diagonal boundary errors,
            off-diagonal type and boundary errors); its ``none`` row and column are 0.
    """

    labels: list[str]
    exact: np.ndarray
    boundary: np.ndarray

    def summary(self) -> dict[str, int]:
        """Totals of the six outcomes."""
        n = len(self.labels) - 1  # the entity types; index n is "none"
        types = slice(0, n)
        exact_types = self.exact[types, types]
        boundary_types = self.boundary[types, types]
        return {
            "correct": int(np.trace(exact_types)),
            "type_errors": int(exact_types.sum() - np.trace(exact_types)),
            "boundary_errors": int(np.trace(boundary_types)),
            "type_and_boundary_errors": int(boundary_types.sum() - np.trace(boundary_types)),
            "missed": int(self.exact[types, n].sum()),
            "spurious": int(self.exact[n, types].sum()),
        }

    def to_dict(self) -> dict:
        """``{"labels", "exact": {gold: {pred: n}}, "boundary": {...}, "summary": {...}}``."""

        def nested(matrix: np.ndarray) -> dict[str, dict[str, int]]:
            return {
                g: {p: int(matrix[i, j]) for j, p in enumerate(self.labels)}
                for i, g in enumerate(self.labels)
            }

        return {
            "labels": list(self.labels),
            "exact": nested(self.exact),
            "boundary": nested(self.boundary),
            "summary": self.summary(),
        }

    def to_markdown(self) -> str:
        """Both matrices as Markdown tables, then the outcome totals."""

        def table(title: str, matrix: np.ndarray, labels: list[str]) -> list[str]:
            lines = [
                f"**{title}**",
                "",
                "| gold \\ predicted | " + " | ".join(labels) + " |",
                "|---|" + "---:|" * len(labels),
            ]
            for i, g in enumerate(labels):
                lines.append(f"| {g} | " + " | ".join(str(int(v)) for v in matrix[i]) + " |")
            return lines

        n = len(self.labels) - 1  # the boundary matrix has no "none" counts: leave them out
        title = "Identical spans (diagonal correct; none = missed / spurious)"
        lines = table(title, self.exact, self.labels)
        lines += [""]
        title = "Overlapping spans, different boundaries (diagonal boundary errors)"
        lines += table(title, self.boundary[:n, :n], self.labels[:n])
        lines += ["", ", ".join(f"{k}: {v}" for k, v in self.summary().items())]
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Write both matrices as annotated heatmaps to a PNG file and return its path.

        The colour is ``log(1 + count)`` so that small error cells stay visible next to a large
        diagonal; the printed numbers are the counts.
        """
        # Imported here so that scoring never pays for (or depends on) matplotlib, and drawn on
        # an Agg canvas directly so that the user's pyplot backend is left untouched.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 2.5 + 0.6 * len(self.labels)
        fig = Figure(figsize=(2 * size + 1, size), layout="constrained")
        FigureCanvasAgg(fig)
        n = len(self.labels) - 1
        panels = (
            ("identical spans", self.exact, self.labels),
            ("overlapping, different boundaries", self.boundary[:n, :n], self.labels[:n]),
        )
        vmax = np.log1p(max(int(self.exact.max(initial=0)), int(self.boundary.max(initial=0)), 1))
        for ax, (title, matrix, labels) in zip(fig.subplots(1, 2), panels):
            shade = np.log1p(matrix)
            ax.imshow(shade, cmap="Blues", vmin=0, vmax=vmax)
            for i in range(len(labels)):
                for j in range(len(labels)):
                    dark = shade[i, j] > 0.6 * vmax
                    ax.text(
                        j,
                        i,
                        str(int(matrix[i, j])),
                        ha="center",
                        va="center",
                        color="white" if dark else "black",
                        fontsize=8,
                    )
            ticks = range(len(labels))
            ax.set_xticks(ticks, labels, rotation=45, ha="right")
            ax.set_yticks(ticks, labels)
            ax.set_xlabel("predicted")
            ax.set_ylabel("gold")
            ax.set_title(title)
        fig.savefig(path, format="png", dpi=100)
        return path


def paired_spans(doc: Document, pred: Sequence[Span]) -> list[tuple[Span | None, Span | None]]:
    """Every gold span of ``doc`` and every span of ``pred`` (sorted, judged), paired in the two
    rounds of the module docstring: ``(gold, predicted)`` pairs, ``(gold, None)`` for the missed
    and ``(None, predicted)`` for the spurious, in text order."""
    g = sorted(doc.spans)
    left_gold, left_pred = set(range(len(g))), set(range(len(pred)))
    pairs: list[tuple[Span | None, Span | None]] = []
    for same_type in (True, False):
        sub_g = sorted(left_gold)
        sub_p = sorted(left_pred)
        for a, b in match_spans([g[i] for i in sub_g], [pred[j] for j in sub_p], same_type):
            pairs.append((g[sub_g[a]], pred[sub_p[b]]))
            left_gold.discard(sub_g[a])
            left_pred.discard(sub_p[b])
    pairs += [(g[i], None) for i in left_gold] + [(None, pred[j]) for j in left_pred]

    def position(pair: tuple[Span | None, Span | None]) -> tuple[int, int, int]:
        first = pair[0] or pair[1]
        assert first is not None
        return (first.start, first.end, 0 if pair[0] else 1)

    return sorted(pairs, key=position)


def outcome(gold: Span | None, pred: Span | None) -> str:
    """The outcome of a pair of :func:`paired_spans`: ``correct``, ``type_error``,
    ``boundary_error``, ``type_and_boundary_error``, ``missed`` or ``spurious``."""
    if pred is None:
        return "missed"
    if gold is None:
        return "spurious"
    same_type = gold.label == pred.label
    if (gold.start, gold.end) == (pred.start, pred.end):
        return "correct" if same_type else "type_error"
    return "boundary_error" if same_type else "type_and_boundary_error"


def confusion_matrix(gold: Sequence[Document], pred: Sequence[Sequence[Span]]) -> ConfusionMatrix:
    """Tally every gold and predicted span into the outcomes of the module docstring.

    Args:
        gold: the gold documents.
        pred: ``pred[i]`` are the spans predicted for ``gold[i]``.

    Raises:
        ValueError: as :func:`bioner.evaluation.evaluate`, or an entity type is named ``none``.
    """
    preds = validate_predictions(gold, pred)
    types = types_of(gold, preds)
    if NONE in types:
        raise ValueError(f"an entity type is named {NONE!r}, which the matrix uses for 'no span'")
    labels = [*types, NONE]
    index = {label: i for i, label in enumerate(labels)}
    exact = np.zeros((len(labels), len(labels)), dtype=np.int64)
    boundary = np.zeros_like(exact)
    for doc, p in zip(gold, preds):
        for gs, ps in paired_spans(doc, p):
            kind = outcome(gs, ps)
            target = boundary if kind.startswith(("boundary", "type_and")) else exact
            row = index[gs.label] if gs is not None else index[NONE]
            column = index[ps.label] if ps is not None else index[NONE]
            target[row, column] += 1
    return ConfusionMatrix(labels, exact, boundary)


ERROR_COLUMNS = [
    "document",
    "outcome",
    "gold_type",
    "gold_start",
    "gold_end",
    "gold_text",
    "predicted_type",
    "predicted_start",
    "predicted_end",
    "predicted_text",
    "score",
    "context",
]


def error_rows(gold: Sequence[Document], pred: Sequence[Sequence[Span]]) -> list[dict[str, Any]]:
    """One row per error of ``pred`` against ``gold`` (every outcome but ``correct``), in
    document and text order, with the columns of :data:`ERROR_COLUMNS`: the gold and predicted
    span (empty where there is none), the prediction's score, and the sentence around them with
    the gold span in ``[[...]]`` and the predicted one in ``{{...}}``. Predictions a document's
    corpus cannot judge (``dataset=multi``) are not errors and are left out."""
    rows = []
    for doc, p in zip(gold, validate_predictions(gold, pred)):
        for gs, ps in paired_spans(doc, p):
            kind = outcome(gs, ps)
            if kind == "correct":
                continue
            row: dict[str, Any] = {"document": doc.id, "outcome": kind}
            for prefix, span in (("gold", gs), ("predicted", ps)):
                row[f"{prefix}_type"] = span.label if span else ""
                row[f"{prefix}_start"] = span.start if span else ""
                row[f"{prefix}_end"] = span.end if span else ""
                row[f"{prefix}_text"] = span.text(doc.text) if span else ""
            row["score"] = "" if ps is None or ps.score is None else round(ps.score, 4)
            row["context"] = _context(doc, gs, ps)
            rows.append(row)
    return rows


def _context(doc: Document, gold: Span | None, pred: Span | None) -> str:
    """The sentence(s) holding the pair, on one line, with the spans marked."""
    spans = [s for s in (gold, pred) if s is not None]
    lo, hi = min(s.start for s in spans), max(s.end for s in spans)
    start = max((a for a, b in doc.sentences if a <= lo), default=0)
    end = min((b for a, b in doc.sentences if b >= hi), default=len(doc.text))
    # (offset, order at one offset, mark): at one offset spans close before others open, and
    # the gold span holds the predicted one where both start or end there.
    marks: list[tuple[int, int, str]] = []
    if gold is not None:
        marks += [(gold.start, 2, "[["), (gold.end, 1, "]]")]
    if pred is not None:
        marks += [(pred.start, 3, "{{"), (pred.end, 0, "}}")]
    out, at = [], start
    for offset, _, mark in sorted(marks):
        out += [doc.text[at:offset], mark]
        at = offset
    out.append(doc.text[at:end])
    return " ".join("".join(out).split())


def write_errors(
    path: str | Path, gold: Sequence[Document], pred: Sequence[Sequence[Span]]
) -> Path:
    """Write :func:`error_rows` as a tab-separated file with a header line; return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write("\t".join(ERROR_COLUMNS) + "\n")
        for row in error_rows(gold, pred):
            cells = (" ".join(str(row[c]).split()) for c in ERROR_COLUMNS)
            f.write("\t".join(cells) + "\n")
    return path
