"""Text normalisation before tagging, with an exact map back to the original text.

A :class:`Normaliser` proposes word-level rewrites (``vs`` -> ``versus``, ``diabtes`` ->
``diabetes``); a :class:`Preprocessor` applies its normalisers to a
:class:`~bioner.data.document.Document` and returns the rewritten document with an
:class:`OffsetMap`. The model only ever sees the rewritten text; every span it predicts is mapped
back through the offset map, so spans are always reported, scored and written on the **original**
text.

Rewrites replace whole words (or runs of adjacent words without space between them, ``w/o``), so
each rewrite is an *edit* ``original[start:end] -> new text``: offsets outside edits shift by the
length change of the edits before them, and an offset inside an edit maps to the edit's start (a
span start) or end (a span end), so a predicted span over part of an expansion covers the whole
original word.

Gold spans: in training, words inside gold spans are never rewritten (``protect``), so every gold
entity keeps its exact text and the labels stay lossless. Evaluation text is rewritten as
prediction text is (no gold spans are consulted), and the predictions are mapped back and scored
against the original gold spans.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from bioner.data.document import Document, Range, Span
from bioner.errors import ConfigError

_NON_SPACE = re.compile(r"\S+")


@dataclass(frozen=True)
class Edit:
    """``original[start:end]`` became ``new[new_start:new_end]``."""

    start: int
    end: int
    new_start: int
    new_end: int


class OffsetMap:
    """Offsets of a rewritten text mapped to the original and back (edits sorted, disjoint)."""

    def __init__(self, edits: Sequence[Edit] = ()) -> None:
        self.edits = list(edits)
        self._ends = [e.end for e in self.edits]
        self._new_ends = [e.new_end for e in self.edits]

    def __len__(self) -> int:
        return len(self.edits)

    def _shift(self, k: int) -> int:
        """Length change of the first ``k`` edits."""
        if k == 0:
            return 0
        e = self.edits[k - 1]
        return e.new_end - e.end

    def to_new(self, offset: int) -> int:
        """An original offset that is not strictly inside an edit, in the rewritten text."""
        return offset + self._shift(bisect_right(self._ends, offset))

    def to_original(self, offset: int, end: bool) -> int:
        """A rewritten offset in the original text: inside an edit, the edit's start (a span
        start, ``end=False``) or end (a span end)."""
        k = bisect_right(self._new_ends, offset)
        if k < len(self.edits) and self.edits[k].new_start < offset:
            return self.edits[k].end if end else self.edits[k].start
        return offset - self._shift(k)

    def span_to_original(self, span: Span) -> Span:
        """``span`` of the rewritten text as a span of the original text (score and id kept)."""
        start, end = self.to_original(span.start, False), self.to_original(span.end, True)
        return replace(span, start=start, end=end)


class Normaliser(ABC):
    """One kind of rewrite. Subclasses name their ``kind`` (the key of export records) and
    propose replacements for runs of words; fitted state goes through :meth:`state_dict`."""

    kind: ClassVar[str]
    # Most words one rewrite may cover (``w/o`` is three words: w, /, o).
    max_words: int = 1

    def fit(self, docs: Sequence[Document]) -> None:  # noqa: B027 (optional hook)
        """Learn from the training documents (their original text); the default learns nothing."""

    @abstractmethod
    def replace(self, words: Sequence[str]) -> str | None:
        """The replacement of the adjacent ``words`` (no space between them), or ``None``."""

    def params(self) -> dict[str, Any]:
        """Constructor arguments, as plain values, for the export record."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What :meth:`fit` learnt (plain values), saved with the model."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore what :meth:`fit` learnt."""


class Preprocessor:
    """Normalisers applied in order to each document; the first that rewrites a run of words
    wins, longest runs first.

    Args:
        steps: the normalisers.
    """

    def __init__(self, steps: Sequence[Normaliser]) -> None:
        self.steps = list(steps)
        self.fitted = False

    def __repr__(self) -> str:
        return f"Preprocessor({self.steps})"

    def __bool__(self) -> bool:
        return bool(self.steps)

    def fit(self, docs: Sequence[Document]) -> None:
        """Fit every step on the training documents (once)."""
        for step in self.steps:
            step.fit(docs)
        self.fitted = True

    def normalise(self, doc: Document, protect: Iterable[Span] = ()) -> tuple[Document, OffsetMap]:
        """``doc`` with its words rewritten, and the map of its offsets.

        Args:
            doc: the document (words and sentences set).
            protect: spans whose words are never rewritten (the gold spans, in training).

        Returns:
            The rewritten document (same id and meta; words, sentences and spans moved to the
            new text; a multi-word replacement becomes several words) and its offset map.
        """
        text, words = doc.text, doc.words
        # One flag per character: inside a protected span.
        guarded = bytearray(len(text))
        for span in protect:
            guarded[span.start : span.end] = b"\x01" * (span.end - span.start)
        # A rewrite never straddles a sentence or gold span boundary, so that every boundary
        # has one place in the new text.
        cuts = sorted(
            {b for r in doc.sentences for b in r} | {b for x in doc.spans for b in (x.start, x.end)}
        )
        pieces: list[str] = []
        new_words: list[Range] = []
        edits: list[Edit] = []
        pos = 0  # original offset copied up to
        new_len = 0
        widest = max((step.max_words for step in self.steps), default=1)
        i = 0
        while i < len(words):
            found = None
            for n in range(min(widest, len(words) - i), 0, -1):
                run = words[i : i + n]
                if any(run[k][1] != run[k + 1][0] for k in range(n - 1)):
                    continue  # words with space between them are not one run
                lo, hi = run[0][0], run[-1][1]
                if any(guarded[lo:hi]) or bisect_left(cuts, hi) - bisect_right(cuts, lo) > 0:
                    continue
                surfaces = [text[s:e] for s, e in run]
                for step in self.steps:
                    if n > step.max_words:
                        continue
                    new = step.replace(surfaces)
                    if new is not None and new != text[lo:hi] and new.strip():
                        found = (n, lo, hi, new)
                        break
                if found:
                    break
            if found is None:
                s, e = words[i]
                new_words.append((s - pos + new_len, e - pos + new_len))
                i += 1
                continue
            n, lo, hi, new = found
            pieces.append(text[pos:lo])
            new_len += lo - pos
            for m in _NON_SPACE.finditer(new):
                new_words.append((new_len + m.start(), new_len + m.end()))
            edits.append(Edit(lo, hi, new_len, new_len + len(new)))
            pieces.append(new)
            new_len += len(new)
            pos = hi
            i += n
        if not edits:
            return doc, OffsetMap()
        pieces.append(text[pos:])
        mapping = OffsetMap(edits)
        new_doc = Document(
            doc.id,
            "".join(pieces),
            [Span(mapping.to_new(s.start), mapping.to_new(s.end), s.label) for s in doc.spans],
            [(mapping.to_new(s), mapping.to_new(e)) for s, e in doc.sentences],
            new_words,
            dict(doc.meta),
        )
        return new_doc, mapping

    # ------------------------------------------------------------------ records

    def record(self) -> list[dict[str, Any]]:
        """Plain values that :meth:`from_record` rebuilds the fitted steps from (``bioner.json``
        of an exported model)."""
        return [
            {"kind": step.kind, "params": step.params(), "state": step.state_dict()}
            for step in self.steps
        ]

    @classmethod
    def from_record(cls, record: Sequence[Mapping[str, Any]], where: str) -> Preprocessor:
        """Rebuild from :meth:`record`'s output; kinds are looked up, never imported by name
        (a downloaded model folder is data).

        Raises:
            ConfigError: an unknown kind or a malformed entry.
        """
        from bioner.preprocess import KINDS

        steps = []
        for entry in record:
            try:
                step = KINDS[entry["kind"]](**entry.get("params", {}))
                step.load_state_dict(entry.get("state", {}))
            except (KeyError, TypeError) as err:
                raise ConfigError(
                    f"{where}: preprocess entry {entry!r} is not one of {sorted(KINDS)} with its "
                    f"parameters ({err!r}); re-export the model with this bioner"
                ) from err
            steps.append(step)
        pre = cls(steps)
        pre.fitted = True
        return pre
