"""Documents with character-offset spans: the currency of bioner.

A corpus is a list of :class:`Document` per split. Words and tags are *views* of a document,
computed from its text and spans and mapped back to them without loss (see
:mod:`bioner.data.tags`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Document.meta key: the words and sentences were segmented without looking at the gold spans
# (evaluation text, see CorpusReader.evaluation_document), so a gold span may start or end inside
# a word or cross a sentence break; labels and CoNLL columns snap it to the words it overlaps.
GOLD_FREE_WORDS = "gold_free_words"
# Document.meta keys set when several corpora are read as one (MultiCorpusReader, dataset=multi):
# the key of the corpus a document comes from, and the entity types that corpus annotates (a
# tuple). Such a document's O says only that a word is none of *those* types.
CORPUS = "corpus"
ANNOTATED_TYPES = "annotated_types"


@dataclass(frozen=True, order=True, slots=True, repr=False)
class Span:
    """An entity mention: ``text[start:end]`` has type ``label``.

    The one span type of bioner: gold spans, decoded predictions, post-processed predictions and
    the tagger's output are all ``Span``\\ s. A predicted span carries the model's ``score``; a
    normalised one its ``id``. Neither takes part in equality, ordering or hashing, so a
    prediction equals the gold span with the same offsets and type.

    Attributes:
        start: first character, a 0-based offset into the document text.
        end: one past the last character.
        label: the entity type.
        score: the model's confidence in the type (mean over the span's words), in ``[0, 1]``;
            ``None`` for a span no model predicted (gold).
        id: a normalised identifier (set by dictionary normalisation), or ``None``.
    """

    start: int
    end: int
    label: str
    score: float | None = field(default=None, compare=False)
    id: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(
                f"span ({self.start}, {self.end}, {self.label!r}) is empty or negative"
            )

    def __repr__(self) -> str:
        # A gold span reads as before the predicted fields existed: extras only when set.
        extras = "".join(
            f", {name}={value!r}"
            for name, value in (("score", self.score), ("id", self.id))
            if value is not None
        )
        return f"Span(start={self.start}, end={self.end}, label={self.label!r}{extras})"

    def text(self, doc_text: str) -> str:
        """The covered text in ``doc_text``."""
        return doc_text[self.start : self.end]

    def overlaps(self, other: Span) -> bool:
        """Whether the two spans share at least one character."""
        return self.start < other.end and other.start < self.end


Range = tuple[int, int]


@dataclass(slots=True)
class Document:
    """One document of a corpus.

    Attributes:
        id: corpus identifier (PMID, note name, ``split-index`` for corpora without ids).
        text: the full text; every offset below indexes it.
        spans: every gold entity span, sorted; spans may nest in one another or cross (MedMentions
            has both): :func:`overlaps` counts them, :func:`flat_layer` picks a non-overlapping
            layer for a model that tags one label per word.
        sentences: character ranges of sentences, sorted, non-overlapping; every span lies inside
            one sentence.
        words: character ranges of words, sorted, non-overlapping; every span starts at the
            start of a word and ends at the end of a word, so word-level tags are lossless.
        meta: free-form extras (source file, title length, ...).
    """

    id: str
    text: str
    spans: list[Span] = field(default_factory=list)
    sentences: list[Range] = field(default_factory=list)
    words: list[Range] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def word_text(self, i: int) -> str:
        start, end = self.words[i]
        return self.text[start:end]

    def sentence_word_ranges(self) -> list[Range]:
        """For each sentence, the half-open range of indices into :attr:`words` it contains."""
        starts = [w[0] for w in self.words]
        return [(bisect_left(starts, s), bisect_left(starts, e)) for s, e in self.sentences]

    def spans_in(self, start: int, end: int) -> list[Span]:
        """Spans that lie entirely inside ``[start, end)``."""
        starts = [s.start for s in self.spans]
        lo, hi = bisect_left(starts, start), bisect_right(starts, end)
        return [s for s in self.spans[lo:hi] if s.end <= end]

    def validate(self) -> None:
        """Check the invariants in the class docstring; raise ``ValueError`` naming the doc."""
        n = len(self.text)

        def ordered(ranges: list[Range], what: str) -> None:
            prev_end = 0
            for s, e in ranges:
                if not (prev_end <= s < e <= n):
                    raise ValueError(
                        f"document {self.id}: {what} ({s}, {e}) out of order or out of range"
                    )
                prev_end = e

        ordered(self.sentences, "sentence")
        ordered(self.words, "word")
        if self.spans != sorted(self.spans):
            raise ValueError(f"document {self.id}: spans are not sorted")
        for span in self.spans:
            if span.end > n:
                raise ValueError(f"document {self.id}: span {span} ends after the text ({n})")
        word_starts = {s for s, _ in self.words}
        word_ends = {e for _, e in self.words}
        sent_starts = [s for s, _ in self.sentences]
        for span in self.spans:
            if span.start not in word_starts or span.end not in word_ends:
                raise ValueError(
                    f"document {self.id}: span {span} ({span.text(self.text)!r}) does not fall on "
                    "word boundaries"
                )
            i = bisect_right(sent_starts, span.start) - 1
            if i < 0 or span.end > self.sentences[i][1]:
                raise ValueError(f"document {self.id}: span {span} crosses a sentence boundary")
        for s, e in self.words:
            i = bisect_right(sent_starts, s) - 1
            if i < 0 or e > self.sentences[i][1]:
                raise ValueError(f"document {self.id}: word ({s}, {e}) lies outside every sentence")


def judged(doc: Document, spans: Sequence[Span]) -> list[Span]:
    """The spans of ``spans`` that ``doc``'s annotation can judge.

    All of them, unless ``doc.meta`` names the types its corpus annotates (:data:`ANNOTATED_TYPES`):
    then only those of these types. A Chemical predicted in an NCBI-disease abstract is neither
    right nor wrong there, since nobody annotated chemicals in it.
    """
    types = doc.meta.get(ANNOTATED_TYPES)
    if types is None:
        return list(spans)
    return [s for s in spans if s.label in types]


def by_corpus(docs: Sequence[Document]) -> dict[str, tuple[list[int], tuple[str, ...]]]:
    """For documents of several corpora (:data:`CORPUS` in their meta), each corpus's key ->
    the positions of its documents in ``docs`` and the types it annotates; empty otherwise."""
    out: dict[str, tuple[list[int], tuple[str, ...]]] = {}
    for i, doc in enumerate(docs):
        key = doc.meta.get(CORPUS)
        if key is not None:
            out.setdefault(key, ([], tuple(doc.meta.get(ANNOTATED_TYPES, ()))))[0].append(i)
    return out


def count_types(docs: list[Document]) -> Counter[str]:
    """Entity mentions per type over ``docs``."""
    return Counter(span.label for doc in docs for span in doc.spans)


# Kinds of overlap between gold spans, as :func:`overlaps` counts them.
OVERLAP_KINDS = ("nested", "crossing", "same_extent")


def overlaps(spans: list[Span]) -> dict[str, int]:
    """How many of ``spans`` (sorted) overlap another, by kind.

    ``nested``: spans lying inside a longer span; ``crossing``: spans that share characters with
    another span without either containing the other; ``same_extent``: spans with the offsets of
    an earlier span (another type). A span may count under several kinds.
    """
    nested, crossing, same = set(), set(), set()
    for i, a in enumerate(spans):
        for j in range(i + 1, len(spans)):
            b = spans[j]
            if b.start >= a.end:
                break  # sorted by start: no later span reaches a
            if (a.start, a.end) == (b.start, b.end):
                same.add(j)
            elif b.end <= a.end:
                nested.add(j)  # b starts at or after a.start and ends inside a
            elif b.start == a.start:
                nested.add(i)  # same start, b longer (sorted by end within a start)
            else:
                crossing.update((i, j))
    return {"nested": len(nested), "crossing": len(crossing), "same_extent": len(same)}


def flat_layer(spans: list[Span]) -> list[Span]:
    """The longest of each group of overlapping spans (the earlier in ``spans`` on ties), in the
    order of ``spans``: the layer a model with one tag per word can learn.

    Of nested spans the outermost is kept; of crossing ones the longer.
    """
    kept: list[int] = []
    for i in sorted(range(len(spans)), key=lambda i: spans[i].start - spans[i].end):
        s = spans[i]
        if all(s.end <= spans[k].start or spans[k].end <= s.start for k in kept):
            kept.append(i)
    return [spans[i] for i in sorted(kept)]
