"""What every text transform shares: the interface, seeding, composition and word views.

A transform takes a :class:`~bioner.data.document.Document` and a NumPy ``Generator`` and returns
an :class:`~bioner.augment.edits.EditResult`. It draws every random number from that generator,
so the same document and seed give the same output. Most transforms only choose edits
(:class:`EditTransform`); :func:`~bioner.augment.edits.apply_edits` does the rewriting and keeps
the gold spans exact. The same objects serve training augmentation and robustness scoring.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bioner.augment.edits import Edit, EditResult, apply_edits
from bioner.data.document import Document


def check_rate(name: str, value: float) -> float:
    """``value`` as a float if it is a probability, else a ``ValueError`` naming ``name``."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], not {value}")
    return value


class Transform(ABC):
    """A seeded, label-preserving transform of one document."""

    @abstractmethod
    def __call__(self, doc: Document, rng: np.random.Generator) -> EditResult:
        """Transform ``doc``; ``result.document.spans[i]`` corresponds to ``doc.spans[i]``."""

    def fit(self, docs: Sequence[Document]) -> Transform:
        """The transform ready to use, with what it draws from the training documents ``docs``.

        Transforms that need nothing from the corpus (typos, synonyms from a lexicon) return
        themselves; those that draw from it (mention and token replacement) return a copy with
        their tables filled. Training augmentation calls it once with the training split.
        """
        return self

    def __repr__(self) -> str:
        # Shown in metrics.json and logs: large tables (mention pools) by their size only.
        def show(v: object) -> str:
            text = repr(v)
            if isinstance(v, dict) and len(text) > 200:
                sizes = ", ".join(f"{k!r}: {len(x)}" for k, x in v.items())
                return f"<sizes {{{sizes}}}>"
            return text

        args = ", ".join(f"{k}={show(v)}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class EditTransform(Transform):
    """A transform that chooses character edits; :func:`apply_edits` applies them."""

    @abstractmethod
    def edits(self, doc: Document, rng: np.random.Generator) -> list[Edit]:
        """The edits to make in ``doc`` (offsets of ``doc.text``)."""

    def __call__(self, doc: Document, rng: np.random.Generator) -> EditResult:
        return apply_edits(doc, self.edits(doc, rng))


def chain(doc: Document, rng: np.random.Generator, transforms: Sequence[Transform]) -> EditResult:
    """Apply ``transforms`` one after the other; spans stay in correspondence throughout."""
    current, n = doc, 0
    for transform in transforms:
        result = transform(current, rng)
        current, n = result.document, n + result.n_edits
    return EditResult(doc, current, n)


class Mix(Transform):
    """Several transforms, each applied with its own probability, in the given order.

    For every document one uniform number is drawn per transform (whether it runs or not, so the
    draws of one transform do not shift with the others' outcomes); a transform whose number is
    below its probability runs on the output of those before it.

    Args:
        transforms: the transforms.
        probabilities: ``probabilities[i]`` is the chance that ``transforms[i]`` runs.
    """

    def __init__(self, transforms: Sequence[Transform], probabilities: Sequence[float]) -> None:
        if len(transforms) != len(probabilities):
            raise ValueError(
                f"Mix got {len(transforms)} transforms but {len(probabilities)} probabilities; "
                "give one probability per transform"
            )
        for t in transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Mix: {t!r} is not a Transform")
        self.transforms = list(transforms)
        self.probabilities = [check_rate("Mix probability", p) for p in probabilities]

    def fit(self, docs: Sequence[Document]) -> Mix:
        return Mix([t.fit(docs) for t in self.transforms], self.probabilities)

    def __call__(self, doc: Document, rng: np.random.Generator) -> EditResult:
        draws = rng.random(len(self.transforms))
        chosen = [t for t, p, u in zip(self.transforms, self.probabilities, draws) if u < p]
        return chain(doc, rng, chosen)


def perturb(
    docs: Sequence[Document], transform: Transform, seed: int | Sequence[int]
) -> list[EditResult]:
    """Apply ``transform`` to every document, each with its own generator.

    Document ``i`` gets ``numpy.random.default_rng([*seed, i])``, so its output depends only on
    the seed and its position, not on the other documents (a subset, another batch order or
    another worker gives the same result for it). Pass ``(seed, epoch)`` for fresh draws per epoch.

    Args:
        docs: documents to transform (not modified).
        transform: the transform.
        seed: one non-negative integer or a sequence of them.

    Returns:
        One :class:`EditResult` per document, in order.
    """
    keys = [int(seed)] if isinstance(seed, int | np.integer) else [int(s) for s in seed]
    return [transform(doc, np.random.default_rng([*keys, i])) for i, doc in enumerate(docs)]


@dataclass(frozen=True, slots=True)
class WordInfo:
    """One word of a document with the span and sentence it belongs to.

    Attributes:
        index: position in ``doc.words``.
        start: first character.
        end: one past the last character.
        text: the word's text.
        span: index into ``doc.spans`` of the span containing the word (of nested spans, the one
            reaching furthest right), or ``-1`` (outside every span).
        sentence: index into ``doc.sentences``.
    """

    index: int
    start: int
    end: int
    text: str
    span: int
    sentence: int

    @property
    def inside(self) -> bool:
        """Whether the word belongs to an entity."""
        return self.span >= 0


def word_infos(doc: Document) -> list[WordInfo]:
    """Every word of ``doc`` with its span and sentence (a valid document puts each in one)."""
    span_starts = [s.start for s in doc.spans]
    # reach[k]: the span among spans[:k + 1] that ends furthest right. Without overlaps it is
    # spans[k]; with nested spans a word after an inner span is still inside the outer one.
    reach: list[int] = []
    for k, s in enumerate(doc.spans):
        reach.append(k if not reach or s.end > doc.spans[reach[-1]].end else reach[-1])
    sent_starts = [s for s, _ in doc.sentences]
    out = []
    for i, (start, end) in enumerate(doc.words):
        k = bisect_right(span_starts, start) - 1
        span = reach[k] if k >= 0 and doc.spans[reach[k]].end >= end else -1
        sentence = bisect_right(sent_starts, start) - 1
        out.append(WordInfo(i, start, end, doc.text[start:end], span, sentence))
    return out


def match_case(source: str, target: str) -> str:
    """``target`` with the capitalisation pattern of ``source`` (all capitals, initial, or as is).

    Lexicon entries are lower case, so a sentence-initial ``Patients`` becomes ``Subjects`` and
    ``PATIENTS`` becomes ``SUBJECTS``; anything else keeps the lexicon's spelling.
    """
    letters = [c for c in source if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return target.upper()
    if source[:1].isupper() and target[:1].islower():
        return target[0].upper() + target[1:]
    return target
