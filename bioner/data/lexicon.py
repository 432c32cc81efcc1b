"""Synonym lexicons from two-column TSV files.

File format: one pair per line, ``surface<TAB>other``, UTF-8 (a BOM and CRLF line ends are fine).
Blank lines and lines starting with ``#`` are ignored. ``other`` is read one of two ways
(``second_column``):

- ``synonym``: ``other`` is a synonym of ``surface``. Pairs are symmetric by default
  (``patients<TAB>subjects`` also lets ``subjects`` become ``patients``).
- ``concept``: ``other`` is a concept identifier (``MESH:D003920``, a UMLS CUI); every surface
  sharing an identifier is a synonym of the others, and identifiers are never used as text.

Lookups ignore case and collapse whitespace runs, so ``Heart  Attack`` finds ``heart attack``.
The general-English lexicon shipped with bioner (:func:`default_synonyms_path`) holds words
common in biomedical abstracts; pass your own file for anything domain-specific.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from pathlib import Path

from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import read_text, split_lines
from bioner.data.tokenize import word_ranges

SECOND_COLUMNS = ("synonym", "concept")


def normalize(surface: str) -> str:
    """The lookup key of a surface: lower case, whitespace runs collapsed to one space."""
    return " ".join(surface.lower().split())


def default_synonyms_path() -> Path:
    """The general-English synonym lexicon shipped in ``bioner/resources/``."""
    return Path(str(files("bioner.resources").joinpath("synonyms_en.tsv")))


def read_pairs(path: str | Path) -> list[tuple[str, str, int]]:
    """The ``(surface, other, line number)`` pairs of a lexicon TSV.

    Raises:
        CorpusFormatError: the file is empty or unreadable, or a line does not hold exactly two
            non-empty tab-separated fields, or a surface maps to itself (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"lexicon file {path} not found")
    pairs = []
    fix = "write one pair per line as surface<TAB>synonym (or concept id); '#' starts a comment"
    for number, line in enumerate(split_lines(read_text(path)), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise CorpusFormatError(
                path, number, f"expected 2 tab-separated fields, found {len(fields)}: {line!r}", fix
            )
        surface, other = (f.strip() for f in fields)
        if not surface or not other:
            raise CorpusFormatError(path, number, f"empty field in {line!r}", fix)
        if normalize(surface) == normalize(other):
            raise CorpusFormatError(
                path, number, f"{surface!r} is listed as its own synonym", "remove the line"
            )
        pairs.append((surface, other, number))
    if not pairs:
        raise CorpusFormatError(path, None, "the lexicon holds no pairs", fix)
    return pairs


class Lexicon:
    """Surfaces and their synonyms, looked up case-insensitively.

    Args:
        synonyms: surface -> synonyms (keys are normalised with :func:`normalize`; a synonym
            equal to its surface is ignored).
        source: where the entries come from (a file name), for messages and ``repr``.
    """

    def __init__(self, synonyms: Mapping[str, Iterable[str]], source: str = "") -> None:
        self.source = source
        table: dict[str, list[str]] = {}
        for surface, others in synonyms.items():
            key = normalize(surface)
            entry = table.setdefault(key, [])
            for other in others:
                if normalize(other) != key and other not in entry:
                    entry.append(other)
        self._table = {k: v for k, v in table.items() if v}
        # Longest surface in words, so that multi-word entries can be matched in running text.
        self.max_words = max((len(word_ranges(k)) for k in self._table), default=0)

    @classmethod
    def from_tsv(
        cls, path: str | Path, second_column: str = "synonym", symmetric: bool = True
    ) -> Lexicon:
        """Read a lexicon file (format in the module docstring).

        Args:
            path: the TSV file.
            second_column: ``synonym`` or ``concept``.
            symmetric: for ``synonym`` files, whether each pair also works right to left.
        """
        if second_column not in SECOND_COLUMNS:
            raise ValueError(
                f"second_column must be one of {', '.join(SECOND_COLUMNS)}, not {second_column!r}"
            )
        pairs = read_pairs(path)
        table: dict[str, list[str]] = {}
        if second_column == "synonym":
            for surface, other, _ in pairs:
                table.setdefault(surface, []).append(other)
                if symmetric:
                    table.setdefault(other, []).append(surface)
        else:
            concepts: dict[str, list[str]] = {}
            for surface, concept, _ in pairs:
                concepts.setdefault(concept, []).append(surface)
            for members in concepts.values():
                for surface in members:
                    table.setdefault(surface, []).extend(members)
        return cls(table, str(path))

    @classmethod
    def default(cls) -> Lexicon:
        """The general-English lexicon shipped with bioner (symmetric synonyms)."""
        return cls.from_tsv(default_synonyms_path())

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"Lexicon({self.source or 'in memory'!r}, {len(self)} surfaces)"

    def __contains__(self, surface: str) -> bool:
        return normalize(surface) in self._table

    def lookup(self, surface: str) -> Sequence[str]:
        """Synonyms of ``surface`` (never ``surface`` itself); empty when it is not listed."""
        return self._table.get(normalize(surface), ())


def as_lexicon(lexicon: Lexicon | str | Path | None) -> Lexicon | None:
    """A :class:`Lexicon`, reading a path (synonym pairs, symmetric) when given one."""
    if lexicon is None or isinstance(lexicon, Lexicon):
        return lexicon
    return Lexicon.from_tsv(lexicon)
