"""The round-trip check: gold spans through sub-words and back lose nothing."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest

from bioner.data.alignment import DECODES, Alignment
from bioner.data.document import Document, Span
from bioner.data.readers import IOBReader, PubTatorReader
from bioner.data.roundtrip import roundtrip_check, simulated_logits
from bioner.models.encoders import PackagedEncoder, TinyBert

TYPES = ["Chemical", "Disease"]


@pytest.fixture(scope="module")
def tokenizer():
    return PackagedEncoder().load_tokenizer()


def synthetic_docs() -> list[Document]:
    """Adjacent same-type entities, words without sub-words, a word longer than any window."""
    sentences = [
        (
            ["Naloxone", "naloxone", "and", "clonidine", "-", "induced", "hypotension", "."],
            [(0, 1, "Chemical"), (1, 2, "Chemical"), (3, 7, "Disease")],
        ),
        (
            ["\u200b", "aspirin", "\u0301", "x" * 80, "pain"],
            [(0, 1, "Chemical"), (1, 3, "Chemical"), (3, 4, "Disease"), (4, 5, "Disease")],
        ),
        (["No", "entities", "here", "."], []),
    ]
    text, words, ranges, spans = "", [], [], []
    for tokens, entities in sentences:
        start, pos = len(text), []
        for token in tokens:
            pos.append((len(text), len(text) + len(token)))
            text += token + " "
        words += pos
        ranges.append((start, len(text) - 1))
        spans += [Span(pos[a][0], pos[b - 1][1], t) for a, b, t in entities]
        text = text[:-1] + "\n"
    doc = Document("synthetic", text, spans, ranges, words)
    doc.validate()
    return [doc, Document("empty", "")]


def test_simulated_logits_fill_ignored_positions() -> None:
    logits = simulated_logits([-100, 1, -100, -100], [-100, 1, 2, -100], 3)
    assert logits.argmax(axis=1).tolist() == [0, 1, 2, 0]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert (probs / probs.sum(axis=1, keepdims=True)).max(axis=1).min() > 0.999999


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
@pytest.mark.parametrize("strategy", ["first", "all", "last"])
def test_synthetic_documents_lose_nothing(tokenizer, strategy: str, scheme: str) -> None:
    docs = synthetic_docs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mismatched strategy/decode pairs warn
        for decode, (max_length, unit) in itertools.product(
            DECODES, [(None, "sentence"), (12, "sentence"), (10, "document")]
        ):
            alignment = Alignment(strategy, decode, scheme, max_length, stride=4, unit=unit)
            report = roundtrip_check(docs, tokenizer, alignment, TYPES)
            assert report["gold"] == 7
            assert (report["lost"], report["changed"], report["spurious"]) == (0, 0, 0), (
                alignment,
                report["examples"],
            )
            assert report["documents"] == 2
            assert report["units"] == (3 if unit == "sentence" else 1)
            if max_length is None:
                assert report["windows"] == 3 and report["long_units"] == 0
            else:
                # The 80-character word alone is longer than a window.
                assert report["long_units"] >= 1 and report["windows"] > report["units"]
            assert report["max_subwords"] > 12


class _Sloppy(Alignment):
    """Decodes like Alignment, then drops the last span and stretches the first one."""

    def decode(self, doc, features, logits, id2label):  # type: ignore[override]
        spans = super().decode(doc, features, logits, id2label)
        if not spans:
            return spans
        first = spans[0]
        return [Span(first.start, first.end + 9, first.label), *spans[1:-1]]


def test_losses_are_counted(tokenizer) -> None:
    report = roundtrip_check(synthetic_docs(), tokenizer, _Sloppy(), TYPES)
    assert report["lost"] == 2  # the stretched first span and the dropped last one
    assert report["changed"] == 1  # the first gold span is overlapped (by its stretched copy)
    assert report["spurious"] == 1
    assert {e["text"] for e in report["examples"]} == {"Naloxone", "pain"}


def _bc5cdr_sample(shared_data: Path, n: int) -> tuple[list[Document], list[str]]:
    reader = IOBReader(
        name="bc5cdr",
        data_dir=shared_data / "bc5cdr",
        entity_types=TYPES,
        files={"train": "train.tsv", "devel": "devel.tsv", "test": "test.tsv"},
    )
    return reader.load("devel")[:n], reader.entity_types


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
def test_bc5cdr_devel_sample_loses_nothing(shared_data: Path, tokenizer, scheme: str) -> None:
    docs, types = _bc5cdr_sample(shared_data, 200)
    # BC5CDR sentences average ~35 sub-words: with 16 most units need several windows.
    for strategy, decode, max_length in (
        ("first", "first", None),
        ("all", "majority", 16),
        ("last", "last", 16),
    ):
        alignment = Alignment(strategy, decode, scheme, max_length=max_length)
        report = roundtrip_check(docs, tokenizer, alignment, types)
        assert report["gold"] > 350
        assert report["lost"] == 0 and report["spurious"] == 0, report["examples"]
        if max_length:
            assert report["long_units"] > report["units"] // 2


def test_bc5cdr_sample_with_the_tiny_tokenizer(shared_data: Path, tiny_model_dir) -> None:
    docs, types = _bc5cdr_sample(shared_data, 200)
    tokenizer = TinyBert(cache_dir=str(Path(tiny_model_dir).parent.parent)).load_tokenizer()
    report = roundtrip_check(docs, tokenizer, Alignment("all", "max", "IOBES", 24), types)
    assert report["lost"] == 0 and report["spurious"] == 0 and report["gold"] > 300


def test_pubtator_abstracts_far_longer_than_a_window(shared_data: Path, tokenizer) -> None:
    reader = PubTatorReader(
        name="bc5cdr_pubtator",
        data_dir=shared_data / "bc5cdr_pubtator",
        entity_types=TYPES,
        files={
            "train": "CDR_TrainingSet.PubTator.txt",
            "devel": "CDR_DevelopmentSet.PubTator.txt",
            "test": "CDR_TestSet.PubTator.txt",
        },
    )
    docs = reader.load("test")[:40]
    for strategy, decode in (("first", "first"), ("all", "mean"), ("last", "last")):
        alignment = Alignment(strategy, decode, "IOBES", max_length=32, stride=8, unit="document")
        report = roundtrip_check(docs, tokenizer, alignment, TYPES)
        assert report["lost"] == 0 and report["spurious"] == 0, report["examples"]
        assert report["long_units"] == report["units"] == 40
        assert report["max_subwords"] > 10 * 32  # abstracts are many windows long
