"""Batching encoded features: length-bucketed batch samplers and the padding collator.

The data modules (:mod:`bioner.data.datamodule`, :mod:`bioner.data.mlm`), the tagger and the
robustness attacks all batch features this way, so that their padding, hence their numbers, agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Sampler

from bioner.data.alignment import IGNORE_INDEX
from bioner.data.tags import split_tag
from bioner.errors import ConfigError

if TYPE_CHECKING:
    from bioner.data.alignment import Feature


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

    With ``unlabeled_lengths`` (training only), every batch also gets ``unlabeled_ratio`` times as
    many unlabelled examples, indexed after the labelled ones (``len(lengths) + j``), which
    :class:`Collator` pads into the same batch without labels (semi-supervised losses read them:
    :class:`bioner.attacks.VAT`). Each epoch takes the next stretch of a stream of seeded
    permutations of the unlabelled pool, so a pool larger than an epoch's share is covered in
    turn over the epochs and a smaller one is cycled through; the drawn examples are sorted by
    length and dealt to the batches in the order of their longest labelled example, so each
    batch's rows have similar lengths. The labelled batches, hence their number, stay as they are
    without them; ``max_tokens`` caps the labelled rows only, so a batch holds about
    ``1 + unlabeled_ratio`` times as many tokens.

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
        unlabeled_lengths: length of each unlabelled example; ``None``: none.
        unlabeled_ratio: unlabelled examples per labelled one in each batch.
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
        unlabeled_lengths: Sequence[int] | None = None,
        unlabeled_ratio: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        if chunk_batches is not None and chunk_batches < 1:
            raise ValueError(f"chunk_batches must be positive or null, not {chunk_batches}")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be positive or null, not {max_tokens}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside 0..{num_replicas - 1}")
        if unlabeled_lengths is not None and not (shuffle and len(unlabeled_lengths)):
            raise ValueError("unlabelled examples join training batches only, and need a pool")
        if not unlabeled_ratio > 0:
            raise ValueError(f"unlabeled_ratio must be positive, not {unlabeled_ratio}")
        self.unlabeled_lengths = None if unlabeled_lengths is None else list(unlabeled_lengths)
        self.unlabeled_ratio = float(unlabeled_ratio)
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
        if self.unlabeled_lengths is not None:
            self._add_unlabeled(batches)
        return batches

    def _add_unlabeled(self, batches: list[list[int]]) -> None:
        """Append this epoch's unlabelled examples to ``batches`` (see the class docstring)."""
        assert self.unlabeled_lengths is not None
        pool, epoch, seed = len(self.unlabeled_lengths), self.sampler.epoch, self.sampler.seed
        # Round half up, per batch: the shares depend only on the batch sizes, which are the
        # same every epoch, so every epoch draws the same number.
        shares = [math.floor(self.unlabeled_ratio * len(b) + 0.5) for b in batches]
        total = sum(shares)
        start = epoch * total
        drawn: list[int] = []
        for cycle in range(start // pool, (start + total - 1) // pool + 1):
            order = np.random.default_rng([seed, cycle, 2]).permutation(pool)
            lo = max(start - cycle * pool, 0)
            drawn += order[lo : start + total - cycle * pool].tolist()
        # Stable sorts: equal lengths keep the random order.
        drawn.sort(key=self.unlabeled_lengths.__getitem__)
        longest = [max(self.lengths[i] for i in b) for b in batches]
        offset, lo = len(self.lengths), 0
        for b in sorted(range(len(batches)), key=longest.__getitem__):
            batches[b] = batches[b] + [offset + j for j in drawn[lo : lo + shares[b]]]
            lo += shares[b]

    def _num_all_batches(self) -> int:
        n = len(self.lengths) - len(self._long)
        chunk = self._chunk(n)
        full, rest = divmod(n, chunk)
        short = full * math.ceil(chunk / self.batch_size) + math.ceil(rest / self.batch_size)
        return short + len(self._long_sizes)

    def __len__(self) -> int:
        return math.ceil(self._num_all_batches() / self.num_replicas)

    @property
    def mean_batch_size(self) -> float:
        """Examples per batch on average over all ranks' batches (below ``batch_size`` where
        ``max_tokens`` holds batches of long examples to fewer members)."""
        return len(self.lengths) / max(self._num_all_batches(), 1)

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


def check_batching(
    batch_size: int,
    eval_batch_size: int | None = None,
    chunk_batches: int | None = None,
    max_tokens: int | None = None,
    eval_max_tokens: int | None = None,
    pad_to_multiple_of: int | str | None = None,
    num_workers: int = 0,
    limit_documents: int | None = None,
) -> None:
    """Refuse a data module's batching settings that its loaders would reject only once training
    has started, or would read as something else (``eval_batch_size=0`` as the default, a zero
    padding multiple as exact lengths), naming the ``data.`` key. ``None`` means the default
    where a setting has one; ``pad_to_multiple_of`` may also be ``"auto"``.

    Raises:
        ConfigError: a size or count below 1 (``num_workers`` below 0), or a padding multiple
            that is neither a positive integer, ``null`` nor ``auto``.
    """
    settings = {
        "batch_size": batch_size,
        "eval_batch_size": eval_batch_size,
        "chunk_batches": chunk_batches,
        "max_tokens": max_tokens,
        "eval_max_tokens": eval_max_tokens,
        "limit_documents": limit_documents,
    }
    for key, value in settings.items():
        if (value is not None or key == "batch_size") and not (
            isinstance(value, int) and value >= 1
        ):
            default = "" if key == "batch_size" else " or null"
            raise ConfigError(f"data.{key}={value}: must be a positive integer{default}")
    if not (isinstance(num_workers, int) and num_workers >= 0):
        raise ConfigError(f"data.num_workers={num_workers}: must be 0 (no workers) or more")
    multiple = pad_to_multiple_of
    if multiple not in (None, "auto") and not (isinstance(multiple, int) and multiple >= 1):
        raise ConfigError(
            f"data.pad_to_multiple_of={multiple!r}: must be a positive integer, null (exact "
            "lengths) or auto"
        )


def loader_sampler(
    datamodule: Any,
    lengths: Sequence[int],
    pad_to_multiple_of: int | None,
    train: bool,
    unlabeled_lengths: Sequence[int] | None = None,
    unlabeled_ratio: float = 1.0,
) -> BucketBatchSampler:
    """The batch sampler of a datamodule's training or evaluation loader.

    ``datamodule`` supplies ``batch_size``, ``eval_batch_size``, ``seed``, ``chunk_batches``,
    ``max_tokens``, ``eval_max_tokens`` and ``trainer`` (whose world size and rank shard the
    batches); lengths are rounded up to ``pad_to_multiple_of`` as the collator pads them.
    ``unlabeled_lengths`` and ``unlabeled_ratio``: unlabelled rows for every training batch
    (see :class:`BucketBatchSampler`).
    """
    trainer = datamodule.trainer
    num_replicas, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
    multiple = pad_to_multiple_of or 1

    def padded(values: Sequence[int]) -> list[int]:
        return [math.ceil(n / multiple) * multiple for n in values]

    return BucketBatchSampler(
        padded(lengths),
        datamodule.batch_size if train else datamodule.eval_batch_size,
        shuffle=train,
        seed=datamodule.seed,
        chunk_batches=datamodule.chunk_batches if train else None,
        max_tokens=datamodule.max_tokens if train else datamodule.eval_max_tokens,
        num_replicas=num_replicas,
        rank=rank,
        unlabeled_lengths=None if unlabeled_lengths is None else padded(unlabeled_lengths),
        unlabeled_ratio=unlabeled_ratio,
    )


@dataclass
class Collator:
    """Pad a list of ``(index, feature)`` items to the longest one (dynamic padding).

    Returns tensors ``input_ids``, ``attention_mask``, ``index`` (feature indices) and, when any
    feature has labels, ``labels`` (``-100`` on padding and on every sub-word of a feature
    without labels, an unlabelled row of a semi-supervised batch; ``(batch, length, layers)``
    for the multi-label head); with :attr:`unannotated`, also ``unannotated``: ``(batch,
    labels)`` booleans, true for the tags of types the sequence's corpus does not annotate.

    Args:
        pad_token_id: the tokenizer's padding id.
        pad_to_multiple_of: round the padded length up to a multiple of this (``None``: exact).
        unannotated: ``(groups, labels)`` booleans (:func:`unannotated_table`), read by each
            feature's ``group``; ``None`` where every document annotates every type.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None
    unannotated: np.ndarray | None = None

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
        labelled = np.fromiter(
            (f.labels is not None for _, f in items), dtype=bool, count=len(items)
        )
        if labelled.any():
            first = next(f.labels for _, f in items if f.labels is not None)[0]
            # Only the labelled rows' sub-words are written; the others stay -100.
            fill = mask & labelled[:, None]
            values = (t for _, f in items if f.labels is not None for t in f.labels)
            if isinstance(first, tuple):  # module.head=multilabel: one label per layer
                labels = np.full((len(items), width, len(first)), IGNORE_INDEX, dtype=np.int64)
                labels[fill] = np.array(list(values), dtype=np.int64)
            else:
                labels = np.full((len(items), width), IGNORE_INDEX, dtype=np.int64)
                labels[fill] = np.fromiter(
                    values, dtype=np.int64, count=int(lengths[labelled].sum())
                )
            batch["labels"] = torch.from_numpy(labels)
        if self.unannotated is not None:
            groups = np.fromiter((f.group for _, f in items), dtype=np.int64, count=len(items))
            batch["unannotated"] = torch.from_numpy(self.unannotated[groups])
        return batch


def unannotated_table(labels: Sequence[str], groups: Sequence[Sequence[str]]) -> np.ndarray:
    """``(1 + len(groups), len(labels))`` booleans: row ``g`` (1-based) marks the tags whose
    type is not in ``groups[g - 1]``; row 0 (every type annotated) marks none, nor does any row
    mark ``O``."""
    table = np.zeros((1 + len(groups), len(labels)), dtype=bool)
    types = [split_tag(label)[1] for label in labels]
    for g, annotated in enumerate(groups, start=1):
        table[g] = [t is not None and t not in annotated for t in types]
    return table
