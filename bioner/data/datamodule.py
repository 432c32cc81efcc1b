"""A LightningDataModule over a corpus reader: encoded features, length buckets, dynamic padding.

``setup`` reads each split through the reader and encodes it with the alignment once (kept in
memory). Training batches are *length-bucketed*: the shuffled examples are cut into large
chunks, each chunk is sorted by length and cut into batches, and the batches are shuffled, so a
batch holds sequences of similar length (little padding) while training order stays random.
Batches are padded to their own longest sequence only.

The datamodule shards batches across DDP ranks itself (``use_distributed_sampler=False`` in the
trainer configs), so no example is dropped; the module gathers the logits of all ranks and keeps
one per feature before scoring, so none is counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from bioner.data.alignment import IGNORE_INDEX
from bioner.data.document import Document, Span
from bioner.data.folds import check_fold, split_fold, split_inner_devel
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from bioner.data.alignment import Alignment, Feature
    from bioner.data.readers import CorpusReader
    from bioner.preprocess import OffsetMap, Preprocessor

log = get_logger(__name__)

# Lightning stage -> the splits it needs.
STAGE_SPLITS = {"fit": ("train", "devel"), "validate": ("devel",), "test": ("test",)}


class EncodedSplit(Dataset):
    """The features of one split and the documents they come from.

    Items are ``(index, feature)`` pairs, so predictions can be traced back to their feature
    whatever the batch order (and whichever rank computed them).

    Args:
        split: the split name (``train``, ``devel``, ``test``).
        docs: the split's documents.
        features: every feature of every document, document by document.
        doc_index: ``doc_index[i]`` is the position in ``docs`` of ``features[i]``'s document.
        alignment: the alignment that encoded the features; it also decodes them.
        originals: with ``preprocess``, the documents before normalisation (``docs`` are the
            normalised ones the features encode); decoding maps spans back onto them.
        maps: with ``originals``, each document's offset map.
    """

    def __init__(
        self,
        split: str,
        docs: list[Document],
        features: list[Feature],
        doc_index: list[int],
        alignment: Alignment,
        originals: list[Document] | None = None,
        maps: list[OffsetMap] | None = None,
    ) -> None:
        self.split = split
        self.docs = docs
        self.originals = originals
        self.maps = maps
        self.features = features
        self.doc_index = doc_index
        self.alignment = alignment
        self.lengths = [len(f.input_ids) for f in features]
        self._by_doc: list[list[int]] = [[] for _ in docs]
        for i, d in enumerate(doc_index):
            self._by_doc[d].append(i)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> tuple[int, Feature]:
        return i, self.features[i]

    def decode(
        self, logits: Mapping[int, np.ndarray], id2label: Mapping[int, str]
    ) -> tuple[list[Document], list[list[Span]]]:
        """Predicted spans per document from ``logits`` keyed by feature index.

        Documents some of whose features have no logits (``limit_val_batches`` runs) are left
        out, and a warning says how many; every other document is decoded. With ``preprocess``,
        the documents are the original ones and the spans are mapped back onto their text.

        Returns:
            The decoded documents and, aligned with them, their predicted spans with scores
            (``Alignment.decode``).
        """
        docs, preds = [], []
        for d, (doc, idx) in enumerate(zip(self.docs, self._by_doc)):
            if not all(i in logits for i in idx):
                continue
            features = [self.features[i] for i in idx]
            spans = self.alignment.decode(doc, features, [logits[i] for i in idx], id2label)
            if self.originals is not None and self.maps is not None:
                doc, mapping = self.originals[d], self.maps[d]
                spans = [mapping.span_to_original(span) for span in spans]
            docs.append(doc)
            preds.append(spans)
        if len(docs) < len(self.docs):
            log.warning(
                "%s: scoring %d of %d documents; the others were not predicted (limited batches)",
                self.split,
                len(docs),
                len(self.docs),
            )
        return docs, preds


class EpochPermutation(Sampler[int]):
    """A seeded permutation of ``range(n)`` (or the identity) that changes with ``set_epoch``.

    Lightning calls ``set_epoch`` on ``batch_sampler.sampler`` at the start of every epoch, also
    after a resume, so the order of epoch ``e`` depends only on ``(seed, e)``.
    """

    def __init__(self, n: int, shuffle: bool, seed: int = 0) -> None:
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        rng = np.random.default_rng([self.seed, self.epoch])
        return iter(rng.permutation(self.n).tolist())


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length examples in random order, sharded across DDP ranks.

    Training (``shuffle=True``): the shuffled examples are cut into chunks of ``chunk_batches``
    batches, each chunk is sorted by length and cut into batches of ``batch_size``, and the
    batches are shuffled. Evaluation sorts the whole split, longest first (a batch too large for
    memory fails at once).

    ``max_tokens`` caps the padded size (``members * longest``) of a batch, which bounds peak
    memory: examples longer than ``max_tokens / batch_size`` are set apart, sorted by length (ties
    in random order) and cut into smaller batches at boundaries fixed by their lengths, so the
    number of batches is the same every epoch, as Lightning requires.

    Every rank gets the same number of batches (DDP synchronises every training step, and a rank
    without evaluation batches would skip the gathering of predictions): the last ranks repeat
    batches from the start, cycling through them as often as needed when there are fewer batches
    than ranks. Evaluation drops the repeats by feature index before scoring.

    Args:
        lengths: length of each example (padded length, if batches are padded further).
        batch_size: most examples per batch.
        shuffle: shuffle examples (then batches) as described above.
        seed: the seed of the shuffling.
        chunk_batches: batches per length-sorted chunk; larger chunks pad less but make batches
            less random. ``None`` sorts the whole split as one chunk.
        max_tokens: most padded tokens per batch; ``None``: no cap.
        num_replicas: number of DDP processes.
        rank: this process's rank.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        chunk_batches: int | None = 64,
        max_tokens: int | None = None,
        num_replicas: int = 1,
        rank: int = 0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        if chunk_batches is not None and chunk_batches < 1:
            raise ValueError(f"chunk_batches must be positive or null, not {chunk_batches}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be positive or null, not {max_tokens}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.chunk_batches = chunk_batches
        self.num_replicas = num_replicas
        self.rank = rank
        # Lightning sets the epoch on `batch_sampler.sampler`.
        self.sampler = EpochPermutation(len(self.lengths), shuffle, seed)
        limit = math.inf if max_tokens is None else max_tokens / batch_size
        self._long = {i for i, n in enumerate(self.lengths) if n > limit}
        # Sizes of the long examples' batches, planned once on their sorted lengths.
        self._long_sizes: list[int] = []
        count, width = 0, 0
        for n in sorted(self.lengths[i] for i in self._long):
            if count and (count == batch_size or (count + 1) * max(width, n) > max_tokens):
                self._long_sizes.append(count)
                count, width = 0, 0
            count, width = count + 1, max(width, n)
        if count:
            self._long_sizes.append(count)

    def _chunk(self, n: int) -> int:
        return max(n if self.chunk_batches is None else self.batch_size * self.chunk_batches, 1)

    def _all_batches(self) -> list[list[int]]:
        order = list(self.sampler)
        shuffle = self.sampler.shuffle
        key = self.lengths.__getitem__
        short = [i for i in order if i not in self._long]
        batches = []
        chunk = self._chunk(len(short))
        for lo in range(0, len(short), chunk):
            # Stable sort: equal lengths keep the shuffled order.
            part = sorted(short[lo : lo + chunk], key=key, reverse=not shuffle)
            batches += [part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        long = sorted((i for i in order if i in self._long), key=key)
        long_batches, lo = [], 0
        for size in self._long_sizes:
            long_batches.append(long[lo : lo + size])
            lo += size
        batches = batches + long_batches if shuffle else long_batches[::-1] + batches
        if shuffle:
            rng = np.random.default_rng([self.sampler.seed, self.sampler.epoch, 1])
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def _num_all_batches(self) -> int:
        n = len(self.lengths) - len(self._long)
        chunk = self._chunk(n)
        full, rest = divmod(n, chunk)
        short = full * math.ceil(chunk / self.batch_size) + math.ceil(rest / self.batch_size)
        return short + len(self._long_sizes)

    def __len__(self) -> int:
        return math.ceil(self._num_all_batches() / self.num_replicas)

    def __iter__(self) -> Iterator[list[int]]:
        # A generator, so the order is drawn at the first batch, not when the iterator is made:
        # Lightning makes the first iterator of a fit (also of a resumed one) before it calls
        # set_epoch. (Worker processes prefetch at once; keep num_workers=0 for exact resumes.)
        batches = self._all_batches()
        if self.num_replicas > 1 and batches:
            missing = len(self) * self.num_replicas - len(batches)
            # Cycling, not a slice: with fewer batches than ranks (3 examples, batch 4, 4 ranks)
            # a slice leaves some ranks without a batch, and the others wait for them forever.
            batches += [batches[i % len(batches)] for i in range(missing)]
        yield from batches[self.rank :: self.num_replicas]


def loader_sampler(
    datamodule: Any, lengths: Sequence[int], pad_to_multiple_of: int | None, train: bool
) -> BucketBatchSampler:
    """The batch sampler of a datamodule's training or evaluation loader.

    ``datamodule`` supplies ``batch_size``, ``eval_batch_size``, ``seed``, ``chunk_batches``,
    ``max_tokens``, ``eval_max_tokens`` and ``trainer`` (whose world size and rank shard the
    batches); lengths are rounded up to ``pad_to_multiple_of`` as the collator pads them.
    """
    trainer = datamodule.trainer
    num_replicas, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
    multiple = pad_to_multiple_of or 1
    return BucketBatchSampler(
        [math.ceil(n / multiple) * multiple for n in lengths],
        datamodule.batch_size if train else datamodule.eval_batch_size,
        shuffle=train,
        seed=datamodule.seed,
        chunk_batches=datamodule.chunk_batches if train else None,
        max_tokens=datamodule.max_tokens if train else datamodule.eval_max_tokens,
        num_replicas=num_replicas,
        rank=rank,
    )


def predict_split(
    dataset: EncodedSplit,
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    collator: Collator,
    id2label: Mapping[int, str],
    batch_size: int,
    max_tokens: int | None = None,
) -> tuple[list[Document], list[list[Span]]]:
    """Features to logits to spans per document: the one inference path outside Lightning.

    The features of ``dataset`` are batched by length (longest first, so padding stays small),
    collated, and passed to ``forward`` (a batch of CPU tensors -> logits ``(batch, length,
    labels)``; it moves the batch to its device and chooses grad mode, autocast and any
    perturbation); each feature keeps the rows of its own sub-words, and
    :meth:`EncodedSplit.decode` turns them into each document's spans. The tagger
    (:class:`bioner.inference.Tagger`) and robustness under attack
    (:mod:`bioner.attacks.robustness`) predict through it; evaluation in training decodes its
    Lightning-batched logits with the same :meth:`EncodedSplit.decode`.

    Returns:
        As :meth:`EncodedSplit.decode`: the documents and their scored spans.
    """
    sampler = (
        BucketBatchSampler(
            dataset.lengths, batch_size, shuffle=False, chunk_batches=None, max_tokens=max_tokens
        )
        if dataset.features
        else []  # nothing to tag (documents without words)
    )
    # Logits stay where forward left them until every batch is queued: copying each batch back
    # at once would make the host wait for the GPU after every batch.
    outputs = [(indices, forward(collator([dataset[i] for i in indices]))) for indices in sampler]
    logits: dict[int, np.ndarray] = {}
    for indices, out in outputs:
        rows = out.float().cpu().numpy()
        for row, i in enumerate(indices):
            logits[i] = rows[row, : dataset.lengths[i]]
    return dataset.decode(logits, id2label)


@dataclass
class Collator:
    """Pad a list of ``(index, feature)`` items to the longest one (dynamic padding).

    Returns tensors ``input_ids``, ``attention_mask``, ``index`` (feature indices) and, when every
    feature has labels, ``labels`` (``-100`` on padding; ``(batch, length, layers)`` for the
    multi-label head).

    Args:
        pad_token_id: the tokenizer's padding id.
        pad_to_multiple_of: round the padded length up to a multiple of this (``None``: exact).
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, items: Sequence[tuple[int, Feature]]) -> dict[str, torch.Tensor]:
        lengths = np.fromiter(
            (len(f.input_ids) for _, f in items), dtype=np.int64, count=len(items)
        )
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = math.ceil(width / self.pad_to_multiple_of) * self.pad_to_multiple_of
        # One concatenation and one scatter into the padded grid instead of a tensor per row:
        # collation runs in the training loop's thread, and at batch 128 the per-row tensors
        # cost more host time than a GPU needs for the step.
        mask = np.arange(width) < lengths[:, None]
        input_ids = np.full((len(items), width), self.pad_token_id, dtype=np.int64)
        input_ids[mask] = np.fromiter(
            (t for _, f in items for t in f.input_ids), dtype=np.int64, count=int(lengths.sum())
        )
        batch = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(mask.astype(np.int64)),
            "index": torch.tensor([i for i, _ in items], dtype=torch.long),
        }
        if all(f.labels is not None for _, f in items):
            first = items[0][1].labels[0]
            if isinstance(first, tuple):  # module.head=multilabel: one label per layer
                labels = np.full((len(items), width, len(first)), IGNORE_INDEX, dtype=np.int64)
                labels[mask] = np.array([t for _, f in items for t in f.labels], dtype=np.int64)
            else:
                labels = np.full((len(items), width), IGNORE_INDEX, dtype=np.int64)
                labels[mask] = np.fromiter(
                    (t for _, f in items for t in f.labels),
                    dtype=np.int64,
                    count=int(lengths.sum()),
                )
            batch["labels"] = torch.from_numpy(labels)
        return batch


