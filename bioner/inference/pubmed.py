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

Security: these files come from elsewhere and are treated as data (:mod:`bioner.data.xml`:
the ``<!DOCTYPE ... "https://dtd.nlm.nih.gov/...">`` line of every PubMed file is not fetched,
and a file that declares entities of its own, which PubMed files never do, is refused).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bioner.data.errors import CorpusFormatError
from bioner.data.xml import XMLFault, xml_records
from bioner.inference.inputs import PUBMED_SUFFIXES, TextRecord, title_abstract

# Plain logging, as the other readers: the rank-zero logger would pull in Lightning.
log = logging.getLogger(__name__)

_SPACE = re.compile(r"[ \t\n\r]+")
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
        except XMLFault as broken:
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
        """Records of one file; raises :class:`~bioner.data.xml.XMLFault` where it breaks off."""
        for element in xml_records(
            path,
            "PubmedArticleSet",
            "PubMed/MEDLINE XML",
            _FIX_BROKEN,
            "give PubMed/MEDLINE XML (baseline or update files, or an efetch retmode=xml answer)",
        ):
            if element.tag in ("PubmedArticle", "PubmedBookArticle"):
                record = record_of(element)
                if record is None:
                    self.skipped += 1
                else:
                    yield record
            elif element.tag == "DeleteCitation":
                self.deleted += len(element.findall("PMID"))
