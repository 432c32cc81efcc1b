"""k-fold cross-validation: folds by document, fixed by their own seed, served by the datamodule."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.datamodule import NERDataModule
from bioner.data.document import Document, Span
from bioner.data.folds import FOLD_SEED, assign_folds, check_fold, split_fold
from bioner.data.readers import CorpusReader
from bioner.data.subsets import TrainSubset
from bioner.errors import ConfigError
from bioner.models.encoders import HubEncoder


def doc(doc_id: str, text: str = "Aspirin causes ulcers") -> Document:
    words = [(0, 7), (8, 14), (15, 21)]
    return Document(doc_id, text, [Span(0, 7, "Chemical")], [(0, len(text))], words)


@pytest.mark.parametrize(
    ("folds", "fold", "match"),
    [
        (5, None, "needs both cv.folds and cv.fold"),
        (None, 0, "needs both cv.folds and cv.fold"),
        (1, 0, r"cv.folds must be an integer >= 2"),
        (0, 0, r"cv.folds must be an integer >= 2"),
        (5, 5, r"cv.fold must be an integer in \[0, 5\).*range\(5\)"),
        (5, -1, r"cv.fold must be an integer in \[0, 5\)"),
    ],
)
def test_bad_fold_settings_name_the_fix(folds, fold, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        check_fold(folds, fold)


def test_no_folds_is_fine() -> None:
    check_fold(None, None)


@pytest.mark.parametrize(("n", "k"), [(10, 2), (11, 3), (103, 5), (5, 5)])
def test_fold_sizes_differ_by_at_most_one_document(n: int, k: int) -> None:
    sizes = Counter(assign_folds([f"d{i}" for i in range(n)], k))
    assert sorted(sizes) == list(range(k))
    assert max(sizes.values()) - min(sizes.values()) <= 1


def test_folds_are_deterministic_and_ignore_the_input_order() -> None:
    ids = [f"pmid{i}" for i in range(50)]
    first = dict(zip(ids, assign_folds(ids, 5)))
    assert first == dict(zip(ids[::-1], assign_folds(ids[::-1], 5)))
    # Shuffled, not blocks of neighbours: consecutive ids (often one source's sentences or a
    # date range of PMIDs) spread over the folds.
    assert len({first[i] for i in ids[:5]}) > 1
    # Another seed gives other folds, so the fixed seed really is what fixes them.
    assert first != dict(zip(ids, assign_folds(ids, 5, seed=FOLD_SEED + 1)))


def test_documents_sharing_an_id_share_a_fold() -> None:
    ids = ["a", "b", "a", "c", "b", "d", "a"]
    assigned = assign_folds(ids, 2)
    for i, j in [(0, 2), (0, 6), (1, 4)]:
        assert assigned[i] == assigned[j]


def test_more_folds_than_documents_is_an_error() -> None:
    with pytest.raises(ValueError, match="lower cv.folds or raise data.limit_documents"):
        assign_folds(["a", "b", "a"], 3)


def test_held_out_folds_cover_every_document_exactly_once() -> None:
    docs = [doc(f"d{i}") for i in range(23)]
    held = []
    for fold in range(4):
        train, held_out = split_fold(docs, 4, fold)
        assert {d.id for d in train}.isdisjoint(d.id for d in held_out)
        assert len(train) + len(held_out) == len(docs)
        # Input order is kept inside both parts.
        assert train == [d for d in docs if d in train]
        held += [d.id for d in held_out]
    assert sorted(held) == sorted(d.id for d in docs)


# ------------------------------------------------------------------ the datamodule


class MemoryReader:
    """Documents in memory with the CorpusReader interface; records which splits were read."""

    name = "memory"
    splits = ["train", "devel", "test"]
    entity_types = ["Chemical"]
    train_subset = TrainSubset()
    train_subsets = CorpusReader.train_subsets

    def __init__(self) -> None:
        self.corpus = {
            "train": [doc(f"train-{i}") for i in range(7)],
            "devel": [doc(f"devel-{i}") for i in range(4)],
            "test": [doc(f"test-{i}") for i in range(3)],
        }
        self.read: list[str] = []

    def load(self, split: str) -> list[Document]:
        self.read.append(split)
        return list(self.corpus[split])

    def ensure_available(self, download: bool = False, splits: list[str] | None = None) -> None:
        pass


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return HubEncoder(str(tiny_model_dir), name="tiny").load_tokenizer()


def datamodule(tokenizer, **kwargs) -> NERDataModule:
    from bioner.data.alignment import Alignment

    return NERDataModule(MemoryReader(), Alignment(), tokenizer, batch_size=2, **kwargs)


def served_ids(dm: NERDataModule, split: str) -> list[str]:
    """Ids of the documents behind every feature the dataloader of ``split`` yields."""
    dataset = dm.encoded(split)
    loaders = {"train": dm.train_dataloader, "devel": dm.val_dataloader, "test": dm.test_dataloader}
    loader = loaders[split]()
    return sorted(dataset.docs[dataset.doc_index[i]].id for b in loader for i in b["index"])


def test_datamodule_trains_on_the_other_folds_and_scores_the_held_out_one(tokenizer) -> None:
    pooled = {f"train-{i}" for i in range(7)} | {f"devel-{i}" for i in range(4)}
    held = []
    for fold in range(3):
        dm = datamodule(tokenizer, folds=3, fold=fold)
        dm.setup("fit")
        dm.setup("test")
        train, devel, test = (served_ids(dm, s) for s in ("train", "devel", "test"))
        # The checkpoint is picked on an inner devel split of the training folds, never on the
        # held-out fold that test scores.
        assert devel and set(devel).isdisjoint(test)
        assert set(train) | set(devel) | set(test) == pooled
        assert set(train).isdisjoint(devel) and set(train).isdisjoint(test)
        assert "test" not in dm.reader.read, "the corpus's test split must stay unread"
        held += test
    assert sorted(held) == sorted(pooled)


def test_folds_do_not_depend_on_the_run_seed(tokenizer) -> None:
    a = datamodule(tokenizer, folds=3, fold=1, seed=1)
    b = datamodule(tokenizer, folds=3, fold=1, seed=2)
    assert [d.id for d in a.documents("devel")] == [d.id for d in b.documents("devel")]
    assert [d.id for d in a.documents("train")] == [d.id for d in b.documents("train")]


def test_without_folds_the_corpus_splits_are_served(tokenizer) -> None:
    dm = datamodule(tokenizer)
    assert [d.id for d in dm.documents("test")] == [f"test-{i}" for i in range(3)]
    assert [d.id for d in dm.documents("devel")] == [f"devel-{i}" for i in range(4)]


def test_limit_documents_applies_to_each_split_before_pooling(tokenizer) -> None:
    dm = datamodule(tokenizer, folds=2, fold=0, limit_documents=3)
    ids = [d.id for split in ("train", "devel", "test") for d in dm.documents(split)]
    assert sorted(ids) == sorted(
        [f"train-{i}" for i in range(3)] + [f"devel-{i}" for i in range(3)]
    )


def test_datamodule_rejects_a_bad_fold(tokenizer) -> None:
    with pytest.raises(ConfigError, match=r"cv.fold must be an integer in \[0, 2\)"):
        datamodule(tokenizer, folds=2, fold=2)


def test_folds_refuse_a_train_subset(tokenizer) -> None:
    # Folds pool train and devel, so a cut train split would be mixed with a whole devel split.
    from bioner.data.alignment import Alignment

    reader = MemoryReader()
    reader.train_subset = TrainSubset(fraction=0.5, seed=1)
    with pytest.raises(ConfigError, match="cannot be combined with cv.folds=3"):
        NERDataModule(reader, Alignment(), tokenizer, folds=3, fold=0)
    reader.train_subset = TrainSubset(fraction=1.0, seed=1)  # keeps everything: allowed
    NERDataModule(reader, Alignment(), tokenizer, folds=3, fold=0)


# ------------------------------------------------------------------ real corpora


def test_bc5cdr_pubtator_folds_are_abstracts(shared_data: Path) -> None:
    reader = instantiate(
        compose_config("data", [f"paths.data_dir={shared_data}", "dataset=bc5cdr_pubtator"]).dataset
    )
    pooled = reader.load("train") + reader.load("devel")
    assert len({d.id for d in pooled}) == 1000  # one PMID per abstract, train and devel disjoint
    held = []
    for fold in range(5):
        train, held_out = split_fold(pooled, 5, fold)
        assert len(held_out) == 200 and len(train) == 800
        assert all(d.id.isdigit() for d in held_out)  # PMIDs, not sentence ids
        held += [d.id for d in held_out]
    assert sorted(held) == sorted(d.id for d in pooled)


def test_bc5cdr_iob_folds_cover_every_document_once(shared_data: Path) -> None:
    reader = instantiate(compose_config("data", [f"paths.data_dir={shared_data}"]).dataset)
    pooled = reader.load("train") + reader.load("devel")
    sizes = [len(split_fold(pooled, 5, fold)[1]) for fold in range(5)]
    assert sum(sizes) == len(pooled) == 4560 + 4581
    assert max(sizes) - min(sizes) <= 1
