"""Corpora in brat standoff format: a ``NAME.txt`` text beside a ``NAME.ann`` of annotations.

brat (Stenetorp et al., EACL 2012) writes this format, other annotation tools export it, and many
biomedical corpora are released in it. An ``.ann`` line is one annotation; bioner reads the
text-bound ones::

    T1<TAB>Chemical 10 17<TAB>aspirin                  a mention: type, start, end, its text
    T2<TAB>Disease 30 36;48 53<TAB>breast cancer       a discontinuous one: fragments ";"-joined

Offsets count characters (code points) of the ``.txt`` as it is, line breaks included (CRLF is
two), 0-based, end exclusive; the text field is the fragments' texts joined by a space. Relations
(``R``), events (``E``), attributes (``A``, ``M``), normalisations (``N``), notes (``#``) and
equivalences (``*``) are skipped. A document is ``NAME.txt``; its id is its path below the split's
folder, without ``.txt``.

Fragments separated by whitespace only are one mention (brat splits a selection at each line
break it crosses). A mention of several fragments is *discontinuous*: a tagger marks continuous
spans, so ``discontinuous`` says what becomes of it. Whitespace that a selection took in at either
end is trimmed. Words and sentences are computed from the text
(:mod:`bioner.data.readers.standoff`): by the splitter's rules, or one sentence per line.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import check_options, read_text, split_lines
from bioner.data.readers.standoff import (
    Fixups,
    Mention,
    StandoffReader,
    log_kept_overlaps,
    mention_pieces,
    settle_mentions,
    standoff_document,
)
from bioner.utils.files import visible_files

log = logging.getLogger(__name__)

#: ``dataset.sentences``: the splitter's rules, or one sentence per line.
SENTENCES = ("rules", "lines")

_FORMAT = (
    "a text-bound annotation is ID<TAB>TYPE START END[;START END...]<TAB>TEXT (e.g. "
    "'T1\\tChemical 10 17\\taspirin'); other lines start with R, E, A, M, N, # or *"
)
_OFFSETS = "offsets are 0-based, end exclusive, counting the characters of the .txt as it is"
_TEXT_BOUND = re.compile(r"T\S*")
_FRAGMENTS = re.compile(r"\d+ \d+(?:;\d+ \d+)*")
_SKIPPED_KINDS = {
    "R": "relations",
    "E": "events",
    "A": "attributes",
    "M": "attributes",
    "N": "normalisations",
    "#": "notes",
    "*": "equivalences",
}


class BratReader(StandoffReader):
    """Reader for brat standoff corpora (``.txt`` + ``.ann``), one folder per split.

    Args:
        name: dataset name.
        data_dir: the corpus folder.
        entity_types: entity types, or ``None`` to infer them from the training split.
        folders: per split, its folder below ``data_dir`` (``.`` for ``data_dir`` itself); every
            ``.txt`` below it, at any depth, is a document.
        sentences: ``rules`` (:mod:`bioner.data.sentences`) or ``lines`` (each line a sentence,
            for texts written one sentence per line); neither cuts a mention.
        discontinuous: what a mention of several fragments becomes: ``error`` (stop, naming file
            and line), ``fragments`` (each fragment a mention of its type), ``span`` (one mention
            from the first fragment's start to the last one's end) or ``skip`` (left out);
            the last three are counted in :attr:`repairs`, with a warning.
        overlaps: ``keep``, ``keep_longest`` or ``error``, as for PubTator
            (:func:`~bioner.data.readers.standoff.resolve_overlaps`).
        on_mismatch: ``error`` when an annotation's text differs from the text at its offsets
            (the ``.txt`` changed after annotation), or ``skip`` such annotations, counted.
        ignore_types: types of text-bound annotations that are not entities (event triggers,
            say): left out of the corpus, counted per type in the log.
        download: public files, see :class:`~bioner.data.readers.base.CorpusReader`.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        entity_types: Sequence[str] | None = None,
        folders: Mapping[str, str] | None = None,
        sentences: str = "rules",
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
        check_options({"sentences": (sentences, SENTENCES)})
        self.keep_mention_options(discontinuous, overlaps, on_mismatch, ignore_types)
        self.folders = dict(folders or {s: s for s in self.splits})
        if not set(self.sources) <= set(self.folders):
            raise ValueError(
                f"folders must name the splits {self.sources}, got {sorted(self.folders)}"
            )
        self.sentences = sentences

    def folder(self, split: str) -> Path:
        """The folder holding ``split``."""
        return self.data_dir / self.folders[split]

    def required_files(self) -> list[Path]:
        return list(dict.fromkeys(self.folder(s) for s in self.sources))

    def split_files(self, split: str) -> list[Path]:
        return [self.folder(split)]

    def documents(self, split: str) -> list[tuple[str, Path, Path]]:
        """``(id, txt, ann)`` of every document of ``split``, sorted by id.

        Raises:
            CorpusFormatError: the folder holds no ``.txt``, or a ``.txt`` lacks its ``.ann``
                (or the reverse).
        """
        folder = self.folder(split)
        if not folder.is_dir():
            raise CorpusFormatError(
                folder, None, "not a folder", f"point dataset.folders.{split} at a folder of "
                ".txt and .ann files",
            )  # fmt: skip
        texts = {p.with_suffix(""): p for p in visible_files(folder, "*.txt")}
        annotations = {p.with_suffix(""): p for p in visible_files(folder, "*.ann")}
        if not texts:
            raise CorpusFormatError(
                folder,
                None,
                "no brat documents (NAME.txt beside NAME.ann) found",
                f"point dataset.folders.{split} (below dataset.data_dir) at the folder holding "
                "them",
            )
        for stem, ann in sorted(annotations.items()):
            if stem not in texts:
                raise CorpusFormatError(
                    ann, None, f"its text {stem.name}.txt is missing", "restore the .txt beside it"
                )
        docs = []
        for stem, txt in sorted(texts.items()):
            if stem not in annotations:
                raise CorpusFormatError(
                    txt,
                    None,
                    f"its annotations {stem.name}.ann are missing",
                    "restore the .ann beside it; for a document without entities, create an empty "
                    ".ann (as brat does)",
                )
            docs.append((stem.relative_to(folder).as_posix(), txt, annotations[stem]))
        return sorted(docs)

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        fixups = Fixups()
        docs = [
            self._document(doc_id, txt, ann, allowed, fixups)
            for doc_id, txt, ann in self.documents(split)
        ]
        if self.overlaps == "keep":
            log_kept_overlaps(self.name, split, docs)
        fixups.report(self, split, self.discontinuous)
        return docs

    def _document(
        self, doc_id: str, txt: Path, ann: Path, allowed: set[str] | None, fixups: Fixups
    ) -> Document:
        # An empty text is a document too (bioner-predict writes one for an empty input line).
        text = read_text(txt, self.filter.decode_errors, allow_empty=True)
        with txt.open("rb") as f:
            if f.read(3) == codecs.BOM_UTF8:
                # brat counts a byte-order mark as a character: a space keeps the offsets.
                text = " " + text
        # An empty .ann is a document without annotations, as brat creates it.
        lines = split_lines(read_text(ann, self.filter.decode_errors, allow_empty=True))
        mentions: list[Mention] = []
        ids: dict[str, int] = {}
        for no, line in enumerate(lines, 1):
            if not line.strip():
                continue
            ident = line.split("\t", 1)[0]
            if not _TEXT_BOUND.fullmatch(ident):
                if ident[:1] not in _SKIPPED_KINDS or "\t" not in line:
                    raise CorpusFormatError(ann, no, "not a brat annotation line", _FORMAT)
                fixups.skipped[_SKIPPED_KINDS[ident[:1]]] += 1
                continue
            if ident in ids:
                raise CorpusFormatError(
                    ann, no, f"annotation id {ident} is also used on line {ids[ident]}",
                    "give each annotation its own id",
                )  # fmt: skip
            ids[ident] = no
            mentions += self._mentions(line, text, ann, no, allowed, fixups)
        kept, duplicates, dropped = settle_mentions(mentions, self.overlaps, ann)
        fixups.duplicates += duplicates
        fixups.dropped_overlaps += dropped
        return standoff_document(
            doc_id,
            text,
            [Span(m.start, m.end, m.label) for m in kept],
            {"source": str(txt), "annotations": str(ann)},
            by_line=self.sentences == "lines",
        )

    def _mentions(
        self,
        line: str,
        text: str,
        ann: Path,
        no: int,
        allowed: set[str] | None,
        fixups: Fixups,
    ) -> list[Mention]:
        """The mentions of the text-bound annotation ``line`` (none, one, or one per fragment)."""
        fields = line.split("\t", 2)
        head = fields[1].split(" ", 1) if len(fields) == 3 else []
        if len(head) != 2 or not head[0] or not _FRAGMENTS.fullmatch(head[1]):
            raise CorpusFormatError(ann, no, "malformed text-bound annotation", _FORMAT)
        label, written = head[0], fields[2]
        if label in self.ignore_types:
            fixups.ignored_types[label] += 1
            return []
        if allowed is not None and label not in allowed:
            raise self._label_error(ann, no, label)
        fragments = [(int(s), int(e)) for s, e in (pair.split(" ") for pair in head[1].split(";"))]
        for s, e in fragments:
            if not 0 <= s < e <= len(text):
                raise CorpusFormatError(
                    ann,
                    no,
                    f"fragment {s}-{e} is empty or lies outside the text of "
                    f"{ann.with_suffix('.txt').name} (length {len(text)})",
                    _OFFSETS,
                )
        found = " ".join(text[s:e] for s, e in fragments)
        if found.split() != written.split():  # whitespace may differ: brat writes line breaks
            if self.on_mismatch == "error":
                raise CorpusFormatError(
                    ann,
                    no,
                    f"annotation text {written!r} differs from the text at {head[1]}: {found!r}",
                    "correct the offsets (was the .txt edited after annotation?), or set "
                    "dataset.on_mismatch=skip to skip such annotations (they are counted and "
                    "logged)",
                )
            fixups.mismatched += 1
            return []
        what = f"mention {fields[0]} ({label})"
        pieces = mention_pieces(fragments, text, self.discontinuous, fixups, ann, no, what)
        return [Mention(s, e, label, no) for s, e in pieces]
