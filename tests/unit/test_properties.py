"""Property-based tests (hypothesis): invariants that must hold for every input, not only for the
examples someone thought of. Each property names what it checks; hypothesis shrinks a failure to
a minimal example.

Examples are small and the budget modest (200 per property: the suite runs on two shared cores);
``pytest --hypothesis-profile=thorough`` tries 3,000 (profiles: tests/conftest.py).
"""

from __future__ import annotations

from itertools import permutations
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bioner.data.alignment import Alignment
from bioner.data.document import Document, Span
from bioner.data.roundtrip import roundtrip_check
from bioner.data.tags import (
    char_to_word_spans,
    convert_tags,
    snap_to_words,
    tags_to_spans,
    tags_to_word_spans,
    word_spans_to_tags,
)
from bioner.evaluation import evaluate, match_spans
from bioner.models.encoders import HubEncoder

TYPES = ["Chemical", "Disease", "Gene"]

# Words as tokenizers meet them: plain, biomedical punctuation, digits, accents and non-Latin
# scripts, combining marks and symbols (a character with no sub-word of its own included).
WORD_CHARS = st.sampled_from(
    list("abcxyzABCXYZ0123456789-+/().,;:'%αβγµé中文") + ["\u0301", "😀", "ﬁ", "İ", "\u200b"]
)
WORDS = st.text(WORD_CHARS, min_size=1, max_size=8)


@st.composite
def word_spans(draw: st.DrawFn, n_words: int) -> list[tuple[int, int, str]]:
    """Non-overlapping word spans ``(first, end, type)`` over ``n_words`` words."""
    spans, i = [], 0
    while i < n_words:
        if draw(st.booleans()):
            end = draw(st.integers(i + 1, min(n_words, i + 4)))
            spans.append((i, end, draw(st.sampled_from(TYPES))))
            i = end
        else:
            i += 1
    return spans


@st.composite
def documents(draw: st.DrawFn) -> Document:
    """A document of 1-3 sentences of 1-12 words, separated by one or two spaces, with spans."""
    text, words, sentences, spans = "", [], [], []
    for _ in range(draw(st.integers(1, 3))):
        if text:
            text += draw(st.sampled_from([" ", "  ", "\n"]))
        start, n = len(text), draw(st.integers(1, 12))
        first_word = len(words)
        for k in range(n):
            if k:
                text += draw(st.sampled_from([" ", " ", "  "]))
            word = draw(WORDS)
            words.append((len(text), len(text) + len(word)))
            text += word
        sentences.append((start, len(text)))
        for first, end, label in draw(word_spans(n)):
            lo, hi = words[first_word + first][0], words[first_word + end - 1][1]
            spans.append(Span(lo, hi, label))
    doc = Document("d", text, sorted(spans), sentences, words)
    doc.validate()
    return doc


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return HubEncoder(str(tiny_model_dir), name="tiny").load_tokenizer()


# ------------------------------------------------------------------ alignment and windows


@given(
    doc=documents(),
    strategy=st.sampled_from(["first", "all", "last"]),
    scheme=st.sampled_from(["IOB2", "IOBES"]),
    max_length=st.sampled_from([None, 5, 6, 9, 16]),
    stride=st.integers(0, 3),
    unit=st.sampled_from(["sentence", "document"]),
)
def test_alignment_and_windows_round_trip_loses_nothing(
    tokenizer, doc: Document, strategy: str, scheme: str, max_length, stride: int, unit: str
) -> None:
    decode = {"first": "first", "all": "majority", "last": "last"}[strategy]
    alignment = Alignment(strategy, decode, scheme, max_length, stride, unit)
    report = roundtrip_check([doc], tokenizer, alignment, TYPES)
    assert report["gold"] == len(doc.spans)
    assert report["lost"] == 0 and report["spurious"] == 0, report["examples"]


@given(doc=documents(), cuts=st.lists(st.integers(0, 60), max_size=4))
def test_snapping_to_words_is_exact_on_word_boundaries_and_covers_the_span_otherwise(
    doc: Document, cuts: list[int]
) -> None:
    assert snap_to_words(doc.words, doc.spans) == char_to_word_spans(doc.words, doc.spans)
    # Spans moved off word boundaries snap to the whole words they overlap, never overlapping.
    moved = [
        Span(max(0, s.start - c % 2), min(len(doc.text), s.end + c % 3), s.label)
        for s, c in zip(doc.spans, cuts)
    ]
    snapped = snap_to_words(doc.words, moved)
    assert all(a[1] <= b[0] for a, b in zip(snapped, snapped[1:]))
    for first, end, _ in snapped:
        lo, hi = doc.words[first][0], doc.words[end - 1][1]
        assert any(lo < s.end and s.start < hi for s in moved)


# ------------------------------------------------------------------ tag schemes


