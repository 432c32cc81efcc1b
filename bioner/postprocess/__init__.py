"""Post-processing of predicted spans: overlaps, abbreviations, dictionary normalisation, a
score threshold.

Each step is a callable ``step(text, spans) -> spans`` (:class:`PostProcessor`); the
``postprocess`` config group (``conf/postprocess/``) holds one named entry per step, and
:func:`build_postprocessors` turns the selected entries into the list that
:class:`bioner.inference.Tagger` applies in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bioner.postprocess.abbreviations import AbbreviationResolver, find_abbreviations
from bioner.postprocess.base import PostProcessor, apply_steps
from bioner.postprocess.dictionary import DictionaryNormalizer, normalize
from bioner.postprocess.overlaps import OverlapResolver
from bioner.postprocess.threshold import ScoreThreshold


def build_postprocessors(group: Mapping[str, Any] | None) -> list[PostProcessor]:
    """The steps of a ``postprocess`` config node, in its order; entries set to null are off.

    Raises:
        ConfigError: an entry is neither null nor a ``_target_`` node, or a step refuses a value.
    """
    from bioner.config import instantiate_entries

    return instantiate_entries(group, "postprocess")


__all__ = [
    "AbbreviationResolver",
    "DictionaryNormalizer",
    "OverlapResolver",
    "PostProcessor",
    "ScoreThreshold",
    "apply_steps",
    "build_postprocessors",
    "find_abbreviations",
    "normalize",
]
