"""Predicted spans with scores and identifiers, and the post-processing step interface.

A post-processing step is any callable ``step(text, spans) -> spans`` over one document's text
and its predicted spans (:class:`PostProcessor`); steps run in the order they are given
(:func:`apply_steps`). ``conf/postprocess/`` holds one option per step; select several with
``postprocess=[abbreviations,overlaps]``.

Two repairs that one might expect here already happen while decoding
(:meth:`bioner.data.alignment.Alignment.decode`), so no step repeats them: an ``I-`` tag without
its ``B-`` starts an entity (conlleval's reading), and the windows of a long unit are joined
before tagging, each word read from the window where it has the most context, so an entity
crossing a window seam comes out as one span.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bioner.data.document import Span


@dataclass(frozen=True, slots=True)
class PredictedSpan:
    """A predicted entity: ``text == document_text[start:end]`` has type ``type``.

    Attributes:
        start: first character, an offset into the original input text.
        end: one past the last character.
        text: the covered text.
        type: the entity type.
        score: the model's confidence in the type (mean over the span's words), in ``[0, 1]``.
        id: a normalised identifier (set by dictionary normalisation), or ``None``.
    """

    start: int
    end: int
    text: str
    type: str
    score: float
    id: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end or len(self.text) != self.end - self.start:
            raise ValueError(
                f"predicted span ({self.start}, {self.end}, {self.text!r}) is empty or its text "
                "does not have the length of its offsets"
            )

    @classmethod
    def from_span(
        cls, span: Span, doc_text: str, score: float, id: str | None = None
    ) -> PredictedSpan:
        """The predicted span of ``span`` over ``doc_text``."""
        return cls(span.start, span.end, span.text(doc_text), span.label, score, id)

    def to_span(self) -> Span:
        """The plain :class:`~bioner.data.document.Span` (scores and ids dropped)."""
        return Span(self.start, self.end, self.type)

    def with_changes(self, **changes: Any) -> PredictedSpan:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record; ``id`` only when set."""
        record: dict[str, Any] = {
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "type": self.type,
            "score": round(self.score, 6),
        }
        if self.id is not None:
            record["id"] = self.id
        return record

    def overlaps(self, other: PredictedSpan) -> bool:
        """Whether the two spans share at least one character."""
        return self.start < other.end and other.start < self.end


class PostProcessor(Protocol):
    """One post-processing step over a document's predicted spans."""

    def __call__(self, text: str, spans: Sequence[PredictedSpan]) -> list[PredictedSpan]:
        """The new spans of the document whose text is ``text``."""
        ...


def apply_steps(
    steps: Iterable[PostProcessor], text: str, spans: Sequence[PredictedSpan]
) -> list[PredictedSpan]:
    """Run ``steps`` in order over one document; the result is sorted by offsets."""
    out = list(spans)
    for step in steps:
        out = step(text, out)
    return sorted(out, key=lambda s: (s.start, s.end, s.type))