@st.composite
def tag_sequences(draw: st.DrawFn) -> list[str]:
    n = draw(st.integers(0, 15))
    return word_spans_to_tags(n, draw(word_spans(n)), "IOB2")


@given(tags=tag_sequences())
def test_iob2_and_iobes_convert_both_ways_and_keep_the_spans(tags: list[str]) -> None:
    iobes = convert_tags(tags, "IOB2", "IOBES", on_invalid="reject")
    assert convert_tags(iobes, "IOBES", "IOB2", on_invalid="reject") == tags
    spans, repairs = tags_to_word_spans(tags, "IOB2", "reject")
    assert tags_to_word_spans(iobes, "IOBES", "reject") == (spans, 0) and repairs == 0
    assert word_spans_to_tags(len(tags), spans, "IOBES") == iobes
    # IOB1 marks B- only between touching spans of one type; it reads back to the same spans.
    iob1 = convert_tags(tags, "IOB2", "IOB1", on_invalid="reject")
    assert tags_to_word_spans(iob1, "IOB1", "reject")[0] == spans


@given(tags=st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B"]), max_size=12))
def test_repairing_any_tag_sequence_gives_valid_iob2_with_the_same_spans(tags: list[str]) -> None:
    repaired = convert_tags(tags, "IOB2", "IOB2")
    assert tags_to_word_spans(repaired, "IOB2", "reject")[0] == tags_to_word_spans(tags)[0]


# ------------------------------------------------------------------ scores


@given(data=st.data())
def test_strict_scores_equal_seqeval(data: st.DataObject) -> None:
    seqeval_metrics = pytest.importorskip("seqeval.metrics")
    from seqeval.scheme import IOB2

    sentences = data.draw(st.lists(tag_sequences(), min_size=1, max_size=4))
    preds = [data.draw(st.just(len(g)).flatmap(lambda n: word_spans(n))) for g in sentences]
    pred_tags = [word_spans_to_tags(len(g), p, "IOB2") for g, p in zip(sentences, preds)]
    docs = []
    for i, tags in enumerate(sentences):
        words = [(2 * k, 2 * k + 1) for k in range(len(tags))]
        text = " ".join("w" * len(tags)) if tags else ""
        docs.append(Document(str(i), text, tags_to_spans(words, tags), [(0, len(text))], words))
    ours = evaluate(docs, [tags_to_spans(d.words, t) for d, t in zip(docs, pred_tags)]).metrics()
    ref = seqeval_metrics.classification_report(
        sentences, pred_tags, mode="strict", scheme=IOB2, output_dict=True, zero_division=0
    )
    for type_ in (k for k in ref if not k.endswith(" avg")):
        for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours[f"{key}_{type_}"] == pytest.approx(ref[type_][name], abs=1e-12)
    if any(ref[k]["support"] for k in ref if not k.endswith(" avg")) or any(map(any, preds)):
        micro = ref["micro avg"]
        assert ours["precision"] == pytest.approx(micro["precision"], abs=1e-12)
        assert ours["recall"] == pytest.approx(micro["recall"], abs=1e-12)
        assert ours["f1"] == pytest.approx(micro["f1-score"], abs=1e-12)


SPANS = st.lists(
    st.builds(
        lambda start, length, label: Span(start, start + length, label),
        st.integers(0, 20),
        st.integers(1, 8),
        st.sampled_from(["A", "B"]),
    ),
    max_size=5,
).map(sorted)


def best_matching(gold: list[Span], pred: list[Span], same_type: bool) -> tuple[int, int]:
    """(pairs, identical pairs) of the best one-to-one pairing, trying every assignment."""

    def ok(g: Span, p: Span) -> bool:
        return g.start < p.end and p.start < g.end and (not same_type or g.label == p.label)

    small, large, flip = (gold, pred, False) if len(gold) <= len(pred) else (pred, gold, True)
    best = (0, 0)
    for chosen in permutations(range(len(large)), len(small)):
        pairs = [
            (large[j], small[i]) if flip else (small[i], large[j]) for i, j in enumerate(chosen)
        ]
        found = [(g, p) for g, p in pairs if ok(g, p)]
        best = max(best, (len(found), sum((g.start, g.end) == (p.start, p.end) for g, p in found)))
    return best


@given(gold=SPANS, pred=SPANS, same_type=st.booleans())
def test_overlap_matching_is_maximum_with_the_most_identical_pairs(
    gold: list[Span], pred: list[Span], same_type: bool
) -> None:
    pairs = match_spans(gold, pred, same_type)
    assert len({g for g, _ in pairs}) == len({p for _, p in pairs}) == len(pairs)
    for g, p in pairs:
        assert gold[g].start < pred[p].end and pred[p].start < gold[g].end
        assert not same_type or gold[g].label == pred[p].label
    identical = sum((gold[g].start, gold[g].end) == (pred[p].start, pred[p].end) for g, p in pairs)
    assert (len(pairs), identical) == best_matching(gold, pred, same_type)
