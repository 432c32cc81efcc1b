"""`import bioner` is the front door: fast, lazy, and every exported name resolves."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

import bioner
from bioner.data.readers import CorpusNotFoundError

REPO = Path(__file__).resolve().parents[2]


def test_import_loads_nothing_heavy() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import bioner; t = time.perf_counter() - t\n"
        "heavy = [m for m in ('torch', 'hydra', 'transformers', 'lightning') if m in sys.modules]\n"
        "assert not heavy, heavy; print(t)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert float(run.stdout) < 0.5


@pytest.mark.parametrize("name", sorted(set(bioner.__all__) - {"__version__"}))
def test_every_exported_name_resolves_to_its_definition(name: str) -> None:
    value = getattr(bioner, name)
    assert value.__name__ == name and value.__module__ == bioner._EXPORTS[name]
    assert name in dir(bioner)


def test_exports_and_version() -> None:
    assert set(bioner.__all__) == {"__version__", *bioner._EXPORTS}
    assert bioner.__version__ == version("bioner")
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        bioner.Nope  # noqa: B018


def test_load_corpus_reads_a_split_and_says_where_data_is_missing(
    fixtures_dir: Path, tmp_path: Path
) -> None:
    iob = fixtures_dir / "iob"
    docs = bioner.load_corpus("iob", "devel", overrides=[f"dataset.data_dir={iob}"])
    assert docs and all(isinstance(d, bioner.Document) for d in docs)
    assert any(d.spans for d in docs)
    with pytest.raises(CorpusNotFoundError, match="BIONER_DATA_DIR"):
        bioner.load_corpus("ncbi_disease", "devel", data_dir=tmp_path)
