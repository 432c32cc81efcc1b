"""Raw text for masked-language-model pretraining: documents, sequences and whole-word masks.

Text comes from a plain text file or from a corpus reader's documents (their text only; the gold
spans are ignored). Sequences are made by :class:`~bioner.data.alignment.Alignment` without labels
and with non-overlapping windows, so every word of the text is in exactly one sequence and nothing
is truncated. Masking happens in the collator, so every epoch draws fresh masks.

Whole-word masking (:func:`whole_word_mask`): a share ``rate`` of the *words* of each sequence is
chosen (the words of the text, as the reader or :func:`bioner.data.tokenize.word_ranges` segment
it), and every sub-word of a chosen word is predicted; BERT's 80/10/10 rule is applied per word:
80% of chosen words have all their sub-words replaced by the mask token, 10% by random tokens and
10% are left as they are. Masking single sub-words instead would let the model fill in ``##ine``
from ``dopam`` without learning anything about the word.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from bioner.data.alignment import IGNORE_INDEX, Alignment, Feature
from bioner.data.batching import Collator, check_batching, loader_sampler
from bioner.data.document import Document
from bioner.data.readers.base import read_text, split_lines
from bioner.data.sentences import split_sentences
from bioner.data.tokenize import word_ranges
from bioner.errors import ConfigError
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from bioner.data.readers import CorpusReader

log = get_logger(__name__)

# Splits whose text may be pretrained on without a warning; see MaskedLMDataModule.
SAFE_SPLITS = ("train",)


def text_documents(path: str | Path) -> list[Document]:
    """Documents of a UTF-8 text file: paragraphs if it has blank lines, else one per line.

    Each document keeps its text exactly; words come from
    :func:`~bioner.data.tokenize.word_ranges` and sentences from
    :func:`~bioner.data.sentences.split_sentences`. Ids are ``<file name>:<first line>``.

    Raises:
        CorpusFormatError: the file is empty or not UTF-8 (the message names the file).
    """
    path = Path(path)
    lines = split_lines(read_text(path))
    by_paragraph = any(not line.strip() for line in lines)
    blocks: list[tuple[int, list[str]]] = []  # (first line number, lines)
    current: list[str] | None = None
    for no, line in enumerate(lines, 1):
        if not line.strip():
            current = None
            continue
        if current is None or not by_paragraph:
            current = []
            blocks.append((no, current))
        current.append(line)
    docs = []
    for first, block in blocks:
        text = "\n".join(block)
        doc = Document(
            f"{path.name}:{first}",
            text,
            sentences=split_sentences(text),
            words=word_ranges(text),
            meta={"source": str(path), "line": first},
        )
        doc.validate()
        docs.append(doc)
    log.info(
        "%s: %d documents (%s)",
        path,
        len(docs),
        "paragraphs separated by blank lines" if by_paragraph else "one per line",
    )
    return docs


def whole_word_mask(
    input_ids: Sequence[int],
    word_ids: Sequence[int | None],
    rng: np.random.Generator,
    mask_token_id: int,
    random_token_ids: np.ndarray,
    rate: float = 0.15,
    mask_share: float = 0.8,
    random_share: float = 0.1,
) -> tuple[list[int], list[int]]:
    """Whole-word-masked inputs and MLM labels for one sequence.

    Positions whose ``word_ids`` entry is ``None`` (special tokens) are never chosen. The number
    of chosen words is ``rate * words`` rounded up or down at random with the odds that make its
    expectation exact, so short sequences are masked at the right rate on average.

    Args:
        input_ids: the sequence's sub-word ids.
        word_ids: the word of each sub-word; sub-words of one word share it.
        rng: the random generator (seeded by the caller).
        mask_token_id: the tokenizer's mask token.
        random_token_ids: ids a randomly replaced sub-word is drawn from (no special tokens).
        rate: share of words to predict.
        mask_share: share of chosen words whose sub-words all become the mask token.
        random_share: share of chosen words whose sub-words become random tokens; the rest
            (``1 - mask_share - random_share``) stay unchanged but are still predicted.

    Returns:
        The masked ``input_ids`` and the labels: the original id at every sub-word of a chosen
        word, ``-100`` elsewhere.
    """
    positions: dict[int, list[int]] = {}
    for i, w in enumerate(word_ids):
        if w is not None:
            positions.setdefault(w, []).append(i)
    words = list(positions.values())
    expected = rate * len(words)
    count = min(len(words), math.floor(expected) + int(rng.random() < expected % 1))
    inputs, labels = list(input_ids), [IGNORE_INDEX] * len(input_ids)
    for k in rng.choice(len(words), size=count, replace=False).tolist():
        draw = rng.random()
        for i in words[k]:
            labels[i] = input_ids[i]
            if draw < mask_share:
                inputs[i] = mask_token_id
            elif draw < mask_share + random_share:
                inputs[i] = int(rng.choice(random_token_ids))
    return inputs, labels


def random_token_pool(tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """Vocabulary ids a random replacement may use: every id but the special tokens'."""
    special = set(tokenizer.all_special_ids)
    return np.array([i for i in range(len(tokenizer)) if i not in special], dtype=np.int64)


