"""Abbreviation resolution: a short form takes the entity type of the long form it abbreviates.

Pairs ``long form (short form)`` are found in each document by the algorithm of Schwartz and
Hearst (2003), "A simple algorithm for identifying abbreviation definitions in biomedical text"
(PSB 2003), as in their reference implementation:

* A parenthesis inside a sentence gives a candidate. Its content is cut at the first ``", "`` or
  ``"; "``. A content of more than two words, or longer than the word before the parenthesis,
  is read the other way round: ``short form (long form)``, the short form being that word.
* A short form has 2 to 10 characters, at least one letter, and starts with a letter or digit.
* The long form is the shortest stretch of words before the parenthesis (same sentence) whose
  characters contain the short form's letters and digits in order, matched from the end, the
  first one at the start of a word.
* The pair is rejected when the long form is shorter than the short form, contains it as a
  word or ends with it, or has more than ``min(2 n, n + 5)`` words (``n``: letters and digits
  of the short form).

Every occurrence of a short form in the document (case-sensitive, on word boundaries) then
gets the type of the predicted span that covers most of its long form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from bioner.data.document import Range, Span
from bioner.data.sentences import split_sentences
from bioner.data.tokenize import word_ranges


@dataclass(frozen=True, slots=True)
class Abbreviation:
    """A short form and the long form it abbreviates, as character ranges of the document."""

    short: Range
    long: Range

    def short_text(self, text: str) -> str:
        return text[self.short[0] : self.short[1]]

    def long_text(self, text: str) -> str:
        return text[self.long[0] : self.long[1]]


def _strip(text: str, start: int, end: int) -> Range:
    """``(start, end)`` without surrounding whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _valid_short_form(form: str) -> bool:
    return len(form) >= 2 and any(c.isalpha() for c in form) and form[0].isalnum()


def best_long_form(short: str, candidate: str) -> int | None:
    """Where the long form of ``short`` starts in ``candidate`` (text before the parenthesis).

    Schwartz and Hearst's ``findBestLongForm``: match the short form's letters and digits from
    right to left, each one further left in the candidate, the first at the start of a word.

    Returns:
        The offset into ``candidate`` of the long form's first word, or ``None``.
    """
    li = len(candidate) - 1
    for si in range(len(short) - 1, -1, -1):
        c = short[si].lower()
        if not c.isalnum():
            continue
        while li >= 0 and (
            candidate[li].lower() != c or (si == 0 and li > 0 and candidate[li - 1].isalnum())
        ):
            li -= 1
        if li < 0:
            return None
        li -= 1
    # The long form starts at the beginning of the word holding the first match.
    while li >= 0 and not candidate[li].isspace():
        li -= 1
    return li + 1


def _pair(text: str, short: Range, long_candidate: Range) -> Abbreviation | None:
    """The checked pair for ``short`` given the text before it, or ``None``."""
    sf = text[short[0] : short[1]]
    if not _valid_short_form(sf):
        return None
    lo, hi = long_candidate
    found = best_long_form(sf, text[lo:hi])
    if found is None:
        return None
    long = (lo + found, hi)
    lf = text[long[0] : long[1]]
    long_words = len(lf.replace("-", " ").split())
    n = sum(c.isalnum() for c in sf)
    if (
        len(lf) < len(sf)
        or f"{sf} " in lf
        or lf.endswith(sf)
        or long_words > 2 * n
        or long_words > n + 5
        or n > 10
    ):
        return None
    return Abbreviation(short, long)


