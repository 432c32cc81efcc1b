"""NERDataModule: length-bucketed, seeded, DDP-sharded batches; dynamic padding; decoding back."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from lightning.pytorch import Trainer

from bioner.data.alignment import Alignment, Feature
from bioner.data.batching import BucketBatchSampler, Collator
from bioner.data.datamodule import NERDataModule
from bioner.data.document import Document
from bioner.data.encoded import predict_split
from bioner.data.mlm import MaskedLMDataModule
from bioner.data.tags import tags_to_spans
from bioner.errors import ConfigError
from bioner.inference.tagger import make_document
from bioner.models.encoders import HubEncoder


def make_doc(doc_id: str, sentences: list[list[tuple[str, str]]]) -> Document:
    """A document from IOB2-tagged sentences, words joined by single spaces."""
    text, words, sentences_out, tags = "", [], [], []
    for sentence in sentences:
        if text:
            text += " "
        start = len(text)
        for i, (word, tag) in enumerate(sentence):
            if i:
                text += " "
            words.append((len(text), len(text) + len(word)))
            text += word
            tags.append(tag)
        sentences_out.append((start, len(text)))
    doc = Document(doc_id, text, tags_to_spans(words, tags), sentences_out, words)
    doc.validate()
    return doc


CORPUS = {
    "train": [
        make_doc("t0", [[("Aspirin", "B-Chemical"), ("causes", "O"), ("ulcers", "B-Disease")]]),
        make_doc(
            "t1",
            [
                [("Renal", "B-Disease"), ("failure", "I-Disease"), ("after", "O")],
                [("cisplatin", "B-Chemical"), ("therapy", "O"), (".", "O")],
            ],
        ),
        make_doc("t2", [[("No", "O"), ("adverse", "O"), ("events", "O"), ("were", "O")]]),
        make_doc(
            "t3", [[("Hepatotoxicity", "B-Disease"), ("of", "O"), ("acetaminophen", "B-Chemical")]]
        ),
        make_doc("t4", [[("Dopamine", "B-Chemical")]]),
    ],
    "devel": [
        make_doc("d0", [[("Lithium", "B-Chemical"), ("induced", "O"), ("diabetes", "B-Disease")]]),
        make_doc("d1", [[("Nothing", "O"), ("here", "O")], [("Fever", "B-Disease")]]),
    ],
    "test": [
        make_doc("s0", [[("Heparin", "B-Chemical"), ("and", "O"), ("bleeding", "B-Disease")]])
    ],
}


class MemoryReader:
    """A stand-in corpus reader holding documents in memory (the CorpusReader interface)."""

    name = "memory"
    splits = ["train", "devel", "test"]
    entity_types = ["Chemical", "Disease"]

    def __init__(self) -> None:
        self.ensure_calls: list[bool] = []

    def load(self, split: str) -> list[Document]:
        return list(CORPUS[split])

    def ensure_available(self, download: bool = False, splits: list[str] | None = None) -> None:
        self.ensure_calls.append(download)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return HubEncoder(str(tiny_model_dir), name="tiny").load_tokenizer()


def batches_of(sampler: BucketBatchSampler) -> list[list[int]]:
    return [list(b) for b in sampler]


@pytest.mark.parametrize(
    ("n", "batch_size", "chunk_batches"), [(100, 8, 4), (101, 8, 4), (7, 8, 4), (64, 8, None)]
)
def test_every_example_once_per_epoch_and_len_matches(
    n: int, batch_size: int, chunk_batches: int | None
) -> None:
    lengths = np.random.default_rng(0).integers(3, 60, size=n).tolist()
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=True, chunk_batches=chunk_batches)
    batches = batches_of(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_buckets_pad_far_less_than_random_batches() -> None:
    lengths = np.random.default_rng(1).integers(5, 120, size=2000).tolist()

    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    bucketed = batches_of(BucketBatchSampler(lengths, 32, shuffle=True, chunk_batches=16))
    order = np.random.default_rng(2).permutation(len(lengths)).tolist()
    random_batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    assert padded(bucketed) < 1.1 * sum(lengths) < 0.7 * padded(random_batches)


def test_order_is_a_function_of_seed_and_epoch() -> None:
    lengths = list(range(1, 200))
    a = BucketBatchSampler(lengths, 8, shuffle=True, seed=3)
    b = BucketBatchSampler(lengths, 8, shuffle=True, seed=3)
    assert batches_of(a) == batches_of(b)
    first = batches_of(a)
    # Lightning sets the epoch through batch_sampler.sampler; a fresh sampler at epoch 1 (a
    # resumed run) must produce what the running one produces.
    loader = torch.utils.data.DataLoader(range(len(lengths)), batch_sampler=a)
    _set_sampler_epoch(loader, 1)
    b.sampler.set_epoch(1)
    assert batches_of(a) == batches_of(b) != first
    assert batches_of(BucketBatchSampler(lengths, 8, shuffle=True, seed=4)) != first


@pytest.mark.parametrize("shuffle", [True, False])
def test_max_tokens_caps_batches_with_the_same_count_every_epoch(shuffle: bool) -> None:
    lengths = np.random.default_rng(7).integers(5, 200, size=300).tolist()
    sampler = BucketBatchSampler(lengths, 16, shuffle=shuffle, chunk_batches=4, max_tokens=1024)
    seen = []
    for epoch in range(3):
        sampler.sampler.set_epoch(epoch)
        batches = batches_of(sampler)
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(300))
        assert all(len(b) * max(lengths[i] for i in b) <= 1024 for b in batches)
        assert max(len(b) for b in batches) == 16  # short examples still fill whole batches
        seen.append(batches)
    if shuffle:
        assert seen[0] != seen[1]
    huge = BucketBatchSampler([5, 2000, 7], 4, shuffle=True, max_tokens=100)
    assert sorted(map(sorted, batches_of(huge))) == [[0, 2], [1]]  # too long for any cap: alone


def test_evaluation_order_is_sorted_longest_first() -> None:
    lengths = [5, 9, 1, 7, 3]
    batches = batches_of(BucketBatchSampler(lengths, 2, shuffle=False, chunk_batches=None))
    assert batches == [[1, 3], [0, 4], [2]]


@pytest.mark.parametrize("shuffle", [True, False])
def test_ranks_get_equal_batch_counts_and_cover_everything(shuffle: bool) -> None:
    lengths = np.random.default_rng(5).integers(1, 50, size=45).tolist()
    per_rank = [
        batches_of(BucketBatchSampler(lengths, 4, shuffle=shuffle, num_replicas=3, rank=r))
        for r in range(3)
    ]
    sizes = {len(b) for b in per_rank}
    assert sizes == {len(BucketBatchSampler(lengths, 4, shuffle=shuffle, num_replicas=3))}
    seen = Counter(i for batches in per_rank for b in batches for i in b)
    assert set(seen) == set(range(45))
    # 12 batches of 4 (11 full, one of 1) over 3 ranks: no repeats needed.
    assert max(seen.values()) == 1
    uneven = [
        batches_of(BucketBatchSampler(lengths, 4, shuffle, num_replicas=5, rank=r))
        for r in range(5)
    ]
    assert {len(b) for b in uneven} == {3}
    assert set(i for batches in uneven for b in batches for i in b) == set(range(45))


@pytest.mark.parametrize(("n", "batch_size", "ranks"), [(3, 4, 4), (1, 1, 3), (5, 2, 8)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_fewer_batches_than_ranks_still_give_every_rank_its_batches(
    n: int, batch_size: int, ranks: int, shuffle: bool
) -> None:
    lengths = list(range(3, 3 + n))
    per_rank = [
        batches_of(BucketBatchSampler(lengths, batch_size, shuffle, num_replicas=ranks, rank=r))
        for r in range(ranks)
    ]
    expected = len(BucketBatchSampler(lengths, batch_size, shuffle, num_replicas=ranks))
    assert expected >= 1 and all(len(batches) == expected for batches in per_rank)
    assert {i for batches in per_rank for b in batches for i in b} == set(range(n))


def test_unlabelled_examples_join_each_training_batch_at_the_ratio() -> None:
    rng = np.random.default_rng(11)
    lengths = rng.integers(3, 60, size=50).tolist()
    pool = rng.integers(3, 60, size=200).tolist()
    plain = BucketBatchSampler(lengths, 8, shuffle=True, seed=2)
    mixed = BucketBatchSampler(
        lengths, 8, shuffle=True, seed=2, unlabeled_lengths=pool, unlabeled_ratio=0.5
    )
    batches = batches_of(mixed)
    assert len(mixed) == len(plain) == len(batches)
    # The labelled batches are the ones without unlabelled examples, in the same order.
    assert [[i for i in b if i < 50] for b in batches] == batches_of(plain)
    # Half as many unlabelled examples (rounded half up), indexed after the labelled ones.
    for b in batches:
        labelled = sum(1 for i in b if i < 50)
        assert sum(1 for i in b if i >= 50) == int(labelled * 0.5 + 0.5)
    # Dealt by length: the batch with the longer labelled examples gets the longer unlabelled
    # ones, so a batch pads little more than its labelled rows need.
    by_length = sorted(batches, key=lambda b: max(lengths[i] for i in b if i < 50))
    blocks = [[pool[i - 50] for i in b if i >= 50] for b in by_length]
    assert all(max(a) <= min(b) for a, b in zip(blocks, blocks[1:]) if a and b)


def test_the_unlabelled_pool_is_drawn_in_turn_and_the_same_on_every_rank() -> None:
    lengths = list(range(3, 15))  # 12 labelled examples: 3 batches of 4, 6 unlabelled per epoch
    pool = [5] * 10

    def epoch_draws(epoch: int, ranks: int = 1) -> list[list[int]]:
        per_rank = []
        for rank in range(ranks):
            sampler = BucketBatchSampler(
                lengths, 4, True, seed=1, num_replicas=ranks, rank=rank, unlabeled_lengths=pool,
                unlabeled_ratio=0.5,
            )  # fmt: skip
            sampler.sampler.set_epoch(epoch)
            per_rank += batches_of(sampler)
        return per_rank

    drawn = [[i - 12 for b in epoch_draws(e) for i in b if i >= 12] for e in range(5)]
    assert all(len(d) == 6 for d in drawn)
    # 5 epochs of 6 from a pool of 10 are 3 passes over it: every example 3 times.
    assert Counter(i for d in drawn for i in d) == {i: 3 for i in range(10)}
    assert len(set(drawn[0])) == 6 and sorted(drawn[0]) != sorted(drawn[1])
    assert drawn[2] == [i - 12 for b in epoch_draws(2) for i in b if i >= 12]  # a resumed epoch
    # Three ranks share out the same batches, the labelled ones with their unlabelled rows.
    assert sorted(map(sorted, epoch_draws(2, ranks=3))) == sorted(map(sorted, epoch_draws(2)))
    with pytest.raises(ValueError, match="training batches only"):
        BucketBatchSampler(lengths, 4, shuffle=False, unlabeled_lengths=pool)
    with pytest.raises(ValueError, match="unlabeled_ratio must be positive"):
        BucketBatchSampler(lengths, 4, shuffle=True, unlabeled_lengths=pool, unlabeled_ratio=0)


def test_collator_pads_dynamically_and_keeps_indices() -> None:
    items = [
        (4, Feature([101, 7, 102], [-100, 1, -100], [None, 0, None], 0, 0)),
        (9, Feature([101, 7, 8, 9, 102], [-100, 1, 2, 0, -100], [None, 0, 0, 1, None], 0, 0)),
    ]
    batch = Collator(pad_token_id=0)(items)
    assert batch["input_ids"].tolist() == [[101, 7, 102, 0, 0], [101, 7, 8, 9, 102]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"].tolist() == [[-100, 1, -100, -100, -100], [-100, 1, 2, 0, -100]]
    assert batch["index"].tolist() == [4, 9]
    assert Collator(0, pad_to_multiple_of=8)(items)["input_ids"].shape == (2, 8)
    unlabeled = [(0, Feature([101, 5, 102], None, [None, 0, None], 0, 0))]
    assert "labels" not in Collator(0)(unlabeled)
    # A semi-supervised batch: the row without labels is ignored everywhere.
    mixed = Collator(0)([*items, (12, unlabeled[0][1])])
    assert mixed["labels"].tolist() == [
        [-100, 1, -100, -100, -100],
        [-100, 1, 2, 0, -100],
        [-100] * 5,
    ]
    layered = Feature([101, 7, 102], [(-100, -100), (1, 0), (-100, -100)], [None, 0, None], 0, 0)
    labels = Collator(0)([(0, unlabeled[0][1]), (1, layered)])["labels"]
    assert labels.shape == (2, 3, 2) and labels[0].eq(-100).all()
    assert labels[1].tolist() == [[-100, -100], [1, 0], [-100, -100]]


def test_setup_encodes_each_split_once_and_loaders_cover_every_feature(tokenizer) -> None:
    reader = MemoryReader()
    dm = NERDataModule(reader, Alignment(), tokenizer, batch_size=2, eval_batch_size=3)
    dm.prepare_data()
    assert reader.ensure_calls == [True]
    assert dm.id2label == {0: "O", 1: "B-Chemical", 2: "I-Chemical", 3: "B-Disease", 4: "I-Disease"}
    dm.setup("fit")
    train = dm.encoded("train")
    assert dm.encoded("train") is train
    assert len(train) == 6  # one feature per sentence
    assert train.doc_index == [0, 1, 1, 2, 3, 4]
    seen = [i for batch in dm.train_dataloader() for i in batch["index"].tolist()]
    assert sorted(seen) == list(range(6))
    batch = next(iter(dm.val_dataloader()))
    assert set(batch) == {"input_ids", "attention_mask", "labels", "index"}
    assert int(batch["attention_mask"].sum()) == sum(
        len(dm.encoded("devel").features[i].input_ids) for i in batch["index"].tolist()
    )


def test_unlabelled_text_rides_in_training_batches_and_evaluation_text_is_warned_about(
    tokenizer, caplog
) -> None:
    class LongerDevel(MemoryReader):
        def load(self, split: str) -> list[Document]:
            words = ["No", "change", "was", "seen", "in", "renal", "function", "."]
            long = [make_doc("d9", [[(w, "O") for w in words]])]
            return super().load(split) + (long if split == "devel" else [])

    dm = NERDataModule(LongerDevel(), Alignment(), tokenizer, batch_size=2, seed=0)
    dm.setup("fit")
    text = [
        "Dopamine was given. No change was seen in renal function.",
        "Lithium induced diabetes",  # a devel sentence too, but too short to count
        "Fever after cisplatin therapy was rare in the second group of patients",
    ]
    with caplog.at_level(logging.WARNING, logger="bioner"):
        dm.add_unlabeled([make_document(t, str(i)) for i, t in enumerate(text)], 1.0, "unl.txt")
    (said,) = [r.getMessage() for r in caplog.records if "transductive" in r.getMessage()]
    assert said.startswith("unl.txt: 1 of its 2 sentences of five words or more are devel")
    features, ratio = dm.unlabeled
    assert len(features) == 4 and ratio == 1.0
    batches = list(dm.train_dataloader())
    assert len(batches) == 3  # the 6 labelled sequences in batches of 2, as without
    labelled = [i for b in batches for i in b["index"].tolist() if i < 6]
    assert sorted(labelled) == list(range(6))
    for b in batches:
        rows = b["index"] >= 6
        assert int(rows.sum()) == 2  # one unlabelled sequence per labelled one
        assert b["labels"][rows].eq(-100).all() and b["labels"][~rows].ne(-100).any()
    assert not any(b["index"].ge(6).any() for b in dm.val_dataloader())
    with pytest.raises(ConfigError, match="empty.txt: the unlabelled text has no words"):
        dm.add_unlabeled([make_document("  ", "0")], 1.0, "empty.txt")


def test_eval_max_tokens_caps_evaluation_batches_only(tokenizer) -> None:
    dm = NERDataModule(
        MemoryReader(), Alignment(), tokenizer, batch_size=8, eval_batch_size=8, eval_max_tokens=8
    )
    dm.setup("fit")
    devel = dm.encoded("devel")
    batches = [b for b in dm.val_dataloader()]
    # Three devel sentences of at least 4 sub-words: at most two per batch of 8 tokens.
    assert all(b["input_ids"].numel() <= 8 for b in batches) and len(batches) > 1
    assert sorted(i for b in batches for i in b["index"].tolist()) == list(range(len(devel)))
    assert len(next(iter(dm.train_dataloader()))["index"]) == len(dm.encoded("train"))


def test_a_token_cap_that_shrinks_training_batches_is_said_once(tokenizer, caplog) -> None:
    # Training sequences of 4 to 14 sub-words; a cap of 24 tokens leaves about 2 per batch of 6.
    lengths = [len(f.input_ids) for f in NERDataModule(MemoryReader(), Alignment(), tokenizer)
               .encoded("train").features]  # fmt: skip
    assert BucketBatchSampler(lengths, 6, shuffle=True, max_tokens=24).mean_batch_size < 4.5
    assert BucketBatchSampler(lengths, 6, shuffle=True).mean_batch_size == len(lengths)
    dm = NERDataModule(MemoryReader(), Alignment(), tokenizer, batch_size=6, max_tokens=24)
    dm.setup("fit")
    with caplog.at_level(logging.WARNING, logger="bioner"):
        dm.train_dataloader()
        dm.train_dataloader()  # augmentation rebuilds it every epoch: said once
    said = [r.getMessage() for r in caplog.records if "holds training batches" in r.getMessage()]
    assert len(said) == 1 and "data.max_tokens=24" in said[0] and "data.batch_size=6" in said[0]
    caplog.clear()
    # No cap, or a split smaller than one batch (not the cap's doing): nothing to say.
    for max_tokens, batch_size in ((None, 6), (10_000, 32)):
        dm = NERDataModule(
            MemoryReader(), Alignment(), tokenizer, batch_size=batch_size, max_tokens=max_tokens
        )
        dm.setup("fit")
        with caplog.at_level(logging.WARNING, logger="bioner"):
            dm.train_dataloader()
    assert not [r for r in caplog.records if "holds training batches" in r.getMessage()]


def test_limit_documents_takes_the_first_documents(tokenizer) -> None:
    dm = NERDataModule(MemoryReader(), Alignment(), tokenizer, limit_documents=2)
    assert [d.id for d in dm.encoded("train").docs] == ["t0", "t1"]
    with pytest.raises(ValueError, match="limit_documents"):
        NERDataModule(MemoryReader(), Alignment(), tokenizer, limit_documents=0)


def gold_logits(split, num_labels: int) -> dict[int, np.ndarray]:
    """Confident logits of each feature's gold labels (ignored positions: ``O``)."""
    logits = {}
    for i, feature in enumerate(split.features):
        one_hot = np.full((len(feature.input_ids), num_labels), -5.0)
        for row, label in enumerate(feature.labels):
            one_hot[row, max(label, 0)] = 5.0
        logits[i] = one_hot
    return logits


