"""Fetching corpus files: sha256 checks, no refetch, offline failure; never the network."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from urllib.error import URLError

import pytest

from bioner.data import download
from bioner.data.download import ChecksumError, DownloadError, fetch, sha256_file
from bioner.data.readers import CorpusNotFoundError, IOBReader

CONTENT = b"Aspirin\tB-Chemical\nhelps\tO\n\n"
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A folder standing in for a server, reached through file:// URLs."""
    folder = tmp_path / "remote"
    folder.mkdir()
    for split in ("train", "devel", "test"):
        (folder / f"{split}.tsv").write_bytes(CONTENT)
    return folder


def entries(remote: Path, sha: str | None = SHA) -> list[dict]:
    return [
        {"url": (remote / f"{s}.tsv").as_uri(), "path": f"{s}.tsv", "sha256": sha}
        for s in ("train", "devel", "test")
    ]


def no_network(*args, **kwargs):
    raise AssertionError("urlopen must not be called")


def test_fetch_downloads_checks_and_moves_into_place(remote: Path, tmp_path: Path) -> None:
    dest = tmp_path / "data" / "corpus"
    paths = fetch(entries(remote), dest)
    assert paths == [dest / "train.tsv", dest / "devel.tsv", dest / "test.tsv"]
    assert all(p.read_bytes() == CONTENT for p in paths)
    assert sorted(p.name for p in dest.iterdir()) == ["devel.tsv", "test.tsv", "train.tsv"]
    assert sha256_file(paths[0]) == SHA


def test_present_files_with_the_right_sha_are_not_fetched_again(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetch(entries(remote), tmp_path / "c")
    monkeypatch.setattr(download, "urlopen", no_network)
    assert fetch(entries(remote), tmp_path / "c")[0].read_bytes() == CONTENT


def test_sha_mismatch_raises_with_both_hashes_and_saves_nothing(
    remote: Path, tmp_path: Path
) -> None:
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch(entries(remote, wrong), tmp_path / "c")
    assert SHA in str(info.value) and wrong in str(info.value)
    assert list((tmp_path / "c").iterdir()) == []  # no file, no temporary left behind


def test_present_file_with_a_wrong_sha_is_not_overwritten(remote: Path, tmp_path: Path) -> None:
    dest = tmp_path / "c"
    dest.mkdir()
    (dest / "train.tsv").write_text("my own edits\n")
    with pytest.raises(ChecksumError, match="delete it to download it again"):
        fetch(entries(remote), dest)
    assert (dest / "train.tsv").read_text() == "my own edits\n"


def test_unknown_sha_is_saved_with_a_warning(
    remote: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        fetch(entries(remote, None)[:1], tmp_path / "c")
    assert (tmp_path / "c" / "train.tsv").read_bytes() == CONTENT
    assert f"not verified (its sha256: {SHA})" in caplog.text


def test_offline_fails_at_once_with_a_short_timeout_and_says_what_to_do(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def offline(url: str, timeout: float):
        calls.append(timeout)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(download, "urlopen", offline)
    with pytest.raises(DownloadError) as info:
        fetch(entries(remote), tmp_path / "c")
    msg = str(info.value)
    assert "could not download file://" in msg and "name resolution" in msg
    assert "offline" in msg and "BIONER_DATA_DIR" in msg and str(tmp_path / "c") in msg
    assert len(calls) == 1 and calls[0] <= 30  # gave up after the first file, quickly
    assert list((tmp_path / "c").iterdir()) == []


def test_paths_may_not_leave_the_corpus_folder(remote: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="relative"):
        fetch([{"url": "file:///x", "path": "../x.tsv", "sha256": SHA}], tmp_path / "c")


def test_ensure_available_downloads_on_request_only(remote: Path, tmp_path: Path) -> None:
    r = IOBReader("toy", tmp_path / "toy", ["Chemical"], download=entries(remote))
    with pytest.raises(CorpusNotFoundError, match="bioner-data download toy"):
        r.load("train")  # loading never downloads
    r.ensure_available(download=True)
    assert [s.label for s in r.load("train")[0].spans] == ["Chemical"]


def test_ensure_available_offline_raises_corpus_not_found(
    remote: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(url: str, timeout: float):
        raise TimeoutError("timed out")

    monkeypatch.setattr(download, "urlopen", offline)
    r = IOBReader("toy", tmp_path / "toy", ["Chemical"], download=entries(remote))
    with pytest.raises(CorpusNotFoundError) as info:
        r.ensure_available(download=True)
    msg = str(info.value)
    assert "Download failed: could not download" in msg and "timed out" in msg
    assert "BIONER_DATA_DIR" in msg
    assert isinstance(info.value.__cause__, DownloadError)
