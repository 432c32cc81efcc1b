"""A rule-based sentence splitter that keeps character offsets.

Document-level corpora (PubTator abstracts) come without sentence boundaries, and encoders need
sentence-sized units, so :func:`split_sentences` cuts a text with these rules, applied in order:

1. A *candidate* boundary follows a run of ``.``, ``!`` or ``?`` (optionally followed by closing
   quotes or brackets, as in ``(n = 5).`` or ``"done."``) when whitespace comes next and the first
   character after it is an upper-case letter, a digit or an opening bracket ``( [ {``.
2. A candidate is dropped when the terminator is a single ``.`` ending a common abbreviation
   (``e.g.``, ``i.e.``, ``vs.``, ``Dr.``, ``St.``, ``Fig.``, ``et al.``, ``approx.``, ``no.``, ...;
   see :data:`ABBREVIATIONS`, in lower case or capitalised) or an initial (``J.``, ``J.R.``,
   ``U.S.``): those are followed by capitals or numbers far more often than they end a sentence.
3. A blank line (a line break, optional spaces, another line break) is a candidate too, so
   paragraphs of raw text never share a sentence.
4. ``forced`` offsets (the seam between a title and its abstract) always split.
5. A candidate that would cut a gold span is never made: the two sentences stay one. A forced
   boundary inside a span is an error, since the caller asserted it.

With ``by_line``, rules 1 to 3 give way to one: every line break is a candidate, so each line is
a sentence (for corpora written one sentence per line); rules 4 and 5 still hold.

Sentences are returned trimmed of surrounding whitespace, so every non-space character lies in
exactly one sentence. Known misses, accepted for simplicity: a sentence ending in an abbreviation
or an initial (``... of vitamin C. The``) is not split, and a lower-case sentence start (``...
was high. p53 levels``) is not split either.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate

from bioner.data.document import Range, Span

#: Words (lower-cased, without their final period) after which a period is not a sentence end.
#: ``al`` counts only after ``et``; see :func:`_is_abbreviation`.
ABBREVIATIONS = frozenset(
    {
        "e.g", "i.e", "vs", "v", "cf", "ca", "approx", "resp", "viz", "incl",
        "dr", "mr", "mrs", "ms", "prof", "st", "jr", "sr",
        "fig", "figs", "tab", "eq", "eqs", "ref", "refs", "no", "nos", "vol", "pp", "ch", "sec",
        "suppl", "ed", "eds", "sp", "spp", "subsp", "var", "inc", "ltd", "co", "corp", "dept",
        "univ",
    }
)  # fmt: skip

# Group 1: the terminator run; group 2: whitespace. The lookahead is the next sentence's start.
_CANDIDATE = re.compile(r"([.!?]+)[\"'\u201d\u2019)\]}]*(\s+)(?=[(\[{\w])")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n\s*")
_LINE_BREAK = re.compile(r"\n")
_INITIALS = re.compile(r"(?:[A-Z]\.)*[A-Z]")
_OPENERS = "([{\"'\u201c\u2018"


def _is_abbreviation(text: str, period: int) -> bool:
    """Whether the period at ``text[period]`` ends an abbreviation or an initial."""
    start = period
    while start > 0 and not text[start - 1].isspace():
        start -= 1
    word = text[start:period].lstrip(_OPENERS)
    if not word:
        return False
    if _INITIALS.fullmatch(word):
        return True
    lower = word.lower()
    if word[1:] != lower[1:]:  # "CF.", "NO." are words in capitals, not "cf.", "no."
        return False
    if lower == "al":  # "et al."
        return text[max(0, start - 3) : start].lower() == "et "
    return lower in ABBREVIATIONS


def _starts_sentence(ch: str) -> bool:
    return ch.isupper() or ch.isdigit() or ch in "([{"


def split_sentences(
    text: str, spans: Iterable[Span] = (), forced: Iterable[int] = (), by_line: bool = False
) -> list[Range]:
    """Split ``text`` into sentences by the rules in the module docstring.

    Args:
        text: the text to split.
        spans: gold spans that no boundary may cut.
        forced: offsets where a boundary is always made (whitespace or word edges).
        by_line: split at every line break, and only there (besides ``forced``).

    Returns:
        Sorted, non-overlapping ``(start, end)`` ranges, trimmed of whitespace; ``[]`` for a text
        that is all whitespace.

    Raises:
        ValueError: a forced boundary lies strictly inside a span.
    """
    ordered = sorted((s.start, s.end) for s in spans)
    starts = [s for s, _ in ordered]
    max_end = list(accumulate((e for _, e in ordered), max))

    def cuts_span(left_end: int, right_start: int) -> bool:
        # A span that starts before the right sentence and ends after the left one is cut.
        i = bisect_left(starts, right_start)
        return i > 0 and max_end[i - 1] > left_end

    cuts: set[int] = set()
    for m in _CANDIDATE.finditer(text) if not by_line else ():
        nxt = m.end()
        if not _starts_sentence(text[nxt]):
            continue
        if m.group(1) == "." and _is_abbreviation(text, m.start(1)):
            continue
        if not cuts_span(m.start(2), nxt):
            cuts.add(m.start(2))
    for m in (_LINE_BREAK if by_line else _BLANK_LINE).finditer(text):
        if not cuts_span(m.start(), m.end()):
            cuts.add(m.start())
    for b in forced:
        if not 0 <= b <= len(text):
            raise ValueError(f"forced sentence boundary {b} is outside the text (0..{len(text)})")
        if cuts_span(b, b):
            raise ValueError(f"forced sentence boundary {b} lies inside a span")
        cuts.add(b)

    sentences: list[Range] = []
    prev = 0
    for cut in [*sorted(cuts), len(text)]:
        seg = text[prev:cut]
        stripped = seg.lstrip()
        if stripped:
            start = prev + len(seg) - len(stripped)
            sentences.append((start, start + len(stripped.rstrip())))
        prev = cut
    return sentences