@dataclass
class MaskingCollator:
    """Pad ``(index, feature)`` items (:class:`~bioner.data.batching.Collator`) and mask them.

    Adds ``labels`` (-100 except at predicted sub-words) and replaces ``input_ids`` by the masked
    ones. Training draws from one generator seeded once, so each epoch masks afresh; ``fixed``
    seeds each sequence from ``(seed, index)`` instead, so that evaluation masks the same
    sub-words whatever the model, the batch size or the number of passes (losses before and after
    training are comparable).

    Args:
        pad: the padding collator.
        mask_token_id: the tokenizer's mask token.
        random_token_ids: see :func:`random_token_pool`.
        rate: share of words to predict.
        seed: the masking seed.
        fixed: the same masks on every pass (evaluation).
    """

    pad: Collator
    mask_token_id: int
    random_token_ids: np.ndarray
    rate: float = 0.15
    seed: int = 0
    fixed: bool = False
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, items: Sequence[tuple[int, Feature]]) -> dict[str, torch.Tensor]:
        batch = self.pad(items)
        labels = torch.full_like(batch["input_ids"], IGNORE_INDEX)
        for row, (index, feature) in enumerate(items):
            rng = np.random.default_rng([self.seed, index]) if self.fixed else self._rng
            inputs, row_labels = whole_word_mask(
                feature.input_ids,
                feature.word_ids,
                rng,
                self.mask_token_id,
                self.random_token_ids,
                self.rate,
            )
            n = len(inputs)
            batch["input_ids"][row, :n] = torch.tensor(inputs, dtype=torch.long)
            labels[row, :n] = torch.tensor(row_labels, dtype=torch.long)
        batch["labels"] = labels
        return batch


class Sequences(Dataset):
    """Unlabelled features as ``(index, feature)`` items, with their lengths for bucketing."""

    def __init__(self, features: list[Feature]) -> None:
        self.features = features
        self.lengths = [len(f.input_ids) for f in features]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[int, Feature]:
        return i, self.features[i]


