"""Dictionary normalisation: map predicted spans to identifiers from a user's TSV file.

The file has one ``surface<TAB>identifier`` pair per line (UTF-8, blank lines allowed, no
header). A span's text is looked up exactly first, then by its normalised form
(:func:`normalize`: Unicode NFKC, case folded, every character that is not a letter or a digit
removed, so ``Non-steroidal anti inflammatory`` finds ``nonsteroidal anti-inflammatory``). A
surface listed with several identifiers maps to all of them, joined by ``|`` in file order
(PubTator's convention). A span found in neither way keeps no identifier.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bioner.data.document import Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import read_text, split_lines

_FORMAT = "each line must be surface<TAB>identifier, both non-empty"


def normalize(surface: str) -> str:
    """The normalised lookup key of ``surface`` (see the module docstring)."""
    folded = unicodedata.normalize("NFKC", surface).casefold()
    return "".join(c for c in folded if c.isalnum())


class DictionaryNormalizer:
    """Set ``id`` on spans whose text is in a dictionary (exact, then normalised match).

    Args:
        path: the TSV file (``surface<TAB>identifier`` per line).
        types: only spans of these entity types are looked up (``None``: every type), e.g.
            ``[Chemical]`` for a chemical vocabulary.

    Raises:
        CorpusFormatError: a line is not a pair of non-empty fields (the message names the line),
            or the file is empty or not UTF-8.
    """

    def __init__(self, path: str | Path, types: Sequence[str] | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise FileNotFoundError(
                f"dictionary {self.path} does not exist; set postprocess.dictionary.path to a "
                "TSV file of surface<TAB>identifier lines"
            )
        self.types = None if types is None else set(types)
        exact: dict[str, list[str]] = {}
        normalised: dict[str, list[str]] = {}
        for number, line in enumerate(split_lines(read_text(self.path)), start=1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise CorpusFormatError(
                    self.path, number, f"{len(fields)} tab-separated field(s): {line!r}", _FORMAT
                )
            surface, identifier = fields[0].strip(), fields[1].strip()
            for table, key in ((exact, surface), (normalised, normalize(surface))):
                ids = table.setdefault(key, [])
                if identifier not in ids:
                    ids.append(identifier)
        self._exact = {k: "|".join(v) for k, v in exact.items()}
        self._normalised = {k: "|".join(v) for k, v in normalised.items() if k}

    def __repr__(self) -> str:
        return f"DictionaryNormalizer(path={str(self.path)!r}, entries={len(self._exact)})"

    def lookup(self, surface: str) -> str | None:
        """The identifier(s) of ``surface``, or ``None``."""
        found = self._exact.get(surface)
        if found is None:
            found = self._normalised.get(normalize(surface))
        return found

    def __call__(self, text: str, spans: Sequence[Span]) -> list[Span]:
        out = []
        for span in spans:
            if self.types is None or span.label in self.types:
                span = replace(span, id=self.lookup(span.text(text)))
            out.append(span)
        return out
