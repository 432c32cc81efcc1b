"""Nested and crossing entities: overlap counts, the flat layer, scoring of nested sets, the
``keep=nested`` post-processing policy and the multi-label head (labels, loss, decoding)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bioner.data.alignment import Alignment, layer_columns
from bioner.data.batching import Collator
from bioner.data.datamodule import NERDataModule
from bioner.data.document import Document, Span, flat_layer, overlaps
from bioner.data.readers import PubTatorReader
from bioner.data.roundtrip import roundtrip_check
from bioner.evaluation import evaluate
from bioner.models.encoders import HubEncoder
from bioner.models.module import TokenClassifier, multilabel_loss
from bioner.postprocess.overlaps import OverlapResolver

RELEASE = Path(__file__).resolve().parent.parent / "fixtures" / "pubtator" / "medmentions_release"
MM_PMIDS = {
    "train": "corpus_pubtator_pmids_trng.txt",
    "devel": "corpus_pubtator_pmids_dev.txt",
    "test": "corpus_pubtator_pmids_test.txt",
}
#        0         1         2         3
#        0123456789012345678901234567890123
TEXT = "left breast cancer surgery helped"
OUTER = Span(0, 26, "Procedure")  # left breast cancer surgery
DISEASE = Span(5, 18, "Disease")  # breast cancer
ORGAN = Span(5, 11, "Organ")  # breast
CROSS = Span(19, 33, "Finding")  # surgery helped: crosses OUTER


def doc_of(spans: list[Span]) -> Document:
    words = [(0, 4), (5, 11), (12, 18), (19, 26), (27, 33)]
    return Document("d", TEXT, sorted(spans), [(0, len(TEXT))], words)


def release_docs(split: str = "train") -> list[Document]:
    return PubTatorReader("mm", RELEASE, corpus="corpus_pubtator.txt", pmids=MM_PMIDS).load(split)


def test_overlaps_counts_each_kind() -> None:
    spans = sorted([OUTER, DISEASE, ORGAN, CROSS, Span(5, 11, "Chemical")])
    assert overlaps(spans) == {"nested": 3, "crossing": 2, "same_extent": 1}
    assert overlaps([ORGAN, Span(12, 18, "Disease")]) == dict.fromkeys(overlaps([]), 0)


def test_flat_layer_keeps_the_longest_of_each_group() -> None:
    assert flat_layer(sorted([OUTER, DISEASE, ORGAN, CROSS])) == [OUTER]
    assert flat_layer(sorted([DISEASE, ORGAN, CROSS])) == [DISEASE, CROSS]
    apart = [ORGAN, Span(12, 18, "Disease")]
    assert flat_layer(apart) == apart  # nothing overlaps: unchanged


def test_documents_hold_nested_spans_but_stay_sorted() -> None:
    doc_of([OUTER, DISEASE, ORGAN, CROSS]).validate()
    unsorted = doc_of([])
    unsorted.spans = [DISEASE, ORGAN]
    with pytest.raises(ValueError, match="not sorted"):
        unsorted.validate()


def test_exact_match_counts_nested_sets() -> None:
    doc = doc_of([OUTER, DISEASE, ORGAN])
    only_outer = evaluate([doc], [[OUTER]]).metrics()
    assert (only_outer["tp"], only_outer["fn"], only_outer["fp"]) == (1, 2, 0)
    assert only_outer["exact_match_documents"] == only_outer["exact_match_sentences"] == 0
    every = evaluate([doc], [[ORGAN, OUTER, DISEASE]]).metrics()
    assert every["f1"] == every["exact_match_documents"] == every["exact_match_sentences"] == 1
    # A nested prediction of the wrong type is a false positive, and spoils the exact match.
    wrong = evaluate([doc], [[OUTER, DISEASE, ORGAN, Span(5, 11, "Chemical")]]).metrics()
    assert (wrong["tp"], wrong["fp"], wrong["exact_match_documents"]) == (3, 1, 0)


def predicted(span: Span, score: float) -> Span:
    return replace(span, score=score)


def test_keep_nested_keeps_nesting_and_resolves_crossing_by_score() -> None:
    spans = [
        predicted(OUTER, 0.9),
        predicted(DISEASE, 0.8),
        predicted(ORGAN, 0.7),
        predicted(Span(5, 11, "Chemical"), 0.6),  # ORGAN's very offsets, lower score
        predicted(CROSS, 0.5),  # crosses OUTER, lower score
    ]
    kept = OverlapResolver("nested")(TEXT, spans)
    assert kept == [OUTER, ORGAN, DISEASE]
    assert OverlapResolver("nested")(TEXT, spans[::-1]) == kept  # input order does not matter
    # Where the crossing span scores higher, it wins and the span it crosses goes.
    crossing_first = [predicted(OUTER, 0.4), predicted(DISEASE, 0.8), predicted(CROSS, 0.9)]
    kept = OverlapResolver("nested")(TEXT, crossing_first)
    assert kept == [DISEASE, CROSS]
    assert OverlapResolver("score")(TEXT, spans) == [OUTER]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return HubEncoder(str(tiny_model_dir), name="tiny").load_tokenizer()


@pytest.mark.parametrize("strategy, scheme", [("first", "IOB2"), ("all", "IOBES")])
def test_multilabel_round_trip_keeps_nested_spans_of_other_types(
    tokenizer, strategy: str, scheme: str
) -> None:
    docs = release_docs()
    types = sorted({s.label for d in docs for s in d.spans})
    decode = "first" if strategy == "first" else "max"
    # Tiny windows: long sentences are cut into many overlapping windows and merged again.
    multi = Alignment(strategy, decode, scheme, max_length=12, stride=4, head="multilabel")
    report = roundtrip_check(docs, tokenizer, multi, types)
    assert report["lost"] == report["spurious"] == 0 and report["long_units"] > 0
    same_type = sum(len(d.spans) - len(multi.learnable(d.spans)) for d in docs)
    assert report["beyond_head"] == same_type  # only spans nested in one of their own type
    flat = roundtrip_check(docs, tokenizer, multi.replace(head="flat"), types)
    assert flat["lost"] == 0 and flat["beyond_head"] > report["beyond_head"]
    assert flat["gold"] + flat["beyond_head"] == report["gold"] + report["beyond_head"]


def test_multilabel_labels_one_id_per_layer_and_collate(tokenizer) -> None:
    doc = doc_of([OUTER, DISEASE, ORGAN])
    types = ["Disease", "Organ", "Procedure"]
    alignment = Alignment(head="multilabel")
    label2id = {t: i for i, t in enumerate(alignment.labels(types))}
    (feature,) = alignment.encode(doc, tokenizer, label2id)
    assert all(isinstance(t, tuple) and len(t) == 3 for t in feature.labels)
    # "breast" (word 1): B- in the Disease and Organ layers, I- in the Procedure layer.
    first = feature.word_ids.index(1)
    assert feature.labels[first] == (1, 1, 2)
    batch = Collator(tokenizer.pad_token_id)([(0, feature), (1, feature)])
    assert batch["labels"].shape == (2, len(feature.input_ids), 3)


def test_multilabel_loss_sums_layers_and_averages_sub_words() -> None:
    id2label = dict(enumerate(["O", "B-A", "I-A", "B-B", "I-B"]))
    columns = [cols for _, cols in layer_columns(id2label)]
    assert columns == [[1, 2], [3, 4]]
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 5, requires_grad=True)
    labels = torch.tensor([[[1, 0], [-100, -100], [0, 1]]])
    loss = multilabel_loss(logits, labels, torch.tensor(columns))
    expected = []
    for pos, layer, label in [(0, 0, 1), (0, 1, 0), (2, 0, 0), (2, 1, 1)]:
        z = torch.cat([torch.zeros(1), logits[0, pos, columns[layer]]])
        expected.append(-torch.log_softmax(z, 0)[label])
    # Two labelled sub-words (position 1 is ignored), two layers each.
    assert loss.item() == pytest.approx(torch.stack(expected).sum().item() / 2, abs=1e-6)
    loss.backward()
    assert torch.all(logits.grad[..., 0] == 0)  # the O output is unused


def test_multilabel_module_trains_and_predicts_nested_spans(tiny_model_dir: Path) -> None:
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    reader = PubTatorReader("mm", RELEASE, corpus="corpus_pubtator.txt", pmids=MM_PMIDS)
    alignment = Alignment(head="multilabel")
    datamodule = NERDataModule(reader, alignment, encoder.load_tokenizer(), batch_size=4)
    module = TokenClassifier(encoder, datamodule.id2label, head="multilabel")
    train = datamodule.encoded("train")
    batch = datamodule.collator([train[i] for i in range(4)])
    loss = module.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    # Decoding per layer: logits that favour B- of every layer on some word give a span of each
    # type over it, overlapping one another.
    split = datamodule.encoded("test")
    idx = [i for i, d in enumerate(split.doc_index) if d == 0]
    logits = {}
    for i in idx:
        z = np.full((len(split.features[i].input_ids), len(datamodule.id2label)), -5.0)
        z[:, [k for k, v in datamodule.id2label.items() if v in ("B-T038", "B-T033")]] = 5.0
        logits[i] = z
    docs, preds = split.decode(logits, datamodule.id2label)
    labels = {s.label for s in preds[0]}
    assert labels == {"T038", "T033"}
    assert any(overlaps(sorted(preds[0])).values())
