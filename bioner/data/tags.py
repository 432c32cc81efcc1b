"""Word-level tag views of spans: IOB1, IOB2 and IOBES, converted both ways without loss.

Tags are strings ``O`` or ``P-Type`` with prefix ``P`` in ``B I E S``. A *word span* is a triple
``(first_word, end_word, type)`` with ``end_word`` exclusive.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from bioner.data.document import Range, Span

SCHEMES = ("IOB1", "IOB2", "IOBES")
WordSpan = tuple[int, int, str]


class TagError(ValueError):
    """An invalid tag sequence under ``on_invalid="reject"``; ``index`` is the offending word."""

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tagging scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-Chemical"`` -> ``("B", "Chemical")``; ``"O"`` -> ``("O", None)``."""
    if tag == "O":
        return "O", None
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in "BIES" or len(prefix) != 1 or not label:
        raise ValueError(f"malformed tag {tag!r}: expected 'O' or 'B-', 'I-', 'E-', 'S-' + type")
    return prefix, label


def entity_types_of(labels: Sequence[str]) -> list[str]:
    """The entity types of a tag list (``["O", "B-Chemical", "I-Chemical"]`` -> ``["Chemical"]``),
    in order of first appearance."""
    types = (split_tag(label)[1] for label in labels)
    return list(dict.fromkeys(t for t in types if t is not None))


def label_list(entity_types: list[str], scheme: str = "IOB2") -> list[str]:
    """All tags of ``scheme`` over ``entity_types``, ``O`` first (its id is 0)."""
    _check_scheme(scheme)
    prefixes = "BIES" if scheme == "IOBES" else "BI"
    return ["O"] + [f"{p}-{t}" for t in entity_types for p in prefixes]


def word_spans_to_tags(n_words: int, spans: list[WordSpan], scheme: str = "IOB2") -> list[str]:
    """Tags for ``n_words`` words carrying the non-overlapping word ``spans``."""
    _check_scheme(scheme)
    tags = ["O"] * n_words
    prev_end, prev_type = -1, None
    for first, end, label in sorted(spans):
        if first < prev_end:
            raise ValueError(f"overlapping word spans at word {first}")
        if scheme == "IOBES" and end - first == 1:
            tags[first] = f"S-{label}"
        else:
            # IOB1 uses B- only where an entity directly follows one of the same type.
            begin = "B" if scheme != "IOB1" or (prev_end == first and prev_type == label) else "I"
            tags[first] = f"{begin}-{label}"
            for i in range(first + 1, end):
                tags[i] = f"I-{label}"
            if scheme == "IOBES":
                tags[end - 1] = f"E-{label}"
        prev_end, prev_type = end, label
    return tags


def tags_to_word_spans(
    tags: list[str], scheme: str = "IOB2", on_invalid: str = "repair"
) -> tuple[list[WordSpan], int]:
    """Decode tags into word spans.

    Invalid transitions (an ``I-`` after ``O`` or another type in IOB2, an IOBES entity without
    its ``B-``/``E-``) are either repaired, the way conlleval reads them (the stray tag starts a
    new entity, a missing end closes the entity at the last word that continued it), or rejected
    with :class:`TagError`.

    Returns:
        The spans and the number of repairs made.
    """
    _check_scheme(scheme)
    if on_invalid not in ("repair", "reject"):
        raise ValueError(f"on_invalid must be 'repair' or 'reject', not {on_invalid!r}")
    spans: list[WordSpan] = []
    repairs = 0
    start, cur = -1, None  # open entity

    def close(end: int) -> None:
        nonlocal start, cur
        if cur is not None:
            spans.append((start, end, cur))
        start, cur = -1, None

    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix == "O":
            if scheme == "IOBES" and cur is not None:
                repairs += _invalid(on_invalid, i, f"entity {cur} not closed by E- before O")
            close(i)
            continue
        continues = cur == label and prefix in ("I", "E")
        if scheme == "IOB1":
            starts = prefix == "B" or not continues
            if prefix in ("E", "S"):
                raise TagError(i, f"tag {tag!r} at word {i} is not an IOB1 tag")
        elif scheme == "IOB2":
            if prefix in ("E", "S"):
                raise TagError(i, f"tag {tag!r} at word {i} is not an IOB2 tag")
            starts = prefix == "B" or not continues
            if prefix == "I" and not continues:
                what = "O" if cur is None else f"{cur}"
                repairs += _invalid(on_invalid, i, f"I-{label} at word {i} follows {what}")
        else:  # IOBES
            starts = prefix in ("B", "S") or not continues
            if prefix in ("I", "E") and not continues:
                repairs += _invalid(on_invalid, i, f"{tag} at word {i} does not continue an entity")
            elif prefix in ("B", "S") and cur is not None:
                repairs += _invalid(on_invalid, i, f"entity {cur} not closed by E- before {tag}")
        if starts:
            close(i)
            start, cur = i, label
        if scheme == "IOBES" and prefix in ("E", "S"):
            close(i + 1)
    if scheme == "IOBES" and cur is not None:
        repairs += _invalid(on_invalid, len(tags), f"entity {cur} not closed by E- at the end")
    close(len(tags))
    return spans, repairs


