"""Character edits on a :class:`~bioner.data.document.Document` that keep its gold spans exact.

Every text transform in :mod:`bioner.augment` (augmentation for training, perturbations for
robustness scoring) is a list of :class:`Edit` handed to :func:`apply_edits`, which rewrites the
text and remaps every span, sentence and word range. Rules for a list of edits:

- Edits do not overlap. Two insertions at the same offset are ambiguous and rejected; an
  insertion may touch a replacement (it then goes before or after it, by offset).
- An edit that replaces characters lies either entirely inside one span (``span.start <=
  edit.start`` and ``edit.end <= span.end``) or entirely outside all spans; it never crosses a
  span boundary. Replacing a whole span (``edit`` covering exactly the span) is an entity
  replacement: the span becomes the new text.
- An insertion (``start == end``) strictly inside a span belongs to that span; at a span's start
  or end it belongs to the outside (the text goes before or after the entity). To put text at the
  edge of an entity, replace its first or last character instead.
- Every edit lies inside one sentence; insertions at a sentence's start or end belong to it.
- No span may become empty or start or end with whitespace (it would no longer fall on words).

Spans keep their order and their labels, so ``new.spans[i]`` is the remapped ``old.spans[i]``:
the correspondence is positional and :meth:`EditResult.span_pairs` returns it.

Words untouched by the edits keep their (shifted) ranges. The new text of each edit, together with
the words it overlaps (and, for an insertion, the words it touches: a letter inserted at the end of
a word joins it), is re-segmented with :func:`bioner.data.tokenize.word_ranges`; edits that only
touch each other are segmented apart. Finally words are refined at span boundaries with
:func:`bioner.data.tokenize.split_at`, as the readers do.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from bioner.data.document import Document, Range, Span
from bioner.data.tokenize import split_at, word_ranges


class EditError(ValueError):
    """A list of edits breaks one of the rules in :mod:`bioner.augment.edits`."""


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace ``text[start:end]`` by ``new`` (an insertion when ``start == end``).

    Attributes:
        start: first character replaced (0-based).
        end: one past the last character replaced.
        new: the replacement text; ``""`` deletes.
    """

    start: int
    end: int
    new: str

    @property
    def delta(self) -> int:
        """Change in text length."""
        return len(self.new) - (self.end - self.start)


@dataclass(frozen=True, slots=True)
class EditResult:
    """A transformed document and the one it came from.

    Attributes:
        original: the input document (unchanged).
        document: the new document; ``document.spans[i]`` corresponds to ``original.spans[i]``.
        n_edits: how many edits were applied (0: the text is unchanged).
    """

    original: Document
    document: Document
    n_edits: int

    def span_pairs(self) -> list[tuple[Span, Span]]:
        """``(old span, new span)`` for every gold span, in order; none is dropped."""
        return list(zip(self.original.spans, self.document.spans, strict=True))

    def changed_spans(self) -> list[bool]:
        """For each span, whether its text or label differs from the original's."""
        old_text, new_text = self.original.text, self.document.text
        return [
            a.text(old_text) != b.text(new_text) or a.label != b.label for a, b in self.span_pairs()
        ]


def _check(doc: Document, edits: list[Edit]) -> None:
    """Raise :class:`EditError` when ``edits`` (sorted) break a rule of the module docstring."""
    n = len(doc.text)
    prev: Edit | None = None
    span_starts = [s.start for s in doc.spans]
    # reach[k]: the furthest end among spans[:k + 1] (non-decreasing), so that the spans an edit
    # may touch are found walking back from the last span starting before the edit's end.
    reach = list(accumulate((s.end for s in doc.spans), max))
    sent_starts = [s for s, _ in doc.sentences]
    for ed in edits:
        where = f"document {doc.id}: edit ({ed.start}, {ed.end}, {ed.new!r})"
        if not 0 <= ed.start <= ed.end <= n:
            raise EditError(f"{where} is out of range (text has {n} characters)")
        if prev is not None and (
            prev.end > ed.start or prev.start == prev.end == ed.start == ed.end
        ):
            raise EditError(f"{where} overlaps edit ({prev.start}, {prev.end}, {prev.new!r})")
        prev = ed
        # Spans starting before the edit's end, back to the first that reaches past its start
        # (spans may nest, so not only the nearest one); an insertion never crosses a boundary:
        # it is inside or outside.
        k = bisect_left(span_starts, ed.end) - 1 if ed.start < ed.end else -1
        while k >= 0 and reach[k] > ed.start:
            span = doc.spans[k]
            k -= 1
            overlaps = ed.start < span.end and span.start < ed.end
            inside = span.start <= ed.start and ed.end <= span.end
            if overlaps and not inside:
                raise EditError(
                    f"{where} crosses the boundary of span {span} "
                    f"({span.text(doc.text)!r}); edit inside the span or outside it, or replace "
                    "the whole span"
                )
        # Insertions at a sentence's start or end count as inside it.
        j = bisect_right(sent_starts, ed.start) - 1
        if j < 0 or ed.end > doc.sentences[j][1]:
            raise EditError(
                f"{where} does not lie inside one sentence; edits must stay within a sentence"
            )


