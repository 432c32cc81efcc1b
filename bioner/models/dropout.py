"""Dropout with a cheaper random mask on the CPU, for training.

PyTorch's CPU dropout draws one number per element from a serial Mersenne Twister; in a MiniLM
training step on a 2-core CPU that is about a tenth of the time. :class:`FastCPUDropout` draws
one 31-bit word per *two* elements instead and keeps an element when its 15-bit share of the
word is at least ``round(p * 2**15)``: the drop probability is ``p`` rounded to a multiple of
``2**-15`` (0.1 becomes 0.100006) and kept values are scaled by ``1 / (1 - p_rounded)``, so the
expectation is unchanged. The draws come from torch's default generator, so seeding makes them
reproducible as before.

It is a :class:`~torch.overrides.TorchFunctionMode`: inside ``with FastCPUDropout():`` every
``torch.nn.functional.dropout`` on a CPU tensor, and every ``scaled_dot_product_attention`` with
``dropout_p > 0`` on CPU tensors (written out as the math that PyTorch runs on the CPU when
attention has dropout), uses the cheaper mask. Any encoder that calls these functions benefits,
whatever its modules are called; everything else passes through unchanged. Its attention runs in
float32 even under bf16 autocast, as PyTorch's CPU kernels accumulate (on a CPU without native
bf16 that is also 7x faster than emulated bf16 matmuls: 460 against 3,316 ms forward and
backward for 32 x 12 heads x 48 x 32; SDPA's math path 336 ms). For the backward pass it keeps
the softmax output and the keep-mask of each attention weight but not the dropped weights, which
it recomputes (:class:`_DroppedAttention`): 5 bytes per weight instead of 9, the same values and
gradients. Batches of long sentences are where a step's memory peaks (weights grow with the
square of the length): 95 MiB less for 6 sentences of 240 sub-words in MiniLM.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

BITS = 15
_SHARE = (1 << BITS) - 1


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """A boolean keep-mask of ``shape`` that drops each element with probability ``~p``.

    Returns:
        the mask and the scale ``1 / P(keep)`` for the kept values.
    """
    n = math.prod(shape)
    half = (n + 1) // 2
    # int32 random_() gives 31 uniform bits: two 15-bit shares per draw.
    words = torch.empty(half, dtype=torch.int32, device=device).random_()
    threshold = round(p * (1 << BITS))
    keep = torch.empty(2, half, dtype=torch.bool, device=device)
    torch.ge(words & _SHARE, threshold, out=keep[0])
    torch.ge((words >> BITS) & _SHARE, threshold, out=keep[1])
    return keep.view(-1)[:n].view(shape), (1 << BITS) / ((1 << BITS) - threshold)


def dropout(x: torch.Tensor, p: float, inplace: bool = False) -> torch.Tensor:
    """Training-mode dropout of ``x`` with the cheaper mask (see the module docstring)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], not {p}")
    if p == 0.0:
        return x
    if round(p * (1 << BITS)) >= 1 << BITS:
        return x.zero_() if inplace else torch.zeros_like(x)
    keep, scale = keep_mask(x.shape, p, x.device)
    if inplace:
        return x.mul_(keep).mul_(scale)
    return torch.mul(x, keep).mul_(scale)


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attn_mask: torch.Tensor | None,
    dropout_p: float,
    scale: float | None,
) -> torch.Tensor:
    """``scaled_dot_product_attention`` without causal masking, with the cheaper dropout.

    A boolean mask keeps the ``True`` positions; a float mask is added to the scores. The scores,
    the softmax and the weighted sum are computed in float32 whatever the inputs' dtype or an
    enclosing autocast, as PyTorch's CPU attention kernels accumulate: in bfloat16 the scores
    lose about three significant digits before the softmax amplifies the error (mean error about
    twice SDPA's at larger score scales). The result has the inputs' dtype, as SDPA's.
    """
    dtype = query.dtype
    scale = query.size(-1) ** -0.5 if scale is None else scale
    with torch.autocast("cpu", enabled=False):
        q, k, v = query.float(), key.float(), value.float()
        scores = torch.matmul(q, k.transpose(-2, -1)).mul_(scale)
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                # The smallest finite value, not -inf: a fully masked row stays finite (uniform).
                scores = scores.masked_fill(~attn_mask, torch.finfo(scores.dtype).min)
            else:
                scores = scores + attn_mask.float()
        if dropout_p <= 0.0 or round(dropout_p * (1 << BITS)) >= 1 << BITS:
            # Nothing or everything dropped (or a bad probability, which dropout refuses).
            return torch.matmul(dropout(torch.softmax(scores, dim=-1), dropout_p), v).to(dtype)
        return _DroppedAttention.apply(scores, v, dropout_p).to(dtype)


class _DroppedAttention(torch.autograd.Function):
    """``dropout(softmax(scores)) @ v`` with the cheaper mask (``0 < p < 1``), keeping for the
    backward pass the softmax output, the keep-mask and ``v``, but not the dropped weights as
    autograd would: those are recomputed from the other two. That is 4 of the 9 bytes kept per
    attention weight (batch x heads x length x length) less, which dominates a step's activation
    memory for long sentences; values and gradients are bit for bit those of the plain
    composition (the same operations on the same tensors)."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, v: torch.Tensor, p: float) -> torch.Tensor:
        probs = torch.softmax(scores, dim=-1)
        keep, scale = keep_mask(probs.shape, p, probs.device)
        out = torch.matmul(torch.mul(probs, keep).mul_(scale), v)
        ctx.save_for_backward(probs, keep, v)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        # As autograd runs the composition: when the caller differentiates inside an autocast
        # region (the attacks do), the products run in bf16 and each gradient is cast back to
        # its tensor's dtype (float32) before the next step.
        probs, keep, v = ctx.saved_tensors
        grad_scores = grad_v = None
        if ctx.needs_input_grad[1]:
            dropped = torch.mul(probs, keep).mul_(ctx.scale)
            grad_v = torch.matmul(dropped.transpose(-2, -1), grad)
            del dropped
        if ctx.needs_input_grad[0]:
            grad_probs = torch.matmul(grad, v.transpose(-2, -1)).to(probs.dtype)
            grad_probs = grad_probs.mul_(ctx.scale).mul_(keep)
            grad_scores = torch._softmax_backward_data(grad_probs, probs, -1, probs.dtype)
        return grad_scores, grad_v, None


def _bind(names: tuple[str, ...], defaults: dict[str, Any], args: tuple, kwargs: dict) -> dict:
    bound = dict(defaults)
    bound.update(zip(names, args))
    bound.update(kwargs)
    return bound


_DROPOUT = (("input", "p", "training", "inplace"), {"p": 0.5, "training": True, "inplace": False})
_SDPA = (
    ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa"),
    {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None, "enable_gqa": False},
)


class FastCPUDropout(TorchFunctionMode):
    """Inside this mode, dropout on CPU tensors draws the cheaper mask (module docstring)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func is F.dropout:
            a = _bind(*_DROPOUT, args, kwargs)
            if a["training"] and a["input"].device.type == "cpu":
                return dropout(a["input"], a["p"], a["inplace"])
        elif func is F.scaled_dot_product_attention:
            a = _bind(*_SDPA, args, kwargs)
            if (
                a["dropout_p"] > 0.0
                and not a["is_causal"]
                and not a["enable_gqa"]
                and a["query"].device.type == "cpu"
            ):
                return attention(
                    a["query"], a["key"], a["value"], a["attn_mask"], a["dropout_p"], a["scale"]
                )
        return func(*args, **kwargs)