def _closing(text: str, open_at: int, end: int) -> int | None:
    """The parenthesis closing the one at ``open_at`` (nesting respected), before ``end``."""
    depth = 0
    for i in range(open_at, end):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def find_abbreviations(text: str, sentences: Sequence[Range] | None = None) -> list[Abbreviation]:
    """Abbreviation definitions in ``text`` (see the module docstring), in text order.

    Args:
        text: the document text.
        sentences: its sentences (default: :func:`bioner.data.sentences.split_sentences`); a
            definition never crosses a sentence boundary.
    """
    found = []
    for s_start, s_end in sentences if sentences is not None else split_sentences(text):
        at = text.find("(", s_start, s_end)
        while at >= 0:
            close = _closing(text, at, s_end)
            if close is None:
                break
            inner_end = close
            for sep in (", ", "; "):
                cut = text.find(sep, at + 1, inner_end)
                if cut >= 0:
                    inner_end = cut
            inner = _strip(text, at + 1, inner_end)
            before = _strip(text, s_start, at)
            word_start = before[1]
            while word_start > before[0] and not text[word_start - 1].isspace():
                word_start -= 1
            word_before = (word_start, before[1])
            pair = None
            if inner[1] > inner[0] and before[1] > before[0]:
                inner_text = text[inner[0] : inner[1]]
                if len(inner_text.split()) > 2 or inner[1] - inner[0] > before[1] - before[0]:
                    # "short form (long form)": the word before the parenthesis is the short form.
                    if any(c.isupper() for c in text[word_before[0] : word_before[1]]):
                        pair = _pair(text, word_before, inner)
                else:
                    pair = _pair(text, inner, before)
            if pair is not None:
                found.append(pair)
            at = text.find("(", close + 1, s_end)
    return found


def _occurrences(text: str, form: str, starts: set[int], ends: set[int]) -> list[Range]:
    """Every occurrence of ``form`` in ``text`` that starts and ends on word boundaries."""
    out = []
    at = text.find(form)
    while at >= 0:
        if at in starts and at + len(form) in ends:
            out.append((at, at + len(form)))
        at = text.find(form, at + 1)
    return out


class AbbreviationResolver:
    """Give every occurrence of a defined short form the type of its long form.

    For each short form (its first definition in the document), the long form's type is that of
    the predicted span overlapping the long form most (higher score on ties). Then, at every
    occurrence of the short form: a span on exactly the occurrence takes that type; spans inside
    the occurrence are replaced by one span of that type (scored as the long form's span); a
    span reaching beyond the occurrence (a longer mention that contains it) is left alone; an
    occurrence without spans gets one.

    Args:
        drop_unsupported: also remove spans on exactly a short form whose long form holds no
            predicted span (a model that tags ``ARF`` but not ``acute renal failure`` is more
            likely wrong about ``ARF``).
    """

    def __init__(self, drop_unsupported: bool = False) -> None:
        self.drop_unsupported = drop_unsupported

    def __repr__(self) -> str:
        return f"AbbreviationResolver(drop_unsupported={self.drop_unsupported})"

    def __call__(self, text: str, spans: Sequence[Span]) -> list[Span]:
        pairs: dict[str, Abbreviation] = {}
        for pair in find_abbreviations(text):
            pairs.setdefault(pair.short_text(text), pair)
        if not pairs:
            return list(spans)
        words = word_ranges(text)
        starts, ends = {s for s, _ in words}, {e for _, e in words}
        out = list(spans)
        for form, pair in pairs.items():
            source = self._long_form_span(pair, out)
            occurrences = _occurrences(text, form, starts, ends)
            if source is None:
                if self.drop_unsupported:
                    exact = set(occurrences)
                    out = [s for s in out if (s.start, s.end) not in exact]
                continue
            for lo, hi in occurrences:
                out = self._assign(text, out, lo, hi, source)
        return out

    @staticmethod
    def _long_form_span(pair: Abbreviation, spans: list[Span]) -> Span | None:
        lo, hi = pair.long
        best, best_key = None, (0, 0.0)
        for span in spans:
            overlap = min(hi, span.end) - max(lo, span.start)
            if overlap > 0 and (overlap, span.score) > best_key:
                best, best_key = span, (overlap, span.score)
        return best

    @staticmethod
    def _assign(text: str, spans: list[Span], lo: int, hi: int, source: Span) -> list[Span]:
        touching = [s for s in spans if s.start < hi and lo < s.end]
        if any(s.start < lo or s.end > hi for s in touching):
            return spans  # part of a longer mention: not ours to change
        exact = [s for s in touching if (s.start, s.end) == (lo, hi)]
        if exact:
            new = replace(exact[0], label=source.label)
        else:
            new = Span(lo, hi, source.label, source.score)
        return [s for s in spans if s not in touching] + [new]
