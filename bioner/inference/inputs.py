"""Reading raw text for prediction, one document at a time (streaming: nothing is read ahead).

Input formats (``input_format``):

* ``lines``: plain text, one document per line; the line without its ``\\n`` or ``\\r\\n`` is the
  document (ids ``1``, ``2``, ... are line numbers). Empty lines are documents too, so output
  record ``i`` always belongs to input line ``i``.
* ``text``: the whole input is one document, line breaks included (id: the file name's stem,
  ``stdin`` for ``-``).
* ``folder``: every ``*.txt`` file under a folder (sorted, recursively) is one document, its id
  the relative path without ``.txt``.
* ``jsonl``: one JSON object per line with ``text`` and ``id`` (a missing id becomes the line
  number); blank lines are skipped.
* ``pubtator``: ``PMID|t|title`` and ``PMID|a|abstract`` lines; the document is
  ``title + " " + abstract`` as in the PubTator corpora (just the title when the abstract is
  empty), with a sentence boundary forced after the title. Annotation lines are ignored.
* ``pubmed``: PubMed/MEDLINE XML (``.xml``, ``.xml.gz``; a file or a folder of them), one
  document per citation, laid out as ``pubtator`` is (:mod:`bioner.inference.pubmed`). A broken
  file is logged and counted, and the run goes on with the next one.

``auto`` picks ``folder`` for a folder (``pubmed`` for a folder of ``.xml``/``.xml.gz`` files
and no ``.txt``), ``jsonl`` for ``.jsonl``/``.json``, ``pubmed`` for ``.xml``/``.xml.gz``,
``pubtator`` for ``.pubtator``/``.PubTator`` names (and files whose first line is a PubTator
title line), and ``lines`` otherwise. ``-`` reads standard input.

Text is UTF-8; a byte-order mark at the start of a file is not text and is skipped. Nothing else
is changed: offsets index the text exactly as read, tabs, ``\\r`` inside a line, and any Unicode
included. Bad input raises :class:`~bioner.data.errors.CorpusFormatError` naming file and line.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bioner.data.errors import CorpusFormatError
from bioner.errors import ConfigError
from bioner.utils.files import visible_files

INPUT_FORMATS = ("auto", "lines", "text", "folder", "jsonl", "pubtator", "pubmed")
_PUBTATOR_HEADER = re.compile(r"([^\t|]+)\|([ta])\|(.*)\Z", re.DOTALL)
_BOM = "\ufeff"
#: Names read as PubMed XML (by ``auto``, and in a folder given with ``pubmed``).
PUBMED_SUFFIXES = (".xml", ".xml.gz")


@dataclass(slots=True)
class TextRecord:
    """One input document.

    Attributes:
        id: the document id.
        text: the text; predicted offsets index it.
        meta: extras for writers (``title_end`` for PubTator input: where the title ends).
        forced: offsets where a sentence boundary must be made (the title/abstract seam).
    """

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)
    forced: list[int] = field(default_factory=list)


@contextmanager
def _binary(source: str | Path) -> Iterator[IO[bytes]]:
    if str(source) == "-":
        yield sys.stdin.buffer
    else:
        with open(source, "rb") as f:
            yield f


def _lines(source: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` with the line break removed, split at ``\\n`` only.

    Bytes are split before decoding, so a bad byte is reported with its line, and characters
    that ``str.splitlines`` would also break at (U+2028, form feeds, lone ``\\r``) stay text.
    """
    name = "<stdin>" if str(source) == "-" else str(source)
    with _binary(source) as f:
        for number, raw in enumerate(f, start=1):
            if raw.endswith(b"\n"):
                raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise CorpusFormatError(
                    name, number, f"not valid UTF-8 ({err.reason})", "re-save the input as UTF-8"
                ) from err
            if number == 1 and line.startswith(_BOM):
                line = line[1:]
            yield number, line


def _whole(source: str | Path) -> str:
    name = "<stdin>" if str(source) == "-" else str(source)
    with _binary(source) as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusFormatError(
            name, line, f"not valid UTF-8 ({err.reason})", "re-save the input as UTF-8"
        ) from err
    return text[1:] if text.startswith(_BOM) else text


def read_lines(source: str | Path) -> Iterator[TextRecord]:
    """One document per line (see the module docstring)."""
    for number, line in _lines(source):
        yield TextRecord(str(number), line)


def read_text(source: str | Path) -> Iterator[TextRecord]:
    """The whole input as one document."""
    name = "stdin" if str(source) == "-" else Path(source).stem
    yield TextRecord(name, _whole(source))


def read_folder(folder: str | Path) -> Iterator[TextRecord]:
    """Every ``*.txt`` file under ``folder`` as one document, in sorted order; hidden files and
    folders (``.ipynb_checkpoints``) are skipped, as ``runner=ray`` skips them."""
    root = Path(folder)
    files = visible_files(root, "*.txt")
    if not files:
        raise FileNotFoundError(
            f"{root} holds no .txt files; put one document per .txt file there, or give a file"
        )
    for path in files:
        yield TextRecord(path.relative_to(root).with_suffix("").as_posix(), _whole(path))


