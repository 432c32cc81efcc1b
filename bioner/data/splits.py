"""``dataset.split``: train/devel/test by ratio, by document, seeded and stratified.

For corpora without a devel split (i2b2 2010, a user's single file) or whose splits are to be
redrawn: the documents of the ``source`` splits are pooled and dealt into train, devel and test in
the proportions ``ratios`` (80/10/10 by default).

* **By document**: the unit is the :class:`~bioner.data.document.Document` (grouped by id, as
  :mod:`bioner.data.folds` does), never a sentence, so no abstract or note is split between
  training and scoring.
* **Stratified by entity-type presence**: documents are grouped by the set of entity types they
  mention (``()`` for none); each group is shuffled with ``seed`` and the groups are dealt one
  after another, each document to the split that is furthest below its share so far. Every group
  is so divided in the ratios (up to one document), a group too small for that (a rare
  combination of types) goes to train first, and the split sizes match the ratios to one
  document.
* **Seeded**: the result depends only on the document ids, their types, ``ratios`` and ``seed``
  (not on the run seed), so runs with ``seed=1,2,3`` train and score on the same documents.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioner.data.document import Document

# Plain logging, as the readers that call this: the corpus layer (which `bioner.evaluation`
# imports) stays free of torch and Lightning.
log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "devel", "test")


@dataclass
class RatioSplit:
    """The rule of ``dataset.split``.

    Args:
        ratios: shares of train, devel and test; positive, summing to 1.
        seed: the shuffling seed.
        stratify: group documents by the set of entity types they mention before dealing them;
            ``False`` deals one shuffled list.
        source: the reader's splits whose documents are pooled (``[train]`` for a corpus in one
            file); they must include ``train``.
    """

    ratios: Sequence[float] = (0.8, 0.1, 0.1)
    seed: int = 0
    stratify: bool = True
    source: Sequence[str] = SPLIT_NAMES
    summary: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.ratios = tuple(float(r) for r in self.ratios)
        self.source = tuple(str(s) for s in self.source)
        if (
            len(self.ratios) != 3
            or min(self.ratios) <= 0
            or not math.isclose(sum(self.ratios), 1.0, abs_tol=1e-6)
        ):
            raise ValueError(
                f"dataset.split.ratios must be three positive shares of train, devel and test "
                f"summing to 1, not {list(self.ratios)}: e.g. dataset.split.ratios=[0.8,0.1,0.1]"
            )
        unknown = [s for s in self.source if s not in SPLIT_NAMES]
        if unknown or "train" not in self.source or len(set(self.source)) != len(self.source):
            raise ValueError(
                f"dataset.split.source must list distinct splits among {list(SPLIT_NAMES)}, "
                f"train included, not {list(self.source)}: e.g. dataset.split.source=[train] for "
                "a corpus in one file"
            )

    def apply(
        self, pooled: Mapping[str, Sequence[Document]], corpus: str = ""
    ) -> dict[str, list[Document]]:
        """Deal the documents of ``pooled`` (source split -> documents) into train, devel and test.

        Each split keeps the pooled order (source splits in the order of :attr:`source`). The
        outcome is recorded in :attr:`summary` and logged.

        Raises:
            ValueError: too few documents for every split to get one.
        """
        docs = [doc for name in self.source for doc in pooled[name]]
        groups: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            groups.setdefault(doc.id, []).append(i)
        if len(groups) < len(SPLIT_NAMES):
            raise ValueError(
                f"dataset.split needs at least 3 documents to fill train, devel and test, but "
                f"{corpus or 'the corpus'} has {len(groups)} in {list(self.source)}"
            )
        strata: dict[tuple[str, ...], list[str]] = {}
        for doc_id, members in groups.items():
            types = {s.label for i in members for s in docs[i].spans} if self.stratify else set()
            strata.setdefault(tuple(sorted(types)), []).append(doc_id)
        rng = np.random.default_rng(self.seed)
        assigned: dict[str, int] = {}
        counts = [0] * len(SPLIT_NAMES)
        dealt = 0
        for key in sorted(strata):
            ids = sorted(strata[key])
            for j in rng.permutation(len(ids)).tolist():
                dealt += 1
                # The split furthest below its share of the documents dealt so far (the first on
                # ties, so small groups fill train first).
                k = max(range(len(counts)), key=lambda k: self.ratios[k] * dealt - counts[k])
                counts[k] += 1
                assigned[ids[j]] = k
        if 0 in counts:
            raise ValueError(
                f"dataset.split: {len(groups)} documents leave {SPLIT_NAMES[counts.index(0)]} "
                f"empty with ratios {list(self.ratios)}; give more documents or larger ratios"
            )
        result: dict[str, list[Document]] = {name: [] for name in SPLIT_NAMES}
        for doc in docs:
            result[SPLIT_NAMES[assigned[doc.id]]].append(doc)
        self.summary = {
            "ratios": list(self.ratios),
            "seed": self.seed,
            "stratify": self.stratify,
            "source": list(self.source),
            "strata": len(strata),
            "documents": {name: len(result[name]) for name in SPLIT_NAMES},
        }
        log.info(
            "%s: dataset.split dealt the %d documents of %s into train/devel/test %s "
            "(ratios %s, seed %d, %d strata of entity types)",
            corpus,
            len(docs),
            "+".join(self.source),
            "/".join(str(len(result[n])) for n in SPLIT_NAMES),
            "/".join(f"{r:g}" for r in self.ratios),
            self.seed,
            len(strata),
        )
        return result
