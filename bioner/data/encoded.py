"""An encoded split (features and the documents they come from) and the one inference path
outside Lightning: features to logits to spans (:func:`predict_split`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

from bioner.data.batching import BucketBatchSampler, Collator
from bioner.data.document import Document, Span
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from bioner.data.alignment import Alignment, Feature, Transitions
    from bioner.preprocess import OffsetMap

log = get_logger(__name__)


class EncodedSplit(Dataset):
    """The features of one split and the documents they come from.

    Items are ``(index, feature)`` pairs, so predictions can be traced back to their feature
    whatever the batch order (and whichever rank computed them).

    Args:
        split: the split name (``train``, ``devel``, ``test``).
        docs: the split's documents.
        features: every feature of every document, document by document.
        doc_index: ``doc_index[i]`` is the position in ``docs`` of ``features[i]``'s document.
        alignment: the alignment that encoded the features; it also decodes them.
        originals: with ``preprocess``, the documents before normalisation (``docs`` are the
            normalised ones the features encode); decoding maps spans back onto them.
        maps: with ``originals``, each document's offset map.
    """

    def __init__(
        self,
        split: str,
        docs: list[Document],
        features: list[Feature],
        doc_index: list[int],
        alignment: Alignment,
        originals: list[Document] | None = None,
        maps: list[OffsetMap] | None = None,
    ) -> None:
        self.split = split
        self.docs = docs
        self.originals = originals
        self.maps = maps
        self.features = features
        self.doc_index = doc_index
        self.alignment = alignment
        self.lengths = [len(f.input_ids) for f in features]
        self._by_doc: list[list[int]] = [[] for _ in docs]
        for i, d in enumerate(doc_index):
            self._by_doc[d].append(i)

    @property
    def given_docs(self) -> list[Document]:
        """The documents as they were given, before any normalisation: ``originals`` with
        ``preprocess``, else ``docs``. Noise for the robustness evaluation goes into these."""
        return self.docs if self.originals is None else self.originals

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[int, Feature]:
        return i, self.features[i]

    def decode(
        self,
        logits: Mapping[int, np.ndarray],
        id2label: Mapping[int, str],
        transitions: Transitions | None = None,
    ) -> tuple[list[Document], list[list[Span]]]:
        """Predicted spans per document from ``logits`` keyed by feature index (``transitions``:
        the ``crf`` head's, see :meth:`Alignment.decode`).

        Documents some of whose features have no logits (``limit_val_batches`` runs) are left
        out, and a warning says how many; every other document is decoded. With ``preprocess``,
        the documents are the original ones and the spans are mapped back onto their text.

        Returns:
            The decoded documents and, aligned with them, their predicted spans with scores
            (``Alignment.decode``).
        """
        docs, preds = [], []
        for d, (doc, idx) in enumerate(zip(self.docs, self._by_doc)):
            if not all(i in logits for i in idx):
                continue
            features = [self.features[i] for i in idx]
            spans = self.alignment.decode(
                doc, features, [logits[i] for i in idx], id2label, transitions
            )
            if self.originals is not None and self.maps is not None:
                doc, mapping = self.originals[d], self.maps[d]
                spans = [mapping.span_to_original(span) for span in spans]
            docs.append(doc)
            preds.append(spans)
        if len(docs) < len(self.docs):
            log.warning(
                "%s: scoring %d of %d documents; the others were not predicted (limited batches)",
                self.split,
                len(docs),
                len(self.docs),
            )
        return docs, preds


def predict_split(
    dataset: EncodedSplit,
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    collator: Collator,
    id2label: Mapping[int, str],
    batch_size: int,
    max_tokens: int | None = None,
    transitions: Transitions | None = None,
) -> tuple[list[Document], list[list[Span]]]:
    """Features to logits to spans per document: the one inference path outside Lightning.

    The features of ``dataset`` are batched by length (longest first, so padding stays small),
    collated, and passed to ``forward`` (a batch of CPU tensors -> logits ``(batch, length,
    labels)``; it moves the batch to its device and chooses grad mode, autocast and any
    perturbation); each feature keeps the rows of its own sub-words, and
    :meth:`EncodedSplit.decode` turns them into each document's spans. The tagger
    (:class:`bioner.inference.Tagger`) and robustness under attack
    (:mod:`bioner.attacks.robustness`) predict through it; evaluation in training decodes its
    Lightning-batched logits with the same :meth:`EncodedSplit.decode`.

    Returns:
        As :meth:`EncodedSplit.decode`: the documents and their scored spans.
    """
    sampler = (
        BucketBatchSampler(
            dataset.lengths, batch_size, shuffle=False, chunk_batches=None, max_tokens=max_tokens
        )
        if dataset.features
        else []  # nothing to tag (documents without words)
    )
    # Logits stay where forward left them until every batch is queued: copying each batch back
    # at once would make the host wait for the GPU after every batch.
    outputs = [(indices, forward(collator([dataset[i] for i in indices]))) for indices in sampler]
    logits: dict[int, np.ndarray] = {}
    for indices, out in outputs:
        rows = out.float().cpu().numpy()
        for row, i in enumerate(indices):
            logits[i] = rows[row, : dataset.lengths[i]]
    return dataset.decode(logits, id2label, transitions)
