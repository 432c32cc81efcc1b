"""Character-level transforms: keyboard typos and case changes.

Both work word by word and never change which characters belong to an entity: a typo edits
characters inside one word (so an entity word keeps at least one character), a case change
rewrites one word.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bioner.augment.base import EditTransform, check_rate, word_infos
from bioner.augment.edits import Edit
from bioner.data.document import Document

TYPO_OPS = ("swap", "drop", "insert", "substitute")
CASE_MODES = ("lower", "upper", "title")

_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    """Keys next to each key on a QWERTY keyboard (same row, and the rows above and below)."""
    where = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    # Each row sits half a key right of the one above: "s" touches "w", "e" above, "z", "x" below.
    offsets = {-1: (0, 1), 0: (-1, 1), 1: (-1, 0)}
    out = {}
    for c, (r, i) in where.items():
        near = [
            other
            for other, (r2, i2) in where.items()
            if r2 - r in offsets and i2 - i in offsets[r2 - r]
        ]
        # Digits mistype as digits, letters as letters: a typo should not turn a word into two.
        out[c] = "".join(sorted(o for o in near if o.isdigit() == c.isdigit()))
    return out


NEIGHBOURS = _keyboard_neighbours()


def _near(c: str, rng: np.random.Generator) -> str:
    """A key next to ``c``, in ``c``'s case (``c`` must be in :data:`NEIGHBOURS`)."""
    options = NEIGHBOURS[c.lower()]
    x = options[rng.integers(len(options))]
    return x.upper() if c.isupper() else x


def typo_edit(
    text: str, start: int, end: int, rng: np.random.Generator, ops: Sequence[str] = TYPO_OPS
) -> Edit | None:
    """One keyboard typo inside the word ``text[start:end]``, or ``None`` if none applies.

    ``swap`` exchanges two adjacent different letters or digits, ``drop`` deletes one (only in a
    word of two or more characters, so a word never disappears), ``insert`` adds a neighbouring
    key after one, ``substitute`` replaces one by a neighbouring key. The edit always changes the
    word and stays inside it.
    """
    word = text[start:end]
    alnum = [i for i, c in enumerate(word) if c.isalnum()]
    keyed = [i for i in alnum if word[i].lower() in NEIGHBOURS]
    candidates = {
        "swap": [i for i in alnum if i + 1 < len(word) and word[i + 1].isalnum()
                 and word[i] != word[i + 1]],
        "drop": alnum if len(word) >= 2 else [],
        "insert": keyed,
        "substitute": keyed,
    }  # fmt: skip
    usable = [op for op in ops if candidates[op]]
    if not usable:
        return None
    op = usable[rng.integers(len(usable))]
    positions = candidates[op]
    i = positions[rng.integers(len(positions))]
    at = start + i
    if op == "swap":
        return Edit(at, at + 2, word[i + 1] + word[i])
    if op == "drop":
        return Edit(at, at + 1, "")
    if op == "insert":
        return Edit(at, at + 1, word[i] + _near(word[i], rng))
    return Edit(at, at + 1, _near(word[i], rng))


def check_typo_ops(ops: Sequence[str]) -> list[str]:
    """``ops`` as a list if it is a non-empty subset of :data:`TYPO_OPS`, else ``ValueError``."""
    ops = list(ops)
    unknown = [op for op in ops if op not in TYPO_OPS]
    if unknown or not ops:
        raise ValueError(f"typo ops must be a non-empty subset of {TYPO_OPS}, not {ops}")
    return ops


class Typos(EditTransform):
    """Keyboard typos (swap, drop, insert, substitute), at most one per word.

    Args:
        rate: probability that a word gets a typo, inside and outside entities alike.
        inside_rate: the probability for words inside entities (default: ``rate``).
        outside_rate: the probability for words outside entities (default: ``rate``).
        ops: the typo kinds to draw from (uniformly among those that apply to a word).
    """

    def __init__(
        self,
        rate: float = 0.1,
        inside_rate: float | None = None,
        outside_rate: float | None = None,
        ops: Sequence[str] = TYPO_OPS,
    ) -> None:
        self.rate = check_rate("rate", rate)
        self.inside_rate = check_rate("inside_rate", rate if inside_rate is None else inside_rate)
        self.outside_rate = check_rate(
            "outside_rate", rate if outside_rate is None else outside_rate
        )
        self.ops = check_typo_ops(ops)

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        words = word_infos(doc)
        # One draw per word whatever happens, so one word's outcome never shifts the others'.
        draws = rng.random(len(words))
        out = []
        for w, u in zip(words, draws):
            if u < (self.inside_rate if w.inside else self.outside_rate):
                edit = typo_edit(doc.text, w.start, w.end, rng, self.ops)
                if edit is not None:
                    out.append(edit)
        return out


def _recase(word: str, mode: str) -> str:
    if mode == "lower":
        return word.lower()
    if mode == "upper":
        return word.upper()
    return word[:1].upper() + word[1:].lower()


class Case(EditTransform):
    """Case changes of whole words: lower, upper or title case, inside and outside entities.

    Args:
        rate: probability that a word changes case; the new case is drawn uniformly among the
            ``modes`` that change the word (a word without letters is never chosen).
        modes: a non-empty subset of ``lower``, ``upper``, ``title``.
    """

    def __init__(self, rate: float = 0.1, modes: Sequence[str] = CASE_MODES) -> None:
        self.rate = check_rate("rate", rate)
        modes = list(modes)
        if not modes or any(m not in CASE_MODES for m in modes):
            raise ValueError(f"case modes must be a non-empty subset of {CASE_MODES}, not {modes}")
        self.modes = modes

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        words = word_infos(doc)
        draws = rng.random(len(words))
        out = []
        for w, u in zip(words, draws):
            if u >= self.rate:
                continue
            options = [new for new in (_recase(w.text, m) for m in self.modes) if new != w.text]
            if options:
                out.append(Edit(w.start, w.end, options[rng.integers(len(options))]))
        return out
