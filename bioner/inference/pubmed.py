"""Reading PubMed/MEDLINE XML (the annual baseline and the daily update files) for prediction.

Each ``PubmedArticle`` (and ``PubmedBookArticle``) becomes one :class:`TextRecord`: its id the
PMID, its text the title and the abstract laid out as PubTator lays them out, so that offsets
can be joined with PubTator tools:

* ``text = title + " " + abstract``, or just ``title`` when there is no abstract (as
  :func:`bioner.inference.inputs.read_pubtator` and :mod:`bioner.data.readers.pubtator` join
  them); a sentence boundary is forced after the title and ``meta["title_end"]`` records where it
  ends (the PubTator writer splits ``|t|`` and ``|a|`` lines there).
* ``title`` is ``Article/ArticleTitle`` (``BookDocument/ArticleTitle`` or ``Book/BookTitle`` for
  books); ``abstract`` is the ``AbstractText`` sections of ``Abstract`` joined by one space, a
  labelled section (structured abstract, ``Label="METHODS"``) written ``"METHODS: " + text``, as
  in PubTator (``OBJECTIVE: The objective ... METHODS: This was ...``). ``NlmCategory`` is not
  written: the label is what the journal printed. ``OtherAbstract`` (translations, plain-language
  summaries), ``CopyrightInformation`` and ``VernacularTitle`` are not part of the text.
* Inline markup (``<i>``, ``<b>``, ``<sup>``, ``<sub>``, ``<u>``, MathML) is dropped and its text
  kept: ``Na<sup>+</sup>`` reads ``Na+``. Runs of XML white space (space, tab, line feed,
  carriage return) become one space and each piece is stripped of them, since a PubTator line
  cannot hold a line break; any other character (a no-break space) stays as it is.

``DeleteCitation`` (update files: PMIDs removed from PubMed) holds no text and is skipped; its
PMIDs are counted (:attr:`PubMedReader.deleted`). A record deleted or revised by a *later*
update file is still tagged from the file that holds it: merging the baseline with its updates
is the user's step.

Files are read incrementally (``.xml`` or gzip-compressed ``.xml.gz``, by content), each record
cleared once read, so memory stays flat however large the file. A malformed or truncated file
does not stop the run: the records read before the fault are kept, the error (file, line,
the last good PMID) is logged, the rest of that file is skipped, and the failure is kept in
:attr:`PubMedReader.failures` for the run's summary.

Security: these files come from elsewhere and are treated as data. The stdlib parser (expat)
never loads a DTD or external entity (the ``<!DOCTYPE ... "https://dtd.nlm.nih.gov/...">`` line
of every PubMed file is not fetched), and expat 2.4.1+ bounds entity amplification ("billion
laughs"); on top of that a file that declares entities of its own (PubMed files never do) is
refused before parsing, the check defusedxml would make.
"""

from __future__ import annotations

import gzip
import logging
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bioner.data.errors import CorpusFormatError
from bioner.inference.inputs import PUBMED_SUFFIXES, TextRecord, title_abstract

# Plain logging, as the other readers: the rank-zero logger would pull in Lightning.
log = logging.getLogger(__name__)

# Bytes fed to the parser at a time: the elements of one chunk are alive at once (about 50
# citations), so this bounds memory.
_CHUNK = 1 << 16
_SPACE = re.compile(r"[ \t\n\r]+")
_GZIP_MAGIC = b"\x1f\x8b"
_FIX_BROKEN = "download the file again (the baseline's .md5 files check it)"


def is_pubmed_file(path: str | Path) -> bool:
    """``path`` is named like a PubMed XML file (``.xml`` or ``.xml.gz``)."""
    return Path(path).name.lower().endswith(PUBMED_SUFFIXES)


def pubmed_files(source: str | Path) -> list[Path]:
    """``source`` itself, or every ``.xml``/``.xml.gz`` file under the folder ``source`` (sorted).

    Raises:
        FileNotFoundError: a folder without such files.
    """
    root = Path(source)
    if not root.is_dir():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_pubmed_file(p))
    if not files:
        raise FileNotFoundError(
            f"{root} holds no .xml or .xml.gz files; give PubMed XML files (the baseline's "
            "pubmed*.xml.gz) or a file"
        )
    return files


@dataclass
class Failure:
    """A file that could not be read to its end.

    Attributes:
        path: the file.
        records: how many records of it were read (and tagged) before the fault.
        message: the error, naming file, line and the last good record.
    """

    path: str
    records: int
    message: str


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip(" ")


def _text_of(element: ET.Element | None) -> str:
    """All character data under ``element`` (inline markup dropped, its text kept), cleaned."""
    return "" if element is None else _clean("".join(element.itertext()))


def _abstract(abstract: ET.Element | None) -> str:
    if abstract is None:
        return ""
    sections = []
    for part in abstract.findall("AbstractText"):
        body = _text_of(part)
        label = _clean(part.get("Label") or "")
        if label and body:
            sections.append(f"{label}: {body}")
        elif body or label:
            sections.append(body or f"{label}:")
    return " ".join(sections)


