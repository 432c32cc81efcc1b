"""Word segmentation with character offsets for document-level corpora and raw text.

The tokenizer is deliberately simple and reversible: a word is a run of letters, digits and
combining marks, or a single punctuation character; whitespace separates words and belongs to
none. Every word is a ``(start, end)`` range into the text (end exclusive), so words never alter
the text.

Gold spans do not always fall on these words (BC5CDR annotates ``DA`` inside ``DA1`` and ``5-HT``
inside ``5-HT6``), so readers refine the words with :func:`split_at` at every span boundary; word
tags are then lossless. At inference time the same :func:`word_ranges` runs on raw text without
that refinement.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable

from bioner.data.document import Range


def _combining_marks() -> str:
    """A character class body of the combining marks (Unicode category M) of the Basic
    Multilingual Plane: the accent of a decomposed "é" (``e`` + U+0301), Indic vowel signs."""
    out, start, prev = [], None, None
    for code in range(0x10000):
        if unicodedata.category(chr(code)).startswith("M"):
            if start is None or code != prev + 1:
                if start is not None:
                    out.append((start, prev))
                start = code
            prev = code
    out.append((start, prev))
    return "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in out)


# Letters, digits and combining marks form runs (a decomposed "Barré" is one word, as BERT's
# pre-tokenizer has it, not "Barre" and a lone accent); anything else that is not whitespace
# (punctuation, symbols, "_") is a word of its own, so "5-HT6" gives "5", "-", "HT6".
_WORD = re.compile(rf"(?:[^\W_]|[{_combining_marks()}])+|\S")


def word_ranges(text: str, start: int = 0, end: int | None = None) -> list[Range]:
    """Words of ``text[start:end]`` as absolute ``(start, end)`` offsets into ``text``.

    Args:
        text: the text to segment.
        start: first character to consider.
        end: one past the last character to consider (default: the end of the text).

    Returns:
        Sorted, non-overlapping, non-empty character ranges; whitespace is in none of them.
    """
    stop = len(text) if end is None else end
    return [m.span() for m in _WORD.finditer(text, start, stop)]


def split_at(words: list[Range], boundaries: Iterable[int]) -> list[Range]:
    """Split ``words`` at every boundary offset that falls strictly inside a word.

    Boundaries at a word edge or in whitespace change nothing, so the result is the coarsest
    segmentation that is finer than ``words`` and has a word edge at every boundary that touches a
    word.

    Args:
        words: sorted, non-overlapping character ranges.
        boundaries: character offsets (span starts and ends), in any order, duplicates allowed.

    Returns:
        The refined, sorted word ranges.
    """
    cuts = sorted(set(boundaries))
    if not cuts:
        return list(words)
    out: list[Range] = []
    for s, e in words:
        i = bisect_right(cuts, s)
        if i == len(cuts) or cuts[i] >= e:  # the common case: no cut inside this word
            out.append((s, e))
            continue
        prev = s
        while i < len(cuts) and cuts[i] < e:
            out.append((prev, cuts[i]))
            prev = cuts[i]
            i += 1
        out.append((prev, e))
    return out