class _OffsetMap:
    """Old character offsets to new ones under a sorted, valid list of edits."""

    def __init__(self, edits: list[Edit]) -> None:
        self.edits = edits
        self.starts = [e.start for e in edits]
        self.ends = [e.end for e in edits]
        self.cum = [0]
        for e in edits:
            self.cum.append(self.cum[-1] + e.delta)

    def __call__(self, p: int, after_insertions: bool) -> int:
        """New offset of old offset ``p`` (``p`` must not lie strictly inside an edit).

        ``after_insertions`` says whether text inserted exactly at ``p`` comes before the new
        offset (``True``: ``p`` is a start that the insertion precedes) or after it.
        """
        k = bisect_left(self.ends, p)  # edits ending before p are all before it
        while k < len(self.edits) and self.ends[k] == p:
            ed = self.edits[k]
            if ed.start == p and not after_insertions:
                break
            k += 1
        return p + self.cum[k]

    def new_range(self, k: int) -> Range:
        """The new range of the replacement text of edit ``k``."""
        start = self.edits[k].start + self.cum[k]
        return start, start + len(self.edits[k].new)

    def containing(self, p: int) -> int | None:
        """Index of the edit with ``start < p < end``, if any."""
        k = bisect_right(self.starts, p) - 1
        if k >= 0 and self.edits[k].start < p < self.edits[k].end:
            return k
        return None


def apply_edits(doc: Document, edits: Sequence[Edit]) -> EditResult:
    """Apply ``edits`` to ``doc`` and remap its spans, sentences and words exactly.

    Args:
        doc: a valid document; it is not modified.
        edits: edits in offsets of ``doc.text``, in any order, following the module's rules.

    Returns:
        The new document (same id, a copy of ``meta``) with the remapped ranges, validated.

    Raises:
        EditError: the edits break a rule (the message names the document and the edit).
    """
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    _check(doc, ordered)
    ordered = [e for e in ordered if e.start != e.end or e.new]  # empty insertions do nothing
    if not ordered:
        copy = Document(
            doc.id, doc.text, list(doc.spans), list(doc.sentences), list(doc.words), dict(doc.meta)
        )
        return EditResult(doc, copy, 0)

    pieces, prev = [], 0
    for ed in ordered:
        pieces += [doc.text[prev : ed.start], ed.new]
        prev = ed.end
    pieces.append(doc.text[prev:])
    text = "".join(pieces)
    move = _OffsetMap(ordered)

    spans = []
    for span in doc.spans:
        # Insertions at a span's edges stay outside it.
        start, end = move(span.start, True), move(span.end, False)
        new_text = text[start:end]
        if not new_text or new_text != new_text.strip():
            raise EditError(
                f"document {doc.id}: the edits turn span {span} ({span.text(doc.text)!r}) into "
                f"{new_text!r}; a span must keep at least one character and no edge whitespace"
            )
        spans.append(Span(start, end, span.label))

    sentences = []
    prev_end = -1
    for s, e in doc.sentences:
        # Insertions at a sentence's edges belong to it, unless the previous sentence ends there.
        start, end = move(s, s == prev_end), move(e, True)
        prev_end = e
        seg = text[start:end]
        stripped = seg.lstrip()
        if not stripped:
            raise EditError(
                f"document {doc.id}: the edits leave sentence ({s}, {e}) without any text"
            )
        start += len(seg) - len(stripped)
        sentences.append((start, start + len(stripped.rstrip())))

    words = _remap_words(doc.words, ordered, move, text)
    words = split_at(words, [b for span in spans for b in (span.start, span.end)])
    new = Document(doc.id, text, spans, sentences, words, dict(doc.meta))
    new.validate()
    return EditResult(doc, new, len(ordered))


def _remap_words(words: list[Range], edits: list[Edit], move: _OffsetMap, text: str) -> list[Range]:
    """Shift the words no edit touches; re-segment the new text around every edit."""
    starts = [s for s, _ in words]
    ends = [e for _, e in words]
    touched: set[int] = set()
    dirty: list[Range] = []
    for k, ed in enumerate(edits):
        # Words sharing a character with the edit, or touching an insertion point (an inserted
        # letter next to a word joins it).
        if ed.start == ed.end:
            lo, hi = bisect_left(ends, ed.start), bisect_right(starts, ed.start)
        else:
            lo, hi = bisect_right(ends, ed.start), bisect_left(starts, ed.end)
        touched.update(range(lo, hi))
        dirty.append(move.new_range(k))
    for i in touched:
        # A word edge strictly inside a replaced range moves to that range's new edge.
        s, e = words[i]
        k_s, k_e = move.containing(s), move.containing(e)
        new_s = move.new_range(k_s)[0] if k_s is not None else move(s, False)
        new_e = move.new_range(k_e)[1] if k_e is not None else move(e, True)
        dirty.append((new_s, new_e))
    out = [(move(s, False), move(e, True)) for i, (s, e) in enumerate(words) if i not in touched]
    for lo, hi in _merge(dirty):
        out.extend(word_ranges(text, lo, hi))
    return sorted(out)


def _merge(ranges: list[Range]) -> list[Range]:
    """Union of overlapping ranges, sorted.

    Ranges that only touch stay apart, so the boundary between two adjacent edits (or an edit and
    an untouched word) stays a word boundary even where no whitespace separates them.
    """
    out: list[Range] = []
    for s, e in sorted(ranges):
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
