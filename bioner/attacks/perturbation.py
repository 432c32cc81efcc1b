"""Perturbations of the word-embedding output: where they may go, which way they point, how far.

Every perturbation is a tensor shaped like the embeddings, ``(batch, tokens, hidden)``, and every
ball is per token: each token's perturbation vector has an L-inf (``linf``) or L2 (``l2``) norm of
at most epsilon. Per token rather than per sentence because biomedical sentences run from 3 to
over 200 sub-words: a per-sentence L2 ball would give the tokens of a short sentence far larger
perturbations than those of a long one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from bioner.models.adversarial import HeadLoss
from bioner.models.partial import token_loss

NORMS = ("linf", "l2")


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, not {norm!r}")
    return norm


def perturbable_mask(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: Sequence[int]
) -> torch.Tensor:
    """``(batch, tokens, 1)`` float mask: 1 on real tokens, 0 on padding and special tokens.

    ``[CLS]``, ``[SEP]`` and padding carry no word, so perturbing them would attack the model
    through positions a text can never change.
    """
    mask = attention_mask.bool()
    if len(special_ids):
        specials = torch.as_tensor(list(special_ids), device=input_ids.device)
        mask &= ~torch.isin(input_ids, specials)
    return mask.unsqueeze(-1).float()


def ascent_direction(grad: torch.Tensor, norm: str) -> torch.Tensor:
    """The steepest-ascent step of unit size in ``norm``, per token.

    ``linf``: the sign of the gradient; ``l2``: the gradient divided by its per-token L2 norm
    (zero where the gradient is zero). Non-finite entries (an overflowing fp16 loss scale) count
    as zero; the loss scaler skips such a step anyway.
    """
    grad = torch.where(torch.isfinite(grad), grad, torch.zeros_like(grad))
    if norm == "linf":
        return grad.sign()
    length = grad.norm(dim=-1, keepdim=True)
    return grad / length.clamp_min(torch.finfo(grad.dtype).tiny)


def project(delta: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """``delta`` moved onto the per-token ``norm`` ball of radius ``epsilon`` (closest point)."""
    if norm == "linf":
        return delta.clamp(-epsilon, epsilon)
    length = delta.norm(dim=-1, keepdim=True)
    return delta * (epsilon / length.clamp_min(epsilon))


def random_start(like: torch.Tensor, mask: torch.Tensor, epsilon: float, norm: str) -> torch.Tensor:
    """A random point of the ball: uniform per coordinate (``linf``) or a uniform direction at a
    uniform radius (``l2``); zero where ``mask`` is zero. Drawn from torch's global generator,
    which bioner reseeds before every training batch."""
    if norm == "linf":
        delta = torch.empty_like(like).uniform_(-epsilon, epsilon)
    else:
        direction = ascent_direction(torch.randn_like(like), "l2")
        delta = direction * epsilon * torch.rand(like.shape[:-1] + (1,), device=like.device)
    return delta * mask


def word_embeddings(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """The output of the encoder's word-embedding table for ``input_ids``.

    Position and token-type embeddings and the embedding LayerNorm come after it, inside the
    model, so a perturbation added here moves the words only.
    """
    return model.get_input_embeddings()(input_ids)


def embedding_loss(
    model: nn.Module,
    embeds: torch.Tensor,
    batch: dict[str, torch.Tensor],
    head_loss: HeadLoss | None = None,
) -> torch.Tensor:
    """The training loss of ``batch`` with word embeddings ``embeds``: ``head_loss`` of the
    logits and the batch (``TokenClassifier.head_loss``), by default the ``flat`` head's token
    cross-entropy (:func:`bioner.models.partial.token_loss`)."""
    return (head_loss or token_loss)(embedding_logits(model, embeds, batch), batch)


def embedding_logits(
    model: nn.Module, embeds: torch.Tensor, batch: dict[str, torch.Tensor]
) -> torch.Tensor:
    """The logits of ``batch`` with its word embeddings replaced by ``embeds``."""
    return model(inputs_embeds=embeds, attention_mask=batch["attention_mask"]).logits
