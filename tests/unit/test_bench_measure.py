"""bench/measure.py's StepWindow: which steps it times, and the sentences and real sub-word
tokens it counts in them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))


def run_steps(window, masks: list[torch.Tensor]) -> None:  # noqa: ANN001
    window.fit_start()
    for mask in masks:
        window.step_start()
        window.count_batch(mask)
        window.step_end()


def mask(rows: list[int], width: int) -> torch.Tensor:
    """An attention mask of one row per real length, padded to ``width``."""
    return torch.tensor([[1] * n + [0] * (width - n) for n in rows])


@pytest.mark.parametrize(("warmup", "timed"), [(2, 3), (0, 3), (2, None)])
def test_counts_only_the_timed_steps(warmup: int, timed: int | None) -> None:
    from measure import StepWindow

    masks = [mask([k + 1] * (k + 1), 8) for k in range(7)]  # step k+1: k+1 rows of k+1 tokens
    window = StepWindow(warmup, timed)
    run_steps(window, masks)
    counted = range(warmup + 1, (warmup + timed if timed else len(masks)) + 1)
    assert window.sentences == sum(counted)
    assert window.real_tokens == sum(n * n for n in counted)
    assert window.padded_tokens == sum(n * 8 for n in counted)
    assert window.seconds > 0


def test_rates_give_tokens_per_second_and_padding() -> None:
    from measure import StepWindow

    window = StepWindow(1, 2)
    run_steps(window, [mask([9], 9), mask([3, 5], 8), mask([6, 2, 4], 8), mask([1], 9)])
    rates = window.rates()
    assert rates["sentences"] == 5
    assert rates["subwords_per_sentence"] == pytest.approx(20 / 5)
    assert rates["padding"] == pytest.approx(40 / 20)
    assert rates["tokens_per_s"] == pytest.approx(rates["sentences_per_s"] * 4)


def test_counts_the_batch_shapes_that_the_timed_steps_meet_first() -> None:
    from measure import StepWindow

    window = StepWindow(2, 3)
    widths = [8, 16, 8, 24, 16, 32, 40]  # steps 3 to 5 timed: 8 (seen), 24 (new), 16 (seen)
    run_steps(window, [mask([1, 1], w) for w in widths])
    rates = window.rates()
    assert rates["batch_shapes"] == 5
    assert rates["new_batch_shapes_timed"] == 1
