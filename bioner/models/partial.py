"""Token losses that read partial annotation (``dataset=multi``), and the ``flat`` head's loss.

A batch from corpora that annotate different types carries ``unannotated``: ``(batch, labels)``
booleans, true for the tags of types a sequence's corpus does not annotate
(:class:`~bioner.data.batching.Collator`). Where such a sequence says ``O``, the word is none of
its corpus's types but may be one of the others, so the loss takes the probability of the *set*
of tags it allows (:func:`allowed_tags`) instead of the one gold tag: the marginal likelihood of
the partial labels (Greenberg et al. 2018). Where every type is annotated the set is the gold tag
alone and every loss is the usual one.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from bioner.data.alignment import IGNORE_INDEX


def allowed_tags(labels: torch.Tensor, unannotated: torch.Tensor) -> torch.Tensor:
    """``(batch, length, tags)`` booleans: the gold tag and, where it is ``O`` (id 0), the tags
    of the types the sequence's corpus does not annotate.

    Args:
        labels: ``(batch, length)`` gold tag ids, ``-100`` where ignored (read as ``O`` here;
            the losses leave those positions out).
        unannotated: ``(batch, tags)`` booleans.
    """
    gold = labels.clamp(min=0)
    allowed = nn.functional.one_hot(gold, unannotated.shape[-1]).bool()
    return allowed | ((gold == 0).unsqueeze(-1) & unannotated.unsqueeze(1))


def partial_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, unannotated: torch.Tensor
) -> torch.Tensor:
    """``-log`` of the probability of the allowed tags (:func:`allowed_tags`), averaged over the
    labelled sub-words, in fp32; the cross-entropy where only the gold tag is allowed."""
    with torch.autocast(logits.device.type, enabled=False):
        x = logits.float()
        on = labels != IGNORE_INDEX
        kept = x.masked_fill(~allowed_tags(labels, unannotated), float("-inf"))
        nll = torch.logsumexp(x, dim=-1) - torch.logsumexp(kept, dim=-1)
        return (nll * on).sum() / on.sum().clamp(min=1)


def token_loss(logits: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The ``flat`` head's loss: the token cross-entropy over the labelled sub-words, computed as
    ``*ForTokenClassification`` models compute theirs (so the numbers are theirs), or
    :func:`partial_cross_entropy` when the batch marks unannotated types."""
    labels = batch["labels"]
    unannotated = batch.get("unannotated")
    if unannotated is not None:
        return partial_cross_entropy(logits, labels, unannotated)
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX
    )
