"""``dataset.train_subset``: train on a seeded fraction of the training documents.

For low-resource studies (10% or 1% of a corpus's training data): after ``dataset.split`` and
``dataset.filter``, the training split keeps ``round(fraction * n)`` of its ``n`` documents (at
least one); devel and test are untouched, so scores stay those of the full evaluation splits.

* **By document**: the unit is the :class:`~bioner.data.document.Document` (grouped by id, as
  :mod:`bioner.data.splits` does), never a sentence.
* **Seeded by the run seed** (``seed: ${seed}`` in the config): runs with ``seed=1,2,3`` train on
  three different subsets, so their spread includes the draw of the data.
* **Nested**: the documents are ranked by one seeded permutation and the first ones kept, so with
  one seed the 1% subset lies inside the 10% subset.

What was kept is logged and recorded in ``metrics.json`` (``dataset_preparation.train_subset``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioner.data.document import Document
from bioner.errors import ConfigError

# Plain logging, as the readers that call this: the corpus layer stays free of torch and Lightning.
log = logging.getLogger(__name__)


@dataclass
class TrainSubset:
    """The rule of ``dataset.train_subset``.

    Args:
        fraction: the share of the training documents to keep, in (0, 1]; ``None``: all of them.
        seed: the seed of the draw (the run seed by default).
    """

    fraction: float | None = None
    seed: int = 0
    summary: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        value = self.fraction
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1
        ):
            raise ConfigError(
                f"dataset.train_subset.fraction must be a number in (0, 1] or null, not {value!r}:"
                " e.g. dataset.train_subset.fraction=0.1 trains on 10% of the training documents"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(
                f"dataset.train_subset.seed must be an integer, not {self.seed!r} (it defaults "
                "to the run seed)"
            )

    @property
    def active(self) -> bool:
        """Whether the rule keeps fewer than all training documents."""
        return self.fraction is not None and self.fraction < 1

    def apply(self, docs: Sequence[Document], corpus: str = "") -> list[Document]:
        """The kept training documents, in their order; recorded in :attr:`summary` and logged."""
        if not self.active:
            return list(docs)
        groups: dict[str, list[int]] = {}
        for i, doc in enumerate(docs):
            groups.setdefault(doc.id, []).append(i)
        ids = sorted(groups)
        # At least one document: a fraction of a small corpus (a smoke run) must still train.
        keep = max(1, round(self.fraction * len(ids)))
        order = np.random.default_rng(self.seed).permutation(len(ids))
        chosen = {ids[j] for j in order[:keep].tolist()}
        kept = [doc for doc in docs if doc.id in chosen]
        mentions = sum(len(d.spans) for d in docs)
        kept_mentions = sum(len(d.spans) for d in kept)
        self.summary = {
            "fraction": self.fraction,
            "seed": self.seed,
            "documents": len(ids),
            "kept": keep,
            "mentions": mentions,
            "mentions_kept": kept_mentions,
        }
        log.warning(
            "%s/train: dataset.train_subset keeps %d of %d documents (fraction %g, seed %d), "
            "with %d of %d gold mentions",
            corpus,
            keep,
            len(ids),
            self.fraction,
            self.seed,
            kept_mentions,
            mentions,
        )
        return kept
