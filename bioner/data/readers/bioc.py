"""Corpora in BioC XML (Comeau et al., Database 2013), the format of BioCreative's releases.

One file per split (``.xml``, plain or gzip-compressed)::

    <collection><source>...</source><date>...</date><key>...</key>
      <document><id>227508</id>
        <passage><infon key="type">title</infon><offset>0</offset><text>Naloxone ...</text>
          <annotation id="0"><infon key="type">Chemical</infon>
            <location offset="0" length="8"/><text>Naloxone</text></annotation>
        </passage>
        <passage><infon key="type">abstract</infon><offset>75</offset><text>...</text>...
        <relation id="R0">...</relation>
      </document>
    </collection>

Offsets count characters from the start of the document. The document text is every passage
text at its offset, the gaps between passages filled with spaces: a title at 0 and an abstract
one character after it read ``title + " " + abstract``, as PubTator lays them out, so the two
releases of a corpus give the same documents. A passage given as ``<sentence>`` elements is read
the same way, sentence by sentence. Each passage ends a sentence.

Mentions are the ``<annotation>`` elements (in passages, sentences or the document): the type is
the infon ``type_infon`` names (``type``), the locations the fragments. An annotation without a
location (a document-level index term) is skipped and counted; several locations are joined
or refused as for brat (``discontinuous``, :func:`~bioner.data.readers.standoff.mention_pieces`).
Relations are skipped. Files are read one document at a time, safely (:mod:`bioner.data.xml`).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import gzip_twin
from bioner.data.readers.standoff import (
    Fixups,
    Mention,
    StandoffReader,
    log_kept_overlaps,
    mention_pieces,
    settle_mentions,
    standoff_document,
)
from bioner.data.xml import XMLFault, xml_records

log = logging.getLogger(__name__)

_WHAT = "BioC XML"
_FIX_BROKEN = "export or download the file again"
_FORMAT = (
    "a BioC document is <document><id>..</id><passage><offset>N</offset><text>..</text>"
    '<annotation><infon key="type">..</infon><location offset="N" length="N"/>'
    "<text>..</text></annotation></passage></document>"
)


class BioCReader(StandoffReader):
    """Reader for BioC XML corpora, one file per split.

    Args:
        name: dataset name.
        data_dir: the corpus folder.
        entity_types: entity types, or ``None`` to infer them from the training split.
        files: the file of each split, relative to ``data_dir`` (if the named one is absent, its
            ``.gz`` or plain twin is used).
        type_infon: the annotation infon that holds the entity type.
        discontinuous: ``error``, ``fragments``, ``span`` or ``skip``, as for brat.
        overlaps: ``keep``, ``keep_longest`` or ``error``, as for PubTator.
        on_mismatch: ``error`` when an annotation's text differs from the document text at its
            locations, or ``skip`` such annotations, counted.
        ignore_types: types that are not entity mentions (left out, counted per type).
        download: public files, see :class:`~bioner.data.readers.base.CorpusReader`.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        entity_types: Sequence[str] | None = None,
        files: Mapping[str, str] | None = None,
        type_infon: str = "type",
        discontinuous: str = "error",
        overlaps: str = "keep",
        on_mismatch: str = "error",
        ignore_types: Sequence[str] = (),
        download: Sequence[Mapping[str, Any]] | None = None,
        filter: Mapping[str, Any] | None = None,  # the config key dataset.filter
        split: Mapping[str, Any] | None = None,
        train_subset: Mapping[str, Any] | None = None,
        relabel: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name, data_dir, entity_types, download, filter, split, train_subset, relabel
        )
        self.keep_mention_options(discontinuous, overlaps, on_mismatch, ignore_types)
        self.files = dict(files or {s: f"{s}.xml" for s in self.splits})
        if not set(self.sources) <= set(self.files):
            raise ValueError(f"files must name the splits {self.sources}, got {sorted(self.files)}")
        self.type_infon = type_infon

    def path(self, split: str) -> Path:
        """The file holding ``split`` (or its ``.gz``/plain twin when only that one exists)."""
        return gzip_twin(self.data_dir / self.files[split])

    def required_files(self) -> list[Path]:
        return list(dict.fromkeys(self.path(s) for s in self.sources))

    def split_files(self, split: str) -> list[Path]:
        return [self.path(split)]

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        path = self.path(split)
        fixups = Fixups()
        docs: list[Document] = []
        seen: set[str] = set()
        try:
            for element in xml_records(path, "collection", _WHAT, _FIX_BROKEN):
                if element.tag != "document":
                    continue  # source, date, key, collection infons
                doc = self._document(element, path, allowed, fixups)
                if doc.id in seen:
                    raise CorpusFormatError(
                        path, None, f"document {doc.id} occurs twice", "remove the repeated one"
                    )
                seen.add(doc.id)
                docs.append(doc)
        except XMLFault as fault:
            raise CorpusFormatError(path, fault.line, fault.problem, fault.fix) from fault
        if not docs:
            raise CorpusFormatError(path, None, "the file holds no <document>", _FORMAT)
        if self.overlaps == "keep":
            log_kept_overlaps(self.name, split, docs)
        fixups.report(self, split, self.discontinuous)
        return docs

    def _document(
        self, element: ET.Element, path: Path, allowed: set[str] | None, fixups: Fixups
    ) -> Document:
        doc_id = (element.findtext("id") or "").strip()
        if not doc_id:
            raise CorpusFormatError(path, None, "a <document> without an <id>", _FORMAT)
        text, ends = _text(element, path, doc_id)
        mentions: list[Mention] = []
        for number, annotation in enumerate(element.iter("annotation"), 1):
            mentions += self._mentions(annotation, number, text, path, doc_id, allowed, fixups)
        for m in mentions:
            cut = next((e for e in ends[:-1] if m.start < e < m.end), None)
            if cut is not None:
                raise CorpusFormatError(
                    path,
                    None,
                    f"document {doc_id}: mention {text[m.start : m.end]!r} ({m.label}, "
                    f"{m.start}-{m.end}) runs from one passage into the next (at {cut})",
                    "correct its location: a mention lies inside one passage",
                )
        kept, duplicates, dropped = settle_mentions(mentions, self.overlaps, path)
        fixups.duplicates += duplicates
        fixups.dropped_overlaps += dropped
        return standoff_document(
            doc_id,
            text,
            [Span(m.start, m.end, m.label) for m in kept],
            {"source": str(path)},
            breaks=ends[:-1],
        )

    def _mentions(
        self,
        annotation: ET.Element,
        number: int,
        text: str,
        path: Path,
        doc_id: str,
        allowed: set[str] | None,
        fixups: Fixups,
    ) -> list[Mention]:
        """The mentions of one ``<annotation>`` (none, one, or one per fragment)."""
        what = f"document {doc_id}, annotation {annotation.get('id') or f'#{number}'}"
        label = next(
            (
                (i.text or "").strip()
                for i in annotation.findall("infon")
                if i.get("key") == self.type_infon
            ),
            "",
        )
        if not label:
            raise CorpusFormatError(
                path,
                None,
                f'{what} has no <infon key="{self.type_infon}">',
                "give every annotation its type, or name the infon that holds it with "
                "dataset.type_infon=...",
            )
        if label in self.ignore_types:
            fixups.ignored_types[label] += 1
            return []
        if allowed is not None and label not in allowed:
            unknown = self._label_error(path, None, label)
            raise CorpusFormatError(path, None, f"{what}: {unknown.problem}", unknown.fix)
        fragments = []
        for location in annotation.findall("location"):
            try:
                start, length = int(location.get("offset", "")), int(location.get("length", ""))
            except ValueError:
                raise CorpusFormatError(
                    path, None, f"{what}: a <location> without integer offset and length",
                    _FORMAT,
                ) from None  # fmt: skip
            if start < 0 or length <= 0 or start + length > len(text):
                raise CorpusFormatError(
                    path,
                    None,
                    f"{what}: location {start}+{length} is empty or lies outside the document "
                    f"text (length {len(text)})",
                    "offsets count characters from the start of the document",
                )
            fragments.append((start, start + length))
        if not fragments:
            fixups.skipped["annotations without a location"] += 1
            return []
        written = annotation.findtext("text")
        if written is not None and not _matches(written, fragments, text):
            if self.on_mismatch == "error":
                found = " ".join(text[s:e] for s, e in fragments)
                raise CorpusFormatError(
                    path,
                    None,
                    f"{what}: annotation text {written!r} differs from the document text at its "
                    f"location: {found!r}{_bytes_hint(written, fragments, text)}",
                    "correct the offsets, or set dataset.on_mismatch=skip to skip such "
                    "annotations (they are counted and logged)",
                )
            fixups.mismatched += 1
            return []
        pieces = mention_pieces(
            fragments, text, self.discontinuous, fixups, path, None, f"{what} ({label})"
        )
        return [Mention(s, e, label, None, what) for s, e in pieces]