def _invalid(on_invalid: str, index: int, message: str) -> int:
    if on_invalid == "reject":
        raise TagError(index, message)
    return 1


def convert_tags(tags: list[str], src: str, dst: str, on_invalid: str = "repair") -> list[str]:
    """Re-express a tag sequence from scheme ``src`` in scheme ``dst``."""
    spans, _ = tags_to_word_spans(tags, src, on_invalid)
    return word_spans_to_tags(len(tags), spans, dst)


def char_to_word_spans(words: list[Range], spans: list[Span]) -> list[WordSpan]:
    """Map character spans to word spans; every span boundary must be a word boundary."""
    starts = {s: i for i, (s, _) in enumerate(words)}
    ends = {e: i + 1 for i, (_, e) in enumerate(words)}
    out = []
    for span in spans:
        if span.start not in starts or span.end not in ends:
            raise ValueError(f"span {span} does not fall on word boundaries")
        out.append((starts[span.start], ends[span.end], span.label))
    return out


def snap_to_words(words: list[Range], spans: list[Span]) -> list[WordSpan]:
    """Map character spans to the word spans they overlap (whole words), for gold spans over
    words that were segmented without them (evaluation documents, see
    :data:`bioner.data.document.GOLD_FREE_WORDS`). A span on word boundaries maps exactly; a span
    inside a word takes the whole word; of spans that would share a word, the first is kept.
    """
    starts = [s for s, _ in words]
    out: list[WordSpan] = []
    for span in sorted(spans):
        first = max(bisect_right(starts, span.start) - 1, 0)
        if first < len(words) and words[first][1] <= span.start:
            first += 1  # the span starts in the gap after that word
        end = bisect_left(starts, span.end)
        if first >= end or (out and first < out[-1][1]):
            continue  # on no word, or on a word an earlier span holds
        out.append((first, end, span.label))
    return out


def word_to_char_spans(words: list[Range], spans: list[WordSpan]) -> list[Span]:
    """Map word spans back to character spans over the words' offsets."""
    return [Span(words[first][0], words[end - 1][1], label) for first, end, label in spans]


def spans_to_tags(
    words: list[Range], spans: list[Span], scheme: str = "IOB2", snap: bool = False
) -> list[str]:
    """Word tags for character ``spans`` over ``words``; ``snap``: spans need not fall on word
    boundaries (:func:`snap_to_words`)."""
    word_spans = snap_to_words(words, spans) if snap else char_to_word_spans(words, spans)
    return word_spans_to_tags(len(words), word_spans, scheme)


def tags_to_spans(
    words: list[Range], tags: list[str], scheme: str = "IOB2", on_invalid: str = "repair"
) -> list[Span]:
    """Character spans for word ``tags`` over ``words`` (repairs are applied, not counted)."""
    spans, _ = tags_to_word_spans(tags, scheme, on_invalid)
    return word_to_char_spans(words, spans)
