"""Spelling correction with SymSpell (``symspellpy``) over a lexicon that knows the corpus.

Why SymSpell: its symmetric-delete index finds every dictionary word within edit distance ``d``
of a word in a few dictionary look-ups, independent of the alphabet, where Norvig-style
checkers (``pyspellchecker``) generate every edit of the word and slow down sharply with word
length and distance; corpora have millions of words, and biomedical words are long. It ranks
candidates by (Damerau) distance, then frequency, deterministically, and ships a general English
frequency list (82,765 words).

Why a lexicon from the training text: general English does not know ``nephrogenic``,
``tacrolimus`` or ``hypokalemia`` and would "correct" them towards common words. Every word of
the training text is therefore a known word (never corrected) and a candidate that outranks
general English at the same distance. Only words known to neither are corrected, and only when

* they are alphabetic and at least ``min_length`` letters long (short words are mostly
  abbreviations), and lower case or capitalised (``BRCA``, ``mRNA``: symbols, left alone);
* a candidate lies within ``max_edit_distance`` (1 by default: one letter added, dropped,
  changed or two swapped) and differs from the word before its last ``keep_suffix`` letters:
  ``glial`` -> ``glia``, ``thiols`` -> ``thiol``, ``hypercalcemic`` -> ``hypercalcemia`` are
  inflections or derivations of known words, not misspellings.

The corrected word keeps the capital first letter of the original. The training lexicon is saved
with the model (``bioner.json``), so ``bioner-predict`` corrects as evaluation did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from importlib.resources import files
from typing import Any

from bioner.data.document import Document
from bioner.preprocess.base import Normaliser

# Training words rank above any general-English word at the same distance.
_TRAIN_BOOST = 10**12


class SpellingCorrector(Normaliser):
    """Correct misspelt words (see the module docstring for which and how).

    Args:
        max_edit_distance: largest edit distance of a correction.
        min_length: shortest word (in letters) that is corrected.
        english: also know (and suggest) the words of symspellpy's English frequency list.
        min_count: training words seen fewer times are not in the lexicon (a misspelling that
            occurs once in training would otherwise become "known").
        keep_suffix: a candidate that differs from the word only in the last this many
            letters is an inflection, not a correction; 0 accepts it.
    """

    kind = "spelling"

    def __init__(
        self,
        max_edit_distance: int = 1,
        min_length: int = 5,
        english: bool = True,
        min_count: int = 1,
        keep_suffix: int = 2,
    ) -> None:
        if max_edit_distance < 1 or min_length < 1 or min_count < 1 or keep_suffix < 0:
            raise ValueError(
                "preprocess.spelling: max_edit_distance, min_length and min_count must be >= 1, "
                "keep_suffix >= 0"
            )
        self.max_edit_distance = max_edit_distance
        self.min_length = min_length
        self.english = english
        self.min_count = min_count
        self.keep_suffix = keep_suffix
        self.lexicon: dict[str, int] = {}
        self._speller: Any = None
        self._cache: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return (
            f"SpellingCorrector(max_edit_distance={self.max_edit_distance}, "
            f"min_length={self.min_length}, english={self.english}, "
            f"{len(self.lexicon)} training words)"
        )

    def fit(self, docs: Sequence[Document]) -> None:
        counts: Counter[str] = Counter(
            w.lower() for doc in docs for s, e in doc.words if (w := doc.text[s:e]).isalpha()
        )
        self.lexicon = {w: n for w, n in sorted(counts.items()) if n >= self.min_count}
        self._speller = None
        self._cache.clear()

    def _build(self) -> Any:
        from symspellpy import SymSpell

        speller = SymSpell(max_dictionary_edit_distance=self.max_edit_distance)
        if self.english:
            path = files("symspellpy").joinpath("frequency_dictionary_en_82_765.txt")
            speller.load_dictionary(str(path), term_index=0, count_index=1, encoding="utf-8")
        for word, count in self.lexicon.items():
            speller.create_dictionary_entry(word, count + _TRAIN_BOOST)
        return speller

    def replace(self, words: Sequence[str]) -> str | None:
        (word,) = words
        if len(word) < self.min_length or not word.isalpha():
            return None
        if not (word.islower() or (word[0].isupper() and word[1:].islower())):
            return None
        lower = word.lower()
        if lower not in self._cache:
            self._cache[lower] = self._correct(lower)
        fixed = self._cache[lower]
        if fixed is None:
            return None
        return fixed[:1].upper() + fixed[1:] if word[0].isupper() else fixed

    def _correct(self, lower: str) -> str | None:
        from symspellpy import Verbosity

        if self._speller is None:
            self._speller = self._build()
        if lower in self.lexicon or lower in self._speller.words:
            return None
        found = self._speller.lookup(lower, Verbosity.TOP, max_edit_distance=self.max_edit_distance)
        if not found or found[0].distance == 0:
            return None
        term = found[0].term
        stem = max(min(len(term), len(lower)) - self.keep_suffix, 0)
        if self.keep_suffix and term[:stem] == lower[:stem]:
            return None  # an inflection of a known word
        return term

    def params(self) -> dict[str, Any]:
        return {
            "max_edit_distance": self.max_edit_distance,
            "min_length": self.min_length,
            "english": self.english,
            "min_count": self.min_count,
            "keep_suffix": self.keep_suffix,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"lexicon": dict(self.lexicon)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "lexicon" in state:
            self.lexicon = {str(k): int(v) for k, v in state["lexicon"].items()}
            self._speller = None
            self._cache.clear()
