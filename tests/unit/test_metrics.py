"""Span-level metrics on hand-made documents whose scores are worked out by hand below."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from bioner.data.document import Document, Span
from bioner.evaluation import evaluate, match_spans, token_accuracy


def make_doc(doc_id: str, sentences: list[str], spans: list[Span] = ()) -> Document:
    """A document of space-separated sentences; words are the runs of non-space characters."""
    text = " ".join(sentences)
    ranges, pos = [], 0
    for sentence in sentences:
        ranges.append((pos, pos + len(sentence)))
        pos += len(sentence) + 1
    words = [m.span() for m in re.finditer(r"\S+", text)]
    doc = Document(doc_id, text, sorted(spans), ranges, words)
    doc.validate()
    return doc


def at(text: str, surface: str, label: str, nth: int = 0) -> Span:
    """The span of the ``nth`` occurrence of ``surface`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return Span(start, start + len(surface), label)


TEXT_A = "Aspirin and ibuprofen cause acute renal failure ."


@pytest.fixture
def doc_a() -> Document:
    return make_doc(
        "A",
        [TEXT_A],
        [
            at(TEXT_A, "Aspirin", "Chemical"),
            at(TEXT_A, "ibuprofen", "Chemical"),
            at(TEXT_A, "acute renal failure", "Disease"),
        ],
    )


@pytest.fixture
def pred_a() -> list[Span]:
    return [
        at(TEXT_A, "Aspirin", "Chemical"),  # exact
        at(TEXT_A, "ibuprofen", "Disease"),  # right span, wrong type
        at(TEXT_A, "renal failure", "Disease"),  # right type, start too late
        at(TEXT_A, "cause", "Chemical"),  # spurious
    ]


def test_strict_micro_per_type_and_macro(doc_a: Document, pred_a: list[Span]) -> None:
    m = evaluate([doc_a], [pred_a]).metrics()
    # tp = 1 (Aspirin), fp = 3, fn = 2.
    assert (m["tp"], m["fp"], m["fn"]) == (1, 3, 2)
    assert m["precision"] == pytest.approx(1 / 4)
    assert m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 / 7)  # 2 * 1/4 * 1/3 / (7/12)
    # Chemical: 2 gold, 2 predicted (Aspirin, cause), 1 hit. Disease: 1 gold, 2 predicted, 0 hit.
    assert m["precision_Chemical"] == m["recall_Chemical"] == m["f1_Chemical"] == 0.5
    assert m["precision_Disease"] == m["recall_Disease"] == m["f1_Disease"] == 0.0
    assert m["f1_macro"] == pytest.approx(0.25)
    assert m["precision_macro"] == m["recall_macro"] == pytest.approx(0.25)
    assert m["entity_accuracy"] == pytest.approx(1 / 6)  # 1 / (1 + 3 + 2)


def test_boundary_overlap_and_partial(doc_a: Document, pred_a: list[Span]) -> None:
    m = evaluate([doc_a], [pred_a]).metrics()
    # Boundary (type ignored): Aspirin and ibuprofen match; 2 of 4 predicted, 2 of 3 gold.
    assert m["precision_boundary"] == pytest.approx(1 / 2)
    assert m["recall_boundary"] == pytest.approx(2 / 3)
    assert m["f1_boundary"] == pytest.approx(4 / 7)
    # Overlap (same type): Aspirin, and "renal failure" inside "acute renal failure".
    assert m["precision_overlap"] == pytest.approx(1 / 2)
    assert m["recall_overlap"] == pytest.approx(2 / 3)
    assert m["f1_overlap"] == pytest.approx(4 / 7)
    # Partial (type ignored, half credit): 1 + 1 + 0.5 = 2.5 over 4 predicted and 3 gold.
    assert m["precision_partial"] == pytest.approx(2.5 / 4)
    assert m["recall_partial"] == pytest.approx(2.5 / 3)
    assert m["f1_partial"] == pytest.approx(5 / 7)


def test_prediction_order_does_not_matter(doc_a: Document, pred_a: list[Span]) -> None:
    assert evaluate([doc_a], [pred_a[::-1]]).metrics() == evaluate([doc_a], [pred_a]).metrics()


def test_macro_counts_a_type_only_predicted() -> None:
    text = "Aspirin helps ."
    doc = make_doc("d", [text], [at(text, "Aspirin", "Chemical")])
    m = evaluate([doc], [[at(text, "Aspirin", "Chemical"), at(text, "helps", "Gene")]]).metrics()
    assert m["f1_Chemical"] == 1.0 and m["f1_Gene"] == 0.0
    assert m["f1_macro"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(2 / 3)  # P = 1/2, R = 1


def test_duplicate_prediction_is_a_false_positive() -> None:
    text = "Aspirin helps ."
    span = at(text, "Aspirin", "Chemical")
    m = evaluate([make_doc("d", [text], [span])], [[span, span]]).metrics()
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 0)
    assert m["precision_overlap"] == 0.5 and m["precision_boundary"] == 0.5
    assert m["exact_match_documents"] == 0.0


def test_zero_division_gives_zero() -> None:
    text = "Aspirin helps ."
    empty = make_doc("e", [text])
    m = evaluate([empty], [[]]).metrics()
    assert m["precision"] == m["recall"] == m["f1"] == m["f1_macro"] == 0.0
    assert m["entity_accuracy"] == 0.0
    assert m["exact_match_documents"] == 1.0  # nothing to find, nothing found
    assert m["exact_match_documents_with_entities"] == 0.0  # empty set: 0 by convention
    gold = make_doc("g", [text], [at(text, "Aspirin", "Chemical")])
    m = evaluate([gold], [[]]).metrics()
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0


def test_overlap_matching_is_one_to_one() -> None:
    text = "renal and hepatic failure ."
    gold = [at(text, "renal", "Disease"), at(text, "hepatic failure", "Disease")]
    doc = make_doc("d", [text], gold)
    # One prediction covering both gold spans can pair with only one of them.
    m = evaluate([doc], [[at(text, "renal and hepatic failure", "Disease")]]).metrics()
    assert m["precision_overlap"] == 1.0 and m["recall_overlap"] == 0.5


def test_overlap_pairs_identical_spans_first() -> None:
    # p_wide overlaps g1 by as many characters as p_exact does and sorts first; pairing by
    # overlap alone would give it g1 and leave g2 unpaired.
    g1, g2 = Span(5, 15, "X"), Span(17, 25, "X")
    p_wide, p_exact = Span(0, 20, "X"), Span(5, 15, "X")
    assert sorted(match_spans([g1, g2], [p_wide, p_exact], same_type=True)) == [(0, 1), (1, 0)]
    text = "a" * 30
    doc = Document("d", text, [g1, g2], [(0, 30)], [(0, 30)])
    m = evaluate([doc], [[p_wide, p_exact]]).metrics()
    assert m["recall_overlap"] == 1.0


def test_overlap_matching_is_maximum_not_greedy() -> None:
    # Greedy pairing by overlap gives [0,10)-[2,12) (8 characters) and strands both others.
    gold = [Span(0, 10, "A"), Span(10, 13, "A")]
    pred = [Span(0, 2, "A"), Span(2, 12, "A")]
    assert match_spans(gold, pred, same_type=True) == [(0, 0), (1, 1)]
    doc = Document("d", "a" * 13, gold, [(0, 13)], [(0, 2), (2, 10), (10, 12), (12, 13)])
    m = evaluate([doc], [pred]).metrics()
    assert m["recall_overlap"] == m["precision_overlap"] == 1.0
    assert m["recall_partial"] == 0.5  # two pairs, neither identical
    # Among maximum matchings (both cross pairings overlap too), the most identical pairs.
    gold = [Span(0, 10, "A"), Span(5, 30, "A")]
    assert match_spans(gold, list(gold), same_type=True) == [(0, 0), (1, 1)]


def test_overlap_requires_same_type() -> None:
    g, p = Span(0, 5, "X"), Span(2, 8, "Y")
    assert match_spans([g], [p], same_type=True) == []
    assert match_spans([g], [p], same_type=False) == [(0, 0)]


def test_exact_match_sentences_and_documents() -> None:
    s1, s2 = "Aspirin helps .", "Cocaine kills ."
    full = f"{s1} {s2}"
    d1 = make_doc("d1", [s1, s2], [at(full, "Aspirin", "C"), at(full, "Cocaine", "C")])
    d2 = make_doc("d2", [s1, s2])
    d3 = make_doc("d3", ["Nothing here ."])
    d4 = make_doc("d4", [s1], [at(s1, "Aspirin", "C")])
    pred = [
        [at(full, "Aspirin", "C")],  # d1: sentence 1 right, sentence 2 missed
        [at(full, "kills", "C")],  # d2: sentence 2 spurious
        [],  # d3: right (nothing)
        [at(s1, "Aspirin", "C")],  # d4: right
    ]
    m = evaluate([d1, d2, d3, d4], pred).metrics()
    assert m["exact_match_sentences"] == pytest.approx(4 / 6)
    assert m["exact_match_sentences_with_entities"] == pytest.approx(2 / 3)
    assert m["exact_match_documents"] == pytest.approx(2 / 4)
    assert m["exact_match_documents_with_entities"] == pytest.approx(1 / 2)


def test_prediction_across_or_between_sentences() -> None:
    s1, s2 = "Aspirin helps .", "Cocaine kills ."
    doc = make_doc("d", [s1, s2])
    full = doc.text
    # Crossing the break spoils both sentences.
    m = evaluate([doc], [[at(full, ". Cocaine", "C")]]).metrics()
    assert m["exact_match_sentences"] == 0.0
    # Lying in the gap between the sentences (the space) spoils the sentence before it only.
    gap = Span(len(s1), len(s1) + 1, "C")
    m = evaluate([doc], [[gap]]).metrics()
    assert m["exact_match_sentences"] == 0.5


def test_document_without_sentences_is_one_sentence() -> None:
    doc = Document("d", "Aspirin helps", [Span(0, 7, "C")])
    m = evaluate([doc], [[Span(0, 7, "C")]]).metrics()
    assert m["exact_match_sentences"] == 1.0 and m["f1"] == 1.0
    m = evaluate([doc], [[]]).metrics()
    assert m["exact_match_sentences"] == 0.0


def test_per_type_rows_and_markdown(doc_a: Document, pred_a: list[Span]) -> None:
    evaluation = evaluate([doc_a], [pred_a])
    rows = {r["type"]: r for r in evaluation.per_type()}
    assert rows["Chemical"] == {
        "type": "Chemical",
        "tp": 1,
        "fp": 1,
        "fn": 1,
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "support": 2,
    }
    assert (rows["Disease"]["tp"], rows["Disease"]["fp"], rows["Disease"]["fn"]) == (0, 2, 1)
    assert evaluation.per_document() == [
        {"id": "A", "tp": 1, "fp": 3, "fn": 2, "exact_match": False}
    ]
    table = evaluation.to_markdown()
    assert "| Chemical | 0.5000 | 0.5000 | 0.5000 | 2 |" in table
    assert "| micro (strict) | 0.2500 | 0.3333 | 0.2857 | 3 |" in table


def test_scores_add_up_over_documents(doc_a: Document, pred_a: list[Span]) -> None:
    text = "Cocaine kills ."
    other = make_doc("B", [text], [at(text, "Cocaine", "Chemical")])
    m = evaluate([doc_a, other], [pred_a, [at(text, "Cocaine", "Chemical")]]).metrics()
    assert (m["tp"], m["fp"], m["fn"]) == (2, 3, 2)  # micro: counts summed, then divided
    assert m["f1"] == pytest.approx(2 * (2 / 5) * (2 / 4) / (2 / 5 + 2 / 4))


def test_length_mismatch_is_rejected(doc_a: Document) -> None:
    with pytest.raises(ValueError, match="1 gold documents but 2 prediction lists"):
        evaluate([doc_a], [[], []])


def test_span_outside_text_names_the_document(doc_a: Document) -> None:
    with pytest.raises(ValueError, match="document A: predicted span .* ends after the text"):
        evaluate([doc_a], [[Span(40, 80, "Chemical")]])
    bad_gold = Document("G7", "short", [Span(0, 9, "X")])
    with pytest.raises(ValueError, match="document G7: gold span"):
        evaluate([bad_gold], [[]])


def test_wrong_prediction_types_are_rejected(doc_a: Document) -> None:
    with pytest.raises(TypeError, match="document A: prediction .* is not a Span"):
        evaluate([doc_a], [[(0, 7, "Chemical")]])
    with pytest.raises(TypeError, match="pass its spans"):
        evaluate([doc_a], [doc_a])


def test_type_named_like_a_summary_key_is_rejected() -> None:
    doc = Document("d", "Aspirin", [Span(0, 7, "macro")])
    with pytest.raises(ValueError, match="collide"):
        evaluate([doc], [[]])


def test_token_accuracy() -> None:
    gold = [["B-C", "I-C", "O"], ["O"]]
    pred = [["B-C", "O", "O"], ["B-C"]]
    assert token_accuracy(gold, pred) == 0.5
    assert token_accuracy(gold, gold) == 1.0
    assert token_accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="tag sequence 1: 1 gold tags but 2 predicted"):
        token_accuracy(gold, [["B-C", "I-C", "O"], ["O", "O"]])
    with pytest.raises(ValueError, match="2 gold tag sequences but 1"):
        token_accuracy(gold, [["O"]])
    with pytest.raises(TypeError, match="is a string"):
        token_accuracy(["O"], ["O"])


def test_evaluation_imports_neither_torch_nor_lightning_nor_matplotlib() -> None:
    code = (
        "import sys, bioner.evaluation; "
        "print(sorted(m for m in ('torch', 'lightning', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
