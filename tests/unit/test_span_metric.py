"""SpanMetric equals bioner.evaluation.evaluate, batch by batch and across DDP ranks."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest
import torch

from bioner.corpus import load_corpus
from bioner.data.document import Document, Span
from bioner.evaluation import evaluate
from bioner.models.span_metric import SpanMetric

CORPORA = {"bc5cdr": ["Chemical", "Disease"], "ncbi_disease": ["Disease"]}


def perturbed(docs: list[Document], labels: list[str], seed: int) -> list[list[Span]]:
    """Gold spans with every kind of error: missed, shifted, retyped, spurious, duplicated."""
    rng = random.Random(seed)
    preds = []
    for doc in docs:
        spans = []
        for s in doc.spans:
            r = rng.random()
            if r < 0.1:
                continue
            if r < 0.2 and s.end - s.start > 1:
                spans.append(Span(s.start + 1, s.end, s.label))
            elif r < 0.25:
                spans.append(Span(s.start, min(s.end + 3, len(doc.text)), s.label))
            elif r < 0.3:
                spans.append(Span(s.start, s.end, rng.choice(labels)))
            else:
                spans.append(s)
            if r > 0.97:
                spans.append(s)
        if len(doc.text) > 5 and rng.random() < 0.1:
            start = rng.randrange(len(doc.text) - 5)
            spans.append(Span(start, start + rng.randint(1, 5), rng.choice(labels)))
        preds.append(spans)
    return preds


def assert_equal_scores(got: dict[str, torch.Tensor | float], expected: dict[str, float]) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert abs(float(got[key]) - value) <= 1e-12, key


@pytest.mark.parametrize("name", [*CORPORA, "bc5cdr_pubtator"])
def test_equals_evaluate_on_the_real_devel_files(name: str, shared_data: Path) -> None:
    docs = load_corpus(name, "devel", data_dir=shared_data)
    labels = CORPORA.get(name, ["Chemical", "Disease"])
    preds = perturbed(docs, labels, seed=len(name))
    expected = evaluate(docs, preds).metrics()
    assert 0.5 < expected["f1"] < 0.95 and 0 < expected["f1_partial"] < 1
    metric = SpanMetric(labels)
    for start in range(0, len(docs), 97):  # uneven batches
        metric.update(preds[start : start + 97], docs[start : start + 97])
    assert_equal_scores(metric.compute(), expected)
    if name == "bc5cdr_pubtator":  # documents of many sentences
        assert expected["exact_match_sentences"] != expected["exact_match_documents"]


def test_takes_plain_spans_and_tuples_and_resets() -> None:
    gold = [[(0, 4, "Drug"), (10, 15, "Disease")], [(3, 6, "Drug")]]
    preds = [[Span(0, 4, "Drug"), (10, 14, "Disease")], []]
    metric = SpanMetric(["Drug", "Disease", "Gene"])
    metric.update(preds, gold)
    docs = [Document(str(i), "x" * 20, [Span(*s) for s in g]) for i, g in enumerate(gold)]
    expected = evaluate(docs, [[s if isinstance(s, Span) else Span(*s) for s in p] for p in preds])
    assert_equal_scores(metric.compute(), expected.metrics())
    assert "f1_Gene" not in metric.compute()  # a label never seen is not averaged, as in evaluate
    assert float(metric.compute()["f1_Drug"]) == pytest.approx(2 / 3)
    metric.reset()
    assert float(metric.tp.sum() + metric.fp.sum() + metric.fn.sum()) == 0


def test_user_errors_name_the_problem() -> None:
    metric = SpanMetric(["Drug"])
    with pytest.raises(ValueError, match="'Gene' is not one of the metric's labels"):
        metric.update([[Span(0, 2, "Gene")]], [[]])
    with pytest.raises(ValueError, match="1 prediction lists but 2 gold documents"):
        metric.update([[]], [[], []])
    with pytest.raises(ValueError, match="ends after the text"):
        metric.update([[Span(0, 9, "Drug")]], [Document("d1", "short")])
    with pytest.raises(TypeError, match="neither a Span nor"):
        metric.update([["Drug"]], [[]])
    with pytest.raises(ValueError, match="collide with the summary keys"):
        SpanMetric(["Drug", "macro"])


def _rank(rank: int, port: int, docs: list[Document], preds: list, queue) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2
    )
    try:
        metric = SpanMetric(["Chemical", "Disease"])
        metric.update(preds[rank::2], docs[rank::2])  # each rank sees half of the documents
        queue.put((rank, {k: float(v) for k, v in metric.compute().items()}))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_ranks_are_reduced_by_torchmetrics(shared_data: Path) -> None:
    docs = load_corpus("bc5cdr", "devel", data_dir=shared_data)[:600]
    preds = perturbed(docs, ["Chemical", "Disease"], seed=3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = torch.multiprocessing.get_context("spawn")
    queue = ctx.SimpleQueue()
    procs = [ctx.Process(target=_rank, args=(r, port, docs, preds, queue)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    results = dict(queue.get() for _ in procs)
    expected = evaluate(docs, preds).metrics()
    for rank in (0, 1):
        assert_equal_scores(results[rank], expected)
