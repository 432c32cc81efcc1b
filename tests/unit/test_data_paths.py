"""Where corpora are looked for: per split, under this run's data folder, never online offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from bioner.data import download
from bioner.data.readers import CorpusNotFoundError, IOBReader
from bioner.runtime.checkpoints import rebase_data_dir, resolve_checkpoint

TSV = "Aspirin\tB-Chemical\n\n"


def corpus(folder: Path, *splits: str) -> Path:
    folder.mkdir(parents=True)
    for split in splits:
        (folder / f"{split}.tsv").write_text(TSV)
    return folder


def test_a_split_needs_only_its_own_file(tmp_path: Path) -> None:
    reader = IOBReader("toy", corpus(tmp_path / "toy", "test"), ["Chemical"])
    assert [s.label for s in reader.load("test")[0].spans] == ["Chemical"]
    reader.ensure_available(splits=["test"])
    with pytest.raises(CorpusNotFoundError, match="devel.tsv"):
        reader.ensure_available(splits=["devel", "test"])


def test_offline_means_no_download_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(url: str, timeout: float):
        raise AssertionError(f"tried the network: {url}")

    monkeypatch.setattr(download, "urlopen", no_network)
    monkeypatch.setenv("BIONER_OFFLINE", "1")
    entries = [{"url": "https://example.org/test.tsv", "path": "test.tsv", "sha256": None}]
    reader = IOBReader("toy", tmp_path / "toy", ["Chemical"], download=entries)
    with pytest.raises(CorpusNotFoundError, match=r"offline \(BIONER_OFFLINE=1\)"):
        reader.ensure_available(download=True, splits=["test"])


def test_offline_reason_reads_hugging_face_variables_too(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in download.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert download.offline_reason() is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert download.offline_reason() is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert download.offline_reason() == "HF_HUB_OFFLINE=1"


def test_a_stored_corpus_folder_moves_with_the_data_folder(tmp_path: Path) -> None:
    stored = OmegaConf.create({"name": "toy", "data_dir": "../data/toy"})
    moved = corpus(tmp_path / "elsewhere" / "toy", "test")
    rebased = rebase_data_dir(stored, "../data", str(tmp_path / "elsewhere"))
    assert rebased.data_dir == str(moved)
    # A folder given outside the data folder at training stays as it was.
    own = OmegaConf.create({"data_dir": "/corpora/mine"})
    assert rebase_data_dir(own, "../data", str(tmp_path)).data_dir == "/corpora/mine"


def test_an_explicit_data_folder_wins_even_without_the_corpus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    corpus(tmp_path / "data" / "toy", "test")
    stored = OmegaConf.create({"data_dir": "data/toy"})
    given = rebase_data_dir(stored, "data", "/nowhere", default_root="/home/cache")
    assert given.data_dir == "/nowhere/toy"
    # Left at its default, the data folder falls back to where training found the corpus, also
    # when a failed download left an empty folder there.
    (tmp_path / "cache" / "toy").mkdir(parents=True)
    cache = str(tmp_path / "cache")
    assert rebase_data_dir(stored, "data", cache, default_root=cache).data_dir == "data/toy"


def test_a_run_folder_stands_for_its_best_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="folder without a checkpoint"):
        resolve_checkpoint(tmp_path / "run")
    torch.save({}, tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert resolve_checkpoint(tmp_path / "run").name == "last.ckpt"
    torch.save({}, tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert resolve_checkpoint(tmp_path / "run").name == "best.ckpt"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_checkpoint(tmp_path / "missing.ckpt")
