"""Scoring a model on a corpus whose entity types are not the model's.

A Chemical+Disease model scored on a Chemical-only corpus would count every Disease prediction
as a false positive, and a Chemical-only model on a Chemical+Disease corpus would count every
Disease mention as missed: neither says how good the model is at what it does. The headline is
scored on the types both share; predictions of types the corpus does not annotate and gold
mentions of types the model cannot predict are counted apart, so nothing is hidden.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bioner.data.document import Document, Span


@dataclass(frozen=True)
class LabelSets:
    """The entity types of a model and of the corpus it is scored on.

    Args:
        model: the types the model predicts.
        corpus: the types the corpus annotates.
    """

    model: tuple[str, ...]
    corpus: tuple[str, ...]

    @property
    def shared(self) -> list[str]:
        """Types both know, in the corpus's order: the headline scores cover these only."""
        return [t for t in self.corpus if t in self.model]

    @property
    def model_only(self) -> list[str]:
        """Types the model predicts that the corpus does not annotate."""
        return [t for t in self.model if t not in self.corpus]

    @property
    def corpus_only(self) -> list[str]:
        """Types the corpus annotates that the model cannot predict."""
        return [t for t in self.corpus if t not in self.model]

    @property
    def differ(self) -> bool:
        """Whether the two sets differ (an order alone does not count)."""
        return set(self.model) != set(self.corpus)

    def restrict(
        self,
        docs: Sequence[Document],
        preds: Sequence[Sequence[Span]],
    ) -> tuple[list[Document], list[list[Span]], dict[str, Any]]:
        """Keep only spans of the shared types, and count what was set aside.

        Returns:
            The documents with gold spans of shared types only, the predictions of shared types
            only, and ``{"dropped_predictions": {type: n},
            "unpredictable_gold": {type: n}}``: predictions of types the corpus lacks and gold
            mentions of types the model lacks.
        """
        keep = set(self.shared)
        dropped: Counter[str] = Counter()
        missed: Counter[str] = Counter()
        out_docs, out_preds = [], []
        for doc, spans in zip(docs, preds):
            missed.update(s.label for s in doc.spans if s.label not in keep)
            dropped.update(s.label for s in spans if s.label not in keep)
            out_docs.append(
                dataclasses.replace(doc, spans=[s for s in doc.spans if s.label in keep])
            )
            out_preds.append([s for s in spans if s.label in keep])
        counts = {
            "dropped_predictions": {t: dropped[t] for t in sorted(dropped)},
            "unpredictable_gold": {t: missed[t] for t in sorted(missed)},
        }
        return out_docs, out_preds, counts

    def describe(self) -> dict[str, Any]:
        """The ``label_sets`` section of ``metrics.json`` (without the per-split counts)."""
        return {
            "model_types": list(self.model),
            "corpus_types": list(self.corpus),
            "scored_types": self.shared,
            "model_only": self.model_only,
            "corpus_only": self.corpus_only,
        }
