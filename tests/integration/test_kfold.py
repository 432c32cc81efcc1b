"""k-fold cross-validation end to end: ``bioner-train -m cv.folds=K cv.fold='range(K)'``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_train import QUIET, tiny_overrides

from bioner.config import compose_config
from bioner.errors import ConfigError
from bioner.inference.formats import read_jsonl
from bioner.train import train

LIMIT = 12  # documents per corpus split: 24 pooled train+devel documents, 12 per fold


def test_two_fold_multirun_scores_every_document_once(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "bioner.train",
        "-m",
        f"paths.log_dir={tmp_path}",
        *QUIET,
        *tiny_overrides(tiny_model_dir),
        f"paths.data_dir={shared_data}",
        f"data.limit_documents={LIMIT}",
        "trainer.max_epochs=1",
        "bootstrap_samples=0",
        "cv.folds=2",
        "cv.fold=range(2)",
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(tmp_path.glob("train/multiruns/*/*/metrics.json"))
    assert len(runs) == 2
    held_out: list[str] = []
    for fold, metrics_file in enumerate(runs):
        run_dir = metrics_file.parent
        # The run's own config says which fold it held out.
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert config["cv"] == {"folds": 2, "fold": fold}
        assert config["data"]["folds"] == 2 and config["data"]["fold"] == fold
        metrics = json.loads(metrics_file.read_text())
        assert metrics["test"]["documents"] == LIMIT
        # The checkpoint was picked on an inner devel split of the training fold (a tenth of
        # its 12 documents: 2), never on the held-out fold that test scored.
        devel = [r["id"] for r in read_jsonl(run_dir / "predictions" / "devel.jsonl")]
        test = [r["id"] for r in read_jsonl(run_dir / "predictions" / "test.jsonl")]
        assert metrics["devel"]["documents"] == len(devel) == 2
        assert set(devel).isdisjoint(test)
        held_out += test
    # Sentence documents of the IOB files: train-<n> and devel-<n>, never the corpus test split.
    expected = [f"{split}-{i}" for split in ("train", "devel") for i in range(LIMIT)]
    assert sorted(held_out) == sorted(expected)


def test_a_fold_out_of_range_fails_before_training(tmp_path: Path, tiny_model_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [f"run_dir={tmp_path}", *QUIET, *tiny_overrides(tiny_model_dir), "cv.folds=3", "cv.fold=3"],
    )
    with pytest.raises(ConfigError, match=r"cv.fold must be an integer in \[0, 3\)"):
        train(cfg)