class MaskedLMDataModule(L.LightningDataModule):
    """Raw text as whole-word-masked batches, with a held-out share of documents for validation.

    The text is a file (``text_file``) or the documents of a corpus reader's ``splits``. Only
    ``train`` by default, and any other split is warned about: pretraining on devel or test text
    lets the encoder learn the very sentences it is later scored on (their words, abbreviations
    and contexts), which inflates devel and test scores; that is a leak, not domain adaptation.

    Args:
        tokenizer: the encoder's fast tokenizer (with a mask token).
        reader: the corpus reader whose document texts are used (``conf/dataset``); ignored
            when ``text_file`` is given.
        text_file: a UTF-8 text file: one document per line, or paragraphs separated by blank
            lines (see :func:`text_documents`).
        splits: the reader's splits to read.
        unit: ``document`` makes sequences as long as the encoder allows (windows of a long
            document, cut at word boundaries, never overlapping); ``sentence`` one per sentence.
        max_length: sub-words per sequence, special tokens included; ``None``: the encoder's
            limit.
        mask_rate: share of words predicted in each sequence.
        val_fraction: share of documents (at least one) held out to measure the MLM loss;
            0 for none. The documents are drawn with ``seed``.
        batch_size: sequences per training batch.
        eval_batch_size: sequences per validation batch; ``None``: ``2 * batch_size``.
        chunk_batches: see :class:`~bioner.data.batching.BucketBatchSampler`.
        max_tokens: most padded tokens per training batch; ``None``: no cap.
        eval_max_tokens: most padded tokens per validation batch; ``None``: no cap.
        pad_to_multiple_of: pad batches to a multiple of this length.
        num_workers: dataloader workers.
        seed: seeds the held-out documents, the training order and the masks.
        limit_documents: use only the first ``n`` documents (quick runs).
    """

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        reader: CorpusReader | None = None,
        text_file: str | Path | None = None,
        splits: Sequence[str] = SAFE_SPLITS,
        unit: str = "document",
        max_length: int | None = None,
        mask_rate: float = 0.15,
        val_fraction: float = 0.05,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        chunk_batches: int | None = 64,
        max_tokens: int | None = None,
        eval_max_tokens: int | None = None,
        pad_to_multiple_of: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        limit_documents: int | None = None,
    ) -> None:
        super().__init__()
        if reader is None and text_file is None:
            raise ValueError("pretraining needs text: give a dataset (dataset=...) or text_file=")
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError(
                "the tokenizer has no mask or padding token, so it cannot be used for masked "
                "language modelling; choose a BERT-style encoder"
            )
        if not 0.0 < mask_rate < 1.0:
            raise ConfigError(f"data.mask_rate={mask_rate}: must be in (0, 1) (e.g. 0.15)")
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction={val_fraction}: must be in [0, 1) (e.g. 0.05)")
        if pad_to_multiple_of == "auto":
            raise ConfigError("data.pad_to_multiple_of=auto: pretraining takes a number or null")
        check_batching(
            batch_size,
            eval_batch_size,
            chunk_batches,
            max_tokens,
            eval_max_tokens,
            pad_to_multiple_of,
            num_workers,
            limit_documents,
        )
        self.tokenizer = tokenizer
        self.reader = None if text_file is not None else reader
        self.text_file = None if text_file is None else Path(text_file)
        self.splits = list(splits)
        # No labels and no overlap: every word lies in exactly one sequence.
        self.alignment = Alignment(max_length=max_length, stride=0, unit=unit)
        self.mask_rate = mask_rate
        self.val_fraction = val_fraction
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.chunk_batches = chunk_batches
        self.max_tokens = max_tokens
        self.eval_max_tokens = eval_max_tokens
        self.num_workers = num_workers
        self.seed = seed
        self.limit_documents = limit_documents
        self.pad = Collator(tokenizer.pad_token_id, pad_to_multiple_of)
        self.random_token_ids = random_token_pool(tokenizer)
        self.train_set: Sequences | None = None
        self.val_set: Sequences | None = None

    @property
    def source(self) -> str:
        """Where the text comes from, for logs and the encoder folder's metadata."""
        if self.text_file is not None:
            return str(self.text_file)
        return f"{self.reader.name}:{'+'.join(self.splits)}"

    def prepare_data(self) -> None:
        """Check that the text exists (and fetch a public corpus, the only place downloads
        happen)."""
        if self.text_file is not None:
            if not self.text_file.is_file():
                raise FileNotFoundError(
                    f"text_file {self.text_file} does not exist; give a UTF-8 text file with one "
                    "document per line or paragraphs separated by blank lines"
                )
        else:
            self.reader.ensure_available(download=True)

    def documents(self) -> list[Document]:
        """The documents whose text is pretrained on (``limit_documents`` applied)."""
        if self.text_file is not None:
            docs = text_documents(self.text_file)
        else:
            leaky = [s for s in self.splits if s not in SAFE_SPLITS]
            if leaky:
                log.warning(
                    "pretraining on %s text of %s: the encoder will have seen the text it is "
                    "scored on, so devel/test scores after fine-tuning are not comparable to "
                    "runs without it (a leak, not domain adaptation)",
                    "+".join(leaky),
                    self.reader.name,
                )
            docs = [d for split in self.splits for d in self.reader.load(split)]
        if self.limit_documents is not None and len(docs) > self.limit_documents:
            log.info(
                "%s: using the first %d of %d documents (data.limit_documents)",
                self.source,
                self.limit_documents,
                len(docs),
            )
            docs = docs[: self.limit_documents]
        if not docs:
            raise ValueError(f"{self.source}: no text to pretrain on")
        return docs

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        docs = self.documents()
        n_val = max(1, round(self.val_fraction * len(docs))) if self.val_fraction else 0
        if n_val >= len(docs):
            raise ValueError(
                f"{self.source}: {len(docs)} documents leave none for training after holding out "
                f"{n_val} for validation; lower data.val_fraction or give more text"
            )
        held = set(np.random.default_rng(self.seed).permutation(len(docs))[:n_val].tolist())
        parts: dict[bool, list[Feature]] = {True: [], False: []}
        for i, doc in enumerate(docs):
            parts[i in held] += self.alignment.encode(doc, self.tokenizer)
        self.train_set, self.val_set = Sequences(parts[False]), Sequences(parts[True])
        log.info(
            "%s: %d documents -> %d training sequences, %d documents (%d sequences) held out for "
            "the validation MLM loss",
            self.source,
            len(docs) - n_val,
            len(self.train_set),
            n_val,
            len(self.val_set),
        )

    def _loader(self, dataset: Sequences, train: bool) -> DataLoader:
        sampler = loader_sampler(self, dataset.lengths, self.pad.pad_to_multiple_of, train)
        collate = MaskingCollator(
            self.pad,
            self.tokenizer.mask_token_id,
            self.random_token_ids,
            self.mask_rate,
            # Each rank draws its own training masks; validation masks are fixed per sequence.
            seed=self.seed + (0 if not train else 1 + sampler.rank),
            fixed=not train,
        )
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        assert self.train_set is not None, "call setup() first"
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        assert self.val_set is not None, "call setup() first"
        if not len(self.val_set):
            return []  # val_fraction=0: Lightning skips validation
        return self._loader(self.val_set, train=False)
