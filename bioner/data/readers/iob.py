"""CoNLL-style token-level corpora: ``token<TAB>tag`` per line, a blank line between sentences.

Accepted input: extra columns between token and tag (the token is the first column, the tag the
last); ``-DOCSTART-`` lines; IOB1, IOB2 or IOBES tags (``scheme`` in the config); LF or CRLF line
endings and a UTF-8 byte-order mark.

Documents. These files usually carry no document boundaries (the MTL-Bioinformatics-2016
conversions of BC5CDR, NCBI-disease and BC2GM have none), so without ``-DOCSTART-`` every sentence
is its own document, with id ``<split>-<n>``: inventing documents by grouping sentences would give
the model context that never existed in the source. With ``-DOCSTART-`` lines, each block between
them is one document (same ids) whose sentences are joined by ``"\\n"``.

Text and words. A sentence's text is its tokens joined by single spaces and its words are exactly
the tokens, so the word view reproduces the file and the counts match the corpus statistics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import (
    CorpusReader,
    check_options,
    has_whitespace,
    read_text,
    split_lines,
)
from bioner.data.tags import SCHEMES, TagError, WordSpan, split_tag, tags_to_word_spans

DEFAULT_FILES = {"train": "train.tsv", "devel": "devel.tsv", "test": "test.tsv"}
_FORMAT = "one token per line as token<TAB>tag (extra columns may sit between them)"


class IOBReader(CorpusReader):
    """Reader for token-level IOB/CoNLL TSV files, one file per split.

    Args:
        name: dataset name.
        data_dir: folder holding the split files.
        entity_types: entity types, or ``None`` to infer them from the training file.
        scheme: tag scheme of the files: ``IOB1``, ``IOB2`` or ``IOBES``.
        on_invalid: ``reject`` an ``I-`` tag after ``O`` or another type (and other invalid
            transitions) with a :class:`CorpusFormatError`, or ``repair`` it the way conlleval
            reads it (the stray tag starts an entity), counting repairs in :attr:`repairs`.
        files: file name per split, relative to ``data_dir``.
        download: public files, see :class:`~bioner.data.readers.base.CorpusReader`.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        entity_types: Sequence[str] | None = None,
        scheme: str = "IOB2",
        on_invalid: str = "reject",
        files: Mapping[str, str] | None = None,
        download: Sequence[Mapping[str, Any]] | None = None,
        filter: Mapping[str, Any] | None = None,  # the config key dataset.filter
        split: Mapping[str, Any] | None = None,
        train_subset: Mapping[str, Any] | None = None,
        relabel: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            name, data_dir, entity_types, download, filter, split, train_subset, relabel
        )
        check_options(
            {"scheme": (scheme, SCHEMES), "on_invalid": (on_invalid, ("reject", "repair"))}
        )
        self.scheme = scheme
        self.on_invalid = on_invalid
        self.files = dict(files or DEFAULT_FILES)
        # With dataset.split, only the source splits are read (a corpus in one file: [train]).
        if not set(self.sources) <= set(self.files):
            raise ValueError(f"files must name the splits {self.sources}, got {self.files}")
        self._prefixes = "BIES" if scheme == "IOBES" else "BI"

    def path(self, split: str) -> Path:
        """The file of ``split``."""
        return self.data_dir / self.files[split]

    def required_files(self) -> list[Path]:
        return [self.path(split) for split in self.sources]

    def split_files(self, split: str) -> list[Path]:
        return [self.path(split)]

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        path = self.path(split)
        lines = split_lines(read_text(path, self.filter.decode_errors))
        by_docstart = any(line.startswith("-DOCSTART-") for line in lines)
        checked: set[str] = set()  # tags whose form, scheme and type passed
        docs: list[Document] = []
        block: list[tuple[list[str], list[WordSpan], int]] = []  # sentences of the open document
        tokens: list[str] = []
        tags: list[str] = []
        line_nos: list[int] = []
        repairs = 0

        def end_sentence() -> None:
            nonlocal repairs
            if not tokens:
                return
            try:
                spans, n = tags_to_word_spans(tags, self.scheme, self.on_invalid)
            except TagError as err:
                line = line_nos[min(err.index, len(line_nos) - 1)]
                raise CorpusFormatError(
                    path,
                    line,
                    f"invalid {self.scheme} tag sequence: {err}",
                    "correct the tag, or set dataset.on_invalid=repair to read it as conlleval "
                    "does (a stray I- tag starts a new entity)",
                ) from err
            repairs += n
            block.append((tokens.copy(), spans, line_nos[0]))
            tokens.clear()
            tags.clear()
            line_nos.clear()

        def end_document() -> None:
            end_sentence()
            if block:
                docs.append(_document(f"{split}-{len(docs)}", block, path))
                block.clear()

        for no, line in enumerate(lines, 1):
            if line.startswith("-DOCSTART-"):
                end_document()
                continue
            if not line.strip():
                if by_docstart:
                    end_sentence()
                else:
                    end_document()
                continue
            parts = line.split("\t")
            if len(parts) < 2:
                raise CorpusFormatError(path, no, "line has no TAB between token and tag", _FORMAT)
            token, tag = parts[0], parts[-1].strip()
            if not token or has_whitespace(token):
                raise CorpusFormatError(
                    path, no, f"token {token!r} is empty or contains whitespace", _FORMAT
                )
            if tag not in checked:
                self._check_tag(tag, path, no, allowed)
                checked.add(tag)
            tokens.append(token)
            tags.append(tag)
            line_nos.append(no)
        end_document()
        if not docs:
            raise CorpusFormatError(path, None, "the file holds no tokens", _FORMAT)
        self._count_repairs(split, repairs, f"invalid tag transitions repaired in {path}")
        return docs

    def _check_tag(self, tag: str, path: Path, line: int, allowed: set[str] | None) -> None:
        """Check a tag's form, its scheme and its type."""
        try:
            prefix, label = split_tag(tag)
        except ValueError as err:
            raise CorpusFormatError(
                path, line, str(err), f"use O or {'-, '.join(self._prefixes)}- plus a type"
            ) from err
        if prefix != "O" and prefix not in self._prefixes:
            raise CorpusFormatError(
                path,
                line,
                f"tag {tag!r} is not a {self.scheme} tag",
                "set dataset.scheme to the scheme the file uses (IOB1, IOB2 or IOBES)",
            )
        if label is not None and allowed is not None and label not in allowed:
            raise self._label_error(path, line, label)


def _document(
    doc_id: str, block: list[tuple[list[str], list[WordSpan], int]], path: Path
) -> Document:
    """One document from its sentences (tokens, word spans, first line number)."""
    words: list[tuple[int, int]] = []
    sentences: list[tuple[int, int]] = []
    spans: list[Span] = []
    pos = 0
    for tokens, word_spans, _ in block:
        if sentences:
            pos += 1  # the "\n" between sentences
        first = len(words)
        start = pos
        for token in tokens:
            words.append((pos, pos + len(token)))
            pos += len(token) + 1
        pos -= 1  # no space after the last token
        sentences.append((start, pos))
        spans.extend(
            Span(words[first + a][0], words[first + b - 1][1], label) for a, b, label in word_spans
        )
    text = "\n".join(" ".join(tokens) for tokens, _, _ in block)
    return Document(
        doc_id, text, spans, sentences, words, {"source": str(path), "line": block[0][2]}
    )
