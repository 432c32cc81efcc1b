"""Console scripts print a user's mistake as one message and exit 2; bugs keep their traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bioner.cli.data import main as data_main
from bioner.cli.errors import cli_main
from bioner.data.errors import CorpusFormatError

REPO = Path(__file__).resolve().parents[2]
TRAIN = "Aspirin\tB-Chemical\nreduces\tO\npain\tB-Disease\n.\tO\n\nIt\tO\nworks\tO\n"
OTHER = "Aspirin\tB-Chemical\nhelps\tO\n.\tO\n"
# The six malformed corpora of the issue: (train.tsv, devel.tsv, the file:line in the message).
MALFORMED = {
    "line without a TAB": (TRAIN.replace("reduces\tO", "reduces O"), OTHER, "train.tsv:2"),
    "empty train file": ("", OTHER, "train.tsv"),
    "label missing from train": (
        TRAIN.replace("B-Disease", "O"),
        "pain\tB-Disease\n",
        "devel.tsv:1",
    ),
    "malformed tag": (TRAIN.replace("B-Disease", "X-Disease"), OTHER, "train.tsv:3"),
    "invalid UTF-8": (TRAIN.encode() + b"caf\xe9\tO\n", OTHER, "train.tsv:8"),
    "I- after O": (TRAIN.replace("B-Disease", "I-Disease"), OTHER, "train.tsv:3"),
}


def write_corpus(folder: Path, train: str | bytes, devel: str) -> Path:
    folder.mkdir()
    data = train.encode() if isinstance(train, str) else train
    (folder / "train.tsv").write_bytes(data)
    (folder / "devel.tsv").write_text(devel)
    (folder / "test.tsv").write_text(OTHER)
    return folder


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_corpora_are_one_message_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BIONER_DEBUG", raising=False)
    train, devel, where = MALFORMED[case]
    folder = write_corpus(tmp_path / "corpus", train, devel)
    with pytest.raises(SystemExit) as exit_:
        data_main(["stats", "dataset=iob", f"dataset.data_dir={folder}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bioner-data: error: {folder / where}")
    assert "Fix: " in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 2  # the message and how to see the traceback


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, devel, _ = MALFORMED["malformed tag"]
    folder = write_corpus(tmp_path / "corpus", train, devel)
    args = ["stats", "dataset=iob", f"dataset.data_dir={folder}"]
    monkeypatch.setenv("BIONER_DEBUG", "1")
    with pytest.raises(CorpusFormatError, match="malformed tag"):
        data_main(args)
    monkeypatch.delenv("BIONER_DEBUG")
    monkeypatch.setattr(sys, "argv", ["bioner-data", *args, "--debug"])
    with pytest.raises(CorpusFormatError, match="malformed tag"):
        data_main()


def test_ctrl_c_is_one_line_and_status_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    @cli_main("bioner-test")
    def stopped() -> None:
        raise KeyboardInterrupt

    monkeypatch.delenv("BIONER_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        stopped()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "bioner-test: interrupted (Ctrl-C)\n"
    monkeypatch.setenv("BIONER_DEBUG", "1")  # --debug keeps the traceback
    with pytest.raises(KeyboardInterrupt):
        stopped()


def test_a_bug_is_not_dressed_as_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    @cli_main("bioner-test")
    def broken() -> None:
        assert os.environ["HYDRA_FULL_ERROR"] == "1"  # Hydra lets the exception through
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        broken()
    assert "HYDRA_FULL_ERROR" not in os.environ  # restored


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["foo=1"], "Could not override 'foo'"),
        (["seed=[1"], "no viable alternative"),
        (["dataset=nope"], "Could not find 'dataset/nope'"),
        (["alignment.stride=-1", "logger=none"], "alignment.stride=-1: must be 0 or more"),
        (["attack=pgd", "attack.steps=0"], "attack: steps must be at least 1, not 0"),
        (
            ["postprocess=overlaps", "postprocess.overlaps.keep=big"],
            "postprocess.overlaps: keep='big': choose one of",
        ),
        (["cv.folds=5", "model=tiny", "logger=none"], "needs both cv.folds and cv.fold"),
        # A required key (??? in its config) left out: what to give, not "Missing mandatory
        # value" with OmegaConf's full_key and object_type lines.
        (
            ["model=hub", "logger=none"],
            "model.name_or_path needs a value: give it, as in model.name_or_path=<hub id or",
        ),
        (
            ["cv.folds=5", "cv.fold=0", "dataset.train_subset.fraction=0.1", "model=tiny"],
            "dataset.train_subset.fraction=0.1 cannot be combined with cv.folds=5",
        ),
    ],
)
def test_hydra_config_errors_read_as_cleanly(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "BIONER_DEBUG": "0"}
    env.pop("HYDRA_FULL_ERROR", None)
    result = subprocess.run(
        [sys.executable, "-m", "bioner.train", *args, f"hydra.run.dir={tmp_path}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "bioner-train: error: " in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr
    # Raised inside the task function (alignment.stride), where Hydra would print this first.
    assert "Error executing job" not in result.stderr


def test_a_missing_required_value_says_what_to_give() -> None:
    from omegaconf import OmegaConf

    from bioner.cli.errors import user_message

    for key, expected in (
        ("ckpt_path", "ckpt_path needs a value: give it, as in ckpt_path=<run folder or .ckpt"),
        ("tagger.folder", "model needs a value: give it, as in model=<run folder"),
        ("something.else", "something.else needs a value: give it, as in something.else=..."),
    ):
        cfg = OmegaConf.create({})
        OmegaConf.update(cfg, key, "???")
        with pytest.raises(Exception) as caught:
            OmegaConf.select(cfg, key, throw_on_missing=True)
        assert user_message(caught.value).startswith(expected)
