"""Writing predicted spans: run predictions (JSONL, CoNLL) and tagger output (four formats).

Run predictions (``write_jsonl``, ``write_conll``) are what training and evaluation write next
to their metrics. Tagger output (:func:`open_writer`, used by ``bioner-predict``) is written one
document at a time, so any number of documents streams through in constant memory; its formats
are described at :data:`OUTPUT_FORMATS`.

Run predictions in JSONL, one document per line::

    {"id": "...", "text": "...", "spans": [{"start": 0, "end": 10, "label": "Chemical",
     "text": "Selegiline"}], "gold": [...]}

``gold`` is present when written with ``include_gold=True``. A text-free copy
(:func:`write_text_free_jsonl`, for archiving a run without the corpus in it, gzipped as
``<split>.jsonl.gz``) keeps ``id``, ``spans`` as ``[start, end, label]`` and, in place of
``text``, ``text_sha256``: the first 16 hex digits of the text's SHA-256. The text and the gold
come back from the corpus (:mod:`bioner.reporting.runs`), checked by :func:`text_matches_hash`::

    {"id": "...", "text_sha256": "3f1c0e9a5b7d2e41", "spans": [[0, 10, "Chemical"]]}

CoNLL, for conlleval and seqeval: one word per line, ``word<TAB>gold<TAB>predicted`` (IOB2 by
default; ``word<TAB>predicted`` without gold), a blank line after each sentence, and a
``-DOCSTART-`` line before each document. Read it with ``conlleval -d '\\t'``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from bioner.data.document import (
    ANNOTATED_TYPES,
    CORPUS,
    GOLD_FREE_WORDS,
    Document,
    Span,
    flat_layer,
)
from bioner.data.tags import spans_to_tags
from bioner.errors import ConfigError, FormatError

log = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"[\t\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


def _check_lengths(docs: Sequence[Document], predictions: Sequence[Sequence[Span]]) -> None:
    if len(docs) != len(predictions):
        raise ValueError(
            f"{len(docs)} documents but {len(predictions)} prediction lists; predictions[i] must "
            "hold the spans predicted for docs[i]"
        )


def _span_record(span: Span, text: str) -> dict[str, Any]:
    record = {"start": span.start, "end": span.end, "label": span.label, "text": span.text(text)}
    if span.score is not None:  # a predicted span: the model's confidence
        record["score"] = round(span.score, 6)
    return record


def prediction_record(span: Span, text: str) -> dict[str, Any]:
    """A predicted span in the tagger's JSONL output (``type``, ``score``; ``id`` when set)."""
    record: dict[str, Any] = {
        "start": span.start,
        "end": span.end,
        "text": span.text(text),
        "type": span.label,
        "score": round(span.score, 6) if span.score is not None else None,
    }
    if span.id is not None:
        record["id"] = span.id
    return record


def write_jsonl(
    path: str | Path,
    docs: Sequence[Document],
    predictions: Sequence[Sequence[Span]],
    include_gold: bool = True,
) -> Path:
    """Write one JSON object per document with its predicted (and gold) character spans.

    Args:
        path: the output file (parent folders are created).
        docs: the documents.
        predictions: ``predictions[i]`` are the spans predicted for ``docs[i]``.
        include_gold: also write each document's own spans under ``gold``.

    Returns:
        The path written.
    """
    _check_lengths(docs, predictions)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for doc, spans in zip(docs, predictions):
            record: dict[str, Any] = {
                "id": doc.id,
                "text": doc.text,
                "spans": [_span_record(s, doc.text) for s in sorted(spans)],
            }
            if include_gold:
                record["gold"] = [_span_record(s, doc.text) for s in doc.spans]
            if ANNOTATED_TYPES in doc.meta:  # dataset=multi: what this document's gold judges
                record[CORPUS] = doc.meta.get(CORPUS)
                record[ANNOTATED_TYPES] = list(doc.meta[ANNOTATED_TYPES])
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def record_document(record: Mapping[str, Any]) -> Document:
    """The gold document of a :func:`read_jsonl` record that stores its text and gold spans,
    with the types its corpus annotates where the record names them (``dataset=multi``), so that
    it is scored as the run scored it."""
    meta = {}
    if record.get(ANNOTATED_TYPES) is not None:
        meta = {CORPUS: record.get(CORPUS), ANNOTATED_TYPES: tuple(record[ANNOTATED_TYPES])}
    return Document(record["id"], record["text"], sorted(record["gold"]), meta=meta)


