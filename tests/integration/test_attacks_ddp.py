"""Adversarial training under DDP (2 CPU processes): correct gradients, one all-reduce per step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_train import child_env

from bioner.attacks import PGD, VAT, FreeLB, Gradients, special_token_ids
from bioner.data.alignment import Alignment
from bioner.data.readers import IOBReader
from bioner.models.encoders import HubEncoder

HERE = Path(__file__).resolve().parent


def probe(tmp: Path, attack: str, tiny_model_dir: Path, fixtures_dir: Path) -> list[dict]:
    out = tmp / attack
    out.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            str(HERE / "ddp_attack_probe.py"),
            str(tiny_model_dir),
            str(fixtures_dir / "iob"),
            str(out),
            attack,
        ],
        cwd=tmp,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [torch.load(out / f"rank{r}.pt") for r in (0, 1)], torch.load(out / "start0.pt")


@pytest.fixture(scope="module")
def clean_allreduces(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, fixtures_dir: Path
) -> int:
    ranks, _ = probe(tmp_path_factory.mktemp("clean"), "none", tiny_model_dir, fixtures_dir)
    return ranks[0]["allreduces"]


@pytest.mark.slow
@pytest.mark.parametrize("attack", ["pgd", "freelb", "vat"])
def test_ddp_averages_adversarial_gradients_with_one_allreduce_per_bucket(
    attack: str, tmp_path: Path, tiny_model_dir: Path, fixtures_dir: Path, clean_allreduces: int
) -> None:
    ranks, start = probe(tmp_path, attack, tiny_model_dir, fixtures_dir)
    # As many bucket all-reduces as clean training: none for the ascent steps.
    assert ranks[0]["allreduces"] == clean_allreduces > 0
    # Both ranks hold the same all-reduced gradients: the mean of each rank's own objective.
    for name, grad in ranks[0]["grads"].items():
        assert torch.equal(grad, ranks[1]["grads"][name]), name
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    reader = IOBReader(name="fixture", data_dir=fixtures_dir / "iob", entity_types=None)
    labels = dict(enumerate(Alignment().labels(reader.entity_types)))
    model = encoder.load_model(labels, dropout=0.0)
    model.load_state_dict(start)
    model.train()
    adversary = {
        "pgd": lambda: PGD(epsilon=0.5, steps=3, norm="l2"),
        "freelb": lambda: FreeLB(0.5, steps=3),
        "vat": lambda: VAT(epsilon=0.5, xi=0.1),
    }[attack]()
    adversary.special_ids = special_token_ids(encoder.load_tokenizer())
    torch.set_num_threads(1)
    for rank in ranks:
        (batch,) = rank["batches"]
        torch.set_rng_state(rank["rng"][0])  # VAT's random probe, as that rank drew it
        # The mean over the 2 ranks: every pass weighted 1/2, as accumulating 2 batches does.
        out = adversary.training_loss(model, batch, Gradients(accumulate=2))
        (out.loss / 2).backward()
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.grad, ranks[0]["grads"][name], rtol=1e-4, atol=1e-6)
