"""Test-wide settings: no network, W&B offline, shared corpora, and the tiny BERT (and tiny
folders of other encoder families: RoBERTa, a BioBERT-like cased vocabulary) built once."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Nothing in the test suite may reach the network.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Encoders that bioner builds (the tiny BERT) go to a per-run folder, not the user's cache;
# `paths.cache_dir` reads this variable, so composed configs and fixtures share one build.
_CACHE_DIR = tempfile.mkdtemp(prefix="bioner-test-cache-")
os.environ["BIONER_CACHE_DIR"] = _CACHE_DIR

# pytest-xdist (`-n auto` in pyproject.toml): each worker gets its share of the cores for torch,
# its subprocesses included (they inherit the variables), instead of every worker spinning one
# OpenMP thread per core on all of them.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1 and "OMP_NUM_THREADS" not in os.environ:
    _threads = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = _threads


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this process's encoder cache: every run (and every xdist worker) makes its own,
    about 9 MB, and they used to pile up in the temporary folder."""
    shutil.rmtree(_CACHE_DIR, ignore_errors=True)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core, at most 4. Each worker holds torch, a tiny BERT and
    sometimes a MiniLM, and many tests start training subprocesses of their own; more workers
    than that buy little and cost memory (about 2 GiB each at peak)."""
    return max(1, min(4, os.cpu_count() or 1))


# Property-based tests (tests/unit/test_properties.py): a modest budget by default, more with
# `pytest --hypothesis-profile=thorough`. No deadline: the shared machine's timings vary.
settings.register_profile(
    "default",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", settings.get_profile("default"), max_examples=3000)
settings.load_profile("default")

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The real corpora: BIONER_SHARED_DATA, else the data folder bioner itself is told about
# (BIONER_DATA_DIR, which .ci/run sets), else ../shared/data next to the checkout.
SHARED_DATA = Path(
    os.environ.get("BIONER_SHARED_DATA")
    or os.environ.get("BIONER_DATA_DIR")
    or REPO.parent / "shared" / "data"
)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real corpora; tests that need them skip with a reason when absent, and fail instead
    under BIONER_REQUIRE_DATA=1 (CI), where a skip would hide a hundred tests."""
    if not (SHARED_DATA / "bc5cdr" / "train.tsv").is_file():
        message = f"real corpora not found at {SHARED_DATA} (set BIONER_SHARED_DATA)"
        if os.environ.get("BIONER_REQUIRE_DATA") == "1":
            pytest.fail(message + "; BIONER_REQUIRE_DATA=1 asks for them")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """A randomly initialised 2-layer BERT on the MiniLM vocabulary, built once per test run.

    Built with the defaults of ``conf/model/tiny.yaml`` into ``BIONER_CACHE_DIR``, so that
    ``model=tiny`` in a composed config finds this same folder.
    """
    from hydra.utils import instantiate

    from bioner.config import compose_config

    return Path(instantiate(compose_config("data", ["model=tiny"]).model).resolve())


# Text with capitals and without, for the tokenizers of other encoder families built below:
# a few sentences, and 400 made-up words of two syllables, every third one capitalised.
_SYLLABLES = "ami bro cal den eth fol gen hyd ine lol mab nor ox pril quin ras sta tol uro vir"
_WORDS = [a + b for a in _SYLLABLES.split() for b in _SYLLABLES.split()]
_FAMILY_TEXT = [
    "Aspirin reduces the risk of Myocardial Infarction in patients with Diabetes .",
    "Naloxone reverses the antihypertensive effect of Clonidine in Hypertensive rats .",
    "Lithium-induced Nephrogenic diabetes insipidus ( NDI ) was seen in 3 of 12 patients .",
    *(
        " ".join(w.title() if i % 3 == 0 else w for i, w in enumerate(_WORDS[j : j + 10]))
        for j in range(0, len(_WORDS), 10)
    ),
] * 5


@pytest.fixture(scope="session")
def roberta_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random RoBERTa folder as the hub ships RoBERTa: byte-level BPE whose
    ``tokenizer_config.json`` says ``add_prefix_space: false``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    bpe = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe.train_from_iterator(_FAMILY_TEXT, vocab_size=600, special_tokens=specials)
    files = tmp_path_factory.mktemp("bpe")
    bpe.save_model(str(files))
    # Positional: transformers 4 names them vocab_file and merges_file, 5 vocab and merges.
    tokenizer = RobertaTokenizer(
        str(files / "vocab.json"), str(files / "merges.txt"), add_prefix_space=False
    )
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
    )
    folder = tmp_path_factory.mktemp("roberta")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        RobertaModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def cased_vocab_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT folder as BioBERT's hub folders are: a cased ``vocab.txt`` and a
    ``config.json``, no tokenizer config (transformers' BERT default then lower-cases)."""
    import torch
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel

    wordpiece = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    wordpiece.train_from_iterator(_FAMILY_TEXT, vocab_size=600)
    folder = tmp_path_factory.mktemp("cased_bert")
    wordpiece.save_model(str(folder))
    config = BertConfig(
        vocab_size=wordpiece.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    assert not (folder / "tokenizer_config.json").exists()
    return folder
