"""ReseedEachBatch: every batch's randomness follows from (seed, epoch, batch, rank) alone."""

from __future__ import annotations

import random
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bioner.utils.callbacks import ReseedEachBatch


@pytest.fixture(autouse=True)
def keep_global_generators() -> Iterator[None]:
    """The test seeds the global generators; the tests after it find them as they were."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


def draws() -> tuple[float, float, list[float]]:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


# "cuda": the GPU branch (torch.manual_seed, which also seeds CUDA lazily) runs on a CPU-only
# machine too, and must seed the CPU generator as the CPU branch does.
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_batch_draws_the_same_whatever_ran_before_it(device: str) -> None:
    callback = ReseedEachBatch(seed=7)
    trainer = SimpleNamespace(current_epoch=2, global_rank=0)
    module = SimpleNamespace(device=torch.device(device))
    callback.on_train_batch_start(trainer, module, None, 5)
    first = draws()
    draws()  # what a step draws in between
    callback.on_train_batch_start(trainer, module, None, 5)
    assert draws() == first
    # The seed of (seed, epoch, batch, rank), in each of the three generators.
    seed = int(np.random.SeedSequence([7, 2, 5, 0]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    assert draws() == first
    callback.on_train_batch_start(trainer, module, None, 6)
    assert draws() != first
