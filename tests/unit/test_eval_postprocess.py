"""Post-processing of scored predictions before the report: ``StageResult.postprocessed`` and
``finish_evaluation`` with a ``postprocess`` config (as ``bioner-eval postprocess=...``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from bioner.data.document import Document, Span
from bioner.data.tokenize import word_ranges
from bioner.evaluation import evaluate
from bioner.inference.formats import read_jsonl
from bioner.models.module import StageResult
from bioner.postprocess import AbbreviationResolver
from bioner.runtime.finish import finish_evaluation

TEXT = "Acute renal failure (ARF) followed cisplatin. ARF resolved."
ABBREVIATIONS = {"_target_": "bioner.postprocess.abbreviations.AbbreviationResolver"}


def span(text: str, occurrence: int, label: str, score: float | None = None) -> Span:
    """The span of the ``occurrence``-th (0-based) ``text`` in TEXT."""
    at = -1
    for _ in range(occurrence + 1):
        at = TEXT.index(text, at + 1)
    return Span(at, at + len(text), label, score)


def raw_result() -> StageResult:
    """The model got the long form right but called both ``ARF`` a chemical."""
    gold = [
        span("Acute renal failure", 0, "Disease"),
        span("ARF", 0, "Disease"),
        span("cisplatin", 0, "Chemical"),
        span("ARF", 1, "Disease"),
    ]
    doc = Document("d1", TEXT, sorted(gold), [(0, len(TEXT))], word_ranges(TEXT))
    predicted = [
        span("Acute renal failure", 0, "Disease", 0.9),
        span("ARF", 0, "Chemical", 0.6),
        span("cisplatin", 0, "Chemical", 0.8),
        span("ARF", 1, "Chemical", 0.7),
    ]
    preds = [sorted(predicted)]
    return StageResult("devel", [doc], preds, evaluate([doc], preds))


def test_postprocessing_changes_the_prediction_and_the_score_follows() -> None:
    raw = raw_result()
    assert raw.evaluation.metrics()["f1"] == pytest.approx(0.5)
    post = raw.postprocessed([AbbreviationResolver()])
    assert post.split == "devel" and post.docs == raw.docs
    assert post.predictions == [sorted(raw.docs[0].spans)]
    assert post.evaluation.metrics()["f1"] == pytest.approx(1.0)
    # Each span keeps its score; an abbreviation keeps its own.
    labelled = {(s.start, s.label): s.score for s in post.predictions[0]}
    assert labelled[(span("ARF", 0, "").start, "Disease")] == 0.6
    # The raw result is left as it was.
    assert raw.evaluation.metrics()["f1"] == pytest.approx(0.5)
    assert raw.postprocessed([]).predictions == raw.predictions


def test_postprocessing_needs_scores() -> None:
    raw = raw_result()
    raw.predictions[0][1] = replace(raw.predictions[0][1], score=None)
    with pytest.raises(ValueError, match="devel: post-processing needs each span's score"):
        raw.postprocessed([AbbreviationResolver()])


class Recorder:
    """A logger that keeps what it is sent."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def log_metrics(self, metrics: dict[str, float]) -> None:
        self.metrics.update(metrics)


def report(tmp_path: Path, postprocess: dict | None, logger: Recorder | None = None) -> dict:
    cfg = OmegaConf.create(
        {"postprocess": postprocess, "robustness": None, "bootstrap_samples": 0, "seed": 0}
    )
    module = SimpleNamespace(results={"val": raw_result()})
    loggers = [logger] if logger else []
    return finish_evaluation(cfg, tmp_path, module, None, loggers, {"run_name": "x"})


def test_the_report_holds_post_processed_and_raw_scores(tmp_path: Path) -> None:
    logger = Recorder()
    summary = report(tmp_path / "post", {"abbreviations": ABBREVIATIONS, "overlaps": None}, logger)
    assert json.loads((tmp_path / "post" / "metrics.json").read_text()) == summary
    # The main section is the post-processed one; the raw one sits in "postprocess".
    assert summary["devel"]["metrics"]["f1"] == pytest.approx(1.0)
    section = summary["postprocess"]
    assert section["name"] == "abbreviations"
    assert section["steps"] == ["AbbreviationResolver(drop_unsupported=False)"]
    devel = section["devel"]
    assert devel["f1_raw"] == pytest.approx(0.5) and devel["f1"] == pytest.approx(1.0)
    assert devel["delta_f1"] == pytest.approx(0.5) and devel["documents_changed"] == 1
    assert devel["raw"] == raw_result().evaluation.metrics()
    (record,) = read_jsonl(tmp_path / "post" / "predictions" / "devel.jsonl")
    assert {s.label for s in record["spans"] if TEXT[s.start : s.end] == "ARF"} == {"Disease"}
    # Loggers get the post-processed metrics under their own names.
    assert logger.metrics["val/postprocess/f1"] == pytest.approx(1.0)
    assert "val/postprocess/f1_Disease" in logger.metrics
    # Without post-processing the report is the raw one and has no such section.
    plain = report(tmp_path / "plain", None)
    assert "postprocess" not in plain
    assert plain["devel"]["metrics"] == raw_result().evaluation.metrics()
