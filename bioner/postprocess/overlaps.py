"""Overlap resolution: one span per stretch of text when several models or types claim it.

Running a chemical model and a disease model together (``model=[chem,disease]``) can give two
spans over the same words; CoNLL output and span-level scoring need at most one. Corpora with
nested gold spans (MedMentions) and the multi-label head want nesting kept: ``keep=nested``
keeps a span inside another and resolves only crossing spans and spans of one extent.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from bioner.data.document import Span

KEEP = ("score", "longest", "nested")


class OverlapResolver:
    """Keep a set of non-overlapping (or only nested) spans, preferring the highest score or the
    longest span.

    Spans are considered best first and kept when they overlap no span kept before. ``score``
    ranks by score, then length; ``longest`` by length, then score; remaining ties go to the
    earlier span, then to the type first in alphabetical order, so the result never depends on
    input order. ``nested`` ranks as ``score`` does but keeps a span that lies strictly inside a
    kept span or holds one: only a span that crosses a kept one (shares characters, neither
    holding the other) or has a kept span's very offsets is dropped.

    Args:
        keep: ``score``, ``longest`` or ``nested``.
    """

    def __init__(self, keep: str = "score") -> None:
        if keep not in KEEP:
            raise ValueError(f"keep={keep!r}: choose one of {', '.join(KEEP)}")
        self.keep = keep

    def __repr__(self) -> str:
        return f"OverlapResolver(keep={self.keep!r})"

    def __call__(self, text: str, spans: Sequence[Span]) -> list[Span]:
        def rank(s: Span) -> tuple:
            length = s.end - s.start
            first = (-length, -s.score) if self.keep == "longest" else (-s.score, -length)
            return (*first, s.start, s.label)

        if self.keep == "nested":
            kept_nested: list[Span] = []
            for span in sorted(spans, key=rank):
                if all(_nests_or_apart(span, k) for k in kept_nested):
                    kept_nested.append(span)
            return sorted(kept_nested)

        # Kept spans never overlap, so sorted by start they are sorted by end too: a new span can
        # only collide with its two neighbours.
        kept: list[Span] = []
        starts: list[int] = []
        for span in sorted(spans, key=rank):
            i = bisect_left(starts, span.start)
            left_clash = i > 0 and kept[i - 1].end > span.start
            if left_clash or (i < len(kept) and kept[i].start < span.end):
                continue
            kept.insert(i, span)
            starts.insert(i, span.start)
        return kept


def _nests_or_apart(a: Span, b: Span) -> bool:
    """Whether ``a`` and ``b`` share no character, or one lies inside the other (not both)."""
    if a.end <= b.start or b.end <= a.start:
        return True
    if (a.start, a.end) == (b.start, b.end):
        return False
    return (a.start <= b.start and b.end <= a.end) or (b.start <= a.start and a.end <= b.end)
