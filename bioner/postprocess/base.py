"""The post-processing step interface.

A post-processing step is any callable ``step(text, spans) -> spans`` over one document's text
and its predicted spans (:class:`PostProcessor`; the spans are
:class:`~bioner.data.document.Span`\\ s with a ``score``); steps run in the order they are given
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
from typing import Protocol

from bioner.data.document import Span


class PostProcessor(Protocol):
    """One post-processing step over a document's predicted spans."""

    def __call__(self, text: str, spans: Sequence[Span]) -> list[Span]:
        """The new spans of the document whose text is ``text``."""
        ...


def apply_steps(steps: Iterable[PostProcessor], text: str, spans: Sequence[Span]) -> list[Span]:
    """Run ``steps`` in order over one document; the result is sorted by offsets."""
    out = list(spans)
    for step in steps:
        out = step(text, out)
    return sorted(out)
