"""Document-level PubTator corpora (BC5CDR original release, MedMentions).

Format, one block per document, blocks separated by a blank line::

    PMID|t|title
    PMID|a|abstract
    PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>id[<TAB>composite mentions]]
    PMID<TAB>CID<TAB>chemical-id<TAB>disease-id        (relation lines: ignored)

The document text is ``title + " " + abstract`` (offsets index it, 0-based, end exclusive).
Every mention's text must equal ``text[start:end]``. Words and sentences are computed as for every
standoff corpus (:mod:`bioner.data.readers.standoff`), with a forced sentence boundary between
title and abstract.

A corpus comes either as one file per split (``files``), or as one file (``corpus``, plain or
``.gz``) split by lists of PMIDs (``pmids``), as MedMentions is.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import check_options, gzip_twin, read_text, split_lines
from bioner.data.readers.standoff import (
    OVERLAPS,
    Mention,
    StandoffReader,
    log_kept_overlaps,
    settle_mentions,
    standoff_document,
)

log = logging.getLogger(__name__)

_HEADER = re.compile(r"([^\t|]+)\|([ta])\|(.*)\Z", re.DOTALL)
_INT = re.compile(r"\d+")
_FORMAT = (
    "each document is PMID|t|title, PMID|a|abstract, then one line per mention "
    "PMID<TAB>start<TAB>end<TAB>text<TAB>type[<TAB>id], documents separated by a blank line"
)
_OFFSETS = "offsets are 0-based, end exclusive, into title + ' ' + abstract"


@dataclass
class _Record:
    pmid: str
    title: str
    line: int
    text: str | None = None  # set by the abstract line
    mentions: list[Mention] = field(default_factory=list)


class PubTatorReader(StandoffReader):
    """Reader for PubTator files.

    Args:
        name: dataset name.
        data_dir: the corpus folder.
        entity_types: entity types, or ``None`` to infer them from the training split.
        files: file per split (relative to ``data_dir``); or give ``corpus`` and ``pmids``.
        corpus: one file holding every split (``.txt`` or ``.txt.gz``; if the named one is absent,
            the other is used).
        pmids: per split, a file listing that split's PMIDs, one per line.
        overlaps: ``keep`` every mention, nested, crossing or not (the counts are logged, and
            ``bioner-data stats`` shows them); ``keep_longest``: keep the longest of each
            overlapping group (the earlier in the file on ties) and count the rest in
            :attr:`repairs`, with a warning; ``error``: stop at the first overlapping mention.
        download: public files, see :class:`~bioner.data.readers.base.CorpusReader`.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        entity_types: Sequence[str] | None = None,
        files: Mapping[str, str] | None = None,
        corpus: str | None = None,
        pmids: Mapping[str, str] | None = None,
        overlaps: str = "keep",
        download: Sequence[Mapping[str, Any]] | None = None,
        filter: Mapping[str, Any] | None = None,  # the config key dataset.filter
        split: Mapping[str, Any] | None = None,
        train_subset: Mapping[str, Any] | None = None,
        relabel: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name, data_dir, entity_types, download, filter, split, train_subset, relabel
        )
        check_options({"overlaps": (overlaps, OVERLAPS)})
        if (files is None) == (corpus is None) or (corpus is None) != (pmids is None):
            raise ValueError("give either `files` (one per split) or both `corpus` and `pmids`")
        if files is not None and not set(self.sources) <= set(files):
            raise ValueError(f"files must name the splits {self.sources}, got {sorted(files)}")
        if pmids is not None and set(pmids) != set(self.splits):
            raise ValueError(f"pmids must name exactly the splits {self.splits}")
        self.files = None if files is None else dict(files)
        self.corpus = corpus
        self.pmids = None if pmids is None else dict(pmids)
        self.overlaps = overlaps
        self._records: dict[Path, list[_Record]] = {}
        self._split_pmids: dict[str, set[str]] | None = None

    def path(self, split: str) -> Path:
        """The file holding ``split``."""
        rel = self.files[split] if self.files is not None else self.corpus
        assert rel is not None
        return gzip_twin(self.data_dir / rel)

    def required_files(self) -> list[Path]:
        paths = dict.fromkeys(self.path(split) for split in self.sources)
        if self.pmids:
            paths.update(dict.fromkeys(self.data_dir / self.pmids[s] for s in self.splits))
        return list(paths)

    def split_files(self, split: str) -> list[Path]:
        # Every PMID list: a split's documents are checked against the others' (disjoint splits).
        pmid_lists = [self.data_dir / self.pmids[s] for s in self.splits] if self.pmids else []
        return list(dict.fromkeys([self.path(split), *pmid_lists]))

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        path = self.path(split)
        if path not in self._records:
            self._records[path] = _parse(path, self.filter.decode_errors)
        records = self._records[path]
        if self.pmids:
            wanted = self._pmid_lists(records)[split]
            records = [r for r in records if r.pmid in wanted]
        dropped = duplicates = 0
        docs = []
        for rec in records:
            doc, n_dropped, n_dup = self._document(rec, path, allowed)
            docs.append(doc)
            dropped += n_dropped
            duplicates += n_dup
        if self.overlaps == "keep":
            log_kept_overlaps(self.name, split, docs)
        if duplicates:
            log.warning(
                "%s/%s: %d exact duplicate mention lines in %s read once",
                self.name, split, duplicates, path,
            )  # fmt: skip
        self._count_repairs(
            split, dropped, f"overlapping mentions dropped in {path} (overlaps=keep_longest)"
        )
        return docs

    def _document(
        self, rec: _Record, path: Path, allowed: set[str] | None
    ) -> tuple[Document, int, int]:
        """The document of ``rec``, the number of overlapping and of duplicate mentions dropped."""
        assert rec.text is not None
        if allowed is not None:
            for m in rec.mentions:
                if m.label not in allowed:
                    raise self._label_error(path, m.line, m.label)
        kept, duplicates, dropped = settle_mentions(rec.mentions, self.overlaps, path)
        spans = [Span(m.start, m.end, m.label) for m in kept]
        meta = {"source": str(path), "line": rec.line}
        doc = standoff_document(rec.pmid, rec.text, spans, meta, title_end=len(rec.title))
        return doc, dropped, duplicates

    def _pmid_lists(self, records: list[_Record]) -> dict[str, set[str]]:
        """PMIDs per split from the list files; each PMID may belong to one split only."""
        if self._split_pmids is not None:
            return self._split_pmids
        assert self.pmids is not None
        owner: dict[str, tuple[Path, int]] = {}
        lists: dict[str, set[str]] = {}
        for split in self.splits:
            path = self.data_dir / self.pmids[split]
            lists[split] = set()
            for no, line in enumerate(split_lines(read_text(path)), 1):
                pmid = line.strip()
                if not pmid:
                    continue
                if pmid in owner:
                    first, first_line = owner[pmid]
                    raise CorpusFormatError(
                        path,
                        no,
                        f"PMID {pmid} is also listed in {first}:{first_line}",
                        "list each PMID in exactly one split file",
                    )
                owner[pmid] = (path, no)
                lists[split].add(pmid)
        in_corpus = {r.pmid for r in records}
        unlisted = in_corpus - owner.keys()
        absent = owner.keys() - in_corpus
        if unlisted:
            log.warning(
                "%s: %d documents of the corpus are in no split list and are not used (e.g. %s)",
                self.name, len(unlisted), min(unlisted),
            )  # fmt: skip
        if absent:
            log.warning(
                "%s: %d of %d listed PMIDs are not in the corpus file (e.g. %s)",
                self.name, len(absent), len(owner), min(absent),
            )  # fmt: skip
        self._split_pmids = lists
        return lists


