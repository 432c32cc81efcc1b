"""Test-wide settings: no network, W&B offline, shared corpora and the tiny BERT built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the test suite may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = Path(os.environ.get("BIONER_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real corpora in ../shared/data; tests that need them skip with a reason when absent."""
    if not (SHARED_DATA / "bc5cdr" / "train.tsv").is_file():
        pytest.skip(f"real corpora not found at {SHARED_DATA} (set BIONER_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer BERT on the MiniLM vocabulary, built once per test run."""
    from bioner.models.encoders import TinyBert

    return TinyBert(cache_dir=str(tmp_path_factory.mktemp("tiny"))).resolve()