#: Hex digits of the SHA-256 a text-free record keeps of its text: 64 bits, enough to tell a
#: changed or another corpus's document from the one a run was scored on.
TEXT_HASH_DIGITS = 16

#: The suffix of a text-free predictions file as :func:`bioner.reporting.archive_run` keeps it.
TEXT_FREE_SUFFIX = ".jsonl.gz"


def text_sha256(text: str) -> str:
    """The hex SHA-256 of ``text`` (UTF-8): what a text-free predictions file keeps of it."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def text_matches_hash(text: str, recorded: str) -> bool:
    """Whether ``recorded`` (a text-free record's ``text_sha256``: the hash or a prefix of at
    least :data:`TEXT_HASH_DIGITS` digits) is that of ``text``."""
    return len(recorded) >= TEXT_HASH_DIGITS and text_sha256(text).startswith(recorded)


def predictions_file(run_dir: str | Path, split: str) -> Path:
    """A run's predictions on ``split``: ``predictions/<split>.jsonl`` as the run wrote it, or
    the kept text-free ``<split>.jsonl.gz`` when only that is there (the written name when
    neither is, for the caller's error)."""
    written = Path(run_dir) / "predictions" / f"{split}.jsonl"
    kept = written.with_name(split + TEXT_FREE_SUFFIX)
    return kept if kept.is_file() and not written.is_file() else written


def write_text_free_jsonl(source: str | Path, path: str | Path) -> Path:
    """Copy the predictions file ``source`` (:func:`write_jsonl`'s, or a text-free one) to
    ``path`` without the documents' text and gold spans: ``id``, ``text_sha256`` (the first
    :data:`TEXT_HASH_DIGITS` hex digits) and the predicted spans as ``[start, end, label]``, so
    that a run's predictions can be kept or shared without the corpus in them. A ``path`` ending
    in ``.gz`` is gzipped, with no name or time in the header: the same predictions give the same
    bytes.

    Raises:
        ValueError: a line of ``source`` is not a prediction record (file and line named).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for record in read_jsonl(source):
        text = record["text"]
        kept = {
            "id": record["id"],
            "text_sha256": (record["text_sha256"] if text is None else text_sha256(text))[
                :TEXT_HASH_DIGITS
            ],
            "spans": [[s.start, s.end, s.label] for s in record["spans"]],
        }
        kept.update({k: record[k] for k in (CORPUS, ANNOTATED_TYPES) if k in record})
        lines.append(json.dumps(kept, ensure_ascii=False, separators=(",", ":")) + "\n")
    data = "".join(lines).encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)
    return path


def _span(value: Any) -> Span:
    """A span of a record: ``{"start", "end", "label"[, "score"]}`` (a run's predictions),
    ``{"start", "end", "type"[, "score"]}`` (the tagger's output), or ``[start, end, label]``."""
    if isinstance(value, list):
        if len(value) != 3:
            raise ValueError(f"span {value} is not [start, end, label]")
        return Span(*value)
    score = value.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
    ):
        raise ValueError(f"span score {score!r} is not a number in [0, 1]")
    label = value["label"] if "label" in value else value["type"]
    return Span(value["start"], value["end"], label, score=score, id=value.get("id"))


def _record(line: str) -> dict[str, Any]:
    """One line of a predictions file, its spans as ``Span``\\ s (``text`` ``None`` when
    text-free)."""
    record = json.loads(line)
    if "text" not in record and isinstance(record.get("text_sha256"), str):
        record["text"] = None  # text-free: the corpus holds the text
    text = record["text"]
    for key in ("spans", "gold"):
        if key in record:
            record[key] = [_span(s) for s in record[key]]
            bad = [s for s in record[key] if text is not None and s.end > len(text)]
            if bad:
                raise ValueError(f"{key} span {bad[0]} ends after the text")
    return record


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a file written by :func:`write_jsonl`; ``spans`` and ``gold`` come back as ``Span``\\ s.
    A text-free record (:func:`write_text_free_jsonl`) comes back with ``text`` ``None``; a
    ``.gz`` file is read gzipped.

    Raises:
        ValueError: a line is not such a record, or the file is not UTF-8 (or gzip) text; the
            message names file and line.
    """
    path = Path(path)
    records = []
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    records.append(_record(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                    raise FormatError(
                        f"{path}:{number}: not a bioner prediction record ({err}); each line must "
                        "be a JSON object with id, text (or text_sha256) and spans "
                        "[{start, end, label or type}] (or [[start, end, label]])"
                    ) from err
    except (EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error) as err:
        raise FormatError(
            f"{path}: not a readable predictions file ({err}); a .jsonl file must be UTF-8 JSON "
            "lines, a .jsonl.gz file the same gzipped"
        ) from err
    return records


def _word_tags(doc: Document, spans: Sequence[Span], scheme: str, what: str) -> list[str]:
    # Gold spans of evaluation text segmented without them are written snapped to their words.
    snap = what == "gold" and bool(doc.meta.get(GOLD_FREE_WORDS))
    try:
        # The gold column holds one layer: of nested or crossing gold spans (MedMentions) the
        # longest of each group; the JSONL predictions file keeps every gold span.
        spans = flat_layer(sorted(spans)) if what == "gold" else sorted(spans)
        return spans_to_tags(doc.words, spans, scheme, snap=snap)
    except ValueError as err:
        raise FormatError(
            f"document {doc.id}: {what} spans cannot be written as word tags ({err}); CoNLL "
            "needs spans on word boundaries without overlaps (JSONL has no such limit)"
        ) from err


def write_conll(
    path: str | Path,
    docs: Sequence[Document],
    predictions: Sequence[Sequence[Span]],
    scheme: str = "IOB2",
    include_gold: bool = True,
) -> Path:
    """Write word-level tags, one word per line: ``word<TAB>gold<TAB>predicted``.

    Args:
        path: the output file (parent folders are created).
        docs: the documents; their ``words`` and ``sentences`` give the lines and blocks.
        predictions: ``predictions[i]`` are the spans predicted for ``docs[i]``.
        scheme: tag scheme of the written tags (``IOB1``, ``IOB2``, ``IOBES``).
        include_gold: write the gold tag column.

    Raises:
        ValueError: a word holds a tab or line break, or spans do not fall on word boundaries.

    Returns:
        The path written.
    """
    _check_lengths(docs, predictions)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for doc, spans in zip(docs, predictions):
            f.writelines(conll_lines(doc, spans, scheme, include_gold))
    return path


def conll_lines(
    doc: Document, spans: Sequence[Span], scheme: str = "IOB2", include_gold: bool = True
) -> Iterator[str]:
    """The CoNLL lines of one document (see :func:`write_conll`), each ending in ``\\n``.

    Raises:
        ValueError: a word holds a tab or line break, or spans do not fall on word boundaries.
    """
    pred_tags = _word_tags(doc, spans, scheme, "predicted")
    gold_tags = _word_tags(doc, doc.spans, scheme, "gold") if include_gold else None
    yield "-DOCSTART-\tO\tO\n\n" if include_gold else "-DOCSTART-\tO\n\n"
    blocks = doc.sentence_word_ranges() if doc.sentences else [(0, len(doc.words))]
    for lo, hi in blocks:
        if hi == lo:
            continue
        for i in range(lo, hi):
            word = doc.word_text(i)
            if _LINE_BREAK.search(word):
                raise FormatError(
                    f"document {doc.id}: word {i} ({word!r}) holds a tab or line break, "
                    "which CoNLL cannot represent; fix the corpus tokenisation"
                )
            cols = [word, pred_tags[i]] if gold_tags is None else [word, gold_tags[i], pred_tags[i]]
            yield "\t".join(cols) + "\n"
        yield "\n"


# ---------------------------------------------------------------------- tagger output

#: Tagger output formats. ``jsonl``: one object per document, ``{"id", "text", "spans": [{"start",
#: "end", "text", "type", "score"[, "id"]}]}``, so the output is valid ``jsonl`` input again.
#: ``pubtator``: ``id|t|title``, ``id|a|abstract`` and ``id<TAB>start<TAB>end<TAB>text<TAB>type
#: [<TAB>identifier]`` lines, a blank line after each document; documents read from PubTator keep
#: their title and abstract, any other text is written as the title with an empty abstract, and
#: line breaks and tabs (which PubTator cannot hold) are written as spaces, one for one, so every
#: offset still indexes the written text. ``bioc``: a BioC XML collection, one passage per
#: document at offset 0 holding the whole text (a title passage and an abstract passage for
#: documents read from PubTator or PubMed), one annotation per span (infons ``type``,
#: ``score``, ``identifier``; character offsets). ``conll``: ``word<TAB>tag`` (IOB2) per line, a
#: blank line after each sentence, ``-DOCSTART-`` before each document (scores and identifiers
#: cannot be written). ``brat``: a folder to open in brat and correct, then train on
#: with ``dataset=brat``: ``ID.txt`` (the text) beside ``ID.ann`` (a ``T`` line per span, the
#: span cut into fragments at line breaks as brat does, and an ``AnnotatorNotes`` line with its
#: score and identifier), and ``annotation.conf`` listing the entity types.
OUTPUT_FORMATS = ("jsonl", "pubtator", "bioc", "conll", "brat")
#: The formats that write a folder rather than one stream.
FOLDER_FORMATS = ("brat",)

# Characters XML 1.0 cannot hold at all, even as character references.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class SpanWriter:
    """Writes tagger output to a text stream (or a folder), one document at a time.

    Use as a context manager, or call :meth:`close` (it writes what follows the last document
    but leaves the stream open; the caller owns it).

    Args:
        stream: where to write; ``None`` for a writer of a folder.
    """

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.documents = 0
        self.spans = 0

    def __enter__(self) -> SpanWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, doc: Document, spans: Sequence[Span]) -> None:
        """Write ``doc`` with its predicted ``spans`` (each with its ``score``)."""
        self._write(doc, sorted(spans))
        self.documents += 1
        self.spans += len(spans)

    def _write(self, doc: Document, spans: list[Span]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the output (closing tags); the stream stays open."""
        if self.stream is not None:
            self.stream.flush()


class JsonlWriter(SpanWriter):
    """``jsonl`` tagger output (see :data:`OUTPUT_FORMATS`)."""

    def _write(self, doc: Document, spans: list[Span]) -> None:
        record = {
            "id": doc.id,
            "text": doc.text,
            "spans": [prediction_record(s, doc.text) for s in spans],
        }
        self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")


class PubTatorWriter(SpanWriter):
    """``pubtator`` tagger output (see :data:`OUTPUT_FORMATS`)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.replaced_documents = 0

    def _write(self, doc: Document, spans: list[Span]) -> None:
        if re.search(r"[|\t\n\r]", doc.id) or not doc.id:
            raise FormatError(
                f"document id {doc.id!r} cannot be a PubTator id (empty, or holds '|', a tab or a "
                "line break); give the documents plain ids or choose format=jsonl"
            )
        text = _LINE_BREAK.sub(" ", doc.text)
        if text != doc.text:
            self.replaced_documents += 1
        end = doc.meta.get("title_end")
        if end is not None and end < len(text) and text[end] == " ":
            title, abstract = text[:end], text[end + 1 :]
        else:
            title, abstract = text, ""
        lines = [f"{doc.id}|t|{title}\n", f"{doc.id}|a|{abstract}\n"]
        for s in spans:
            fields = [doc.id, str(s.start), str(s.end), text[s.start : s.end], s.label]
            if s.id is not None:
                fields.append(s.id)
            lines.append("\t".join(fields) + "\n")
        self.stream.write("".join(lines) + "\n")

    def close(self) -> None:
        if self.replaced_documents:
            log.warning(
                "PubTator output: line breaks or tabs in %d documents written as spaces (one for "
                "one, offsets unchanged); use format=jsonl or bioc to keep them",
                self.replaced_documents,
            )
        super().close()


def _xml(text: str, where: str, attribute: bool = False) -> str:
    """``text`` escaped for XML; ``\\r`` (and in attributes tabs and line feeds) as character
    references, since XML parsers normalise them away otherwise."""
    bad = _XML_INVALID.search(text)
    if bad:
        raise FormatError(
            f"{where}: character {bad.group()!r} at {bad.start()} cannot be written in XML 1.0; "
            "use format=jsonl"
        )
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("\r", "&#13;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")
    return text


class BioCWriter(SpanWriter):
    """``bioc`` tagger output (see :data:`OUTPUT_FORMATS`)."""

    def __init__(self, stream: TextIO, source: str = "bioner") -> None:
        super().__init__(stream)
        self.stream.write(
            "<?xml version='1.0' encoding='UTF-8'?>\n"
            "<!DOCTYPE collection SYSTEM 'BioC.dtd'>\n"
            f"<collection><source>{_xml(source, 'source')}</source>"
            f"<date>{time.strftime('%Y%m%d')}</date><key>bioner.key</key>\n"
        )
        self._annotation = 0

    def _write(self, doc: Document, spans: list[Span]) -> None:
        where = f"document {doc.id}"
        # A title and an abstract (PubTator, PubMed input) are two passages, as BioCreative's
        # releases have them: the seam's space between them belongs to neither.
        end = doc.meta.get("title_end")
        if end is not None and 0 < end < len(doc.text) and doc.text[end] == " ":
            passages = [("title", 0, end), ("abstract", end + 1, len(doc.text))]
        else:
            passages = [(None, 0, len(doc.text))]
        held: list[list[Span]] = [[] for _ in passages]  # each span in the passage it starts in
        for s in spans:
            held[max(i for i, (_, start, _) in enumerate(passages) if start <= s.start)].append(s)
        out = [f"<document><id>{_xml(doc.id, where)}</id>"]
        for (kind, start, stop), inside in zip(passages, held):
            out.append("<passage>")
            if kind is not None:
                out.append(f'<infon key="type">{kind}</infon>')
            out.append(f"<offset>{start}</offset><text>{_xml(doc.text[start:stop], where)}</text>")
            out += [self._annotation_xml(s, doc.text, where) for s in inside]
            out.append("</passage>")
        out.append("</document>\n")
        self.stream.write("".join(out))

    def _annotation_xml(self, s: Span, text: str, where: str) -> str:
        self._annotation += 1
        infons = [("type", s.label)]
        if s.score is not None:  # gold spans (bioner-data export) have none
            infons.append(("score", f"{s.score:.6f}"))
        if s.id is not None:
            infons.append(("identifier", s.id))
        return "".join(
            [
                f'<annotation id="{self._annotation}">',
                *(f'<infon key="{k}">{_xml(v, where)}</infon>' for k, v in infons),
                f'<location offset="{s.start}" length="{s.end - s.start}"/>'
                f"<text>{_xml(s.text(text), where)}</text></annotation>",
            ]
        )

    def close(self) -> None:
        self.stream.write("</collection>\n")
        super().close()


class ConllWriter(SpanWriter):
    """``conll`` tagger output (see :data:`OUTPUT_FORMATS` and :func:`conll_lines`)."""

    def __init__(self, stream: TextIO, scheme: str = "IOB2") -> None:
        super().__init__(stream)
        self.scheme = scheme

    def _write(self, doc: Document, spans: list[Span]) -> None:
        self.stream.writelines(conll_lines(doc, spans, self.scheme, include_gold=False))


_FRAGMENT = re.compile(r"\S(?:.*\S)?")  # a line's text between its first and last non-space
_BRAT_NAME_PART = re.compile(r"[^\x00-\x1f/\\:*?\"<>|]+")


class BratWriter(SpanWriter):
    """``brat`` tagger output (see :data:`OUTPUT_FORMATS`) into ``folder``, which must exist.

    Args:
        folder: where the files go.
        entity_types: the types ``annotation.conf`` lists (with any other type written).
    """

    def __init__(self, folder: str | Path, entity_types: Sequence[str] = ()) -> None:
        super().__init__(None)
        self.folder = Path(folder)
        self.types = set(entity_types)
        self._names: dict[str, str] = {}

    def _write(self, doc: Document, spans: list[Span]) -> None:
        name = brat_name(doc.id)
        if name in self._names:
            raise FormatError(
                f"documents {self._names[name]!r} and {doc.id!r} would both be {name}.txt in the "
                "brat folder; give the documents distinct ids"
            )
        self._names[name] = doc.id
        path = self.folder / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(doc.text.encode("utf-8"))  # as is: the offsets index it
        lines = []
        for n, s in enumerate(spans, 1):
            if not _BRAT_NAME_PART.fullmatch(s.label) or re.search(r"\s", s.label):
                raise FormatError(
                    f"document {doc.id}: type {s.label!r} cannot be a brat type (whitespace or "
                    'one of \\:*?"<>|); choose format=jsonl or bioc'
                )
            fragments = [
                (s.start + m.start(), s.start + m.end())
                # brat reads .ann lines with Python's splitlines: no fragment may hold a break.
                for m in _FRAGMENT.finditer(_LINE_BREAK.sub("\n", s.text(doc.text)))
            ]
            offsets = ";".join(f"{a} {b}" for a, b in fragments)
            covered = " ".join(doc.text[a:b] for a, b in fragments)
            lines.append(f"T{n}\t{s.label} {offsets}\t{covered}\n")
            notes = [f"score {s.score:.4f}"] if s.score is not None else []
            if s.id is not None:
                notes.append(f"id {_LINE_BREAK.sub(' ', s.id)}")
            if notes:
                lines.append(f"#{n}\tAnnotatorNotes T{n}\t{'; '.join(notes)}\n")
            self.types.add(s.label)
        path.with_suffix(".ann").write_bytes("".join(lines).encode("utf-8"))

    def close(self) -> None:
        """Write ``annotation.conf``: every entity type, no relations, events or attributes."""
        entities = "".join(f"{t}\n" for t in sorted(self.types))
        conf = f"[entities]\n{entities}\n[relations]\n\n[events]\n\n[attributes]\n"
        (self.folder / "annotation.conf").write_text(conf, encoding="utf-8")


def brat_name(doc_id: str) -> str:
    """The file name (without ``.txt``/``.ann``, ``/`` for sub-folders) of document ``doc_id``
    in a brat folder: the id itself (without a ``.txt`` ending).

    Raises:
        FormatError: the id cannot be a relative file path (empty parts, ``..``, control
            characters or ``\\:*?"<>|``).
    """
    name = doc_id[:-4] if doc_id.lower().endswith(".txt") else doc_id
    parts = name.split("/")
    if not all(_BRAT_NAME_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        raise FormatError(
            f"document id {doc_id!r} cannot be a file name in a brat folder (empty, '.', '..', a "
            'control character or one of \\:*?"<>|); give the documents plain ids (jsonl '
            "input) or choose format=jsonl"
        )
    return name


_WRITERS: dict[str, type[SpanWriter]] = {
    "jsonl": JsonlWriter,
    "pubtator": PubTatorWriter,
    "bioc": BioCWriter,
    "conll": ConllWriter,
}


def open_writer(output_format: str, stream: TextIO) -> SpanWriter:
    """A writer of ``output_format`` (one of :data:`OUTPUT_FORMATS` but :data:`FOLDER_FORMATS`)
    on ``stream``."""
    if output_format not in _WRITERS:
        raise ConfigError(
            f"format={output_format!r}: choose one of "
            f"{', '.join(f for f in OUTPUT_FORMATS if f not in FOLDER_FORMATS)}"
        )
    return _WRITERS[output_format](stream)
