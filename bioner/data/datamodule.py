"""A LightningDataModule over a corpus reader: encoded features, length buckets, dynamic padding.

``setup`` reads each split through the reader and encodes it with the alignment once (kept in
memory). Training batches are *length-bucketed*: the shuffled examples are cut into large
chunks, each chunk is sorted by length and cut into batches, and the batches are shuffled, so a
batch holds sequences of similar length (little padding) while training order stays random.
Batches are padded to their own longest sequence only.

The datamodule shards batches across DDP ranks itself (``use_distributed_sampler=False`` in the
trainer configs), so no example is dropped; the module gathers the logits of all ranks and keeps
one per feature before scoring, so none is counted twice.

The batching (:mod:`bioner.data.batching`) and the encoded split with its inference path
(:mod:`bioner.data.encoded`) are shared with the tagger and the attacks and live apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

# Re-exported: the batching and the encoded split had their home here before.
from bioner.data.batching import (
    BucketBatchSampler,
    Collator,
    EpochPermutation,
    check_batching,
    loader_sampler,
    unannotated_table,
)
from bioner.data.document import ANNOTATED_TYPES, CORPUS, Document
from bioner.data.encoded import EncodedSplit, predict_split
from bioner.data.folds import check_fold, split_fold, split_inner_devel
from bioner.data.readers.base import CorpusNotFoundError
from bioner.errors import ConfigError
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from bioner.data.alignment import Alignment, Feature
    from bioner.data.readers import CorpusReader
    from bioner.preprocess import OffsetMap, Preprocessor

__all__ = [
    "STAGE_SPLITS",
    "BucketBatchSampler",
    "Collator",
    "EncodedSplit",
    "EpochPermutation",
    "NERDataModule",
    "loader_sampler",
    "predict_split",
]

log = get_logger(__name__)

# Lightning stage -> the splits it needs.
STAGE_SPLITS = {"fit": ("train", "devel"), "validate": ("devel",), "test": ("test",)}


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
            ``"auto"``: 8 when the trainer runs on a CUDA device or in bf16 on a CPU, else
            exact. There each new batch shape costs once and holds memory afterwards: on an
            H200 clean training over 25 batches took 0.211 s per step the first time, FGSM's
            two passes per step over the same batches 0.103 s afterwards, and host memory grew
            by about 38 MB per step over new shapes (cuDNN's attention plans, built and kept
            per shape, are the likely cause); on a CPU in bf16, oneDNN compiles and caches
            kernels per shape, and MiniLM's host memory grew by about 12 MiB per step over new
            shapes (``bench/shape_memory.py``; the quickstart's peak: 2,441 MiB after one epoch
            with exact lengths, 1,875 MiB with lengths rounded up to 8; ``docs/studies.md``).
            In fp32 on a CPU exact lengths compute least.
        num_workers: dataloader worker processes. 0 (collate in the main process) is fast enough
            since features are encoded once in ``setup`` and batches are padded in one numpy
            scatter, and it keeps ``ckpt_path=last`` resumes exact (workers draw the first
            batches before Lightning sets the epoch).
        pin_memory: collate into page-locked memory, so that copying a batch to the GPU does
            not wait for the GPU's queued work (from pageable memory it does: one stall of the
            training loop per batch). ``None``: when the trainer runs on a CUDA device.
        seed: seed of the training order.
        limit_documents: use only the first ``n`` documents of every split (quick runs), of
            each corpus where several are read as one (``dataset=multi``); the number used is
            logged. ``None`` uses every document.
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
        check_fold(folds, fold)
        subsets = getattr(reader, "train_subsets", dict)() if folds is not None else {}
        for key, subset in subsets.items():
            # Folds pool train and devel: a cut train split beside the whole devel split would
            # train on a mix that is neither the fraction nor the corpus.
            raise ConfigError(
                f"{key}.fraction={subset.fraction} cannot be combined with "
                f"cv.folds={folds}: cross-validation pools the train and devel splits, and only "
                f"train would be cut. Drop one of them (set {key}.fraction=null "
                "or cv.folds=null cv.fold=null)"
            )
        self.reader = reader
        self.alignment = alignment
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or 2 * batch_size
        self.chunk_batches = chunk_batches
        self.max_tokens = max_tokens
        self._warned_small_batches = False
        self._logged_repeats = False
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
        alignment.window_size(tokenizer)  # a max_length the encoder cannot take stops here
        self.pad_to_multiple_of = pad_to_multiple_of
        # The padding multiple is settled with the loaders, once the trainer's device is known.
        self.collator = Collator(tokenizer.pad_token_id, None)
        self._encoded: dict[str, EncodedSplit] = {}
        # Set by bioner.augment.Augmentation (a callback): (training documents, epoch) -> the
        # documents to train on in that epoch.
        self.augmentation: Callable[[list[Document], int], list[Document]] | None = None
        # Set by add_unlabeled (a semi-supervised attack): unlabelled features and their share
        # of every training batch.
        self.unlabeled: tuple[list[Feature], float] | None = None
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
        """The reader's documents of ``split``, cut to ``limit_documents`` (of each corpus, for
        several corpora read as one)."""
        docs = self.reader.load(split)
        n = self.limit_documents
        if n is None:
            return docs
        parts: dict[Any, list[Document]] = {}
        for doc in docs:
            parts.setdefault(doc.meta.get(CORPUS), []).append(doc)
        if all(len(part) <= n for part in parts.values()):
            return docs
        kept = [doc for part in parts.values() for doc in part[:n]]
        log.info(
            "%s/%s: using %d of %d documents, the first %d%s (data.limit_documents)",
            self.reader.name,
            split,
            len(kept),
            len(docs),
            n,
            " of each corpus" if len(parts) > 1 else "",
        )
        return kept

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
            raise ConfigError(f"unknown split {split!r}; choose one of train, devel, test")
        if self._fold_docs is None:
            pooled = self._corpus_split("train") + self._corpus_split("devel")
            # Documents of corpora that are trained on only (dataset.train_only) train in every
            # fold and are never dealt into a scored part.
            unscored = self._train_only()
            always = [d for d in pooled if d.meta.get(CORPUS) in unscored]
            pooled = [d for d in pooled if d.meta.get(CORPUS) not in unscored]
            rest, held_out = split_fold(pooled, self.folds, self.fold)
            train, inner = split_inner_devel(rest)
            self._fold_docs = {"train": train + always, "devel": inner, "test": held_out}
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
            docs = self.documents(split)
            unscored = self._train_only()
            if split == "train" and unscored:
                self._warn_evaluation_text(
                    [d for d in docs if d.meta.get(CORPUS) in unscored],
                    f"dataset.train_only ({', '.join(unscored)})",
                )
            self._encoded[split] = self._encode(split, docs)
        return self._encoded[split]

    def _train_only(self) -> tuple[str, ...]:
        """The keys of the reader's corpora that are trained on only (``dataset.train_only``
        of :class:`~bioner.data.readers.MultiCorpusReader`)."""
        return tuple(getattr(self.reader, "train_only", ()))

    def _encode(self, split: str, docs: list[Document]) -> EncodedSplit:
        """``docs`` encoded by the alignment, as the dataset of ``split``."""
        label2id = {label: i for i, label in enumerate(self.labels)}
        # Gold tags of types a given model lacks: O (what that model should say there).
        for label in self.alignment.labels(self.reader.entity_types):
            label2id.setdefault(label, label2id["O"])
        originals: list[Document] | None = None
        maps: list[OffsetMap] | None = None
        if self.preprocess is not None:
            self._fit_preprocess()
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
        features, doc_index = self._features(docs, label2id)
        self._mark_partial(docs, features, doc_index)
        log.info(
            "%s/%s: %d documents, %d sequences", self.reader.name, split, len(docs), len(features)
        )
        if self.alignment.context and docs and all(len(d.sentences) <= 1 for d in docs):
            log.warning(
                "%s/%s: alignment.context=%d adds nothing: every document is one sentence (the "
                "corpus has no document boundaries); read a release with documents, such as "
                "dataset=bc5cdr_pubtator",
                self.reader.name, split, self.alignment.context,
            )  # fmt: skip
        total = sum(len(d.spans) for d in docs)
        hidden = total - sum(len(self.alignment.learnable(d.spans)) for d in docs)
        if hidden:
            what = "trains on" if split == "train" else "can predict"
            log.warning(
                "%s/%s: %d of %d gold spans lie inside or across a longer one%s; the %s head %s "
                "only the longest of each group (the others are still scored)%s",
                self.reader.name, split, hidden, total,
                " of the same type" if self.alignment.head == "multilabel" else "",
                self.alignment.head, what,
                "" if self.alignment.head == "multilabel"
                else "; module.head=multilabel learns nested spans of other types",
            )  # fmt: skip
        return EncodedSplit(split, docs, features, doc_index, self.alignment, originals, maps)

    def _fit_preprocess(self) -> None:
        """Fit the preprocessing on the training documents, unless it is fitted already
        (``bioner-eval`` restores the training run's)."""
        assert self.preprocess is not None
        if not self.preprocess.fitted:
            self.preprocess.fit(self.documents("train"))

    def _features(
        self, docs: Sequence[Document], label2id: dict[str, int] | None
    ) -> tuple[list[Feature], list[int]]:
        """``docs`` encoded by the alignment (without labels where ``label2id`` is ``None``),
        and the position in ``docs`` of each feature's document."""
        features: list[Feature] = []
        doc_index: list[int] = []
        step = 1024  # documents per tokenizer call
        for lo in range(0, len(docs), step):
            encoded = self.alignment.encode_many(docs[lo : lo + step], self.tokenizer, label2id)
            for d, doc_features in enumerate(encoded, start=lo):
                features += doc_features
                doc_index += [d] * len(doc_features)
        return features, doc_index

    def add_unlabeled(self, docs: Sequence[Document], ratio: float, source: str) -> None:
        """Train on ``docs``'s text without labels beside the training split: every training
        batch gets ``ratio`` unlabelled sequences per labelled one (:class:`BucketBatchSampler`).

        The documents are normalised as evaluation text is (with ``preprocess``) and encoded by
        the alignment without labels, so a loss that reads no label (:class:`bioner.attacks.VAT`)
        sees them as it sees the training text. Sentences that are also in devel or test are
        counted and warned about (``source`` names the text in the messages): training on them,
        even without labels, is transductive, and the scores are not comparable with others'.

        Raises:
            ConfigError: ``docs`` hold no word.
        """
        docs = list(docs)
        if self.preprocess is not None:
            self._fit_preprocess()
            docs = [self.preprocess.normalise(d, ())[0] for d in docs]
        features, _ = self._features(docs, None)
        if not features:
            raise ConfigError(
                f"{source}: the unlabelled text has no words ({len(docs)} documents); give a "
                "file or folder of text"
            )
        log.info(
            "%s: %d unlabelled documents, %d sequences; %.3g per labelled sequence in every "
            "training batch",
            source, len(docs), len(features), ratio,
        )  # fmt: skip
        self._warn_evaluation_text(docs, source)
        self.unlabeled = (features, ratio)

    def _warn_evaluation_text(self, docs: Sequence[Document], source: str) -> None:
        """Warn when sentences of ``docs`` of five words or more are also devel or test
        sentences (compared without white space, since corpora tokenise text differently; short
        ones such as "Case report." recur across abstracts)."""

        def sentences(documents: Sequence[Document], least: int = 0) -> list[str]:
            texts = (d.text[a:b].split() for d in documents for a, b in d.sentences)
            return ["".join(words) for words in texts if len(words) >= least]

        unlabeled = sentences(docs, least=5)
        for split in ("devel", "test"):
            try:
                seen = set(sentences(self.documents(split)))
            except (CorpusNotFoundError, ConfigError):
                continue  # a corpus without that split
            shared = sum(1 for text in unlabeled if text in seen)
            if shared:
                log.warning(
                    "%s: %d of its %d sentences of five words or more are %s sentences: "
                    "training on them, even without gold labels, is transductive, and the %s "
                    "scores are then not comparable with those of models that never saw that "
                    "text. Leave the %s documents out of it",
                    source, shared, len(unlabeled), split, split, split,
                )  # fmt: skip

    def _mark_partial(
        self, docs: list[Document], features: list[Feature], doc_index: list[int]
    ) -> None:
        """Give the features of partially annotated documents (the reader's annotation groups)
        their group, and the collator the table of tags each group leaves unannotated."""
        # A reader that is not a CorpusReader (a test double, a user's own) annotates every type.
        groups = getattr(self.reader, "annotation_groups", list)()
        if not groups:
            return
        self.collator.unannotated = unannotated_table(self.labels, groups)
        index = {tuple(g): i for i, g in enumerate(groups, start=1)}
        for feature, d in zip(features, doc_index):
            feature.group = index.get(tuple(docs[d].meta.get(ANNOTATED_TYPES, ())), 0)

    def _on_cuda(self) -> bool:
        return self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"

    def _in_bf16(self) -> bool:
        return self.trainer is not None and "bf16" in str(self.trainer.precision)

    def _loader(self, dataset: EncodedSplit, train: bool) -> DataLoader:
        multiple = self.pad_to_multiple_of
        if multiple == "auto":
            multiple = 8 if self._on_cuda() or self._in_bf16() else None
        self.collator.pad_to_multiple_of = multiple
        labelled: EncodedSplit | Repeated = self._repeated(dataset) if train else dataset
        items: Dataset = labelled
        unlabeled: tuple[list[int] | None, float] = (None, 1.0)
        if train and self.unlabeled is not None:
            features, ratio = self.unlabeled
            items = WithUnlabeled(labelled, features)
            unlabeled = ([len(f.input_ids) for f in features], ratio)
        sampler = loader_sampler(self, labelled.lengths, multiple, train, *unlabeled)
        if train and self.max_tokens is not None and not self._warned_small_batches:
            self._warned_small_batches = True  # augmentation rebuilds this loader every epoch
            # The same batches without the cap: a split smaller than a batch is not the cap's.
            whole = BucketBatchSampler(
                sampler.lengths, sampler.batch_size, True, chunk_batches=self.chunk_batches
            ).mean_batch_size
            if sampler.mean_batch_size < 0.75 * whole:
                log.warning(
                    "%s/train: data.max_tokens=%s holds training batches to %.1f sequences on "
                    "average, not %.1f (data.batch_size=%d; the inputs are long: "
                    "alignment.context or long sentences); that changes the recipe. Raise "
                    "data.max_tokens (about batch_size x the longest input), or null, where "
                    "memory allows",
                    self.reader.name, self.max_tokens, sampler.mean_batch_size, whole,
                    self.batch_size,
                )  # fmt: skip
        pin = self._on_cuda() if self.pin_memory is None else self.pin_memory
        return DataLoader(
            items,
            batch_sampler=sampler,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=pin,
        )

    def _repeated(self, split: EncodedSplit) -> EncodedSplit | Repeated:
        """The training ``split`` with each corpus's sequences as often as the reader's
        ``train_repeats`` says (several corpora, ``dataset.sampling_temperature``); else itself."""
        train_repeats = getattr(self.reader, "train_repeats", None)
        if train_repeats is None:
            return split
        corpora = [split.docs[d].meta.get(CORPUS) for d in split.doc_index]
        sizes = Counter(corpora)  # in order of first appearance, as the log lists them
        repeats = train_repeats(sizes)
        if all(r == 1 for r in repeats.values()):
            return split
        if not self._logged_repeats:
            self._logged_repeats = True  # augmentation rebuilds this loader every epoch
            total = sum(n * repeats[k] for k, n in sizes.items())
            log.info(
                "%s/train: dataset.sampling_temperature=%g: per epoch %s",
                self.reader.name,
                self.reader.sampling_temperature,
                ", ".join(
                    f"{k} {n} sequences x{repeats[k]}, {n * repeats[k] / total:.1%} of the epoch "
                    f"({n / len(corpora):.1%} at temperature 1)"
                    for k, n in sizes.items()
                ),
            )
        order = [i for i, key in enumerate(corpora) for _ in range(repeats[key])]
        return Repeated(split, order)

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


class Repeated(Dataset):
    """The features of ``split`` in the order ``order``, where an index may repeat: items
    ``(position, feature)`` (training reads the features only)."""

    def __init__(self, split: EncodedSplit, order: Sequence[int]) -> None:
        self.split = split
        self.order = list(order)
        self.lengths = [split.lengths[i] for i in self.order]

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> tuple[int, Feature]:
        return i, self.split.features[self.order[i]]


class WithUnlabeled(Dataset):
    """A training split followed by unlabelled features: items ``(index, feature)``, index
    ``len(split) + j`` for unlabelled feature ``j`` (as :class:`BucketBatchSampler` draws them)."""

    def __init__(self, split: EncodedSplit | Repeated, unlabeled: Sequence[Feature]) -> None:
        self.split = split
        self.unlabeled = unlabeled

    def __len__(self) -> int:
        return len(self.split) + len(self.unlabeled)

    def __getitem__(self, i: int) -> tuple[int, Feature]:
        n = len(self.split)
        return self.split[i] if i < n else (i, self.unlabeled[i - n])
