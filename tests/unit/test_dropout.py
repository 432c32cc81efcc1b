"""The cheaper CPU dropout: drop rate, scale, gradients, seeding, attention, and the mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForTokenClassification

from bioner.models.dropout import BITS, FastCPUDropout, attention, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_drop_rate_and_expectation(p: float) -> None:
    torch.manual_seed(0)
    n = 1_000_001  # odd: the second share of the last word is cut off
    keep, scale = keep_mask(torch.Size([n]), p, torch.device("cpu"))
    assert keep.shape == (n,) and keep.dtype == torch.bool
    rounded = round(p * 2**BITS) / 2**BITS
    assert abs(rounded - p) <= 2**-BITS
    # Five standard deviations of a binomial share.
    assert abs((1 - keep.float().mean().item()) - rounded) < 5 * (p * (1 - p) / n) ** 0.5
    assert scale == pytest.approx(1 / (1 - rounded))
    out = dropout(torch.ones(n), p)
    kept = 1 - rounded
    assert out.mean().item() == pytest.approx(1.0, abs=5 * scale * (kept * rounded / n) ** 0.5)
    values = out.unique().tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(scale)


def test_both_shares_of_each_word_are_used_independently() -> None:
    torch.manual_seed(1)
    n = 400_000
    keep, _ = keep_mask(torch.Size([n]), 0.5, torch.device("cpu"))
    first, second = keep[: n // 2].float(), keep[n // 2 :].float()
    # Independent halves of a word: the joint drop rate is the product of the two rates.
    both = ((1 - first) * (1 - second)).mean().item()
    assert both == pytest.approx(0.25, abs=0.005)


def test_gradient_is_the_mask_times_the_scale() -> None:
    torch.manual_seed(2)
    x = torch.randn(64, 33, requires_grad=True)
    out = dropout(x, 0.3)
    out.sum().backward()
    kept = out.detach() != 0
    _, scale = keep_mask(torch.Size([1]), 0.3, torch.device("cpu"))
    assert torch.equal(x.grad != 0, kept)
    assert torch.allclose(x.grad[kept], torch.full_like(x.grad[kept], scale))
    assert torch.allclose(out[kept], x.detach()[kept] * scale)


def test_edges_and_bad_probabilities() -> None:
    x = torch.randn(10)
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros(10))
    y = x.clone()
    assert dropout(y, 1.0, inplace=True) is y and not y.any()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout probability"):
            dropout(x, bad)
    q = torch.randn(1, 1, 3, 4)
    assert not attention(q, q, q, None, 1.0, None).any()  # every weight dropped
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="dropout probability"):
            attention(q, q, q, None, bad, None)


def test_inplace_matches_out_of_place_under_the_same_seed() -> None:
    x = torch.randn(7, 9)
    torch.manual_seed(3)
    expected = dropout(x, 0.2)
    y = x.clone()
    torch.manual_seed(3)
    assert dropout(y, 0.2, inplace=True) is y
    assert torch.equal(y, expected)


def test_seeded_draws_repeat_and_differ_across_seeds() -> None:
    x = torch.ones(1000)
    torch.manual_seed(4)
    a = dropout(x, 0.5)
    torch.manual_seed(4)
    b = dropout(x, 0.5)
    torch.manual_seed(5)
    c = dropout(x, 0.5)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
def test_attention_without_dropout_equals_sdpa(mask_kind: str) -> None:
    torch.manual_seed(6)
    q, k, v = (torch.randn(3, 4, 7, 8) for _ in range(3))
    mask = None
    if mask_kind != "none":
        keep = torch.ones(3, 1, 7, 7, dtype=torch.bool)
        keep[0, :, :, 5:] = False  # padding keys of the first sequence
        mask = keep if mask_kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, -1e9)
    for scale in (None, 0.2):
        got = attention(q, k, v, mask, 0.0, scale)
        want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
        assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("spread", [1.0, 3.0, 6.0])
def test_attention_under_bf16_autocast_is_as_accurate_as_sdpa(spread: float) -> None:
    # bf16 inputs as a bf16-autocast encoder makes them; larger spreads give larger scores, where
    # bf16 scores and softmax lost accuracy. Errors against a float64 reference.
    torch.manual_seed(9)
    q, k, v = (torch.randn(4, 6, 48, 32) * s for s in (spread, spread, 1.0))
    keep = torch.ones(4, 1, 48, 48, dtype=torch.bool)
    keep[0, :, :, 30:] = False
    exact = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), attn_mask=keep)
    q, k, v = q.bfloat16(), k.bfloat16(), v.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = attention(q, k, v, keep, 0.0, None)
        sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    assert ours.dtype == sdpa.dtype == torch.bfloat16
    ours_error = (ours.double() - exact).abs().mean().item()
    sdpa_error = (sdpa.double() - exact).abs().mean().item()
    assert ours_error <= 1.1 * sdpa_error, (ours_error, sdpa_error)


def test_attention_drops_probabilities_with_the_cheaper_mask() -> None:
    torch.manual_seed(7)
    q, k, v = (torch.randn(2, 2, 5, 4) for _ in range(3))
    probs = torch.softmax(q @ k.transpose(-2, -1) * 0.5, dim=-1)
    torch.manual_seed(8)
    expected = dropout(probs, 0.4) @ v
    torch.manual_seed(8)
    assert torch.allclose(attention(q, k, v, None, 0.4, None), expected, atol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5])
@pytest.mark.parametrize("bf16", [False, True])
def test_attention_keeps_less_for_backward_with_the_same_values_and_gradients(
    p: float, bf16: bool
) -> None:
    # bf16: bf16 inputs, forward and backward inside bf16 autocast, as the attacks differentiate.
    torch.manual_seed(10)
    inputs = [torch.randn(2, 3, 9, 8, requires_grad=True) for _ in range(3)]
    keep = torch.ones(2, 1, 9, 9, dtype=torch.bool)
    keep[1, :, :, 6:] = False
    upstream = torch.randn(2, 3, 9, 8)
    dtype = torch.bfloat16 if bf16 else torch.float32

    def run(fn):  # output, input gradients, bytes autograd keeps for the backward pass
        kept = []

        def pack(t: torch.Tensor) -> torch.Tensor:
            kept.append(t.numel() * t.element_size())
            return t

        torch.manual_seed(11)
        with (
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16),
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        ):
            out = fn(*(x.to(dtype) for x in inputs))
            grads = torch.autograd.grad(out.float(), inputs, upstream)
        return out, grads, sum(kept)

    def composed(q, k, v):  # the plain composition, every intermediate kept by autograd
        with torch.autocast("cpu", enabled=False):
            q, k, v = q.float(), k.float(), v.float()
            scores = torch.matmul(q, k.transpose(-2, -1)).mul_(8**-0.5)
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
            return torch.matmul(dropout(torch.softmax(scores, dim=-1), p), v).to(dtype)

    ours, ours_grads, ours_kept = run(lambda q, k, v: attention(q, k, v, keep, p, None))
    plain, plain_grads, plain_kept = run(composed)
    assert ours.dtype == dtype
    assert torch.equal(ours, plain)
    assert all(torch.equal(a, b) for a, b in zip(ours_grads, plain_grads))
    weights = 2 * 3 * 9 * 9  # attention weights: 4 bytes each (the dropped copy) no longer kept
    assert plain_kept - ours_kept == 4 * weights


def test_mode_replaces_training_dropout_and_attention_only() -> None:
    x = torch.randn(50, 20)
    q, k, v = (torch.randn(2, 2, 5, 4) for _ in range(3))
    with FastCPUDropout():
        torch.manual_seed(9)
        module = torch.nn.Dropout(0.3).train()(x)
        torch.manual_seed(9)
        functional = F.dropout(x, 0.3)  # training=True is F.dropout's default
        assert torch.equal(F.dropout(x, 0.3, training=False), x)
        assert torch.equal(torch.nn.Dropout(0.3).eval()(x), x)
        torch.manual_seed(10)
        sdpa = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4)
        # Causal attention (and no dropout) is PyTorch's own.
        torch.manual_seed(11)
        causal = F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, is_causal=True)
    torch.manual_seed(9)
    expected = dropout(x, 0.3)
    assert torch.equal(module, expected) and torch.equal(functional, expected)
    torch.manual_seed(10)
    assert torch.allclose(sdpa, attention(q, k, v, None, 0.4, None), atol=1e-6)
    torch.manual_seed(11)
    assert torch.allclose(
        causal, F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, is_causal=True)
    )
    # Outside the mode, PyTorch's dropout again (a different draw from the same seed).
    torch.manual_seed(9)
    assert not torch.equal(F.dropout(x, 0.3), expected)


def test_a_transformer_trains_inside_the_mode(tiny_model_dir: Path) -> None:
    model = AutoModelForTokenClassification.from_pretrained(str(tiny_model_dir), num_labels=3)
    ids = torch.randint(5, 100, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[1, 8:] = 0
    labels = torch.randint(0, 3, (4, 12)).masked_fill(mask == 0, -100)
    model.eval()
    plain = model(input_ids=ids, attention_mask=mask).logits
    with FastCPUDropout():
        # Evaluation is untouched by the mode.
        assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, plain)
        model.train()
        torch.manual_seed(12)
        first = model(input_ids=ids, attention_mask=mask, labels=labels)
        torch.manual_seed(12)
        again = model(input_ids=ids, attention_mask=mask, labels=labels).logits
        torch.manual_seed(13)
        other = model(input_ids=ids, attention_mask=mask, labels=labels).logits
    assert torch.equal(first.logits, again) and not torch.equal(first.logits, other)
    first.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
