"""Bootstrap intervals and the paired test: checked against a plain loop over resampled corpora."""

from __future__ import annotations

import random

import numpy as np
import pytest

from bioner.data.document import Document, Span
from bioner.evaluation import (
    bootstrap_ci,
    bootstrap_distribution,
    bootstrap_intervals,
    evaluate,
    paired_bootstrap,
)

TYPES = ["Chemical", "Disease", "Gene"]


def corpus(n_docs: int, seed: int) -> list[Document]:
    """Documents of 2-6 entities; Gene is rare, so some resamples lack it."""
    rng = random.Random(seed)
    docs = []
    for i in range(n_docs):
        spans, pos = [], 0
        for _ in range(rng.randint(2, 6)):
            pos += rng.randint(1, 5)
            end = pos + rng.randint(2, 8)
            label = "Gene" if rng.random() < 0.05 else rng.choice(TYPES[:2])
            spans.append(Span(pos, end, label))
            pos = end
        docs.append(Document(f"d{i}", "x" * (pos + 5), spans))
    return docs


def system(docs: list[Document], error_rate: float, seed: int) -> list[list[Span]]:
    """Predictions that get each entity wrong (missed, shifted or retyped) with ``error_rate``."""
    rng = random.Random(seed)
    out = []
    for doc in docs:
        pred = []
        for s in doc.spans:
            r = rng.random()
            if r >= error_rate:
                pred.append(s)
            elif r < error_rate / 3:
                pred.append(Span(s.start, s.end + 1, s.label))
            elif r < 2 * error_rate / 3:
                other = "Disease" if s.label == "Chemical" else "Chemical"
                pred.append(Span(s.start, s.end, other))
        out.append(pred)
    return out


def test_vectorised_resampling_equals_resampling_the_corpus() -> None:
    gold = corpus(15, seed=8)  # Gene only in the first document
    pred = system(gold, 0.3, seed=2)
    n, seed = 40, 7
    values = bootstrap_distribution(evaluate(gold, pred), n=n, seed=seed)
    # The documented sampling: sample i is the i-th block of len(gold) integer draws.
    draws = np.random.default_rng(seed).integers(0, len(gold), size=(n, len(gold)))
    lacking_gene = 0
    for i, idx in enumerate(draws):
        expected = evaluate([gold[j] for j in idx], [pred[j] for j in idx]).metrics()
        lacking_gene += "f1_Gene" not in expected
        for key, value in expected.items():
            if key not in ("tp", "fp", "fn"):
                assert values[key][i] == pytest.approx(value, abs=1e-12), (i, key)
        # A type absent from the sample has undefined scores there, not 0.
        if "f1_Gene" not in expected:
            assert np.isnan(values["f1_Gene"][i]) and np.isnan(values["precision_Gene"][i])
    assert lacking_gene > 0  # the macro mean was checked on samples where a type vanished


def test_a_type_missing_from_a_resample_is_left_out_not_counted_as_zero() -> None:
    gold = corpus(15, seed=8)  # Gene only in the first document, predicted right
    pred = [list(doc.spans) for doc in gold]
    n = 400
    intervals, defined = bootstrap_intervals(evaluate(gold, pred), n=n, seed=3)
    # About (1 - 1/15)^15 = 36% of resamples lack the one Gene document.
    assert 0.2 * n < n - defined["f1_Gene"] < 0.5 * n
    assert defined["f1_Chemical"] == defined["f1"] == n
    # Where defined, Gene is always perfect: the interval is [1, 1], not [0, 1].
    assert intervals["f1_Gene"] == (1.0, 1.0)
    assert bootstrap_ci(gold, pred, n=n, seed=3)["f1_Gene"] == (1.0, 1.0)
    # The paired test of a per-type score uses the samples that define it.
    worse = [[s for s in p if s.label != "Gene"] for p in pred]
    result = paired_bootstrap(gold, pred, worse, n=n, seed=3, metric="f1_Gene")
    assert result["n_defined"] == defined["f1_Gene"] and result["ci"] == (1.0, 1.0)