def _text(element: ET.Element, path: Path, doc_id: str) -> tuple[str, list[int]]:
    """The document text (passages and sentences at their offsets, gaps as spaces) and where
    each passage ends."""
    pieces: list[tuple[int, str]] = []
    ends: list[int] = []
    for passage in element.findall("passage"):
        offset = _offset(passage, path, doc_id)
        body = passage.findtext("text")
        if body is not None:
            parts = [(offset, body)]
        else:
            parts = [
                (_offset(s, path, doc_id), s.findtext("text") or "")
                for s in passage.findall("sentence")
            ]
        pieces += parts
        ends.append(max((o + len(t) for o, t in parts), default=offset))
    out: list[str] = []
    length = 0
    for offset, body in sorted(pieces, key=lambda p: p[0]):
        if offset < length:
            raise CorpusFormatError(
                path,
                None,
                f"document {doc_id}: a passage or sentence at offset {offset} overlaps the text "
                f"before it (which ends at {length})",
                "offsets count characters from the start of the document; give each passage "
                "its own stretch",
            )
        out.append(" " * (offset - length) + body)
        length = offset + len(body)
    return "".join(out), sorted(set(ends))


def _offset(element: ET.Element, path: Path, doc_id: str) -> int:
    raw = (element.findtext("offset") or "").strip()
    if not raw.isdigit():
        raise CorpusFormatError(
            path, None, f"document {doc_id}: a <{element.tag}> without an integer <offset>",
            _FORMAT,
        )  # fmt: skip
    return int(raw)


def _matches(written: str, fragments: list[tuple[int, int]], text: str) -> bool:
    """Whether an annotation's text is the text at its fragments (joined by a space, or the
    stretch from the first to the last), whitespace aside."""
    joined = " ".join(text[s:e] for s, e in fragments)
    stretch = text[min(s for s, _ in fragments) : max(e for _, e in fragments)]
    return written.split() in (joined.split(), stretch.split())


def _bytes_hint(written: str, fragments: list[tuple[int, int]], text: str) -> str:
    """A note when the text is found with the offsets read as UTF-8 bytes (BioC allows both)."""
    data = text.encode("utf-8")
    as_bytes = " ".join(data[s:e].decode("utf-8", "replace") for s, e in fragments)
    if as_bytes.split() == written.split():
        return (
            "; read as UTF-8 byte offsets they fit: this collection counts bytes, and bioner "
            "reads character offsets (convert the offsets to characters)"
        )
    return ""