def _parse(path: Path, errors: str = "strict") -> list[_Record]:
    """Records of a PubTator file, with every mention checked against the text (``errors``: how
    bytes that are not UTF-8 are decoded, see :func:`~bioner.data.readers.base.read_text`)."""
    records: list[_Record] = []
    seen: dict[str, int] = {}
    cur: _Record | None = None

    def close() -> None:
        nonlocal cur
        if cur is not None:
            if cur.text is None:
                raise CorpusFormatError(
                    path, cur.line, f"document {cur.pmid} has a title but no abstract line", _FORMAT
                )
            records.append(cur)
            cur = None

    for no, line in enumerate(split_lines(read_text(path, errors)), 1):
        if not line.strip():
            close()
            continue
        header = _HEADER.match(line)
        if header:
            pmid, kind, body = header.groups()
            if kind == "t":
                close()
                if pmid in seen:
                    raise CorpusFormatError(
                        path, no, f"PMID {pmid} already began a document at line {seen[pmid]}",
                        "remove the repeated document",
                    )  # fmt: skip
                seen[pmid] = no
                cur = _Record(pmid, body, no)
            elif cur is None or cur.pmid != pmid or cur.text is not None:
                raise CorpusFormatError(
                    path, no, f"abstract line of {pmid} does not follow its title line", _FORMAT
                )
            else:
                cur.text = f"{cur.title} {body}"
            continue
        fields = line.split("\t")
        if cur is None or cur.text is None or len(fields) < 4:
            raise CorpusFormatError(path, no, "not a title, abstract or annotation line", _FORMAT)
        if fields[0] != cur.pmid:
            raise CorpusFormatError(
                path, no, f"annotation of PMID {fields[0]} inside document {cur.pmid}", _FORMAT
            )
        if len(fields) == 4 and not _INT.fullmatch(fields[1]):
            continue  # a relation (e.g. CID); NER does not use it
        cur.mentions.append(_mention(fields, cur, path, no))
    close()
    if not records:
        raise CorpusFormatError(path, None, "the file holds no documents", _FORMAT)
    return records


def _mention(fields: list[str], rec: _Record, path: Path, no: int) -> Mention:
    """A checked mention from its tab-separated fields."""
    assert rec.text is not None
    text = rec.text
    if not 5 <= len(fields) <= 7 or not (_INT.fullmatch(fields[1]) and _INT.fullmatch(fields[2])):
        raise CorpusFormatError(path, no, f"malformed mention line ({len(fields)} fields)", _FORMAT)
    start, end, label = int(fields[1]), int(fields[2]), fields[4].strip()
    if not 0 <= start < end <= len(text):
        raise CorpusFormatError(
            path, no, f"offsets {start}-{end} lie outside the text (length {len(text)})", _OFFSETS
        )
    if text[start:end] != fields[3]:
        raise CorpusFormatError(
            path,
            no,
            f"mention text {fields[3]!r} differs from the text at {start}-{end}: "
            f"{text[start:end]!r}",
            f"correct the offsets or the mention text; {_OFFSETS}",
        )
    if text[start].isspace() or text[end - 1].isspace():
        raise CorpusFormatError(
            path, no, f"mention {fields[3]!r} begins or ends with whitespace", "trim its offsets"
        )
    if start < len(rec.title) < end:
        raise CorpusFormatError(
            path, no, f"mention {fields[3]!r} runs from the title into the abstract", _OFFSETS
        )
    if not label:
        raise CorpusFormatError(path, no, "mention has an empty type", _FORMAT)
    return Mention(start, end, label, no)
