"""``bioner-eval postprocess=abbreviations`` on a checkpoint of the tiny BERT: the report scores
the post-processed predictions and keeps the raw scores beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import compose

from bioner.config import compose_config
from bioner.eval import evaluate_checkpoint
from bioner.inference.formats import read_jsonl
from bioner.train import train

# Whole abstracts (PubTator), where abbreviations are defined and then used.
LIMIT = 12
EPOCHS = 8


def test_eval_with_abbreviations_reports_raw_and_post_processed_scores(
    tmp_path: Path, tiny_model_dir: Path, shared_data: Path
) -> None:
    run_dir = tmp_path / "run"
    trained = train(
        compose(
            run_dir,
            tiny_model_dir,
            "dataset=bc5cdr_pubtator",
            f"paths.data_dir={shared_data}",
            f"data.limit_documents={LIMIT}",
            "data.batch_size=8",
            f"trainer.max_epochs={EPOCHS}",
            "module.lr=3e-3",
            "module.warmup_ratio=0.0",
            "callbacks.early_stopping=null",
            "bootstrap_samples=0",
        )
    )
    assert "postprocess" not in trained  # train.yaml: postprocess none
    out = tmp_path / "eval"
    evaluated = evaluate_checkpoint(
        compose_config(
            "eval",
            [
                f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
                f"run_dir={out}",
                f"data.limit_documents={LIMIT}",
                "bootstrap_samples=0",
                "trainer.enable_progress_bar=false",
                "postprocess=abbreviations",
            ],
        )
    )
    assert json.loads((out / "metrics.json").read_text()) == evaluated
    section = evaluated["postprocess"]
    assert section["name"] == "abbreviations"
    assert section["steps"] == ["AbbreviationResolver(drop_unsupported=False)"]
    for split in ("devel", "test"):
        scores = section[split]
        # The raw scores are those of the training run's own (raw) final evaluation ...
        assert scores["raw"] == trained[split]["metrics"]
        assert scores["f1_raw"] == trained[split]["metrics"]["f1"]
        # ... and the main section holds the post-processed ones.
        assert scores["f1"] == evaluated[split]["metrics"]["f1"]
        assert scores["delta_f1"] == pytest.approx(scores["f1"] - scores["f1_raw"])
        # The prediction files are post-processed: they differ from the raw run's where the
        # steps changed a document, and only there.
        raw = read_jsonl(run_dir / "predictions" / f"{split}.jsonl")
        post = read_jsonl(out / "predictions" / f"{split}.jsonl")
        assert [r["id"] for r in raw] == [r["id"] for r in post]
        changed = sum(a["spans"] != b["spans"] for a, b in zip(raw, post))
        assert changed == scores["documents_changed"]
    assert sum(section[s]["documents_changed"] for s in ("devel", "test")) > 0
