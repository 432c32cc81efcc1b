"""Shorthand expansion: ``vs`` -> ``versus``, ``w/o`` -> ``without``.

The table is bioner's shipped list (``bioner/resources/shorthand_en.tsv``) plus, optionally, a
user TSV of ``shorthand<TAB>expansion`` lines (the user's entries win). Both are read when the
expander is built; the merged table is saved with the model, so ``bioner-predict`` expands
exactly as training did without the user's file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

from bioner.data.lexicon import read_pairs
from bioner.data.tokenize import word_ranges
from bioner.preprocess.base import Normaliser


def shipped_shorthand_path() -> Path:
    """The shorthand list shipped in ``bioner/resources/``."""
    return Path(str(files("bioner.resources").joinpath("shorthand_en.tsv")))


class ShorthandExpander(Normaliser):
    """Expand shorthand words (or runs of adjacent words such as ``w/o``).

    A lower-case shorthand matches itself and its capitalised form (``Pt``), and the expansion
    is then capitalised; an upper-case form (``HR``, hazard ratio, not hours) is left alone. A
    shorthand with capitals matches exactly.

    Args:
        path: a user TSV of ``shorthand<TAB>expansion`` lines (``#`` comments), or ``None``.
        shipped: also use bioner's shipped list.
    """

    kind = "shorthand"

    def __init__(self, path: str | Path | None = None, shipped: bool = True) -> None:
        self.path = None if path is None else str(path)
        self.shipped = shipped
        self.table: dict[str, str] = {}
        sources = ([shipped_shorthand_path()] if shipped else []) + (
            [Path(path)] if path is not None else []
        )
        for source in sources:
            for surface, expansion, _ in read_pairs(source):
                self.table[surface] = expansion
        self._index()

    def __repr__(self) -> str:
        return (
            f"ShorthandExpander(path={self.path!r}, shipped={self.shipped}, "
            f"{len(self.table)} entries)"
        )

    def _index(self) -> None:
        self._lower = {k.lower(): v for k, v in self.table.items() if k == k.lower()}
        self._exact = {k: v for k, v in self.table.items() if k != k.lower()}
        self.max_words = max((len(word_ranges(k)) for k in self.table), default=1)

    def replace(self, words: Sequence[str]) -> str | None:
        surface = "".join(words)
        if surface in self._exact:
            return self._exact[surface]
        lower = surface.lower()
        expansion = self._lower.get(lower)
        if expansion is None or surface not in (lower, lower[:1].upper() + lower[1:]):
            return None
        return expansion[:1].upper() + expansion[1:] if surface[:1].isupper() else expansion

    def params(self) -> dict[str, Any]:
        # The table travels in the state: a predicting machine need not have the user's file.
        return {"path": None, "shipped": False}

    def state_dict(self) -> dict[str, Any]:
        return {"table": dict(self.table)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if "table" in state:
            self.table = {str(k): str(v) for k, v in state["table"].items()}
            self._index()
