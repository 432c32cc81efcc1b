"""``bioner-pretrain`` end to end on the tiny BERT: MLM training, encoder folder, fine-tuning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train import assert_scores_match_predictions

from bioner.config import compose_config
from bioner.models.encoders import HubEncoder
from bioner.pretrain import pretrain
from bioner.train import train

QUIET = [
    "logger=none",
    "callbacks.rich_progress_bar=null",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def tiny_overrides(tiny_model_dir: Path) -> list[str]:
    return ["model=tiny", f"model.cache_dir={tiny_model_dir.parent.parent}"]


def finetune_overrides(folder: Path) -> list[str]:
    """The documented way to fine-tune a pretrained folder."""
    return [
        "model=hub",
        f"model.name_or_path={folder}",
        "model.name=tiny_dapt",
    ]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, shared_data: Path):
    run_dir = tmp_path_factory.mktemp("pretrain")
    cfg = compose_config(
        "pretrain",
        [
            f"run_dir={run_dir}",
            *QUIET,
            *tiny_overrides(tiny_model_dir),
            f"paths.data_dir={shared_data}",
            "data.limit_documents=400",
            "data.val_fraction=0.1",
            "trainer.max_steps=30",
            "module.lr=5e-3",  # the tiny random BERT: a large rate shows the loss falling quickly
            "module.warmup_ratio=0.0",
        ],
    )
    return run_dir, pretrain(cfg)


def test_pretraining_lowers_the_held_out_mlm_loss_and_writes_an_encoder_folder(
    pretrained, tiny_model_dir: Path
) -> None:
    run_dir, summary = pretrained
    folder = run_dir / "encoder"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "bioner_pretrain.json"):
        assert (folder / name).is_file(), name
    assert summary["steps"] == 30 and summary["text"] == "bc5cdr:train"
    # ln(vocabulary) ~ 10.3 for the random model; unigram statistics alone bring it well down.
    assert summary["val_loss_before"] > 10.0
    assert summary["val_loss_after"] < summary["val_loss_before"] - 1.0
    assert (
        json.loads((folder / "bioner_pretrain.json").read_text())["val_loss_after"]
        == (summary["val_loss_after"])
    )
    # The encoder itself was trained, not only the head.
    base = load_file(tiny_model_dir / "model.safetensors")
    adapted = load_file(folder / "model.safetensors")
    key = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(base[key], adapted[f"bert.{key}"])


def test_the_folder_loads_as_a_tagger_with_every_encoder_weight(pretrained) -> None:
    run_dir, _ = pretrained
    folder = run_dir / "encoder"
    adapted = load_file(folder / "model.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "encoder weights ... randomly initialised" would raise
        tagger = HubEncoder(str(folder), name="tiny_dapt").load_model({0: "O", 1: "B-X", 2: "I-X"})
    for name, value in tagger.bert.state_dict().items():
        if f"bert.{name}" in adapted:
            assert torch.equal(value, adapted[f"bert.{name}"]), name


def test_the_folder_fine_tunes(pretrained, tmp_path: Path, shared_data: Path) -> None:
    run_dir, _ = pretrained
    cfg = compose_config(
        "train",
        [
            f"run_dir={tmp_path}",
            *QUIET,
            *finetune_overrides(run_dir / "encoder"),
            f"paths.data_dir={shared_data}",
            "data.limit_documents=12",
            "trainer.max_epochs=1",
            "bootstrap_samples=0",
        ],
    )
    summary = train(cfg)
    assert summary["run_name"].startswith("bc5cdr_tiny_dapt_")
    assert summary["devel"]["documents"] == 12
    assert_scores_match_predictions(tmp_path, summary)


def test_pretraining_on_a_text_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    text = tmp_path / "abstracts.txt"
    text.write_text(
        "\n".join(f"Patient {i} developed hepatotoxicity after acetaminophen." for i in range(20))
    )
    cfg = compose_config(
        "pretrain",
        [
            f"run_dir={tmp_path / 'run'}",
            *QUIET,
            *tiny_overrides(tiny_model_dir),
            f"text_file={text}",
            "trainer.max_steps=2",
            "data.batch_size=4",
            "data.val_fraction=0",
        ],
    )
    summary = pretrain(cfg)
    assert summary["text"] == str(text) and summary["steps"] == 2
    assert summary["val_loss_before"] is None and summary["val_loss_after"] is None
    assert (tmp_path / "run" / "encoder" / "model.safetensors").is_file()


def test_a_missing_text_file_fails_before_loading_weights(tmp_path: Path, tiny_model_dir: Path):
    cfg = compose_config(
        "pretrain",
        [f"run_dir={tmp_path}", *QUIET, *tiny_overrides(tiny_model_dir), "text_file=nope.txt"],
    )
    with pytest.raises(FileNotFoundError, match="text_file nope.txt does not exist"):
        pretrain(cfg)
