"""Span scores: calibration (reliability bins, ECE), the precision–recall curve and its average
precision, the min_score of best F1, the threshold step that applies it, and scores kept in
prediction files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bioner.data.document import ANNOTATED_TYPES, CORPUS, Document, Span
from bioner.errors import ConfigError, FormatError
from bioner.evaluation import SpanConfidence, evaluate
from bioner.inference.formats import read_jsonl, write_jsonl
from bioner.postprocess import ScoreThreshold, build_postprocessors

WORDS = "a b c d e f g h i j"


def document(gold: list[tuple[int, str]], id: str = "d", meta: dict | None = None) -> Document:
    """Ten one-letter words; gold spans given by word index and type."""
    words = [(2 * i, 2 * i + 1) for i in range(10)]
    spans = sorted(Span(2 * i, 2 * i + 1, t) for i, t in gold)
    return Document(id, WORDS, spans, [(0, len(WORDS))], words, dict(meta or {}))


def pred(word: int, label: str, score: float | None) -> Span:
    return Span(2 * word, 2 * word + 1, label, score=score)


def test_each_span_is_right_when_a_gold_span_has_its_offsets_and_type() -> None:
    doc = document([(0, "C"), (1, "C"), (2, "D")])
    spans = [pred(0, "C", 0.9), pred(1, "D", 0.8), pred(2, "D", 0.7), pred(5, "C", 0.2)]
    confidence = SpanConfidence.of([doc], [spans])
    assert confidence.gold == 3
    assert confidence.scores.tolist() == [0.9, 0.8, 0.7, 0.2]
    assert confidence.correct.tolist() == [True, False, True, False]
    # A span without a score (read from an older file): nothing to say.
    assert SpanConfidence.of([doc], [[pred(0, "C", None)]]) is None


def test_reliability_bins_and_the_calibration_error() -> None:
    doc = document([(0, "C"), (1, "C")])
    spans = [pred(0, "C", 0.95), pred(2, "C", 0.95), pred(3, "C", 0.15), pred(4, "C", 0.15)]
    confidence = SpanConfidence.of([doc], [spans])
    assert confidence.reliability() == [
        {"low": 0.1, "high": 0.2, "spans": 2, "mean_score": 0.15, "precision": 0.0},
        {"low": 0.9, "high": 1.0, "spans": 2, "mean_score": 0.95, "precision": 0.5},
    ]
    # Half the spans 0.45 off, half 0.15 off.
    assert confidence.ece() == pytest.approx(0.5 * 0.45 + 0.5 * 0.15)
    # A score of exactly 1 is in the last bin.
    one = SpanConfidence.of([doc], [[pred(0, "C", 1.0)]])
    assert one.reliability()[0]["low"] == 0.9 and one.ece() == pytest.approx(0.0)


def test_the_curve_steps_at_each_distinct_score_and_its_area_is_average_precision() -> None:
    doc = document([(0, "C"), (1, "C"), (2, "C")])
    # Ranked: right, wrong and right tied at 0.7, then two wrong low-scored spans.
    spans = [
        pred(0, "C", 0.9),
        pred(3, "C", 0.7),
        pred(1, "C", 0.7),
        pred(4, "C", 0.3),
        pred(5, "C", 0.2),
    ]
    confidence = SpanConfidence.of([doc], [spans])
    thresholds, precision, recall = confidence.curve()
    assert thresholds.tolist() == [0.9, 0.7, 0.3, 0.2]
    assert precision.tolist() == pytest.approx([1, 2 / 3, 2 / 4, 2 / 5])
    assert recall.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])
    assert confidence.average_precision() == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3)
    # The best F1 keeps the spans above 0.3: the lowest grid value that does is 0.31.
    best = confidence.best()
    assert best == {
        "min_score": 0.31,
        "spans": 3,
        "precision": pytest.approx(2 / 3),
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(2 / 3),
    }
    assert confidence.at(0.0)["f1"] == pytest.approx(2 * 2 / (5 + 3))


def test_every_span_kept_scores_as_the_strict_evaluation_does() -> None:
    rng = np.random.default_rng(0)
    types = ["C", "D"]
    docs, preds = [], []
    for d in range(40):
        gold = [(i, types[rng.integers(2)]) for i in range(10) if rng.random() < 0.3]
        docs.append(document(gold, id=f"d{d}"))
        spans = []
        for i in range(10):
            if rng.random() < 0.4:
                spans.append(pred(i, types[rng.integers(2)], float(rng.random())))
        preds.append(spans)
    confidence = SpanConfidence.of(docs, preds)
    strict = evaluate(docs, preds).metrics()
    every = confidence.at(0.0)
    for key in ("precision", "recall", "f1"):
        assert every[key] == pytest.approx(strict[key])
    # And at any min_score, as the evaluation of the thresholded spans.
    threshold = ScoreThreshold(0.42)
    kept = [threshold(d.text, p) for d, p in zip(docs, preds)]
    assert confidence.at(0.42)["f1"] == pytest.approx(evaluate(docs, kept).metrics()["f1"])
    assert 0 <= confidence.ece() <= 1 and 0 <= confidence.average_precision() <= 1


def test_predictions_a_document_s_corpus_cannot_judge_are_left_out() -> None:
    meta = {CORPUS: "ncbi", ANNOTATED_TYPES: ("Disease",)}
    doc = document([(0, "Disease")], meta=meta)
    confidence = SpanConfidence.of([doc], [[pred(0, "Disease", 0.9), pred(1, "Chemical", 0.4)]])
    assert confidence.scores.tolist() == [0.9] and confidence.correct.tolist() == [True]


def test_the_plot_is_written(tmp_path: Path) -> None:
    doc = document([(0, "C")])
    confidence = SpanConfidence.of([doc], [[pred(0, "C", 0.9), pred(1, "C", 0.6)]])
    png = confidence.plot(tmp_path / "sub" / "confidence.png", title="devel")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # No prediction at all: still a section and a plot, not an error.
    empty = SpanConfidence.of([doc], [[]])
    assert empty.to_dict()["spans"] == 0 and empty.ece() == 0.0
    assert empty.average_precision() == 0.0
    empty.plot(tmp_path / "empty.png")


def test_threshold_step_keeps_spans_scored_at_least_min_score() -> None:
    spans = [pred(0, "C", 0.5), pred(1, "C", 0.49), pred(2, "D", 0.9)]
    assert ScoreThreshold(0.5)("", spans) == [spans[0], spans[2]]
    assert ScoreThreshold(0)("", spans) == spans
    for bad in (1.5, -0.1, "high", True):
        with pytest.raises(ValueError, match="a number in \\[0, 1\\]"):
            ScoreThreshold(bad)
    with pytest.raises(ValueError, match="has no score"):
        ScoreThreshold(0.5)("", [pred(0, "C", None)])
    # min_score=devel: the value of best devel F1, set by choose() before any use.
    devel = ScoreThreshold("devel")
    with pytest.raises(ConfigError, match="thresholds nothing before choose"):
        devel("", spans)
    with pytest.raises(ConfigError, match="score it too"):
        devel.choose(None, None)
    doc = document([(0, "C"), (1, "C")])
    devel.choose([doc], [[pred(0, "C", 0.9), pred(1, "C", 0.8), pred(4, "C", 0.3)]])
    assert (
        devel.min_score == 0.31 and repr(devel) == "ScoreThreshold(min_score=0.31, chosen on devel)"
    )
    assert devel("", spans) == spans and devel("", [pred(0, "C", 0.3)]) == []
    fixed = ScoreThreshold(0.2)
    fixed.choose(None, None)  # a number stays as given
    assert fixed.min_score == 0.2
    # The config option builds it.
    (step,) = build_postprocessors(
        {"threshold": {"_target_": "bioner.postprocess.threshold.ScoreThreshold", "min_score": 0.7}}
    )
    assert repr(step) == "ScoreThreshold(min_score=0.7)"


def test_prediction_files_keep_the_scores(tmp_path: Path) -> None:
    doc = document([(0, "C")])
    path = write_jsonl(tmp_path / "p.jsonl", [doc], [[pred(0, "C", 0.1234567), pred(1, "C", 1.0)]])
    (record,) = read_jsonl(path)
    assert [s.score for s in record["spans"]] == [0.123457, 1.0]
    assert [s.score for s in record["gold"]] == [None]  # gold spans have none
    line = json.loads(path.read_text())
    line["spans"][0]["score"] = 2
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(FormatError, match=r"p.jsonl:1: .*span score 2 is not a number in \[0, 1\]"):
        read_jsonl(path)


def test_bioner_predict_needs_the_number_where_the_run_chose_none(tmp_path: Path) -> None:
    from bioner.config import compose_config
    from bioner.inference.run import build_tagger

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")  # a run folder's shape, never loaded
    cfg = compose_config("predict", [f"tagger.folder={tmp_path}", "postprocess=threshold"])
    with pytest.raises(ConfigError, match=r"has no metrics.json .*; give the number"):
        build_tagger(cfg)
    # A metrics.json without a devel choice (a run that never scored devel) is no better.
    for written in ({"test": {}}, {"devel": {"confidence": {"best": {"min_score": 7}}}}):
        (tmp_path / "metrics.json").write_text(json.dumps(written))
        with pytest.raises(ConfigError, match=r"has no metrics.json with devel.confidence.best"):
            build_tagger(cfg)


def test_bioner_eval_refuses_min_score_devel_without_the_devel_split(tmp_path: Path) -> None:
    from bioner.config import compose_config
    from bioner.eval import evaluate_checkpoint

    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    (run / "best.ckpt").write_bytes(b"never read")
    cfg = compose_config(
        "eval",
        [
            f"ckpt_path={run.parent}",
            "splits=[test]",
            "postprocess=threshold",
            f"run_dir={tmp_path}/e",
        ],
    )
    with pytest.raises(ConfigError, match=r"splits=\['test'\] leaves out: add it"):
        evaluate_checkpoint(cfg)