def test_decode_of_gold_logits_gives_gold_spans_and_skips_unpredicted_docs(
    tokenizer, caplog: pytest.LogCaptureFixture
) -> None:
    dm = NERDataModule(MemoryReader(), Alignment(), tokenizer)
    split = dm.encoded("train")
    logits = gold_logits(split, len(dm.labels))
    docs, preds = split.decode(logits, dm.id2label)
    assert [d.id for d in docs] == [d.id for d in CORPUS["train"]]
    assert preds == [d.spans for d in CORPUS["train"]]
    del logits[2]  # the second sentence of t1
    docs, preds = split.decode(logits, dm.id2label)
    assert [d.id for d in docs] == ["t0", "t2", "t3", "t4"]
    assert "scoring 4 of 5 documents" in caplog.text


@pytest.mark.parametrize(
    ("cuda", "precision"), [(False, "32-true"), (False, "bf16-mixed"), (True, "bf16-mixed")]
)
def test_auto_padding_and_pinning_follow_the_trainer_device(
    tokenizer, monkeypatch: pytest.MonkeyPatch, cuda: bool, precision: str
) -> None:
    # The CUDA path runs on the CPU too: only the device question is answered differently.
    dm = NERDataModule(
        MemoryReader(), Alignment(), tokenizer, batch_size=8, pad_to_multiple_of="auto"
    )
    monkeypatch.setattr(dm, "_on_cuda", lambda: cuda)
    dm.trainer = Trainer(
        accelerator="cpu", precision=precision, logger=False, enable_checkpointing=False
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.pin_memory is cuda
    widths = [b["input_ids"].shape[1] for b in loader]
    longest = max(len(f.input_ids) for f in dm.encoded("train").features)
    assert longest % 8  # else rounding would not show
    rounded = cuda or precision == "bf16-mixed"
    assert widths == [8 * -(-longest // 8) if rounded else longest]
    exact = NERDataModule(MemoryReader(), Alignment(), tokenizer, pad_to_multiple_of=None)
    monkeypatch.setattr(exact, "_on_cuda", lambda: True)
    assert next(iter(exact.train_dataloader()))["input_ids"].shape[1] == longest
    with pytest.raises(ValueError, match="pad_to_multiple_of"):
        NERDataModule(MemoryReader(), Alignment(), tokenizer, pad_to_multiple_of="eight")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"batch_size": 0}, "data.batch_size=0: must be a positive integer$"),
        # 0 was read as the default (2 * batch_size).
        ({"eval_batch_size": 0}, r"data.eval_batch_size=0: must be a positive integer or null"),
        ({"max_tokens": -5}, r"data.max_tokens=-5: must be a positive integer or null"),
        ({"eval_max_tokens": 0}, r"data.eval_max_tokens=0: must be"),
        ({"chunk_batches": 0}, r"data.chunk_batches=0: must be"),
        ({"limit_documents": 0}, r"data.limit_documents=0: must be"),
        ({"num_workers": -1}, r"data.num_workers=-1: must be 0"),
        # 0 was read as exact lengths; a negative multiple made widths shorter than the sentences.
        ({"pad_to_multiple_of": 0}, r"data.pad_to_multiple_of=0: must be a positive integer"),
        ({"pad_to_multiple_of": "eight"}, r"data.pad_to_multiple_of='eight'"),
    ],
)
def test_batching_settings_out_of_range_are_config_errors(
    tokenizer, setting: dict, message: str
) -> None:
    """Refused when the data module is made, naming the key, not when a loader is first built
    inside training (a traceback) or read as something else."""
    with pytest.raises(ConfigError, match=message):
        NERDataModule(MemoryReader(), Alignment(), tokenizer, **setting)
    if setting.get("pad_to_multiple_of") != "eight":
        with pytest.raises(ConfigError, match=message):
            MaskedLMDataModule(tokenizer, text_file="unused.txt", **setting)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"mask_rate": 0.0}, r"data.mask_rate=0.0: must be in \(0, 1\)"),
        ({"val_fraction": 1.0}, r"data.val_fraction=1.0: must be in \[0, 1\)"),
        ({"pad_to_multiple_of": "auto"}, r"data.pad_to_multiple_of=auto: pretraining takes"),
    ],
)
def test_masking_settings_out_of_range_are_config_errors(
    tokenizer, setting: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        MaskedLMDataModule(tokenizer, text_file="unused.txt", **setting)


@pytest.mark.parametrize(
    "model_types", [["Disease", "Chemical"], ["Chemical"], ["Chemical", "Disease", "Gene"]]
)
def test_gold_labels_take_a_given_models_ids_by_name(tokenizer, model_types: list[str]) -> None:
    alignment = Alignment(label_strategy="all")
    own = NERDataModule(MemoryReader(), alignment, tokenizer)
    labels = alignment.labels(model_types)
    given = NERDataModule(MemoryReader(), alignment, tokenizer, labels=labels)
    assert given.labels == labels and given.id2label == dict(enumerate(labels))
    for split in ("train", "devel"):
        for a, b in zip(own.encoded(split).features, given.encoded(split).features):
            expected = [
                i if i < 0 else own.labels[i] if own.labels[i][2:] in model_types else "O"
                for i in a.labels
            ]
            assert [i if i < 0 else labels[i] for i in b.labels] == expected


def shorthand_datamodule(tokenizer, tmp_path: Path, table: str | None) -> NERDataModule:
    """The memory corpus with shorthand expansion from ``table`` (TSV text; ``None``: the
    shipped list)."""
    from bioner.preprocess import Preprocessor, ShorthandExpander

    path = None
    if table is not None:
        path = tmp_path / "shorthand.tsv"
        path.write_text(table)
    preprocess = Preprocessor([ShorthandExpander(path)])
    return NERDataModule(MemoryReader(), Alignment(), tokenizer, preprocess=preprocess)


def test_preprocessed_splits_decode_onto_the_original_documents(tokenizer, tmp_path: Path) -> None:
    dm = shorthand_datamodule(tokenizer, tmp_path, "causes\tleads to\nheparin\tHeparin sodium\n")
    for name in ("train", "test"):
        split = dm.encoded(name)
        docs, preds = split.decode(gold_logits(split, len(dm.labels)), dm.id2label)
        assert docs == CORPUS[name] and preds == [d.spans for d in CORPUS[name]]
    # Training text is rewritten around gold spans only; test text everywhere (a gold word too).
    assert dm.encoded("train").docs[0].text == "Aspirin leads to ulcers"
    assert dm.encoded("test").docs[0].text == "Heparin sodium and bleeding"
    # Unlabelled text is rewritten as evaluation text is.
    dm.add_unlabeled([make_document("heparin causes bleeding", "u0")], 1.0, "unl.txt")
    (feature,) = dm.unlabeled[0]
    assert tokenizer.decode(feature.input_ids, skip_special_tokens=True) == tokenizer.decode(
        tokenizer("Heparin sodium leads to bleeding")["input_ids"], skip_special_tokens=True
    )
    # The fitted steps travel in checkpoints.
    state = dm.state_dict()
    other = shorthand_datamodule(tokenizer, tmp_path, None)
    other.load_state_dict(state)
    assert other.encoded("test").docs[0].text == "Heparin sodium and bleeding"


def test_predict_split_batches_forwards_and_decodes_whatever_the_batching(
    tokenizer, tmp_path: Path
) -> None:
    dm = shorthand_datamodule(tokenizer, tmp_path, "heparin\tHeparin sodium\n")
    split = dm.encoded("test")
    gold = gold_logits(split, len(dm.labels))
    seen: list[int] = []

    def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # The collated batch carries feature indices; answer with each feature's gold logits,
        # padded like the batch (the padding rows must be cut off again).
        seen.extend(batch["index"].tolist())
        width = batch["input_ids"].shape[1]
        rows = [
            np.pad(gold[i], ((0, width - len(gold[i])), (0, 0))) for i in batch["index"].tolist()
        ]
        return torch.tensor(np.stack(rows))

    for batch_size, max_tokens in ((1, None), (64, None), (64, 8)):
        seen.clear()
        docs, preds = predict_split(
            split, forward, Collator(tokenizer.pad_token_id), dm.id2label, batch_size, max_tokens
        )
        assert sorted(seen) == list(range(len(split.features)))
        # Back on the original documents (preprocessing mapped), with a score on every span.
        assert docs == CORPUS["test"] and preds == [d.spans for d in CORPUS["test"]]
        assert all(s.score is not None and s.score > 0.9 for spans in preds for s in spans)


def test_a_robustness_subset_of_a_preprocessed_split_decodes_onto_the_originals(
    tokenizer, tmp_path: Path
) -> None:
    from bioner.attacks.robustness import subset

    dm = shorthand_datamodule(tokenizer, tmp_path, "lithium\tLithium carbonate\n")
    split = dm.encoded("devel")
    assert split.docs[0].text.startswith("Lithium carbonate")
    part = subset(split, 1)
    docs, preds = part.decode(gold_logits(part, len(dm.labels)), dm.id2label)
    # Robustness scores the first document on its original text, not on the rewritten one.
    assert docs == CORPUS["devel"][:1] and preds == [CORPUS["devel"][0].spans]


def test_text_robustness_perturbs_the_original_text_and_tags_it_normalised(
    tokenizer, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Noise reaches the text a user hands over, before normalisation: the perturbations must
    # rewrite the original documents, and the tagger must normalise them as bioner-predict does.
    from transformers import AutoModelForTokenClassification

    import bioner.attacks.robustness as robustness

    dm = shorthand_datamodule(tokenizer, tmp_path, "lithium\tLithium carbonate\n")
    split = dm.encoded("devel")
    assert split.docs[0].text.startswith("Lithium carbonate")
    seen = {}

    def spy(docs, predict, perturbations, seed=0):
        seen["docs"] = list(docs)
        seen["member"] = predict.__self__.members[0]
        seen["spans"] = predict(list(docs))
        return {}

    monkeypatch.setattr(robustness, "text_robustness", spy)
    model = AutoModelForTokenClassification.from_pretrained(
        str(tiny_model_dir),
        id2label=dict(dm.id2label),
        label2id={label: i for i, label in dm.id2label.items()},
    )
    suite = robustness.Robustness(text_kinds=["typos_outside"])
    suite.evaluate(model, tokenizer, split, dm.id2label, preprocess=dm.preprocess)
    assert seen["docs"] == CORPUS["devel"]
    assert seen["member"].preprocess is dm.preprocess
    texts = [d.text for d in CORPUS["devel"]]
    assert all(s.end <= len(t) for t, spans in zip(texts, seen["spans"]) for s in spans)
