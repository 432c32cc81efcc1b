"""Label-preserving text transforms for training augmentation and robustness scoring.

Every transform edits a :class:`~bioner.data.document.Document` and keeps its gold spans exact
(:mod:`bioner.augment.edits`); it is seeded by the NumPy generator passed to it.

Usage, for any valid ``doc``::

    result = Typos(rate=0.2)(doc, np.random.default_rng(0))
    result.document          # the new Document, validated
    result.span_pairs()      # (old span, new span) for every gold span, in order
    perturb(docs, Typos(0.2), seed=(42, epoch))   # one generator per document
"""

from bioner.augment.base import EditTransform, Mix, Transform, WordInfo, chain, perturb, word_infos
from bioner.augment.character import Case, Typos, typo_edit
from bioner.augment.edits import Edit, EditError, EditResult, apply_edits
from bioner.augment.markup import from_marked, mark
from bioner.augment.replacement import (
    Abbreviate,
    MentionReplacement,
    Synonym,
    TokenReplacement,
    abbreviation_table,
    mention_pool,
)
from bioner.augment.structure import EntityShuffle, Noise, SegmentShuffle, Shuffle
from bioner.augment.translation import (
    BackTranslation,
    LexiconTranslator,
    MarianTranslator,
    TranslationModelNotFoundError,
    Translator,
)
from bioner.data.lexicon import Lexicon, default_synonyms_path, read_pairs

__all__ = [
    "Abbreviate",
    "BackTranslation",
    "Case",
    "Edit",
    "EditError",
    "EditResult",
    "EditTransform",
    "EntityShuffle",
    "Lexicon",
    "LexiconTranslator",
    "MarianTranslator",
    "MentionReplacement",
    "Mix",
    "Noise",
    "SegmentShuffle",
    "Shuffle",
    "Synonym",
    "TokenReplacement",
    "Transform",
    "TranslationModelNotFoundError",
    "Translator",
    "Typos",
    "WordInfo",
    "abbreviation_table",
    "apply_edits",
    "chain",
    "default_synonyms_path",
    "from_marked",
    "mark",
    "mention_pool",
    "perturb",
    "read_pairs",
    "typo_edit",
    "word_infos",
]
