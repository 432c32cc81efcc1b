"""Sub-word labels, windows and word-level decoding."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from bioner.data.alignment import (
    DECODES,
    IGNORE_INDEX,
    Alignment,
    plan_windows,
    subword_tags,
)
from bioner.data.alignment.encoding import special_tokens, unit_context
from bioner.data.document import Document, Span
from bioner.errors import ConfigError
from bioner.models.encoders import PackagedEncoder

TYPES = ["Chemical", "Disease"]


@pytest.fixture(scope="module")
def tokenizer():
    return PackagedEncoder().load_tokenizer()


def make_doc(
    sentences: list[list[str]], entities: list[tuple[int, int, int, str]], doc_id: str = "d"
) -> Document:
    """Words joined by spaces, sentences by a newline; entities are (sentence, first, end, type)."""
    text, words, ranges, offsets = "", [], [], []
    for sentence in sentences:
        start = len(text)
        pos = []
        for i, word in enumerate(sentence):
            if i:
                text += " "
            pos.append((len(text), len(text) + len(word)))
            text += word
        words.extend(pos)
        offsets.append(pos)
        ranges.append((start, len(text)))
        text += "\n"
    spans = [Span(offsets[s][a][0], offsets[s][b - 1][1], t) for s, a, b, t in entities]
    doc = Document(doc_id, text, sorted(spans), ranges, words)
    doc.validate()
    return doc


def one_hot(labels: list[int], num_labels: int) -> np.ndarray:
    out = np.zeros((len(labels), num_labels))
    out[np.arange(len(labels)), [max(x, 0) for x in labels]] = 100.0
    return out


def gold_logits(alignment: Alignment, doc: Document, tokenizer) -> tuple[list, list, dict]:
    """Features and confident logits of the gold labels (ignored sub-words: `all` labels)."""
    labels = alignment.labels(TYPES)
    label2id = {t: i for i, t in enumerate(labels)}
    features = alignment.encode(doc, tokenizer, label2id)
    full = Alignment(
        "all", "mean", alignment.scheme, alignment.max_length, alignment.stride, alignment.unit
    )
    reference = full.encode(doc, tokenizer, label2id)
    logits = [
        one_hot([a if a != IGNORE_INDEX else b for a, b in zip(f.labels, r.labels)], len(labels))
        for f, r in zip(features, reference)
    ]
    return features, logits, dict(enumerate(labels))


@pytest.mark.parametrize(
    ("tag", "n", "strategy", "scheme", "expected"),
    [
        ("B-X", 3, "first", "IOB2", ["B-X", None, None]),
        ("B-X", 3, "last", "IOB2", [None, None, "B-X"]),
        ("B-X", 3, "all", "IOB2", ["B-X", "I-X", "I-X"]),
        ("I-X", 2, "all", "IOB2", ["I-X", "I-X"]),
        ("O", 2, "all", "IOB2", ["O", "O"]),
        ("S-X", 3, "all", "IOBES", ["B-X", "I-X", "E-X"]),
        ("S-X", 2, "all", "IOBES", ["B-X", "E-X"]),
        ("S-X", 1, "all", "IOBES", ["S-X"]),
        ("B-X", 3, "all", "IOBES", ["B-X", "I-X", "I-X"]),
        ("E-X", 3, "all", "IOBES", ["I-X", "I-X", "E-X"]),
        ("I-X", 2, "all", "IOBES", ["I-X", "I-X"]),
        ("S-X", 2, "last", "IOBES", [None, "S-X"]),
    ],
)
def test_subword_tags(tag: str, n: int, strategy: str, scheme: str, expected: list) -> None:
    assert subword_tags(tag, n, strategy, scheme) == expected


def test_plan_windows_invariants() -> None:
    rng = random.Random(0)
    for _ in range(300):
        size = rng.randint(2, 20)
        lengths = [rng.randint(1, size) for _ in range(rng.randint(1, 40))]
        starts = [sum(lengths[:i]) for i in range(len(lengths))]
        n = sum(lengths)
        stride = rng.randint(0, 30)
        windows = plan_windows(starts, n, size, stride)
        assert windows[0][0] == 0 and windows[-1][1] == n
        for (s, e), (s2, e2) in zip(windows, windows[1:]):
            assert s < s2 <= e < e2  # moving forward, no gap
        bounds = set(starts) | {n}
        for s, e in windows:
            assert 0 < e - s <= size
            # Words no longer than a window never get cut.
            assert s in bounds and e in bounds


def test_plan_windows_overlap_and_long_words() -> None:
    # 12 one-sub-word words, 6 per window, overlap 3.
    assert plan_windows(list(range(12)), 12, 6, 3) == [(0, 6), (3, 9), (6, 12)]
    # Overlap is capped at half a window so windows always advance.
    assert plan_windows(list(range(12)), 12, 6, 128) == [(0, 6), (3, 9), (6, 12)]
    assert plan_windows(list(range(12)), 12, 6, 0) == [(0, 6), (6, 12)]
    # A 10-sub-word word (positions 1..10) in windows of 4 is split; windows still cover it.
    windows = plan_windows([0, 1, 11], 12, 4, 2)
    covered = set()
    for s, e in windows:
        assert e - s <= 4
        covered |= set(range(s, e))
    assert covered == set(range(12))
    assert plan_windows([0], 3, 5, 2) == [(0, 3)]


def test_encode_labels_per_strategy(tokenizer) -> None:
    # "naloxone" is 4 sub-words in the MiniLM vocabulary, "hypotension" 5.
    doc = make_doc([["Naloxone", "reverses", "hypotension", "."]], [(0, 0, 1, "Chemical")])
    for strategy, expected in (
        ("first", ["B-Chemical", None, None, None]),
        ("last", [None, None, None, "B-Chemical"]),
        ("all", ["B-Chemical", "I-Chemical", "I-Chemical", "I-Chemical"]),
    ):
        alignment = Alignment(strategy, "first" if strategy != "last" else "last")
        labels = alignment.labels(TYPES)
        label2id = {t: i for i, t in enumerate(labels)}
        (feature,) = alignment.encode(doc, tokenizer, label2id)
        assert feature.input_ids[0] == tokenizer.cls_token_id
        assert feature.input_ids[-1] == tokenizer.sep_token_id
        assert feature.word_ids[0] is None and feature.word_ids[-1] is None
        assert feature.labels[0] == feature.labels[-1] == IGNORE_INDEX
        naloxone = [i for i, w in enumerate(feature.word_ids) if w == 0]
        assert len(naloxone) == 4
        got = [
            None if feature.labels[i] == IGNORE_INDEX else labels[feature.labels[i]]
            for i in naloxone
        ]
        assert got == expected
        assert len(feature.input_ids) == len(feature.labels) == len(feature.word_ids)
    assert Alignment().encode(doc, tokenizer)[0].labels is None  # inference: no labels


def test_units_are_sentences_or_the_document(tokenizer) -> None:
    doc = make_doc([["Aspirin", "helps", "."], ["Pain", "."]], [(0, 0, 1, "Chemical")])
    features = Alignment().encode(doc, tokenizer)
    assert [f.unit for f in features] == [0, 1]
    assert sorted({w for w in features[1].word_ids if w is not None}) == [3, 4]  # doc.words
    (whole,) = Alignment(unit="document").encode(doc, tokenizer)
    assert sorted({w for w in whole.word_ids if w is not None}) == [0, 1, 2, 3, 4]
    assert Alignment().encode(Document("empty", ""), tokenizer) == []
    no_sentences = Document("x", "a b", words=[(0, 1), (2, 3)])
    with pytest.raises(ValueError, match="no sentences"):
        Alignment().encode(no_sentences, tokenizer)
    assert len(Alignment(unit="document").encode(no_sentences, tokenizer)) == 1


def test_words_without_subwords_keep_their_label(tokenizer) -> None:
    # Zero-width space, lone combining accent, BOM, control char: MiniLM drops all of them.
    odd = ["\u200b", "\u0301", "\ufeff", "\x07"]
    assert all(
        not tokenizer([[w]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
        for w in odd
    )
    sentence = ["Dose", *odd, "of", "\u200b", "kills"]
    doc = make_doc([sentence], [(0, 1, 3, "Chemical"), (0, 3, 4, "Disease"), (0, 6, 7, "Chemical")])
    for strategy, decode in (("first", "first"), ("all", "majority"), ("last", "last")):
        for scheme in ("IOB2", "IOBES"):
            alignment = Alignment(strategy, decode, scheme)
            features, logits, id2label = gold_logits(alignment, doc, tokenizer)
            (feature,) = features
            content = [w for w in feature.word_ids if w is not None]
            assert sorted(set(content)) == list(range(len(sentence)))
            for i, w in enumerate(feature.word_ids):
                if w is not None and 1 <= w <= 4:
                    assert feature.input_ids[i] == tokenizer.unk_token_id
            assert alignment.decode(doc, features, logits, id2label) == doc.spans


def test_literal_special_token_text_is_text(tokenizer) -> None:
    doc = make_doc([["see", "[SEP]", "here"]], [])
    (feature,) = Alignment().encode(doc, tokenizer)
    assert feature.input_ids.count(tokenizer.sep_token_id) == 1  # only the real one at the end


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
@pytest.mark.parametrize("strategy", ["first", "all", "last"])
def test_adjacent_same_type_entities_and_long_words_survive_windows(
    tokenizer, strategy: str, scheme: str
) -> None:
    words = ["Naloxone", "hydrochloride", "naloxone", "a" * 60, "reverses", "clonidine"] * 3
    entities = [(0, 0, 2, "Chemical"), (0, 2, 3, "Chemical"), (0, 3, 4, "Disease")]
    entities += [(0, 6, 7, "Chemical"), (0, 7, 8, "Chemical"), (0, 11, 12, "Disease")]
    doc = make_doc([words], entities)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mismatched decodes warn; here they are the point
        for decode in DECODES:
            for max_length, unit in ((None, "sentence"), (8, "sentence"), (16, "document")):
                alignment = Alignment(strategy, decode, scheme, max_length, stride=4, unit=unit)
                features, logits, id2label = gold_logits(alignment, doc, tokenizer)
                if max_length:
                    assert len(features) > 3
                    assert all(len(f.input_ids) <= max_length for f in features)
                assert alignment.decode(doc, features, logits, id2label) == doc.spans


def test_each_word_is_read_from_the_window_with_most_context(tokenizer) -> None:
    # 12 one-sub-word words, 6 per window, overlap 3: windows (0,6) (3,9) (6,12).
    words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
    doc = make_doc([words], [])
    alignment = Alignment("first", "first", max_length=8, stride=3)
    features = alignment.encode(doc, tokenizer)
    assert [(f.offset, len(f.input_ids)) for f in features] == [(0, 8), (3, 8), (6, 8)]
    labels = alignment.labels(TYPES)
    # Windows 0 and 2 call every word a Chemical; window 1 calls everything O.
    logits = [one_hot([1 if f.window != 1 else 0] * 8, len(labels)) for f in features]
    predicted = alignment.decode(doc, features, logits, dict(enumerate(labels)))
    chemical = [doc.words.index((s.start, s.end)) for s in predicted]
    # Word 3: window 0 (2 after it) beats window 1 (0 before it); word 4 ties 1-1, earlier
    # window wins; words 5-7 have more context in window 1; words 8+ are best in window 2.
    assert chemical == [0, 1, 2, 3, 4, 8, 9, 10, 11]


def test_type_then_boundary_decoding(tokenizer) -> None:
    # One word of 4 sub-words ("naloxone") under the `all` strategy.
    doc = make_doc([["Naloxone"]], [])
    labels = Alignment().labels(TYPES)  # O B-Chem I-Chem B-Dis I-Dis
    (feature,) = Alignment("all", "mean").encode(doc, tokenizer)
    # Sub-words say B-Chemical, O, O, I-Disease (strongly).
    rows = [[0, 10, 0, 0, 0], [9, 0, 0, 0, 0], [9, 0, 0, 0, 0], [0, 0, 0, 0, 9]]
    logits = np.array([[0] * 5, *rows, [0] * 5], dtype=float)
    id2label = dict(enumerate(labels))

    def decode(method: str) -> list[str]:
        spans = Alignment("all", method).decode(doc, [feature], [logits], id2label)
        return [s.label for s in spans]

    assert decode("first") == ["Chemical"]
    assert decode("last") == ["Disease"]
    assert decode("mean") == [] and decode("majority") == []
    assert decode("max") == ["Chemical"]  # the single most confident sub-word
    # Mean of B-X and I-X sub-words is still type X, and the boundary comes from the first one.
    rows = [[0, 9, 0, 0, 0], [0, 0, 9, 0, 0], [0, 0, 9, 0, 0], [0, 0, 9, 0, 0]]
    logits = np.array([[0] * 5, *rows, [0] * 5], dtype=float)
    assert decode("mean") == ["Chemical"]


def test_decode_checks_its_inputs(tokenizer) -> None:
    doc = make_doc([["Aspirin", "."], ["Pain", "."]], [(0, 0, 1, "Chemical")])
    alignment = Alignment()
    features, logits, id2label = gold_logits(alignment, doc, tokenizer)
    # Trailing padding rows (a padded batch) are ignored.
    padded = [np.vstack([x, np.zeros((3, x.shape[1]))]) for x in logits]
    assert alignment.decode(doc, features, padded, id2label) == doc.spans
    with pytest.raises(ValueError, match="cover 2 of its 4 words"):
        alignment.decode(doc, features[:1], logits[:1], id2label)
    with pytest.raises(ValueError, match="rows"):
        alignment.decode(doc, features, [x[:2] for x in logits], id2label)
    with pytest.raises(ValueError, match="do not match"):
        alignment.decode(doc, features, [x[:, :3] for x in logits], id2label)
    with pytest.raises(ValueError, match="not a IOB2 tag"):
        alignment.decode(doc, features, logits, {0: "O", 1: "S-Chemical", 2: "B-Chemical"})
    with pytest.raises(ValueError, match="lacks E-Chemical"):
        Alignment(scheme="IOBES").decode(
            doc,
            features,
            logits,
            dict(enumerate(["O"] * 5))
            | {1: "B-Chemical", 2: "I-Chemical", 3: "S-Chemical", 4: "S-Disease"},
        )


def test_configuration_errors(tokenizer) -> None:
    with pytest.raises(ValueError, match="label_strategy"):
        Alignment(label_strategy="middle")
    with pytest.raises(ValueError, match="scheme"):
        Alignment(scheme="IOB1")
    with pytest.warns(UserWarning, match="never trains"):
        Alignment("first", "mean")
    doc = make_doc([["Aspirin", "kills"]], [(0, 0, 1, "Drug")])
    with pytest.raises(ValueError, match="'Drug'"):
        Alignment().encode(doc, tokenizer, {t: i for i, t in enumerate(Alignment().labels(TYPES))})
    with pytest.raises(ConfigError, match="alignment.max_length=2 leaves no room"):
        Alignment(max_length=2).encode(doc, tokenizer)
    unlimited = PackagedEncoder().load_tokenizer()
    unlimited.model_max_length = int(1e30)
    with pytest.raises(ValueError, match="max_length"):
        Alignment().encode(doc, unlimited)
    assert len(Alignment(max_length=64).encode(doc, unlimited)) == 1
    # Longer than the encoder's position embeddings: refused, not a shape error mid-training.
    limit = tokenizer.model_max_length
    with pytest.raises(ConfigError, match=rf"max_length={limit + 1} is longer than the encoder"):
        Alignment(max_length=limit + 1).window_size(tokenizer)
    assert Alignment(max_length=limit).window_size(tokenizer) < limit


def test_decode_real_model_outputs_from_a_padded_batch(tiny_model_dir) -> None:
    import torch

    from bioner.models.encoders import HubEncoder

    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    tokenizer = encoder.load_tokenizer()
    doc = make_doc(
        [["Naloxone", "reverses", "clonidine", "-", "induced", "hypotension", "."] * 4, ["Ok"]],
        [(0, 0, 1, "Chemical"), (0, 2, 6, "Disease")],
    )
    alignment = Alignment("all", "mean", "IOBES", max_length=12, stride=4)
    labels = alignment.labels(TYPES)
    model = encoder.load_model(dict(enumerate(labels)))
    features = alignment.encode(doc, tokenizer)
    width = max(len(f.input_ids) for f in features)
    ids = torch.tensor([f.input_ids + [0] * (width - len(f.input_ids)) for f in features])
    mask = (
        torch.arange(width)[None, :] < torch.tensor([len(f.input_ids) for f in features])[:, None]
    )
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask.long()).logits.numpy()
    spans = alignment.decode(doc, features, list(logits), dict(enumerate(labels)))
    starts = {s for s, _ in doc.words}
    ends = {e for _, e in doc.words}
    for a, b in zip(spans, spans[1:]):
        assert a.end <= b.start
    for span in spans:
        assert span.start in starts and span.end in ends and span.label in TYPES
        assert sum(s <= span.start and span.end <= e for s, e in doc.sentences) == 1


def test_encoding_documents_together_equals_one_by_one(tokenizer) -> None:
    # Different documents, sentence counts, windows (a small max_length) and an empty document:
    # the shared tokenizer call must hand every unit its own rows.
    docs = [
        make_doc([["Naloxone", "reverses", "hypotension"], ["in", "rats"]], [(0, 0, 1, "Chem")]),
        Document("empty", "", [], [], []),
        make_doc([["cardiotoxicity"] * 9], [(0, 2, 5, "Dis")], doc_id="long"),
        make_doc([["x"]], [], doc_id="one"),
    ]
    label2id = {"O": 0, "B-Chem": 1, "I-Chem": 2, "B-Dis": 3, "I-Dis": 4}
    for alignment in (Alignment(), Alignment(unit="document"), Alignment(max_length=8, stride=2)):
        for ids in (label2id, None):
            together = alignment.encode_many(docs, tokenizer, ids)
            assert together == [alignment.encode(doc, tokenizer, ids) for doc in docs]
            assert together[1] == []
            assert (len(together[2]) > 1) == (alignment.max_length == 8)  # windowed


# ---------------------------------------------------------------------- context


@pytest.mark.parametrize(
    ("sizes", "position", "context", "room", "expected"),
    [
        ([3, 4, 5], 1, 2, 10, (2, 2)),  # both sides as wanted
        ([3, 4, 5], 1, 9, 20, (3, 5)),  # all that the neighbours have
        ([3, 4, 5], 1, 9, 4, (2, 2)),  # both want more than the room: half each
        ([1, 4, 5], 1, 9, 4, (1, 3)),  # one side short: the other takes the rest
        ([6, 4, 1], 1, 9, 4, (3, 1)),
        ([2, 2, 4, 3], 2, 3, 9, (3, 3)),  # across two units before
        ([3, 4], 0, 2, 10, (0, 2)),  # the first sentence has no left context
        ([3, 4, 5], 1, 2, 0, (0, 0)),  # a sentence that fills its window
    ],
)
def test_unit_context_takes_the_nearest_subwords_within_the_room(
    sizes: list[int], position: int, context: int, room: int, expected: tuple[int, int]
) -> None:
    units, next_id = [], 0
    for size in sizes:
        units.append(list(range(next_id, next_id + size)))
        next_id += size
    left, right = unit_context(units, position, context, room)
    assert (len(left), len(right)) == expected
    flat_before = [i for u in units[:position] for i in u]
    flat_after = [i for u in units[position + 1 :] for i in u]
    assert left == flat_before[len(flat_before) - len(left) :]  # the nearest ones, in order
    assert right == flat_after[: len(right)]


def test_context_is_read_but_never_labelled_or_predicted(tokenizer) -> None:
    sentences = [["Aspirin", "helps", "."], ["Lithium", "causes", "seizures", "."], ["Pain", "."]]
    doc = make_doc(sentences, [(0, 0, 1, "Chemical"), (1, 0, 1, "Chemical"), (1, 2, 3, "Disease")])
    labels = Alignment().labels(TYPES)
    label2id = {t: i for i, t in enumerate(labels)}
    plain = Alignment().encode(doc, tokenizer, label2id)
    context = Alignment(context=3)
    features = context.encode(doc, tokenizer, label2id)
    assert len(features) == len(plain) == 3
    prefix, suffix = special_tokens(tokenizer)
    own = [f.input_ids[len(prefix) : len(f.input_ids) - len(suffix)] for f in plain]
    for i, (feature, alone) in enumerate(zip(features, plain)):
        left = [t for u in own[:i] for t in u][-3:] if i else []
        right = [t for u in own[i + 1 :] for t in u][:3]
        assert feature.input_ids == prefix + left + own[i] + right + suffix
        # The sentence's own positions carry its labels and words; the context none.
        content = slice(len(prefix) + len(left), len(feature.input_ids) - len(suffix) - len(right))
        assert (
            feature.labels[content] == alone.labels[len(prefix) : len(alone.labels) - len(suffix)]
        )
        assert feature.word_ids[content] == alone.word_ids[len(prefix) : -len(suffix)]
        outside = [
            k for k in range(len(feature.input_ids)) if not content.start <= k < content.stop
        ]
        assert all(feature.labels[k] == IGNORE_INDEX for k in outside)
        assert all(feature.word_ids[k] is None for k in outside)
    # Decoding reads only the sentence's own positions: gold logits everywhere give the gold
    # spans, whatever the logits on the context say (here: every context sub-word a Disease).
    logits = [
        one_hot(
            [
                label2id["B-Disease"] if w is None else max(t, 0)
                for t, w in zip(f.labels, f.word_ids)
            ],
            len(labels),
        )
        for f in features
    ]
    assert context.decode(doc, features, logits, dict(enumerate(labels))) == doc.spans


def test_context_leaves_windowed_sentences_and_one_sentence_documents_alone(tokenizer) -> None:
    words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]
    doc = make_doc([["x", "y"], words, ["z"]], [])
    alignment = Alignment(max_length=8, stride=3, context=4)
    features = alignment.encode(doc, tokenizer)
    plain = Alignment(max_length=8, stride=3).encode(doc, tokenizer)
    # The long sentence needs 3 windows and keeps them as they were; its neighbours, which fit,
    # read up to 4 sub-words of it each side, within their window of 6.
    assert [f.input_ids for f in features if f.unit == 1] == [
        f.input_ids for f in plain if f.unit == 1
    ]
    first = next(f for f in features if f.unit == 0)
    assert len(first.input_ids) == len(next(f for f in plain if f.unit == 0).input_ids) + 4
    single = make_doc([["Aspirin", "helps", "."]], [])
    assert alignment.encode(single, tokenizer)[0].input_ids == (
        Alignment(max_length=8, stride=3).encode(single, tokenizer)[0].input_ids
    )


def test_context_settings(tokenizer) -> None:
    with pytest.raises(ValueError, match="alignment.context=-1"):
        Alignment(context=-1)
    with pytest.raises(ValueError, match="unit='document'.*alignment.context=0, or unit=sentence"):
        Alignment(unit="document", context=64)
    record = Alignment.from_record({"label_strategy": "first", "context": 64}, "bioner.json")
    assert record.context == 64 and record.replace(context=0).context == 0
    assert Alignment.from_record({"label_strategy": "first"}, "older bioner.json").context == 0
    with pytest.raises(ConfigError, match="alignment context='64' is a str"):
        Alignment.from_record({"context": "64"}, "bioner.json")
