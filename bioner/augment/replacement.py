"""Replacements: context-word synonyms, entity mentions, abbreviations and label-wise tokens.

- :class:`Synonym` swaps words outside entities for lexicon synonyms.
- :class:`MentionReplacement` replaces whole entity mentions by another mention of the same type
  (from a pool built from training documents) or by a lexicon synonym of the mention.
- :class:`Abbreviate` writes entity mentions as their abbreviation, the way notes and papers use
  short forms without defining them.
- :class:`TokenReplacement` is the label-wise token replacement of Dai and Adel (2020): a word
  is replaced by a word drawn from the training words that carry the same tag.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bioner.augment.base import EditTransform, WordInfo, check_rate, match_case, word_infos
from bioner.augment.edits import Edit
from bioner.data.document import Document
from bioner.data.lexicon import Lexicon, as_lexicon
from bioner.data.tags import spans_to_tags
from bioner.postprocess.abbreviations import find_abbreviations


class Synonym(EditTransform):
    """Context-word synonym replacement from a lexicon, outside entities only.

    Runs of one or more words outside entities (within one sentence) are looked up, longest
    first; each run found in the lexicon is replaced with probability ``rate`` by one of its
    synonyms, drawn uniformly, in the run's capitalisation (:func:`~bioner.augment.base.
    match_case`).

    Args:
        rate: probability that a word run found in the lexicon is replaced.
        lexicon: a :class:`~bioner.data.lexicon.Lexicon` or a TSV path (``surface<TAB>synonym``,
            symmetric); default: the general-English lexicon shipped with bioner.
    """

    def __init__(self, rate: float = 0.1, lexicon: Lexicon | str | Path | None = None) -> None:
        self.rate = check_rate("rate", rate)
        self.lexicon = as_lexicon(lexicon) if lexicon is not None else Lexicon.default()

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        words = word_infos(doc)
        out = []
        i = 0
        while i < len(words):
            found = self._match(doc, words, i)
            if found is None:
                i += 1
                continue
            n, synonyms = found
            # A draw only for runs in the lexicon: the rate is per replaceable run.
            if rng.random() < self.rate:
                start, end = words[i].start, words[i + n - 1].end
                new = match_case(doc.text[start:end], synonyms[rng.integers(len(synonyms))])
                out.append(Edit(start, end, new))
            i += n
        return out

    def _match(
        self, doc: Document, words: list[WordInfo], i: int
    ) -> tuple[int, Sequence[str]] | None:
        """The longest lexicon run starting at word ``i``: its length and synonyms."""
        first = words[i]
        if first.inside:
            return None
        for n in range(min(self.lexicon.max_words, len(words) - i), 0, -1):
            last = words[i + n - 1]
            run = words[i : i + n]
            if any(w.inside or w.sentence != first.sentence for w in run):
                continue
            synonyms = self.lexicon.lookup(doc.text[first.start : last.end])
            if synonyms:
                return n, synonyms
        return None


def mention_pool(docs: Sequence[Document]) -> dict[str, list[str]]:
    """Distinct mention surfaces per entity type over ``docs`` (sorted, for determinism)."""
    pool: dict[str, set[str]] = {}
    for doc in docs:
        for span in doc.spans:
            pool.setdefault(span.label, set()).add(span.text(doc.text))
    return {label: sorted(surfaces) for label, surfaces in sorted(pool.items())}


class MentionReplacement(EditTransform):
    """Replace entity mentions by another mention of the same type or by a synonym.

    Each mention is chosen with probability ``rate``; its replacement is drawn uniformly from the
    distinct surfaces of its type in ``pool`` and the lexicon synonyms of its own surface, never
    the identical surface (compared exactly). A mention with no candidate is left as it is. The
    span keeps its type and covers exactly the new text.

    Args:
        rate: probability that a mention is replaced.
        pool: entity type -> mention surfaces (see :func:`mention_pool`), or ``None``.
        lexicon: mention synonyms: a :class:`~bioner.data.lexicon.Lexicon`, or a TSV path read
            as ``lexicon_columns`` says, or ``None``.
        lexicon_columns: how a TSV ``lexicon`` path is read: ``synonym`` (``surface<TAB>synonym``
            pairs) or ``concept`` (``surface<TAB>concept id``: surfaces sharing an id are
            synonyms).
        training_mentions: add the mentions of the training documents to the pool when
            :meth:`fit` is called (training augmentation does; until then the transform cannot
            run without a pool or lexicon).

    Raises:
        ValueError: no source of replacements is given (pool, lexicon or training mentions).
    """

    def __init__(
        self,
        rate: float = 0.1,
        pool: Mapping[str, Sequence[str]] | None = None,
        lexicon: Lexicon | str | Path | None = None,
        lexicon_columns: str = "synonym",
        training_mentions: bool = False,
    ) -> None:
        if pool is None and lexicon is None and not training_mentions:
            raise ValueError(
                "MentionReplacement needs a mention pool (MentionReplacement.from_documents, or "
                "training_mentions=true in training), or a lexicon file"
            )
        self.rate = check_rate("rate", rate)
        self.pool = {label: sorted(set(s)) for label, s in (pool or {}).items()}
        if isinstance(lexicon, str | Path):
            lexicon = Lexicon.from_tsv(lexicon, second_column=lexicon_columns)
        self.lexicon = as_lexicon(lexicon)
        self.training_mentions = training_mentions

    @classmethod
    def from_documents(
        cls,
        docs: Sequence[Document],
        rate: float = 0.1,
        lexicon: Lexicon | str | Path | None = None,
    ) -> MentionReplacement:
        """A transform whose pool holds the mentions of ``docs`` (the training split)."""
        return cls(rate, mention_pool(docs), lexicon)

    def fit(self, docs: Sequence[Document]) -> MentionReplacement:
        if not self.training_mentions:
            return self
        pool = {label: list(s) for label, s in self.pool.items()}
        for label, surfaces in mention_pool(docs).items():
            pool.setdefault(label, []).extend(surfaces)
        return MentionReplacement(self.rate, pool, self.lexicon)

    def candidates(self, surface: str, label: str) -> list[str]:
        """Replacement surfaces for a mention, in a fixed order."""
        out = [s for s in self.pool.get(label, ()) if s != surface]
        if self.lexicon is not None:
            seen = set(out)
            out += [s for s in self.lexicon.lookup(surface) if s != surface and s not in seen]
        return out

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        if self.training_mentions and not self.pool:
            raise RuntimeError(
                "MentionReplacement(training_mentions=True) draws mentions from the training "
                "documents: call .fit(training documents) first"
            )
        draws = rng.random(len(doc.spans))
        out = []
        for span, u in zip(doc.spans, draws):
            if u >= self.rate:
                continue
            options = self.candidates(span.text(doc.text), span.label)
            if options:
                out.append(Edit(span.start, span.end, options[rng.integers(len(options))]))
        return out


def _key(surface: str) -> str:
    """A surface compared across documents: case and spacing ignored (``nitric - oxide`` in
    tokenised text matches ``Nitric  - oxide``)."""
    return " ".join(surface.casefold().split())


def abbreviation_table(docs: Sequence[Document]) -> dict[str, list[str]]:
    """Long form -> its short forms, from the definitions ``long form (short form)`` in ``docs``
    (Schwartz and Hearst 2003, :func:`bioner.postprocess.abbreviations.find_abbreviations`).

    Keys are compared case- and spacing-insensitively; short forms keep their case, sorted. A
    pair whose short form is also a word of its long form (``sham-operated (Sham)``) is left out:
    it is no abbreviation.
    """
    table: dict[str, set[str]] = {}
    for doc in docs:
        for pair in find_abbreviations(doc.text):
            long, short = _key(pair.long_text(doc.text)), pair.short_text(doc.text)
            if short.casefold() not in re.findall(r"\w+", long):
                table.setdefault(long, set()).add(short)
    return {long: sorted(shorts) for long, shorts in sorted(table.items())}


class Abbreviate(EditTransform):
    """Replace entity mentions by their abbreviation: ``nonsteroidal anti-inflammatory drugs``
    becomes ``NSAIDs``, as notes and papers write it without a definition at hand.

    A mention whose surface is a long form of ``table`` (case and spacing ignored) is replaced
    with probability ``rate`` by one of its short forms, drawn uniformly; the span keeps its type
    and covers the short form. A mention that is the long form of a definition in its own
    document is left alone (its short form follows in parentheses). Mentions without a known
    abbreviation are never touched, so ``rate`` applies to the abbreviable ones only.

    Args:
        rate: probability that an abbreviable mention is replaced.
        table: long form -> short forms (see :func:`abbreviation_table`).
    """

    def __init__(self, rate: float = 1.0, table: Mapping[str, Sequence[str]] | None = None) -> None:
        self.rate = check_rate("rate", rate)
        self.table = {_key(long): sorted(set(shorts)) for long, shorts in (table or {}).items()}

    @classmethod
    def from_documents(cls, docs: Sequence[Document], rate: float = 1.0) -> Abbreviate:
        """A transform with the abbreviations defined in ``docs``."""
        return cls(rate, abbreviation_table(docs))

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        defined = {pair.long for pair in find_abbreviations(doc.text)} if self.table else set()
        out = []
        for span in doc.spans:
            shorts = self.table.get(_key(span.text(doc.text)))
            if not shorts or (span.start, span.end) in defined:
                continue
            # A draw only for abbreviable mentions: the rate is per abbreviable mention.
            if rng.random() < self.rate:
                out.append(Edit(span.start, span.end, shorts[rng.integers(len(shorts))]))
        return out


class TokenReplacement(EditTransform):
    """Label-wise token replacement (Dai and Adel 2020, "LwTR").

    Each word is replaced with probability ``rate`` by a word drawn from the training words with
    the same IOB2 tag (``B-Chemical``, ``I-Chemical``, ``O``), in proportion to their frequency.
    Entity words are replaced inside their span, so the span keeps its type and extent in words.
    A word that touches its neighbour without a space (the ``.`` of ``rats.``) is replaced in
    place, so its replacement touches it too; the document's words keep the two apart, which is
    what the encoder sees (``is_split_into_words``).

    Args:
        rate: probability that a word is replaced.
        vocabulary: tag -> word -> count (see :meth:`from_documents`); ``None``: drawn from the
            training documents by :meth:`fit` (training augmentation calls it).
    """

    def __init__(
        self, rate: float = 0.1, vocabulary: Mapping[str, Mapping[str, int]] | None = None
    ) -> None:
        self.rate = check_rate("rate", rate)
        self._fitted = vocabulary is not None
        self._tables: dict[str, tuple[list[str], np.ndarray]] = {}
        for tag, counts in sorted((vocabulary or {}).items()):
            items = sorted((w, c) for w, c in counts.items() if c > 0)
            if items:
                cum = np.cumsum([c for _, c in items], dtype=float)
                self._tables[tag] = ([w for w, _ in items], cum / cum[-1])

    @classmethod
    def from_documents(cls, docs: Sequence[Document], rate: float = 0.1) -> TokenReplacement:
        """A transform drawing from the tagged words of ``docs`` (the training split)."""
        vocabulary: dict[str, Counter[str]] = {}
        for doc in docs:
            for (s, e), tag in zip(doc.words, spans_to_tags(doc.words, doc.spans)):
                vocabulary.setdefault(tag, Counter())[doc.text[s:e]] += 1
        return cls(rate, vocabulary)

    def fit(self, docs: Sequence[Document]) -> TokenReplacement:
        return self if self._fitted else TokenReplacement.from_documents(docs, self.rate)

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        if not self._fitted:
            raise RuntimeError(
                "TokenReplacement without a vocabulary draws words from the training documents: "
                "call .fit(training documents) first"
            )
        tags = spans_to_tags(doc.words, doc.spans)
        draws = rng.random(len(doc.words))
        out = []
        for (s, e), tag, u in zip(doc.words, tags, draws):
            if u >= self.rate or tag not in self._tables:
                continue
            words, cum = self._tables[tag]
            new = words[min(int(np.searchsorted(cum, rng.random(), side="right")), len(words) - 1)]
            if new != doc.text[s:e]:
                out.append(Edit(s, e, new))
        return out