def read_jsonl(source: str | Path) -> Iterator[TextRecord]:
    """JSON Lines with ``text`` and ``id`` per object."""
    name = "<stdin>" if str(source) == "-" else str(source)
    fix = 'each line must be a JSON object such as {"id": "doc1", "text": "..."}'
    for number, line in _lines(source):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusFormatError(name, number, f"not JSON ({err.msg})", fix) from err
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise CorpusFormatError(name, number, "no string field 'text'", fix)
        doc_id = record.get("id", number)
        if not isinstance(doc_id, (str, int)):
            raise CorpusFormatError(name, number, f"id {doc_id!r} is not a string", fix)
        yield TextRecord(str(doc_id), record["text"])


def title_abstract(doc_id: str, title: str, abstract: str) -> TextRecord:
    """A title and abstract laid out as the PubTator corpora lay them out: ``title + " " +
    abstract`` (just the title without an abstract), a sentence boundary forced after the title."""
    text = f"{title} {abstract}" if abstract else title
    forced = [len(title)] if abstract else []
    return TextRecord(doc_id, text, {"title_end": len(title)}, forced)


def read_pubtator(source: str | Path) -> Iterator[TextRecord]:
    """Title and abstract of each PubTator document (annotation lines are ignored)."""
    name = "<stdin>" if str(source) == "-" else str(source)
    fix = "each document is a PMID|t|title line followed by its PMID|a|abstract line"
    title: tuple[str, str, int] | None = None  # (pmid, title, line)
    for number, line in _lines(source):
        header = _PUBTATOR_HEADER.match(line)
        if header is None:
            if line.strip() and title is not None:
                raise CorpusFormatError(
                    name, number, f"document {title[0]} has a title but no abstract line", fix
                )
            continue  # blank lines and annotation lines
        pmid, kind, body = header.groups()
        if kind == "t":
            if title is not None:
                raise CorpusFormatError(
                    name, title[2], f"document {title[0]} has a title but no abstract line", fix
                )
            title = (pmid, body, number)
            continue
        if title is None or title[0] != pmid:
            raise CorpusFormatError(
                name, number, f"abstract line of {pmid} does not follow its title line", fix
            )
        yield title_abstract(pmid, title[1], body)
        title = None
    if title is not None:
        raise CorpusFormatError(
            name, title[2], f"document {title[0]} has a title but no abstract line", fix
        )


def read_pubmed(source: str | Path) -> Iterable[TextRecord]:
    """Citations of PubMed XML: a :class:`bioner.inference.pubmed.PubMedReader`, which also
    keeps the files that broke off (``failures``) for the run's summary."""
    if str(source) == "-":
        raise ConfigError("input_format=pubmed reads files (.xml, .xml.gz) or a folder, not -")
    from bioner.inference.pubmed import PubMedReader  # it imports this module

    return PubMedReader.of(source)


_READERS = {
    "lines": read_lines,
    "text": read_text,
    "folder": read_folder,
    "jsonl": read_jsonl,
    "pubtator": read_pubtator,
    "pubmed": read_pubmed,
}


def detect_format(source: str | Path) -> str:
    """The input format ``auto`` chooses for ``source`` (see the module docstring)."""
    if str(source) == "-":
        return "lines"
    path = Path(source)
    if path.is_dir():
        names = [p.name.lower() for p in path.rglob("*") if p.is_file()]
        if not any(n.endswith(".txt") for n in names) and any(
            n.endswith(PUBMED_SUFFIXES) for n in names
        ):
            return "pubmed"
        return "folder"
    if path.suffix.lower() in (".jsonl", ".json"):
        return "jsonl"
    if path.name.lower().endswith(PUBMED_SUFFIXES):
        return "pubmed"
    if path.suffix.lower() == ".pubtator" or "pubtator" in path.name.lower():
        return "pubtator"
    with open(path, "rb") as f:
        first = f.readline().decode("utf-8", errors="replace").lstrip(_BOM).rstrip("\r\n")
    return "pubtator" if _PUBTATOR_HEADER.match(first) and "|t|" in first else "lines"


def read_inputs(source: str | Path, input_format: str = "auto") -> Iterable[TextRecord]:
    """Documents of ``source`` (a file, a folder or ``-``) in ``input_format``, lazily.

    Raises:
        ValueError: unknown format, or ``folder`` for something that is not one.
        FileNotFoundError: ``source`` does not exist.
    """
    if input_format not in INPUT_FORMATS:
        raise ConfigError(
            f"input_format={input_format!r}: choose one of {', '.join(INPUT_FORMATS)}"
        )
    if str(source) != "-" and not Path(source).exists():
        raise FileNotFoundError(f"input {source} does not exist; give a file, a folder or -")
    if input_format == "auto":
        input_format = detect_format(source)
    if input_format == "pubmed":
        return _READERS[input_format](source)  # a file or a folder of them
    if (input_format == "folder") != (str(source) != "-" and Path(source).is_dir()):
        raise ValueError(
            f"input {source}: input_format=folder needs a folder of .txt files and a folder "
            "needs input_format=folder (or auto)"
        )
    return _READERS[input_format](source)
