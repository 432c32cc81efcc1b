"""Text normalisation before tagging (the ``preprocess`` config group), with an exact offset map
back to the original text: see :mod:`bioner.preprocess.base`.

Training, ``bioner-eval`` and ``bioner-predict`` apply the same steps: training fits them on the
training documents and saves them with the checkpoint's config and in the exported model's
``bioner.json``; evaluation and prediction rewrite the text, tag it, and map every span back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioner.preprocess.base import Edit, Normaliser, OffsetMap, Preprocessor
from bioner.preprocess.shorthand import ShorthandExpander
from bioner.preprocess.spelling import SpellingCorrector

# Export records name a kind, never a class path: a model folder is data.
KINDS: dict[str, type[Normaliser]] = {
    ShorthandExpander.kind: ShorthandExpander,
    SpellingCorrector.kind: SpellingCorrector,
}


def build_preprocessor(group: Mapping[str, Any] | None) -> Preprocessor | None:
    """The steps of a ``preprocess`` config node, in its order (entries set to null are off);
    ``None`` when there are none."""
    from bioner.config import instantiate_entries

    steps = instantiate_entries(group, "preprocess")
    return Preprocessor(steps) if steps else None


__all__ = [
    "KINDS",
    "Edit",
    "Normaliser",
    "OffsetMap",
    "Preprocessor",
    "ShorthandExpander",
    "SpellingCorrector",
    "build_preprocessor",
]