def test_ci_contains_point_estimate_and_is_deterministic() -> None:
    gold = corpus(200, seed=3)
    pred = system(gold, 0.3, seed=4)
    point = evaluate(gold, pred).metrics()
    ci = bootstrap_ci(gold, pred, n=500, seed=0)
    assert "tp" not in ci
    for key in ("precision", "recall", "f1", "f1_macro", "f1_Chemical", "f1_overlap"):
        low, high = ci[key]
        assert low < point[key] < high, key
        assert high - low < 0.2
    assert bootstrap_ci(gold, pred, n=500, seed=0) == ci
    assert bootstrap_ci(gold, pred, n=500, seed=1)["f1"] != ci["f1"]
    low90, high90 = bootstrap_ci(gold, pred, n=500, seed=0, alpha=0.1)["f1"]
    assert ci["f1"][0] <= low90 < high90 <= ci["f1"][1]


def test_ci_narrows_with_more_documents() -> None:
    small = corpus(30, seed=5)
    large = corpus(600, seed=5)

    def width(docs: list[Document]) -> float:
        low, high = bootstrap_ci(docs, system(docs, 0.3, seed=6), n=400, seed=0)["f1"]
        return high - low

    # The width shrinks like 1 / sqrt(documents): about 0.22 times here.
    assert width(large) < 0.5 * width(small)


def test_paired_test_detects_a_clearly_better_system() -> None:
    gold = corpus(150, seed=8)
    good, bad = system(gold, 0.1, seed=9), system(gold, 0.35, seed=10)
    result = paired_bootstrap(gold, good, bad, n=1000, seed=0)
    assert result["a"] == pytest.approx(evaluate(gold, good).metrics()["f1"])
    assert result["delta"] == pytest.approx(result["a"] - result["b"])
    assert result["delta"] > 0.1
    assert result["p_value"] < 0.01
    low, high = result["ci"]
    assert 0 < low < result["delta"] < high
    # The other way round: "bad is better than good" is not supported at all.
    assert paired_bootstrap(gold, bad, good, n=1000, seed=0)["p_value"] > 0.99


def test_paired_test_on_identical_systems() -> None:
    gold = corpus(100, seed=11)
    pred = system(gold, 0.3, seed=12)
    result = paired_bootstrap(gold, pred, [list(p) for p in pred], n=300, seed=0)
    assert result["delta"] == 0.0 and result["p_value"] == 1.0 and result["ci"] == (0.0, 0.0)


def test_paired_test_close_systems_give_a_large_p_value() -> None:
    gold = corpus(100, seed=13)
    a, b = system(gold, 0.3, seed=14), system(gold, 0.3, seed=15)
    assert paired_bootstrap(gold, a, b, n=500, seed=0)["p_value"] > 0.05


def test_paired_p_value_follows_its_definition() -> None:
    gold = corpus(12, seed=16)
    a, b = system(gold, 0.2, seed=17), system(gold, 0.4, seed=18)
    n, seed = 40, 3
    result = paired_bootstrap(gold, a, b, n=n, seed=seed, metric="f1_boundary")
    draws = np.random.default_rng(seed).integers(0, len(gold), size=(n, len(gold)))
    deltas = []
    for idx in draws:
        sample = [gold[j] for j in idx]
        fa = evaluate(sample, [a[j] for j in idx]).metrics()["f1_boundary"]
        fb = evaluate(sample, [b[j] for j in idx]).metrics()["f1_boundary"]
        deltas.append(fa - fb)
    deltas = np.array(deltas)
    assert result["metric"] == "f1_boundary"
    assert result["p_value"] == pytest.approx(np.mean(deltas >= 2 * result["delta"]))
    assert result["ci"] == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])))


def test_bad_arguments() -> None:
    gold = corpus(5, seed=19)
    pred = system(gold, 0.3, seed=20)
    with pytest.raises(ValueError, match="positive integer"):
        bootstrap_ci(gold, pred, n=0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci(gold, pred, alpha=1.0)
    with pytest.raises(ValueError, match="zero documents"):
        bootstrap_ci([], [])
    with pytest.raises(ValueError, match="prediction lists"):
        bootstrap_ci(gold, pred[:-1])
    with pytest.raises(ValueError, match="unknown metric 'tp'"):
        paired_bootstrap(gold, pred, pred, metric="tp")
    with pytest.raises(ValueError, match="unknown metric 'f2'"):
        paired_bootstrap(gold, pred, pred, metric="f2")
