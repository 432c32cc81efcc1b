"""Transforms that move or add and remove words: shuffling and word-level noise."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bioner.augment.base import EditTransform, Transform, WordInfo, chain, check_rate, word_infos
from bioner.augment.character import TYPO_OPS, check_typo_ops, typo_edit
from bioner.augment.edits import Edit, EditResult
from bioner.data.document import Document


def _segments(words: list[WordInfo]) -> list[list[WordInfo]]:
    """Maximal runs of words with the same label in one sentence; each entity is its own run."""
    out: list[list[WordInfo]] = []
    for w in words:
        prev = out[-1][-1] if out else None
        if prev is not None and prev.sentence == w.sentence and prev.span == w.span:
            out[-1].append(w)
        else:
            out.append([w])
    return out


class SegmentShuffle(EditTransform):
    """Shuffle words within same-label segments (Dai and Adel 2020, "SiS").

    A segment is a maximal run of outside words in one sentence, or the words of one entity. Each
    segment of two or more words is shuffled with probability ``rate``: its words are permuted
    among their positions and the separators between them stay, so an entity stays an entity of
    the same type over the same words. Where two words touch without a space (``rats.``), the
    words that land there touch too (``.rats``); the document's words still keep them apart.

    Args:
        rate: probability that a segment is shuffled.
    """

    def __init__(self, rate: float = 0.1) -> None:
        self.rate = check_rate("rate", rate)

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        out = []
        for seg in _segments(word_infos(doc)):
            if len(seg) < 2 or rng.random() >= self.rate:
                continue
            # One edit per position, so that words stay words even where no space separates them.
            for slot, j in zip(seg, rng.permutation(len(seg))):
                if seg[j].text != slot.text:
                    out.append(Edit(slot.start, slot.end, seg[j].text))
        return out


class EntityShuffle(EditTransform):
    """Move whole entities: mentions of one type trade places within a document.

    Each mention is chosen with probability ``rate``; the chosen mentions of each type are
    rotated along a random cycle, so every chosen mention moves to another chosen slot of its
    type. The words around them stay, so the sentence structure is kept and every span keeps its
    type (``new.spans[i]`` is the slot of ``old.spans[i]``, now holding another mention).

    Args:
        rate: probability that a mention takes part.
    """

    def __init__(self, rate: float = 0.1) -> None:
        self.rate = check_rate("rate", rate)

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        draws = rng.random(len(doc.spans))
        by_type: dict[str, list[int]] = {}
        for i, (span, u) in enumerate(zip(doc.spans, draws)):
            if u < self.rate:
                by_type.setdefault(span.label, []).append(i)
        out = []
        for label in sorted(by_type):
            slots = by_type[label]
            if len(slots) < 2:
                continue
            cycle = [slots[k] for k in rng.permutation(len(slots))]
            for k, slot in enumerate(cycle):
                source = doc.spans[cycle[k - 1]]  # slot k takes the mention before it in the cycle
                target = doc.spans[slot]
                new = source.text(doc.text)
                if new != target.text(doc.text):
                    out.append(Edit(target.start, target.end, new))
        return out


class Shuffle(Transform):
    """Entity shuffling, then shuffling within same-label segments.

    Args:
        rate: probability that a segment is shuffled (:class:`SegmentShuffle`).
        entity_rate: probability that a mention moves (:class:`EntityShuffle`); default ``rate``.
    """

    def __init__(self, rate: float = 0.1, entity_rate: float | None = None) -> None:
        self.rate = check_rate("rate", rate)
        self.entity_rate = check_rate("entity_rate", rate if entity_rate is None else entity_rate)
        self._stages = [EntityShuffle(self.entity_rate), SegmentShuffle(self.rate)]

    def __call__(self, doc: Document, rng: np.random.Generator) -> EditResult:
        return chain(doc, rng, self._stages)


NOISE_OPS = ("typo", "delete", "insert")


class Noise(EditTransform):
    """Typos and word deletion / insertion outside entities; typos inside them.

    Each word outside entities is noised with probability ``rate`` by one operation drawn
    uniformly among the ``ops`` that apply: a keyboard typo (:func:`~bioner.augment.character.
    typo_edit`), deleting the word (never the last word left in a sentence; the whitespace
    next to it goes too) or inserting before it another outside word of the same document (with a
    space on each side that touches text, so it stays a word of its own). Each
    entity word gets a typo with probability ``inside_rate``; entities never lose or gain words.

    Args:
        rate: probability that an outside word is noised.
        inside_rate: probability of a typo in an entity word (default ``rate``).
        ops: subset of ``typo``, ``delete``, ``insert``.
        typo_ops: typo kinds (see :class:`~bioner.augment.character.Typos`).
    """

    def __init__(
        self,
        rate: float = 0.1,
        inside_rate: float | None = None,
        ops: Sequence[str] = NOISE_OPS,
        typo_ops: Sequence[str] = TYPO_OPS,
    ) -> None:
        self.rate = check_rate("rate", rate)
        self.inside_rate = check_rate("inside_rate", rate if inside_rate is None else inside_rate)
        ops = list(ops)
        if not ops or any(op not in NOISE_OPS for op in ops):
            raise ValueError(f"noise ops must be a non-empty subset of {NOISE_OPS}, not {ops}")
        self.ops = ops
        self.typo_ops = check_typo_ops(typo_ops)

    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        words = word_infos(doc)
        fillers = [w.text for w in words if not w.inside and w.text.isalpha()]
        left = [0] * len(doc.sentences)  # words not deleted, per sentence
        for w in words:
            left[w.sentence] += 1
        draws = rng.random(len(words))
        out: list[Edit] = []
        deleted: set[int] = set()
        for w, u in zip(words, draws):
            if u >= (self.inside_rate if w.inside else self.rate):
                continue
            if w.inside:
                op = "typo"
            else:
                usable = [
                    op
                    for op in self.ops
                    if (op != "delete" or left[w.sentence] > 1) and (op != "insert" or fillers)
                ]
                if not usable:
                    continue
                op = usable[rng.integers(len(usable))]
            if op == "typo":
                edit = typo_edit(doc.text, w.start, w.end, rng, self.typo_ops)
                if edit is not None:
                    out.append(edit)
            elif op == "insert":
                filler = fillers[rng.integers(len(fillers))]
                # A space on each side that touches text, so the filler never merges with a word.
                glued = w.start > 0 and not doc.text[w.start - 1].isspace()
                out.append(Edit(w.start, w.start, (" " if glued else "") + filler + " "))
            else:
                deleted.add(w.index)
                left[w.sentence] -= 1
        return out + _deletions(doc, words, deleted)


def _deletions(doc: Document, words: list[WordInfo], deleted: set[int]) -> list[Edit]:
    """One edit per run of consecutive deleted words, taking the whitespace on one side along.

    The run goes with the gap up to the next word of its sentence; at the end of a sentence, with
    the gap after the previous word (a sentence always keeps a word, so there is one).
    """
    out = []
    i = 0
    while i < len(words):
        if i not in deleted:
            i += 1
            continue
        j = i
        while (
            j + 1 < len(words) and j + 1 in deleted and words[j + 1].sentence == words[i].sentence
        ):
            j += 1
        nxt = words[j + 1] if j + 1 < len(words) else None
        if nxt is not None and nxt.sentence == words[i].sentence:
            out.append(Edit(words[i].start, nxt.start, ""))
        else:
            out.append(Edit(words[i - 1].end, words[j].end, ""))
        i = j + 1
    return out
