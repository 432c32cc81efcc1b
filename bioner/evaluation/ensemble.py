"""An ensemble of taggers by vote: a span is kept where enough of the models predict it.

Several runs of one recipe (seeds) or of several encoders tag the same documents; a span, its
offsets and type, is kept when at least ``min_votes`` of the ``n`` models predict it exactly.
``majority`` is ``n // 2 + 1``: then no two kept spans overlap where every model predicts spans
that do not (a flat or CRF head), since two overlapping spans would need a model voting for both.
A kept span's score is the sum of its voters' scores over ``n``: agreement and confidence in one
number, for ``postprocess=threshold`` and the confidence section. ``bioner-eval
ckpt_path=[<run>,<run>,<run>]`` scores such an ensemble; ``bioner-predict model=[...]
tagger.min_votes=majority`` tags with one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bioner.data.document import Span

MAJORITY = "majority"


def votes_needed(min_votes: int | str, models: int) -> int:
    """The votes a span needs among ``models``: ``majority`` or a number from 1 to ``models``.

    Raises:
        ValueError: ``min_votes`` is neither.
    """
    if min_votes == MAJORITY:
        return models // 2 + 1
    if isinstance(min_votes, bool) or not isinstance(min_votes, int):
        raise ValueError(f"min_votes={min_votes!r}: majority, or a number of models")
    if not 1 <= min_votes <= models:
        raise ValueError(f"min_votes={min_votes}: from 1 to the number of models ({models})")
    return min_votes


def vote(members: Sequence[Sequence[Span]], min_votes: int) -> list[Span]:
    """The spans of one document that at least ``min_votes`` of ``members`` (each model's
    spans) predict, sorted; each scored by its voters' scores summed over ``len(members)``
    (``None`` where a voter has none), with the first normalisation id its voters give."""
    voters: dict[tuple[int, int, str], list[Span]] = {}
    for spans in members:
        for span in dict.fromkeys(spans):  # one vote per model and span
            voters.setdefault((span.start, span.end, span.label), []).append(span)
    out = []
    for (start, end, label), spans in voters.items():
        if len(spans) < min_votes:
            continue
        scores = [s.score for s in spans]
        score = None if None in scores else sum(scores) / len(members)
        ident = next((s.id for s in spans if s.id is not None), None)
        out.append(Span(start, end, label, score=score, id=ident))
    return sorted(out)
