"""Overlap resolution: one span per stretch of text when several models or types claim it.

Running a chemical model and a disease model together (``model=[chem,disease]``) can give two
spans over the same words; CoNLL output and span-level scoring need at most one.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from bioner.postprocess.base import PredictedSpan

KEEP = ("score", "longest")


class OverlapResolver:
    """Keep a set of non-overlapping spans, preferring the highest score or the longest span.

    Spans are considered best first and kept when they overlap no span kept before. ``score``
    ranks by score, then length; ``longest`` by length, then score; remaining ties go to the
    earlier span, then to the type first in alphabetical order, so the result never depends on
    input order.

    Args:
        keep: ``score`` or ``longest``.
    """

    def __init__(self, keep: str = "score") -> None:
        if keep not in KEEP:
            raise ValueError(f"overlaps keep={keep!r}: choose one of {', '.join(KEEP)}")
        self.keep = keep

    def __repr__(self) -> str:
        return f"OverlapResolver(keep={self.keep!r})"

    def __call__(self, text: str, spans: Sequence[PredictedSpan]) -> list[PredictedSpan]:
        def rank(s: PredictedSpan) -> tuple:
            length = s.end - s.start
            first = (-s.score, -length) if self.keep == "score" else (-length, -s.score)
            return (*first, s.start, s.type)

        # Kept spans never overlap, so sorted by start they are sorted by end too: a new span can
        # only collide with its two neighbours.
        kept: list[PredictedSpan] = []
        starts: list[int] = []
        for span in sorted(spans, key=rank):
            i = bisect_left(starts, span.start)
            left_clash = i > 0 and kept[i - 1].end > span.start
            if left_clash or (i < len(kept) and kept[i].start < span.end):
                continue
            kept.insert(i, span)
            starts.insert(i, span.start)
        return kept
