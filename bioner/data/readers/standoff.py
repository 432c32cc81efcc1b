"""What readers of standoff corpora share: raw text with mentions in character offsets.

PubTator files and brat ``.txt`` + ``.ann`` folders give a document's text and its mentions
as offsets into it; words and sentences are computed here. Words come from
:mod:`bioner.data.tokenize`, split further at every mention boundary; sentences from
:mod:`bioner.data.sentences` (rules, or one per line), never cutting a mention. Those mention
boundaries serve training; documents that are scored (devel, test, a held-out fold) are segmented
afresh without them (:func:`gold_free`): a gold mention inside a word (``Na`` in
``Na+/K+-ATPase``) is then found only if the model's own segmentation finds it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bioner.data.document import GOLD_FREE_WORDS, Document, Span, flat_layer, overlaps
from bioner.data.errors import CorpusFormatError
from bioner.data.sentences import split_sentences
from bioner.data.tokenize import split_at, word_ranges

log = logging.getLogger(__name__)

#: ``dataset.overlaps``: what to do with mentions that share characters (see
#: :func:`resolve_overlaps`).
OVERLAPS = ("keep", "keep_longest", "error")

# Document.meta keys that say how a document's sentences were made, so that gold_free repeats it.
TITLE_END = "title_end"
BY_LINE = "sentences_by_line"


@dataclass
class Mention:
    """A mention as read, with the line of the file that gave it (for messages)."""

    start: int
    end: int
    label: str
    line: int


def resolve_overlaps(mentions: list[Mention], policy: str, path: Path) -> list[Mention]:
    """The mentions to keep under ``policy`` (one of :data:`OVERLAPS`), in the given order.

    ``keep``: all of them; ``keep_longest``: the longest of each overlapping group (the earlier
    on ties); ``error``: all of them, or :class:`CorpusFormatError` at the first that overlaps
    another, naming its line in ``path``.
    """
    if policy == "keep":
        return mentions
    if policy == "error":
        last: Mention | None = None  # the mention reaching furthest right so far
        for m in sorted(mentions, key=lambda m: (m.start, m.end)):
            if last is not None and m.start < last.end:
                raise CorpusFormatError(
                    path,
                    m.line,
                    f"mention [{m.start}, {m.end}) {m.label} overlaps mention "
                    f"[{last.start}, {last.end}) {last.label} of line {last.line}",
                    "set dataset.overlaps=keep to keep every mention (module.head=multilabel "
                    "learns nested ones), keep_longest to keep the longest of overlapping "
                    "mentions, or remove one of them",
                )
            if last is None or m.end > last.end:
                last = m
        return mentions
    by_span = {Span(m.start, m.end, m.label): m for m in mentions}
    return [by_span[s] for s in flat_layer(list(by_span))]


def log_kept_overlaps(name: str, split: str, docs: list[Document]) -> None:
    """Say how many of the gold mentions of ``docs`` (``overlaps=keep``) overlap another, by kind
    (:func:`~bioner.data.document.overlaps`), when any does."""
    kinds = [overlaps(doc.spans) for doc in docs]
    counts = {k: sum(c[k] for c in kinds) for k in kinds[0]} if kinds else {}
    if any(counts.values()):
        found = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
        log.info("%s/%s: kept every gold mention: %s", name, split, found)


def _sentences(text: str, spans: Sequence[Span], meta: dict[str, Any]) -> list[tuple[int, int]]:
    title_end = meta.get(TITLE_END)
    return split_sentences(
        text, spans, forced=[title_end] if title_end else [], by_line=bool(meta.get(BY_LINE))
    )


def standoff_document(
    doc_id: str,
    text: str,
    spans: Iterable[Span],
    meta: dict[str, Any],
    title_end: int | None = None,
    by_line: bool = False,
) -> Document:
    """A training document of ``text`` with gold ``spans``: words split at every span boundary,
    sentences that cut no span.

    Args:
        doc_id: the document's id.
        text: its text; every offset indexes it.
        spans: its gold spans, in any order.
        meta: extras for :attr:`Document.meta` (source file, line).
        title_end: the end of a title, where a sentence always ends (PubTator).
        by_line: each line is a sentence (lines a span runs across are merged), instead of the
            splitter's rules.
    """
    spans = sorted(spans)
    meta = dict(meta)
    if title_end is not None:
        meta[TITLE_END] = title_end
    if by_line:
        meta[BY_LINE] = True
    words = split_at(word_ranges(text), [b for s in spans for b in (s.start, s.end)])
    return Document(doc_id, text, spans, _sentences(text, spans, meta), words, meta)


def gold_free(doc: Document) -> Document:
    """``doc`` with words and sentences computed from its text alone, as
    :func:`standoff_document` made them but blind to the spans (a title still ends a sentence);
    its gold spans are unchanged and may now start or end inside a word."""
    return Document(
        doc.id,
        doc.text,
        list(doc.spans),
        _sentences(doc.text, (), doc.meta),
        word_ranges(doc.text),
        {**doc.meta, GOLD_FREE_WORDS: True},
    )
