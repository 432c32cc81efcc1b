"""What readers of standoff corpora share: raw text with mentions in character offsets.

PubTator files, brat ``.txt`` + ``.ann`` folders and BioC XML give a document's text and its
mentions as offsets into it; words and sentences are computed here. Words come from
:mod:`bioner.data.tokenize`, split further at every mention boundary; sentences from
:mod:`bioner.data.sentences` (rules, or one per line), never cutting a mention. Those mention
boundaries serve training; documents that are scored (devel, test, a held-out fold) are segmented
afresh without them (:func:`gold_free`): a gold mention inside a word (``Na`` in
``Na+/K+-ATPase``) is then found only if the model's own segmentation finds it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioner.data.document import GOLD_FREE_WORDS, Document, Span, flat_layer, overlaps
from bioner.data.errors import CorpusFormatError
from bioner.data.readers.base import CorpusReader, check_options
from bioner.data.sentences import split_sentences
from bioner.data.tokenize import split_at, word_ranges

log = logging.getLogger(__name__)

#: ``dataset.overlaps``: what to do with mentions that share characters (see
#: :func:`resolve_overlaps`).
OVERLAPS = ("keep", "keep_longest", "error")
#: ``dataset.discontinuous``: what a mention of several fragments becomes (see
#: :func:`mention_pieces`).
DISCONTINUOUS = ("error", "fragments", "span", "skip")

# Document.meta keys that say how a document's sentences were made, so that gold_free repeats it.
TITLE_END = "title_end"
BREAKS = "sentence_breaks"
BY_LINE = "sentences_by_line"


def ignored_types(ignore_types: Sequence[str], configured: Sequence[str] | None) -> set[str]:
    """``dataset.ignore_types`` as a set, checked against the configured entity types."""
    ignored = {str(t) for t in ignore_types}
    both = sorted(ignored & set(configured or ()))
    if both:
        raise ValueError(f"types {both} are both entity types and ignore_types")
    return ignored


@dataclass
class Mention:
    """A mention as read, with where it was read (for messages): the line of the file, or, in a
    file without lines to speak of (XML), ``where`` ("document 1, annotation 7")."""

    start: int
    end: int
    label: str
    line: int | None
    where: str = ""

    def source(self) -> str:
        """`` of line N`` or `` (where)``, to follow the mention in a message."""
        if self.line is not None:
            return f" of line {self.line}"
        return f" ({self.where})" if self.where else ""


@dataclass
class Fixups:
    """What reading one split left out or fixed, said once per split (:meth:`report`)."""

    trimmed: int = 0
    mismatched: int = 0
    discontinuous: int = 0
    duplicates: int = 0
    dropped_overlaps: int = 0
    ignored_types: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def report(self, reader: CorpusReader, split: str, discontinuous: str) -> None:
        """Log what was skipped; count the repairs in ``reader.repairs``, each with a warning."""
        name = reader.name
        if self.skipped:
            found = ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items()))
            log.info("%s/%s: skipped (not mentions): %s", name, split, found)
        if self.ignored_types:
            found = ", ".join(f"{n} {t}" for t, n in sorted(self.ignored_types.items()))
            log.info("%s/%s: mentions of ignore_types left out: %s", name, split, found)
        if self.duplicates:
            log.warning(
                "%s/%s: %d mentions with the offsets and type of another read once",
                name, split, self.duplicates,
            )  # fmt: skip
        reader._count_repairs(split, self.trimmed, "mentions trimmed of surrounding whitespace")
        reader._count_repairs(
            split, self.mismatched, "mentions whose text differs from their offsets skipped"
        )
        reader._count_repairs(
            split,
            self.discontinuous,
            f"discontinuous mentions read as discontinuous={discontinuous}",
        )
        reader._count_repairs(
            split, self.dropped_overlaps, "overlapping mentions dropped (overlaps=keep_longest)"
        )


def mention_pieces(
    fragments: list[tuple[int, int]],
    text: str,
    discontinuous: str,
    fixups: Fixups,
    path: Path,
    line: int | None,
    what: str,
) -> list[tuple[int, int]]:
    """The spans a mention of ``fragments`` (offsets checked against ``text``) becomes.

    Fragments separated by whitespace alone are joined (an annotation tool splits a selection at
    each line break it crosses) and whitespace at either end is trimmed (counted in
    ``fixups.trimmed``). What is then still in several pieces is discontinuous: ``error`` (a
    :class:`CorpusFormatError` naming ``path``, ``line`` and ``what``, the mention), or, counted,
    ``fragments`` (each piece), ``span`` (one span from the first piece to the last) or ``skip``
    (none).

    Raises:
        CorpusFormatError: fragments overlap, a piece is all whitespace, or a discontinuous
            mention under ``error``.
    """
    pieces: list[tuple[int, int]] = []
    for s, e in sorted(fragments):
        if pieces and s < pieces[-1][1]:
            raise CorpusFormatError(
                path, line, f"{what}: fragments {pieces[-1][0]}-{pieces[-1][1]} and {s}-{e} "
                "overlap", "give each character to one fragment",
            )  # fmt: skip
        if pieces and not text[pieces[-1][1] : s].strip():
            pieces[-1] = (pieces[-1][0], e)
        else:
            pieces.append((s, e))
    trimmed = []
    for s, e in pieces:
        inner = text[s:e]
        if not inner.strip():
            raise CorpusFormatError(
                path, line, f"{what}: fragment {s}-{e} covers only whitespace",
                "remove the fragment, or the annotation",
            )  # fmt: skip
        trimmed.append((s + len(inner) - len(inner.lstrip()), e - len(inner) + len(inner.rstrip())))
    if trimmed != pieces:
        fixups.trimmed += 1
    if len(trimmed) == 1:
        return trimmed
    if discontinuous == "error":
        shown = ", ".join(f"{text[s:e]!r} ({s}-{e})" for s, e in trimmed)
        raise CorpusFormatError(
            path,
            line,
            f"{what} is discontinuous: {shown}",
            "a tagger marks continuous spans: set dataset.discontinuous=fragments (each "
            "fragment a mention of its type), span (one mention from the first fragment "
            "to the last) or skip (left out); each is counted and logged",
        )
    fixups.discontinuous += 1
    if discontinuous == "skip":
        return []
    if discontinuous == "span":
        return [(trimmed[0][0], trimmed[-1][1])]
    return trimmed


def settle_mentions(
    mentions: list[Mention], policy: str, path: Path
) -> tuple[list[Mention], int, int]:
    """``mentions`` read once each (the first of those with the same offsets and type), then
    :func:`resolve_overlaps` under ``policy``; with the numbers of duplicates and of mentions
    dropped for overlapping."""
    unique = list({(m.start, m.end, m.label): m for m in reversed(mentions)}.values())
    unique.reverse()  # first occurrences, in file order
    kept = resolve_overlaps(unique, policy, path)
    return kept, len(mentions) - len(unique), len(unique) - len(kept)


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
                    f"mention [{m.start}, {m.end}) {m.label}"
                    f"{m.source() if m.line is None else ''} overlaps mention "
                    f"[{last.start}, {last.end}) {last.label}{last.source()}",
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
    forced = [*meta.get(BREAKS, ()), *([title_end] if title_end else [])]
    return split_sentences(text, spans, forced=forced, by_line=bool(meta.get(BY_LINE)))


def standoff_document(
    doc_id: str,
    text: str,
    spans: Iterable[Span],
    meta: dict[str, Any],
    title_end: int | None = None,
    by_line: bool = False,
    breaks: Sequence[int] = (),
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
        breaks: more offsets where a sentence always ends (the ends of BioC passages).
    """
    spans = sorted(spans)
    meta = dict(meta)
    if title_end is not None:
        meta[TITLE_END] = title_end
    if by_line:
        meta[BY_LINE] = True
    if breaks:
        meta[BREAKS] = list(breaks)
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


class StandoffReader(CorpusReader):
    """A reader of raw text with mentions in offsets (PubTator, brat, BioC): its documents are
    made by :func:`standoff_document`, and scored ones are segmented afresh by :func:`gold_free`."""

    def evaluation_document(self, doc: Document) -> Document:
        """``doc`` segmented from its text alone (:func:`gold_free`; a title or passage still ends
        a sentence): its gold spans may now start or end inside a word."""
        return gold_free(doc)

    def keep_mention_options(
        self, discontinuous: str, overlaps: str, on_mismatch: str, ignore_types: Sequence[str]
    ) -> None:
        """Check and keep how mentions are read, for readers whose mentions may have several
        fragments (brat, BioC): ``discontinuous``, ``overlaps``, ``on_mismatch`` and
        ``ignore_types`` (:func:`ignored_types`)."""
        check_options(
            {
                "discontinuous": (discontinuous, DISCONTINUOUS),
                "overlaps": (overlaps, OVERLAPS),
                "on_mismatch": (on_mismatch, ("error", "skip")),
            }
        )
        self.discontinuous = discontinuous
        self.overlaps = overlaps
        self.on_mismatch = on_mismatch
        self.ignore_types = ignored_types(ignore_types, self._configured)
