"""The ``crf`` head's training side: a linear-chain CRF over the words of each sequence, whose
negative log-likelihood replaces the token cross-entropy (``module.head=crf``).

The encoder's token-classification outputs are the emission scores; the CRF adds learned scores
for consecutive tags and for a sequence's first and last tag. Only the labelled sub-words (labels
other than ``-100``: one per word under ``alignment=first`` or ``last``) form the chain, in their
order, so special tokens and continuation sub-words are skipped. Transitions the scheme forbids
(``O`` then ``I-X``) get a large negative score; the start and end of a sequence are left free in
training, because a window of a long unit may start or end inside an entity. Decoding
(:class:`bioner.data.alignment.Transitions`) forbids all of them outright.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bioner.data.alignment import IGNORE_INDEX, Transitions
from bioner.data.alignment.crf import allowed_transitions
from bioner.models.partial import allowed_tags

# Added to forbidden transitions in training: finite, so no gradient is ever NaN.
FORBIDDEN = -10_000.0


class CRF(nn.Module):
    """Learned transition scores over ``tags`` and the CRF loss.

    Args:
        tags: the model's tags in output order (``id2label``); the scheme (IOB2 or IOBES) is
            read from them.
    """

    def __init__(self, tags: Sequence[str]) -> None:
        super().__init__()
        self.tags = tuple(tags)
        n = len(self.tags)
        self.transitions = nn.Parameter(torch.zeros(n, n))
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        pairs, _, _ = allowed_transitions(self.tags)
        self.register_buffer("allowed", torch.tensor(pairs), persistent=False)

    def extra_repr(self) -> str:
        return f"tags={len(self.tags)}"

    def nll(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        unannotated: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The negative log-likelihood of the gold tags, summed over sequences and divided by
        the number of labelled sub-words (the token cross-entropy's scale, so learning rates
        carry over between heads).

        Args:
            logits: ``(batch, length, tags)`` emission scores.
            labels: ``(batch, length)`` gold tag ids, ``-100`` off the chain.
            unannotated: ``(batch, tags)`` booleans, the tags of types a sequence's corpus does
                not annotate (``dataset=multi``): its likelihood is then that of every tag
                sequence its partial labels allow (:func:`bioner.models.partial.allowed_tags`),
                a second forward pass over the chain instead of the gold path's score.
        """
        # In fp32 whatever the autocast: sums of exponentials over long chains lose too much
        # in bf16.
        with torch.autocast(logits.device.type, enabled=False):
            emissions = logits.float()
            on_chain = labels != IGNORE_INDEX
            counts = on_chain.sum(dim=1)
            # Chain positions first, in order (a stable sort of "off the chain" flags).
            order = torch.sort((~on_chain).to(torch.int8), dim=1, stable=True).indices
            # The longest chain: one host-device sync per step, which the loop below needs.
            n = int(counts.max()) if labels.numel() else 0
            if n == 0:
                return emissions.sum() * 0.0
            order = order[:, :n]
            tags = labels.gather(1, order).clamp(min=0)
            em = emissions.gather(1, order.unsqueeze(-1).expand(-1, -1, emissions.shape[-1]))
            step = torch.arange(n, device=labels.device)[None, :] < counts[:, None]
            pairs = self.transitions.masked_fill(~self.allowed, FORBIDDEN)
            if unannotated is None:
                last = tags.gather(1, (counts - 1).clamp(min=0)[:, None]).squeeze(1)
                gold = (
                    self.start[tags[:, 0]]
                    + (em.gather(2, tags.unsqueeze(-1)).squeeze(-1) * step).sum(dim=1)
                    + (pairs[tags[:, :-1], tags[:, 1:]] * step[:, 1:]).sum(dim=1)
                    + self.end[last]
                )
            else:
                # Finite, as the forbidden transitions: a masked chain keeps finite gradients.
                kept = allowed_tags(labels.gather(1, order), unannotated)
                gold = self._log_partition(em.masked_fill(~kept, FORBIDDEN), pairs, step)
            log_z = self._log_partition(em, pairs, step)
            nll = (log_z - gold) * (counts > 0)
            return nll.sum() / counts.sum().clamp(min=1)

    def _log_partition(
        self, em: torch.Tensor, pairs: torch.Tensor, step: torch.Tensor
    ) -> torch.Tensor:
        """``log`` of the summed scores of every tag sequence of each chain (the forward
        algorithm); ``step`` marks the chain positions, first ones first."""
        alpha = self.start + em[:, 0]
        for t in range(1, em.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + pairs, dim=1) + em[:, t]
            alpha = torch.where(step[:, t, None], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def export(self) -> Transitions:
        """The learned scores as the decoder reads them."""
        return Transitions(
            self.tags,
            self.transitions.detach().float().cpu().numpy(),
            self.start.detach().float().cpu().numpy(),
            self.end.detach().float().cpu().numpy(),
        )
