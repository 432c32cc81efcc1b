"""Entity confusion matrix: hand-made counts, invariants on random data, and its three outputs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from bioner.data.document import Document, Span
from bioner.evaluation import confusion_matrix, evaluate

S1 = "Aspirin and ibuprofen cause acute renal failure ."
S2 = "Sodium chloride worsened severe hypertension ."
TEXT = f"{S1} {S2}"


def at(surface: str, label: str) -> Span:
    start = TEXT.index(surface)
    return Span(start, start + len(surface), label)


Example = tuple[list[Document], list[list[Span]]]


@pytest.fixture
def example() -> Example:
    gold = [
        at("Aspirin", "Chemical"),
        at("ibuprofen", "Chemical"),
        at("acute renal failure", "Disease"),
        at("Sodium chloride", "Chemical"),
        at("severe hypertension", "Disease"),
    ]
    pred = [
        at("Aspirin", "Chemical"),  # correct
        at("ibuprofen", "Disease"),  # type error, identical span
        at("renal failure", "Disease"),  # boundary error
        at("cause", "Chemical"),  # spurious
        at("Sodium", "Disease"),  # type and boundary error
        # "severe hypertension" is missed
    ]
    doc = Document("d", TEXT, sorted(gold), [(0, len(S1)), (len(S1) + 1, len(TEXT))])
    return [doc], [pred]


def test_hand_made_counts(example: Example) -> None:
    cm = confusion_matrix(*example)
    assert cm.labels == ["Chemical", "Disease", "none"]
    # rows gold, columns predicted
    assert cm.exact.tolist() == [[1, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert cm.boundary.tolist() == [[0, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert cm.summary() == {
        "correct": 1,
        "type_errors": 1,
        "boundary_errors": 1,
        "type_and_boundary_errors": 1,
        "missed": 1,
        "spurious": 1,
    }


def test_same_type_overlap_takes_precedence_over_identical_other_type() -> None:
    doc = Document("d", "x" * 10, [Span(0, 10, "Chemical")])
    cm = confusion_matrix([doc], [[Span(0, 10, "Disease"), Span(2, 10, "Chemical")]])
    d = cm.to_dict()
    assert d["boundary"]["Chemical"]["Chemical"] == 1
    assert d["exact"]["none"]["Disease"] == 1
    assert d["exact"]["Chemical"]["Disease"] == 0


def test_boundary_errors_are_paired_by_a_maximum_matching() -> None:
    # Greedy pairing would pair [0,10) with [2,12) and leave one missed and one spurious span.
    doc = Document("d", "x" * 13, [Span(0, 10, "A"), Span(10, 13, "A")])
    d = confusion_matrix([doc], [[Span(0, 2, "A"), Span(2, 12, "A")]]).to_dict()
    assert d["boundary"]["A"]["A"] == 2
    assert d["exact"]["A"]["none"] == d["exact"]["none"]["A"] == 0


def random_corpus(seed: int, n_docs: int = 150) -> tuple[list[Document], list[list[Span]]]:
    rng = random.Random(seed)
    types = ["A", "B", "C"]
    docs, preds = [], []
    for i in range(n_docs):
        gold, pos = [], 0
        while True:
            pos += rng.randint(1, 8)
            end = pos + rng.randint(1, 6)
            if end > 60:
                break
            gold.append(Span(pos, end, rng.choice(types)))
            pos = end
        pred = []
        for s in gold:
            if rng.random() < 0.8:
                start = max(0, s.start + rng.choice([0, 0, 0, -2, 1]))
                stop = max(start + 1, s.end + rng.choice([0, 0, 0, 3, -1]))
                label = s.label if rng.random() < 0.8 else rng.choice(types)
                pred.append(Span(start, min(stop, 70), label))
        for _ in range(rng.randint(0, 2)):  # spurious, possibly overlapping anything
            start = rng.randrange(65)
            pred.append(Span(start, start + rng.randint(1, 5), rng.choice(types)))
        docs.append(Document(f"r{i}", "x" * 70, gold))
        preds.append(pred)
    return docs, preds


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_span_counted_once_and_consistent_with_metrics(seed: int) -> None:
    docs, preds = random_corpus(seed)
    cm = confusion_matrix(docs, preds)
    m = evaluate(docs, preds).metrics()
    total = cm.exact + cm.boundary
    for i, label in enumerate(cm.labels[:-1]):
        assert total[i].sum() == sum(s.label == label for d in docs for s in d.spans)
        assert total[:, i].sum() == sum(s.label == label for p in preds for s in p)
    assert cm.boundary[-1].sum() == cm.boundary[:, -1].sum() == cm.exact[-1, -1] == 0
    n = len(cm.labels) - 1
    assert np.trace(cm.exact[:n, :n]) == m["tp"]
    overlap_tp = m["precision_overlap"] * sum(len(p) for p in preds)
    assert np.trace(cm.exact[:n, :n]) + np.trace(cm.boundary[:n, :n]) == pytest.approx(overlap_tp)
    summary = cm.summary()
    assert summary["missed"] + summary["spurious"] > 0 and summary["type_errors"] > 0
    assert summary["boundary_errors"] > 0 and summary["type_and_boundary_errors"] > 0


def test_to_dict_is_json_and_markdown_has_the_cells(
    example: Example,
) -> None:
    cm = confusion_matrix(*example)
    d = json.loads(json.dumps(cm.to_dict()))
    assert d["labels"] == ["Chemical", "Disease", "none"]
    assert d["exact"]["Chemical"] == {"Chemical": 1, "Disease": 1, "none": 0}
    assert d["exact"]["none"]["Chemical"] == 1
    assert d["boundary"]["Disease"]["Disease"] == 1
    assert d["summary"]["missed"] == 1
    md = cm.to_markdown()
    assert "| gold \\ predicted | Chemical | Disease | none |" in md
    assert "| Chemical | 1 | 1 | 0 |" in md  # identical spans
    assert "| Chemical | 0 | 1 |\n| Disease | 0 | 1 |" in md  # different boundaries
    assert "missed: 1" in md


def test_plot_writes_a_png(example: Example, tmp_path: Path) -> None:
    out = confusion_matrix(*example).plot(tmp_path / "figures" / "confusion.png")
    assert out == tmp_path / "figures" / "confusion.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    image = imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 200
    assert image.std() > 0  # something was drawn


def test_type_named_none_is_rejected() -> None:
    doc = Document("d", "Aspirin", [Span(0, 7, "none")])
    with pytest.raises(ValueError, match="'none'"):
        confusion_matrix([doc], [[]])


def test_inputs_are_validated(example: Example) -> None:
    docs, _ = example
    with pytest.raises(ValueError, match="prediction lists"):
        confusion_matrix(docs, [])
    with pytest.raises(ValueError, match="document d: predicted span"):
        confusion_matrix(docs, [[Span(0, 500, "Chemical")]])


def test_error_rows_list_every_error_with_its_sentence(example: Example, tmp_path: Path) -> None:
    from bioner.evaluation.confusion import ERROR_COLUMNS, error_rows, write_errors

    docs, preds = example
    rows = error_rows(docs, preds)
    assert [(r["outcome"], r["gold_text"], r["predicted_text"]) for r in rows] == [
        ("type_error", "ibuprofen", "ibuprofen"),
        ("spurious", "", "cause"),
        ("boundary_error", "acute renal failure", "renal failure"),
        ("type_and_boundary_error", "Sodium chloride", "Sodium"),
        ("missed", "severe hypertension", ""),
    ]
    # The sentence of the pair, the gold span in [[...]], the predicted one in {{...}}.
    assert rows[0]["context"] == "Aspirin and [[{{ibuprofen}}]] cause acute renal failure ."
    assert rows[2]["context"] == "Aspirin and ibuprofen cause [[acute {{renal failure}}]] ."
    assert rows[3]["context"] == "[[{{Sodium}} chloride]] worsened severe hypertension ."
    assert rows[4]["context"] == "Sodium chloride worsened [[severe hypertension]] ."
    assert rows[1]["gold_start"] == "" and rows[1]["predicted_start"] == S1.index("cause")
    path = write_errors(tmp_path / "errors.tsv", docs, preds)
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ERROR_COLUMNS
    assert [line.split("\t")[1] for line in lines[1:]] == [r["outcome"] for r in rows]


@pytest.mark.parametrize("seed", [0, 1])
def test_error_rows_count_what_the_matrix_counts(seed: int) -> None:
    from collections import Counter

    from bioner.evaluation.confusion import error_rows

    docs, preds = random_corpus(seed)
    summary = confusion_matrix(docs, preds).summary()
    kinds = Counter(r["outcome"] for r in error_rows(docs, preds))
    plural = {
        "type_error": "type_errors",
        "boundary_error": "boundary_errors",
        "type_and_boundary_error": "type_and_boundary_errors",
    }
    assert {plural.get(k, k): n for k, n in kinds.items()} == {
        k: n for k, n in summary.items() if k != "correct" and n
    }
