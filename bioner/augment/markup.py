"""Documents written and read as text with inline entity marks: ``[aspirin|Chemical] relieves``.

:func:`mark` shows what a transform did (originals beside augmented text, spans visible);
:func:`from_marked` builds small documents for tests and examples without counting offsets.
"""

from __future__ import annotations

import re

from bioner.data.document import Document, Span
from bioner.data.sentences import split_sentences
from bioner.data.tokenize import split_at, word_ranges

_MARK = re.compile(r"\[([^\[\]|]+)\|([^\[\]|]+)\]")


def mark(doc: Document, start: int = 0, end: int | None = None) -> str:
    """``doc.text[start:end]`` with every span inside it written as ``[text|Label]``."""
    stop = len(doc.text) if end is None else end
    pieces, prev = [], start
    for span in doc.spans_in(start, stop):
        pieces += [doc.text[prev : span.start], f"[{span.text(doc.text)}|{span.label}]"]
        prev = span.end
    pieces.append(doc.text[prev:stop])
    return "".join(pieces)


def from_marked(marked: str, doc_id: str = "doc") -> Document:
    """A validated document from text with ``[mention|Label]`` marks.

    Words come from :func:`~bioner.data.tokenize.word_ranges` refined at span boundaries and
    sentences from :func:`~bioner.data.sentences.split_sentences`, as the document-level readers
    make them.

    Raises:
        ValueError: a bracket or ``|`` is left over outside a well-formed mark.
    """
    pieces, spans, prev, pos = [], [], 0, 0
    for m in _MARK.finditer(marked):
        pieces.append(marked[prev : m.start()])
        pos += m.start() - prev
        mention, label = m.group(1), m.group(2)
        spans.append(Span(pos, pos + len(mention), label))
        pieces.append(mention)
        pos += len(mention)
        prev = m.end()
    pieces.append(marked[prev:])
    text = "".join(pieces)
    leftover = _MARK.sub("", marked)
    if any(c in leftover for c in "[]|"):
        raise ValueError(f"malformed mark in {marked!r}; write mentions as [text|Label]")
    words = split_at(word_ranges(text), [b for s in spans for b in (s.start, s.end)])
    doc = Document(doc_id, text, spans, split_sentences(text, spans), words)
    doc.validate()
    return doc
