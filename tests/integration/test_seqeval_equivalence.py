"""bioner's span scores equal seqeval's on the real IOB corpora, with seeded corrupted predictions.

seqeval is a dev-only dependency: the tests use it as an independent reference, bioner never
imports it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bioner.data.document import Document, Span
from bioner.data.tags import convert_tags, tags_to_spans, tags_to_word_spans
from bioner.evaluation import evaluate, token_accuracy

seqeval_metrics = pytest.importorskip("seqeval.metrics")
from seqeval.scheme import IOB2  # noqa: E402

CORPORA = ["bc5cdr", "ncbi_disease", "bc2gm"]


def read_tsv(path: Path) -> list[tuple[list[str], list[str]]]:
    """Sentences of a ``token<TAB>tag`` file, blank-line separated."""
    sentences, tokens, tags = [], [], []
    for line in path.read_text().splitlines():
        if not line.strip():
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        token, tag = line.split("\t")
        tokens.append(token)
        tags.append(tag)
    if tokens:
        sentences.append((tokens, tags))
    return sentences


def to_document(i: int, tokens: list[str], tags: list[str]) -> Document:
    words, pos = [], 0
    for token in tokens:
        words.append((pos, pos + len(token)))
        pos += len(token) + 1
    text = " ".join(tokens)
    doc = Document(f"s{i}", text, tags_to_spans(words, tags), [(0, len(text))], words)
    doc.validate()
    return doc


def corrupt(tags: list[str], types: list[str], rng: random.Random) -> list[str]:
    """Gold tags damaged in the ways a tagger errs; the result may be invalid IOB2.

    Entities are dropped, get a boundary moved by one word, or change type (to a gold type or to
    ``Other``, a type no gold span has); spurious entities are added; entities are painted over
    one another in random order (which leaves orphaned ``I-`` tags); a few tags are flipped.
    """
    n = len(tags)
    spans, _ = tags_to_word_spans(tags, "IOB2", "reject")
    out = []
    for first, end, label in spans:
        r = rng.random()
        if r < 0.12:
            continue
        if r < 0.27:
            side, step = rng.choice(["first", "end"]), rng.choice([-1, 1])
            if side == "first":
                first = min(max(first + step, 0), end - 1)
            else:
                end = max(min(end + step, n), first + 1)
        elif r < 0.37:
            label = rng.choice([t for t in [*types, "Other"] if t != label])
        out.append((first, end, label))
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        first = rng.randrange(n)
        out.append((first, min(first + rng.randint(1, 3), n), rng.choice([*types, "Other"])))
    rng.shuffle(out)
    pred = ["O"] * n
    for first, end, label in out:
        pred[first] = f"B-{label}"
        pred[first + 1 : end] = [f"I-{label}"] * (end - first - 1)
    for i in range(n):
        if rng.random() < 0.01:
            pred[i] = rng.choice(["O", *(f"{p}-{t}" for t in types for p in "BI")])
    return pred


@pytest.fixture(scope="module", params=CORPORA)
def corpus(request: pytest.FixtureRequest, shared_data: Path) -> dict:
    sentences = read_tsv(shared_data / request.param / "devel.tsv")
    docs = [to_document(i, tokens, tags) for i, (tokens, tags) in enumerate(sentences)]
    gold_tags = [tags for _, tags in sentences]
    types = sorted({t[2:] for tags in gold_tags for t in tags if t != "O"})
    rng = random.Random(f"seqeval-{request.param}")
    raw = [corrupt(tags, types, rng) for tags in gold_tags]
    return {"name": request.param, "docs": docs, "gold_tags": gold_tags, "raw_pred_tags": raw}


def spans_of(docs: list[Document], tag_seqs: list[list[str]]) -> list[list[Span]]:
    return [tags_to_spans(doc.words, tags) for doc, tags in zip(docs, tag_seqs)]


def test_strict_scores_equal_seqeval_strict_iob2(corpus: dict) -> None:
    docs, gold_tags = corpus["docs"], corpus["gold_tags"]
    # Repair to valid IOB2 first: on valid tags seqeval's strict mode and bioner read the same
    # entities (see test_invalid_i_start_differs_from_seqeval_strict for invalid ones).
    pred_tags = [convert_tags(t, "IOB2", "IOB2") for t in corpus["raw_pred_tags"]]
    evaluation = evaluate(docs, spans_of(docs, pred_tags))
    ours = evaluation.metrics()
    ref = seqeval_metrics.classification_report(
        gold_tags, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    # The corruption must leave a realistic mix of hits and errors, or the test proves little.
    assert ours["tp"] > 0 and ours["fp"] > 0 and ours["fn"] > 0
    assert 0.3 < ours["f1"] < 0.95
    types = sorted(k for k in ref if not k.endswith(" avg"))
    assert "Other" in types  # a predicted-only type, which enters the macro mean
    assert evaluation.types == types
    for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
        assert ours[key] == pytest.approx(ref["micro avg"][name], abs=1e-12)
        assert ours[f"{key}_macro"] == pytest.approx(ref["macro avg"][name], abs=1e-12)
        for t in types:
            assert ours[f"{key}_{t}"] == pytest.approx(ref[t][name], abs=1e-12), t
    for row in evaluation.per_type():
        assert row["support"] == ref[row["type"]]["support"]
    # Valid IOB2 tags and span sets determine each other, so a sentence is an exact match iff
    # its tag sequence is identical; token accuracy is seqeval's accuracy_score.
    same = sum(g == p for g, p in zip(gold_tags, pred_tags)) / len(gold_tags)
    assert ours["exact_match_sentences"] == pytest.approx(same, abs=1e-12)
    assert token_accuracy(gold_tags, pred_tags) == pytest.approx(
        seqeval_metrics.accuracy_score(gold_tags, pred_tags), abs=1e-12
    )


def test_boundary_f1_equals_seqeval_on_untyped_tags(corpus: dict) -> None:
    docs, gold_tags = corpus["docs"], corpus["gold_tags"]
    pred_tags = [convert_tags(t, "IOB2", "IOB2") for t in corpus["raw_pred_tags"]]
    ours = evaluate(docs, spans_of(docs, pred_tags)).metrics()

    def untyped(seqs: list[list[str]]) -> list[list[str]]:
        # B- still opens a new entity, so stripping types keeps every boundary.
        return [[t if t == "O" else t[:2] + "E" for t in tags] for tags in seqs]

    ref = seqeval_metrics.classification_report(
        untyped(gold_tags), untyped(pred_tags), mode="strict", scheme=IOB2, output_dict=True
    )
    assert ours["f1_boundary"] == pytest.approx(ref["micro avg"]["f1-score"], abs=1e-12)
    assert ours["precision_boundary"] == pytest.approx(ref["micro avg"]["precision"], abs=1e-12)
    assert ours["recall_boundary"] == pytest.approx(ref["micro avg"]["recall"], abs=1e-12)


def test_repair_equals_seqeval_default_mode_on_invalid_tags(corpus: dict) -> None:
    """Unrepaired tags: bioner's repair reads them as conlleval, i.e. seqeval's default mode."""
    docs, gold_tags, raw = corpus["docs"], corpus["gold_tags"], corpus["raw_pred_tags"]
    n_invalid = sum(tags_to_word_spans(t, "IOB2")[1] for t in raw)
    assert n_invalid > 50  # the corruption really produces invalid sequences
    ours = evaluate(docs, spans_of(docs, raw)).metrics()
    ref = seqeval_metrics.classification_report(gold_tags, raw, output_dict=True, zero_division=0)
    for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
        assert ours[key] == pytest.approx(ref["micro avg"][name], abs=1e-12)
        assert ours[f"{key}_macro"] == pytest.approx(ref["macro avg"][name], abs=1e-12)


def test_invalid_i_start_differs_from_seqeval_strict() -> None:
    """seqeval's strict mode drops an entity opened by I-; bioner repairs and scores it."""
    tokens = ["low", "dose", "aspirin", "helps"]
    gold_tags = [["O", "B-Chemical", "I-Chemical", "O"]]
    pred_tags = [["O", "I-Chemical", "I-Chemical", "O"]]
    doc = to_document(0, tokens, gold_tags[0])
    ours = evaluate([doc], spans_of([doc], pred_tags)).metrics()
    assert ours["f1"] == 1.0  # repaired to B-Chemical I-Chemical: an exact match
    strict = seqeval_metrics.f1_score(
        gold_tags, pred_tags, mode="strict", scheme=IOB2, zero_division=0
    )
    assert strict == 0.0  # the entity is discarded, nothing is predicted
    assert seqeval_metrics.f1_score(gold_tags, pred_tags) == 1.0  # conlleval-style default mode
