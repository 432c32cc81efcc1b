"""Whole-word masking, raw-text documents and the MLM datamodule."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from bioner.data.alignment import IGNORE_INDEX
from bioner.data.batching import Collator
from bioner.data.document import Document
from bioner.data.mlm import (
    MaskedLMDataModule,
    MaskingCollator,
    Sequences,
    random_token_pool,
    text_documents,
    whole_word_mask,
)
from bioner.data.readers.base import CorpusReader
from bioner.data.tokenize import word_ranges
from bioner.models.encoders import HubEncoder

MASK = 103
POOL = np.arange(1000, 30000)


def sequence(rng: np.random.Generator, words: int) -> tuple[list[int], list[int | None]]:
    """[CLS] + ``words`` words of 1-4 sub-words + [SEP], with ids that are never MASK."""
    ids, word_ids = [101], [None]
    for w in range(words):
        n = int(rng.integers(1, 5))
        ids += rng.integers(1000, 30000, size=n).tolist()
        word_ids += [w] * n
    return ids + [102], word_ids + [None]


def chosen_words(word_ids: list[int | None], labels: list[int]) -> dict[int, list[int]]:
    """Positions of every word that has at least one label."""
    out: dict[int, list[int]] = {}
    for i, (w, label) in enumerate(zip(word_ids, labels)):
        if label != IGNORE_INDEX:
            out.setdefault(w, []).append(i)
    return out


def masked_corpus(seed: int = 0, n: int = 3000, words: int = 20):
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n):
        ids, word_ids = sequence(rng, int(rng.integers(1, 2 * words)))
        inputs, labels = whole_word_mask(ids, word_ids, rng, MASK, POOL)
        draws.append((ids, word_ids, inputs, labels))
    return draws


def test_every_sub_word_of_a_chosen_word_is_predicted_and_treated_alike() -> None:
    for ids, word_ids, inputs, labels in masked_corpus(n=500):
        positions = {w: [i for i, x in enumerate(word_ids) if x == w] for w in set(word_ids)}
        for w, chosen in chosen_words(word_ids, labels).items():
            assert chosen == positions[w], "a chosen word must have all its sub-words predicted"
            assert all(labels[i] == ids[i] for i in chosen)
            masked = [inputs[i] == MASK for i in chosen]
            assert all(masked) or not any(masked), "a word is masked whole or not at all"
        # Unchosen sub-words are untouched.
        assert all(inputs[i] == ids[i] for i, label in enumerate(labels) if label == IGNORE_INDEX)


def test_special_tokens_are_never_chosen_or_replaced() -> None:
    for ids, word_ids, inputs, labels in masked_corpus(n=500):
        for i, w in enumerate(word_ids):
            if w is None:
                assert labels[i] == IGNORE_INDEX and inputs[i] == ids[i]


def test_the_share_of_chosen_words_is_the_rate() -> None:
    draws = masked_corpus(n=3000)
    total = sum(len(set(w for w in word_ids if w is not None)) for _, word_ids, _, _ in draws)
    chosen = sum(len(chosen_words(word_ids, labels)) for _, word_ids, _, labels in draws)
    assert chosen / total == pytest.approx(0.15, abs=0.01)


def test_short_sequences_are_masked_at_the_rate_on_average() -> None:
    # 3 words: 0.45 words on average; always rounding would give 0 (or 1 with a floor of one).
    rng = np.random.default_rng(1)
    counts = []
    for _ in range(4000):
        ids, word_ids = sequence(rng, 3)
        _, labels = whole_word_mask(ids, word_ids, rng, MASK, POOL)
        counts.append(len(chosen_words(word_ids, labels)))
    assert np.mean(counts) == pytest.approx(0.45, abs=0.03)


def test_chosen_words_are_80_percent_masked_10_random_10_kept() -> None:
    kinds = {"mask": 0, "random": 0, "kept": 0}
    for ids, word_ids, inputs, labels in masked_corpus(n=3000):
        for chosen in chosen_words(word_ids, labels).values():
            if all(inputs[i] == MASK for i in chosen):
                kinds["mask"] += 1
            elif all(inputs[i] == ids[i] for i in chosen):
                kinds["kept"] += 1
            else:
                assert all(inputs[i] in POOL for i in chosen)
                kinds["random"] += 1
    total = sum(kinds.values())
    assert total > 5000
    assert kinds["mask"] / total == pytest.approx(0.8, abs=0.02)
    assert kinds["random"] / total == pytest.approx(0.1, abs=0.02)
    assert kinds["kept"] / total == pytest.approx(0.1, abs=0.02)


def test_masking_is_seeded() -> None:
    ids, word_ids = sequence(np.random.default_rng(0), 40)

    def draw(seed: int):
        return whole_word_mask(ids, word_ids, np.random.default_rng(seed), MASK, POOL)

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


def test_a_sequence_without_words_is_left_alone() -> None:
    inputs, labels = whole_word_mask([101, 102], [None, None], np.random.default_rng(0), MASK, POOL)
    assert inputs == [101, 102] and labels == [IGNORE_INDEX] * 2


# ------------------------------------------------------------------ with a real tokenizer


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return HubEncoder(str(tiny_model_dir), name="tiny").load_tokenizer()


def test_random_replacements_never_draw_special_tokens(tokenizer) -> None:
    pool = set(random_token_pool(tokenizer).tolist())
    assert pool.isdisjoint(tokenizer.all_special_ids)
    assert len(pool) == len(tokenizer) - len(set(tokenizer.all_special_ids))


def test_text_file_lines_or_paragraphs(tmp_path: Path) -> None:
    lines = tmp_path / "lines.txt"
    lines.write_text("Aspirin causes ulcers.\nDopamine, 5-HT and DA1.\n")
    docs = text_documents(lines)
    assert [d.text for d in docs] == ["Aspirin causes ulcers.", "Dopamine, 5-HT and DA1."]
    assert [d.id for d in docs] == ["lines.txt:1", "lines.txt:2"]
    assert docs[1].words == word_ranges(docs[1].text)

    paragraphs = tmp_path / "paragraphs.txt"
    paragraphs.write_text("First line\nof one abstract.\n\n\nSecond. Abstract here.\n")
    docs = text_documents(paragraphs)
    assert [d.text for d in docs] == ["First line\nof one abstract.", "Second. Abstract here."]
    assert [d.id for d in docs] == ["paragraphs.txt:1", "paragraphs.txt:5"]
    assert len(docs[1].sentences) == 2


class TextReader(CorpusReader):
    """A corpus reader over in-memory texts, one document each, per split."""

    def __init__(self, texts: dict[str, list[str]]) -> None:
        super().__init__("memory", ".", entity_types=["Chemical"])
        self.texts = texts

    def required_files(self) -> list[Path]:
        return []

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        return [
            Document(f"{split}-{i}", t, [], [(0, len(t))], word_ranges(t))
            for i, t in enumerate(self.texts[split])
        ]


def test_every_word_lands_in_exactly_one_sequence(tokenizer) -> None:
    long_text = " ".join(f"hepatotoxicity{i} of acetaminophen" for i in range(60))
    dm = MaskedLMDataModule(
        tokenizer, TextReader({"train": [long_text]}), max_length=32, val_fraction=0.0
    )
    dm.setup("fit")
    features = dm.train_set.features
    assert len(features) > 5, "a document longer than max_length is cut into several sequences"
    assert all(len(f.input_ids) <= 32 for f in features)
    words = [w for f in features for w in f.word_ids if w is not None]
    # In order, none lost, none repeated (sub-words of one word are consecutive).
    assert sorted(set(words)) == list(range(len(word_ranges(long_text))))
    assert words == sorted(words)
    assert sum(len(f.input_ids) - 2 for f in features) == len(
        tokenizer(long_text, add_special_tokens=False)["input_ids"]
    )


def test_held_out_documents_are_disjoint_from_training(tokenizer) -> None:
    texts = [f"document number {i} about lithium" for i in range(40)]
    dm = MaskedLMDataModule(tokenizer, TextReader({"train": texts}), val_fraction=0.1, seed=3)
    dm.setup("fit")
    assert len(dm.val_set) == 4 and len(dm.train_set) == 36
    decoded = {tokenizer.decode(f.input_ids[1:-1]) for f in dm.val_set.features}
    assert decoded.isdisjoint(tokenizer.decode(f.input_ids[1:-1]) for f in dm.train_set.features)


def test_devel_or_test_text_is_warned_about(tokenizer, caplog) -> None:
    reader = TextReader({"train": ["a b c", "d e f"], "test": ["g h i"]})
    dm = MaskedLMDataModule(tokenizer, reader, splits=["train", "test"], val_fraction=0.0)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert "a leak" in caplog.text
    assert len(dm.train_set) == 3


def test_validation_masks_are_fixed_training_masks_are_fresh(tokenizer) -> None:
    text = "Renal failure after cisplatin therapy in patients with hepatotoxicity"
    dm = MaskedLMDataModule(tokenizer, TextReader({"train": [text] * 16}), val_fraction=0.0)
    dm.setup("fit")
    items = [dm.train_set[i] for i in range(16)]
    pool = random_token_pool(tokenizer)
    pad = Collator(tokenizer.pad_token_id)

    def collate(fixed: bool, batch: list) -> list:
        c = MaskingCollator(pad, tokenizer.mask_token_id, pool, 0.3, seed=1, fixed=fixed)
        return [c(batch)["labels"].tolist() for _ in range(2)]

    first, second = collate(True, items)
    assert first == second
    # Per sequence, not per batch: the same sequence gets the same mask in another batch.
    assert collate(True, items[3:5])[0][0] == first[3]
    first, second = collate(False, items)
    assert first != second


def test_sequences_dataset_reports_lengths(tokenizer) -> None:
    dm = MaskedLMDataModule(tokenizer, TextReader({"train": ["a b", "c d e f"]}), val_fraction=0)
    dm.setup("fit")
    assert isinstance(dm.train_set, Sequences)
    assert dm.train_set.lengths == [len(f.input_ids) for f in dm.train_set.features]


def test_the_head_on_predicted_positions_gives_the_full_forward_loss(tiny_model_dir: Path) -> None:
    import torch

    from bioner.models.mlm import MaskedLanguageModel

    module = MaskedLanguageModel(HubEncoder(str(tiny_model_dir), name="tiny")).eval()
    assert module._head_name == "cls"
    assert not any(k.startswith("_") for k in module.state_dict())
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (4, 24), generator=g)
    labels = torch.where(torch.rand(4, 24, generator=g) < 0.15, ids, torch.full_like(ids, -100))
    mask = torch.ones_like(ids)
    mask[1, 20:] = 0
    labels[1, 20:] = -100
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    with torch.no_grad():
        assert float(module(batch)) == pytest.approx(float(module.model(**batch).loss), rel=1e-5)
    # A batch that drew no word adds nothing but still backpropagates.
    loss = module({**batch, "labels": torch.full_like(ids, -100)})
    loss.backward()
    assert float(loss) == 0.0