def record_of(element: ET.Element) -> TextRecord | None:
    """The record of a ``PubmedArticle`` or ``PubmedBookArticle`` element (``None``: no PMID)."""
    if element.tag == "PubmedArticle":
        citation = element.find("MedlineCitation")
        pmid = citation.findtext("PMID") if citation is not None else None
        article = citation.find("Article") if citation is not None else None
        title = _text_of(article.find("ArticleTitle")) if article is not None else ""
        abstract = _abstract(article.find("Abstract")) if article is not None else ""
    else:
        book = element.find("BookDocument")
        pmid = book.findtext("PMID") if book is not None else None
        title_el = None if book is None else book.find("ArticleTitle")
        if title_el is None and book is not None:
            title_el = book.find("Book/BookTitle")
        title = _text_of(title_el)
        abstract = _abstract(book.find("Abstract")) if book is not None else ""
    if not pmid or not pmid.strip():
        return None
    return title_abstract(pmid.strip(), title, abstract)


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")


@dataclass
class PubMedReader:
    """The records of PubMed XML files, lazily, in file order (see the module docstring).

    Iterate once. After (or during) iteration, :attr:`failures` lists the files that broke off
    and :attr:`deleted` counts the PMIDs of ``DeleteCitation`` elements.

    Args:
        files: the XML files (``.xml`` or ``.xml.gz``).
    """

    files: list[Path]
    failures: list[Failure] = field(default_factory=list)
    deleted: int = 0
    skipped: int = 0  # records without a PMID

    @classmethod
    def of(cls, source: str | Path) -> PubMedReader:
        """A reader of the file ``source``, or of every PubMed XML file under the folder."""
        return cls(pubmed_files(source))

    def __iter__(self) -> Iterator[TextRecord]:
        for path in self.files:
            yield from self._read_file(Path(path))

    def _read_file(self, path: Path) -> Iterator[TextRecord]:
        count = 0
        last = None  # the last good PMID, to say where a fault is
        try:
            for record in self._parse(path):
                count += 1
                last = record.id
                yield record
        except _Broken as broken:
            where = (
                f"after PMID {last} (in record {count + 1} of the file)"
                if last
                else "before its first record"
            )
            error = CorpusFormatError(
                path,
                broken.line,
                f"{broken.problem} {where}; the {count} records before it were read and the "
                "rest of this file is skipped",
                broken.fix,
            )
            log.error("%s", error)
            self.failures.append(Failure(str(path), count, str(error)))

    def _parse(self, path: Path) -> Iterator[TextRecord]:
        """Records of one file; raises :class:`_Broken` where the file breaks off."""
        parser = ET.XMLPullParser(events=("start", "end"))
        depth = 0
        root: ET.Element | None = None
        fed_lines = 0
        prolog = True  # bytes before the root element: checked for entity declarations
        head = b""
        try:
            with _open(path) as stream:
                while True:
                    try:
                        # read1: what was decompressed before a cut is returned, not lost with
                        # the error of the same call
                        data = stream.read1(_CHUNK)
                    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
                        raise _Broken(
                            fed_lines + 1, f"the gzip stream is cut or damaged ({err})", _FIX_BROKEN
                        ) from err
                    if prolog:
                        head += data
                        if b"<!ENTITY" in head:
                            raise _Broken(
                                head[: head.index(b"<!ENTITY")].count(b"\n") + 1,
                                "the file declares XML entities, which PubMed files never do "
                                "(refused: entity expansion can exhaust memory)",
                                "give the PubMed/MEDLINE XML files as NLM ships them",
                            )
                        prolog = not data or re.search(rb"<[A-Za-z_]", head) is None
                        if len(head) > _CHUNK:
                            head = head[-64:]  # enough to see a declaration cut by chunks
                    if not data:
                        parser.close()
                    else:
                        parser.feed(data)
                    for event, element in parser.read_events():
                        if event == "start":
                            depth += 1
                            if root is None:
                                root = element
                                if root.tag != "PubmedArticleSet":
                                    raise _Broken(
                                        parser_line(head, root.tag),
                                        f"the root element is <{root.tag}>, not <PubmedArticleSet>",
                                        "give PubMed/MEDLINE XML (baseline or update files, "
                                        "or an efetch retmode=xml answer)",
                                    )
                            continue
                        depth -= 1
                        if depth != 1:
                            continue
                        # A direct child of PubmedArticleSet is complete: read it, then drop it.
                        if element.tag in ("PubmedArticle", "PubmedBookArticle"):
                            record = record_of(element)
                            if record is None:
                                self.skipped += 1
                            else:
                                yield record
                        elif element.tag == "DeleteCitation":
                            self.deleted += len(element.findall("PMID"))
                        assert root is not None
                        root.clear()
                    if not data:
                        break
                    fed_lines += data.count(b"\n")
        except ET.ParseError as err:
            line = err.position[0] if getattr(err, "position", None) else fed_lines + 1
            raise _Broken(line, f"malformed or truncated XML ({err})", _FIX_BROKEN) from err


def parser_line(head: bytes, tag: str) -> int:
    """The line of the first ``<tag`` in ``head`` (1 when not found)."""
    at = head.find(b"<" + tag.encode())
    return head[:at].count(b"\n") + 1 if at >= 0 else 1


class _Broken(Exception):
    def __init__(self, line: int, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem
        self.fix = fix