class NERDataModule(L.LightningDataModule):
    """Train/devel/test dataloaders over a corpus reader, encoded by an alignment.

    Args:
        reader: a :class:`~bioner.data.readers.CorpusReader` (``conf/dataset``).
        alignment: the :class:`~bioner.data.alignment.Alignment` (``conf/alignment``).
        tokenizer: the encoder's fast tokenizer.
        batch_size: training batch size (sequences).
        eval_batch_size: evaluation batch size; ``None`` uses ``2 * batch_size``.
        chunk_batches: batches per length-sorted chunk in training (see
            :class:`BucketBatchSampler`).
        max_tokens: most padded tokens per training batch, which bounds peak memory; batches of
            long sequences get fewer members. ``None``: no cap.
        eval_max_tokens: the same for evaluation batches (without gradients a batch needs a
            fraction of the memory, but attention over the longest sequences still grows with the
            square of their length). ``None``: no cap.
        pad_to_multiple_of: pad batches to a multiple of this length (``None``: exact).
            ``"auto"``: 8 when the trainer runs on a CUDA device, else exact. On a GPU each new
            batch shape costs once (on an H200, clean training over 25 batches took 0.211 s per
            step the first time, FGSM's two passes per step over the same batches 0.103 s
            afterwards, and host memory grew by about 38 MB per step over new shapes; cuDNN's
            attention plans, built and kept per shape, are the likely cause), so fewer distinct
            lengths pay there; on a CPU exact lengths compute least.
        num_workers: dataloader worker processes. 0 (collate in the main process) is fast enough
            since features are encoded once in ``setup`` and batches are padded in one numpy
            scatter, and it keeps ``ckpt_path=last`` resumes exact (workers draw the first
            batches before Lightning sets the epoch).
        pin_memory: collate into page-locked memory, so that copying a batch to the GPU does
            not wait for the GPU's queued work (from pageable memory it does: one stall of the
            training loop per batch). ``None``: when the trainer runs on a CUDA device.
        seed: seed of the training order.
        limit_documents: use only the first ``n`` documents of every split (quick runs); the
            number used is logged. ``None`` uses every document.
        folds: k-fold cross-validation with this many folds (at least 2), or ``None`` for the
            corpus's own splits. The corpus's train and devel documents are pooled and split by
            document into ``folds`` folds (see :mod:`bioner.data.folds`: fixed by their own seed,
            not by ``seed``, so every run seed sees the same folds). The test dataloader serves
            the held-out fold ``fold``; the other folds are the training documents but for an
            inner devel split (about a tenth of them, by document:
            :func:`~bioner.data.folds.split_inner_devel`) that the devel dataloader serves, so
            checkpoint selection and early stopping never see the held-out fold. The corpus's
            test split is never read.
        fold: the held-out fold, in ``[0, folds)``; set together with ``folds``.
        labels: the model's tag list (index = label id) when a trained model is scored on a
            corpus of other or differently ordered types (``bioner-eval``): gold tags are encoded
            by name with these ids, and tags the model lacks as ``O``. ``None``: the reader's
            types in the alignment's scheme.
        preprocess: text normalisation (``conf/preprocess``): fitted on the training documents
            unless fitted already (``bioner-eval`` restores the training run's), applied to every
            split before encoding (training documents with their gold spans protected), and
            undone on every decoded span. Saved in checkpoints (:meth:`state_dict`).
        splits: the splits this run scores (``bioner-eval``): :meth:`prepare_data` then checks
            and fetches only their files. ``None``: every split.
    """

    def __init__(
        self,
        reader: CorpusReader,
        alignment: Alignment,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        chunk_batches: int | None = 64,
        max_tokens: int | None = None,
        eval_max_tokens: int | None = None,
        pad_to_multiple_of: int | str | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        seed: int = 0,
        limit_documents: int | None = None,
        folds: int | None = None,
        fold: int | None = None,
        labels: Sequence[str] | None = None,
        preprocess: Preprocessor | None = None,
        splits: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if limit_documents is not None and limit_documents < 1:
            raise ValueError(f"limit_documents must be positive or null, not {limit_documents}")
        check_fold(folds, fold)
        self.reader = reader
        self.alignment = alignment
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.chunk_batches = chunk_batches
        self.max_tokens = max_tokens
        self.eval_max_tokens = eval_max_tokens
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.seed = seed
        self.limit_documents = limit_documents
        self.folds = folds
        self.fold = fold
        self._labels = None if labels is None else [str(label) for label in labels]
        self.preprocess = preprocess or None
        # Cross-validation folds pool train and devel, whatever split is scored.
        self._splits = None if splits is None or folds is not None else list(splits)
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no padding token; bioner pads batches with it")
        if isinstance(pad_to_multiple_of, str) and pad_to_multiple_of != "auto":
            raise ValueError(
                f"pad_to_multiple_of must be a positive integer, null or auto, not "
                f"{pad_to_multiple_of!r}"
            )
        self.pad_to_multiple_of = pad_to_multiple_of
        # The padding multiple is settled with the loaders, once the trainer's device is known.
        self.collator = Collator(tokenizer.pad_token_id, None)
        self._encoded: dict[str, EncodedSplit] = {}
        # Set by bioner.augment.Augmentation (a callback): (training documents, epoch) -> the
        # documents to train on in that epoch.
        self.augmentation: Callable[[list[Document], int], list[Document]] | None = None
        self._fold_docs: dict[str, list[Document]] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The fitted preprocessing (plain values), kept in every checkpoint."""
        return {"preprocess": self.preprocess.record()} if self.preprocess is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if self.preprocess is not None and "preprocess" in state_dict:
            from bioner.preprocess import Preprocessor

            self.preprocess = Preprocessor.from_record(state_dict["preprocess"], "checkpoint")

    @property
    def labels(self) -> list[str]:
        """The model's tag list (index = label id): ``labels`` if given, else the reader's types."""
        if self._labels is not None:
            return list(self._labels)
        return self.alignment.labels(self.reader.entity_types)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def prepare_data(self) -> None:
        """Make sure the corpus files exist, fetching public ones (the only place downloads
        happen, unless the machine is offline)."""
        self.reader.ensure_available(download=True, splits=self._splits)

    def setup(self, stage: str | None = None) -> None:
        splits = STAGE_SPLITS.get(stage or "", ("train", "devel", "test"))
        for split in splits:
            self.encoded(split)

    def _corpus_split(self, split: str) -> list[Document]:
        """The reader's documents of ``split``, cut to ``limit_documents``."""
        docs = self.reader.load(split)
        if self.limit_documents is not None and len(docs) > self.limit_documents:
            log.info(
                "%s/%s: using the first %d of %d documents (data.limit_documents)",
                self.reader.name,
                split,
                self.limit_documents,
                len(docs),
            )
            docs = docs[: self.limit_documents]
        return docs

    def documents(self, split: str) -> list[Document]:
        """The documents that the dataloader of ``split`` serves.

        Without folds, the corpus split. With ``folds``/``fold``: ``test`` is fold ``fold`` of the
        pooled corpus train and devel documents (the held-out documents that get scored);
        ``devel`` is the inner devel split of the other folds, and ``train`` the rest of them.
        """
        if self.folds is None or self.fold is None:
            docs = self._corpus_split(split)
            return docs if split == "train" else self._evaluation_documents(docs)
        if split not in STAGE_SPLITS["fit"] + STAGE_SPLITS["test"]:
            raise ValueError(f"unknown split {split!r}; choose one of train, devel, test")
        if self._fold_docs is None:
            pooled = self._corpus_split("train") + self._corpus_split("devel")
            rest, held_out = split_fold(pooled, self.folds, self.fold)
            train, inner = split_inner_devel(rest)
            self._fold_docs = {"train": train, "devel": inner, "test": held_out}
            log.info(
                "%s: cross-validation fold %d of %d folds: of the %d train+devel documents, "
                "training on %d, picking the checkpoint on an inner devel split of %d, and "
                "testing on the %d held-out documents of fold %d (the corpus's test split is not "
                "used)",
                self.reader.name,
                self.fold,
                self.folds,
                len(pooled),
                len(train),
                len(inner),
                len(held_out),
                self.fold,
            )
        docs = self._fold_docs[split]
        return docs if split == "train" else self._evaluation_documents(docs)

    def _evaluation_documents(self, docs: list[Document]) -> list[Document]:
        """Scored documents as the reader segments evaluation text (without gold spans)."""
        view = getattr(self.reader, "evaluation_document", None)
        return docs if view is None else [view(doc) for doc in docs]

    def encoded(self, split: str) -> EncodedSplit:
        """The encoded ``split``, built on first use and kept."""
        if split not in self._encoded:
            self._encoded[split] = self._encode(split, self.documents(split))
        return self._encoded[split]

    def _encode(self, split: str, docs: list[Document]) -> EncodedSplit:
        """``docs`` encoded by the alignment, as the dataset of ``split``."""
        label2id = {label: i for i, label in enumerate(self.labels)}
        # Gold tags of types a given model lacks: O (what that model should say there).
        for label in self.alignment.labels(self.reader.entity_types):
            label2id.setdefault(label, label2id["O"])
        originals: list[Document] | None = None
        maps: list[OffsetMap] | None = None
        if self.preprocess is not None:
            if not self.preprocess.fitted:
                self.preprocess.fit(self.documents("train"))
            # Training text is rewritten around its gold spans (never inside them), so every
            # entity keeps its exact text; evaluation text is rewritten as raw text would be.
            protect = split == "train"
            pairs = [self.preprocess.normalise(d, d.spans if protect else ()) for d in docs]
            originals, docs = docs, [p[0] for p in pairs]
            maps = [p[1] for p in pairs]
            log.info(
                "%s/%s: preprocessing made %d rewrites in %d of %d documents",
                self.reader.name,
                split,
                sum(len(m) for m in maps),
                sum(1 for m in maps if len(m)),
                len(docs),
            )
        features: list[Feature] = []
        doc_index: list[int] = []
        step = 1024  # documents per tokenizer call
        for lo in range(0, len(docs), step):
            encoded = self.alignment.encode_many(docs[lo : lo + step], self.tokenizer, label2id)
            for d, doc_features in enumerate(encoded, start=lo):
                features += doc_features
                doc_index += [d] * len(doc_features)
        log.info(
            "%s/%s: %d documents, %d sequences", self.reader.name, split, len(docs), len(features)
        )
        total = sum(len(d.spans) for d in docs)
        hidden = total - sum(len(self.alignment.learnable(d.spans)) for d in docs)
        if hidden:
            what = "trains on" if split == "train" else "can predict"
            log.warning(
                "%s/%s: %d of %d gold spans lie inside or across a longer one%s; the %s head %s "
                "only the longest of each group (the others are still scored)%s",
                self.reader.name, split, hidden, total,
                "" if self.alignment.head == "flat" else " of the same type",
                self.alignment.head, what,
                "; module.head=multilabel learns nested spans of other types"
                if self.alignment.head == "flat" else "",
            )  # fmt: skip
        return EncodedSplit(split, docs, features, doc_index, self.alignment, originals, maps)

    def _on_cuda(self) -> bool:
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def _loader(self, dataset: EncodedSplit, train: bool) -> DataLoader:
        multiple = self.pad_to_multiple_of
        if multiple == "auto":
            multiple = 8 if self._on_cuda() else None
        self.collator.pad_to_multiple_of = multiple
        sampler = loader_sampler(self, dataset.lengths, multiple, train)
        pin = self._on_cuda() if self.pin_memory is None else self.pin_memory
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=pin,
        )

    def train_dataloader(self) -> DataLoader:
        if self.augmentation is None:
            return self._loader(self.encoded("train"), train=True)
        # Augmented training documents, drawn afresh for each epoch (Lightning reloads this
        # loader every epoch when augmenting): encoded here and kept for this epoch only.
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        docs = self.augmentation(self.documents("train"), epoch)
        return self._loader(self._encode("train", docs), train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.encoded("devel"), train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.encoded("test"), train=False)
