"""dataset.filter, dataset.split and dataset.train_subset: documents dropped by rule and counted,
splits redrawn by ratio, by document, seeded and stratified, and a seeded fraction of the training
documents kept."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.cli.data import main as data_main
from bioner.config import compose_config
from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.filters import DocumentFilter
from bioner.data.readers import IOBReader, PubTatorReader
from bioner.data.splits import RatioSplit
from bioner.data.subsets import TrainSubset
from bioner.errors import ConfigError


def doc(i: int, labels: tuple[str, ...] = ()) -> Document:
    text = " ".join(["w"] * max(len(labels), 1))
    words = [(2 * k, 2 * k + 1) for k in range(max(len(labels), 1))]
    spans = [Span(2 * k, 2 * k + 1, label) for k, label in enumerate(labels)]
    return Document(f"d{i}", text, spans, [(0, len(text))], words)


def test_filter_drops_by_length_and_empty_training_documents_and_counts_them() -> None:
    docs = [
        Document("short", "a b", [], [(0, 3)], [(0, 1), (2, 3)]),
        Document("long", "x" * 50, [Span(0, 50, "C")], [(0, 50)], [(0, 50)]),
        Document("empty", "some text", [], [(0, 9)], [(0, 4), (5, 9)]),
        Document("kept", "Aspirin helps", [Span(0, 7, "C")], [(0, 13)], [(0, 7), (8, 13)]),
    ]
    rules = DocumentFilter(min_chars=4, max_chars=40, drop_empty_train=True)
    assert [d.id for d in rules.apply("train", docs)] == ["kept"]
    assert rules.removed["train"] == {
        "documents": 4,
        "kept": 1,
        "removed": {"max_chars": 1, "min_chars": 1, "no_entities": 1},
        "mentions_removed": 1,
    }
    # Devel and test keep their documents without mentions: only the length rules apply.
    assert [d.id for d in rules.apply("test", docs)] == ["empty", "kept"]
    assert rules.removed["test"]["removed"] == {"max_chars": 1, "min_chars": 1}


def test_filter_by_words_and_its_checks() -> None:
    docs = [doc(0, ("A",)), doc(1, ("A", "B", "A"))]
    rules = DocumentFilter(max_words=2)
    assert [d.id for d in rules.apply("devel", docs)] == ["d0"]
    with pytest.raises(ValueError, match="removes all 2 documents"):
        DocumentFilter(min_words=5).apply("devel", docs, "corpus")
    with pytest.raises(ValueError, match="min_chars=9 exceeds max_chars=3"):
        DocumentFilter(min_chars=9, max_chars=3)
    with pytest.raises(ValueError, match="undecodable must be one of error, drop"):
        DocumentFilter(undecodable="skip")
    assert not DocumentFilter().active and DocumentFilter(undecodable="drop").active


def test_undecodable_bytes_stop_by_default_and_drop_the_document_when_asked(
    tmp_path: Path,
) -> None:
    clean = "Aspirin\tB-Chemical\nhelps\tO\n\n"
    bad = "Caf\xe9\tO\nhelps\tO\n\n".encode("latin-1")
    for split in ("train", "devel", "test"):
        (tmp_path / f"{split}.tsv").write_bytes(clean.encode() + (bad if split == "test" else b""))
    with pytest.raises(CorpusFormatError, match=r"test\.tsv:4: not valid UTF-8.*undecodable=drop"):
        IOBReader("t", tmp_path, ["Chemical"]).load("test")
    reader = IOBReader("t", tmp_path, ["Chemical"], filter={"undecodable": "drop"})
    assert [d.text for d in reader.load("test")] == ["Aspirin helps"]
    assert reader.preparation() == {
        "filter": {
            "test": {
                "documents": 2,
                "kept": 1,
                "removed": {"undecodable": 1},
                "mentions_removed": 0,
            }
        }
    }


def test_ratio_split_is_by_document_seeded_and_keeps_the_ratios_in_every_stratum() -> None:
    kinds = [("A",)] * 50 + [("B",)] * 30 + [("A", "B")] * 10 + [()] * 10
    pooled = {"train": [doc(i, k) for i, k in enumerate(kinds)]}
    rule = RatioSplit(source=["train"], seed=1)
    result = rule.apply(pooled)
    assert {k: len(v) for k, v in result.items()} == {"train": 80, "devel": 10, "test": 10}
    ids = [d.id for docs in result.values() for d in docs]
    assert sorted(ids) == sorted(d.id for d in pooled["train"])  # each document once
    for split, share in (("train", 0.8), ("devel", 0.1), ("test", 0.1)):
        strata = Counter(tuple(sorted({s.label for s in d.spans})) for d in result[split])
        for key, n in Counter(kinds).items():
            assert abs(strata[tuple(sorted(key))] - share * n) <= 1, (split, key)
    assert rule.summary["strata"] == 4 and rule.summary["documents"]["devel"] == 10
    again = RatioSplit(source=["train"], seed=1).apply(pooled)
    other = RatioSplit(source=["train"], seed=2).apply(pooled)
    assert [d.id for d in again["devel"]] == [d.id for d in result["devel"]]
    assert [d.id for d in other["devel"]] != [d.id for d in result["devel"]]


def test_ratio_split_keeps_documents_that_share_an_id_together() -> None:
    docs = [doc(i // 2, ("A",)) for i in range(40)]  # 20 ids, two documents each
    result = RatioSplit(ratios=[0.5, 0.25, 0.25], source=["train"]).apply({"train": docs})
    owners = {d.id: name for name, part in result.items() for d in part}
    assert all(sum(d.id == i for d in result[owners[i]]) == 2 for i in owners)


def test_ratio_split_rejects_bad_ratios_sources_and_too_few_documents() -> None:
    with pytest.raises(ValueError, match="summing to 1"):
        RatioSplit(ratios=[0.8, 0.1])
    with pytest.raises(ValueError, match="summing to 1"):
        RatioSplit(ratios=[0.9, 0.1, 0.0])
    with pytest.raises(ValueError, match="train included"):
        RatioSplit(source=["devel"])
    with pytest.raises(ValueError, match="4 documents leave test empty"):
        RatioSplit(source=["train"]).apply({"train": [doc(i, ("A",)) for i in range(4)]})


def test_single_file_corpus_is_split_by_the_config_and_stats_show_it(
    fixtures_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "one"
    folder.mkdir()
    # One file only: the pubtator fixture's three files concatenated.
    text = "".join(
        (fixtures_dir / "pubtator" / f"CDR_{n}Set.PubTator.txt").read_text()
        for n in ("Training", "Development", "Test")
    )
    (folder / "all.txt").write_text(text)
    overrides = [
        "dataset=bc5cdr_pubtator",
        f"dataset.data_dir={folder}",
        "dataset/split=ratio",
        "dataset.split.source=[train]",
        "dataset.split.ratios=[0.6,0.2,0.2]",
        "dataset.files={train: all.txt}",
    ]
    reader = instantiate(compose_config("data", overrides).dataset)
    assert isinstance(reader, PubTatorReader) and reader.sources == ["train"]
    sizes = {split: len(reader.load(split)) for split in reader.splits}
    total = len(reader._read_source("train"))
    assert sum(sizes.values()) == total and sizes["train"] >= sizes["devel"] >= 1
    assert data_main(["stats", *overrides, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {k: v["documents"] for k, v in out["splits"].items()} == sizes
    assert out["split"]["ratios"] == [0.6, 0.2, 0.2] and out["split"]["source"] == ["train"]
    assert data_main(["stats", *overrides, "dataset.filter.min_chars=1"]) == 0
    table = capsys.readouterr().out
    assert "dealt by ratio 0.6/0.2/0.2, seed 0, stratified" in table
    assert "dataset.filter removed: train 0, devel 0, test 0" in table


def test_train_subset_keeps_a_seeded_nested_fraction_of_the_documents() -> None:
    docs = [doc(i // 2, ("A",) * (i % 3)) for i in range(200)]  # 100 ids, two documents each
    rule = TrainSubset(fraction=0.1, seed=1)
    kept = rule.apply(docs, "corpus")
    ids = [d.id for d in kept]
    assert len(set(ids)) == 10 and len(ids) == 20  # by document id: both halves of each kept
    assert ids == [d.id for d in docs if d.id in set(ids)]  # the corpus order
    assert rule.summary == {
        "fraction": 0.1,
        "seed": 1,
        "documents": 100,
        "kept": 10,
        "mentions": sum(len(d.spans) for d in docs),
        "mentions_kept": sum(len(d.spans) for d in kept),
    }
    assert [d.id for d in TrainSubset(0.1, seed=1).apply(docs)] == ids
    assert [d.id for d in TrainSubset(0.1, seed=2).apply(docs)] != ids
    smaller = {d.id for d in TrainSubset(0.03, seed=1).apply(docs)}
    assert len(smaller) == 3 and smaller <= set(ids)  # one seed's subsets are nested
    assert len(TrainSubset(0.001, seed=1).apply(docs)) == 2  # never empty: one document
    assert TrainSubset().apply(docs) == docs and not TrainSubset(1.0).active


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1, "half", True])
def test_train_subset_rejects_a_fraction_outside_zero_to_one(fraction: object) -> None:
    with pytest.raises(ConfigError, match=r"train_subset.fraction must be a number in \(0, 1\]"):
        TrainSubset(fraction=fraction)  # type: ignore[arg-type]


def test_train_subset_cuts_train_only_with_the_run_seed_and_is_reported(
    fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = [
        "dataset=bc5cdr_pubtator",
        f"dataset.data_dir={fixtures_dir / 'pubtator'}",
        "dataset.train_subset.fraction=0.5",
    ]
    full = instantiate(compose_config("data", overrides[:2]).dataset)
    reader = instantiate(compose_config("data", [*overrides, "seed=7"]).dataset)
    assert reader.train_subset.seed == 7  # the run seed
    n = len({d.id for d in full.load("train")})
    assert len({d.id for d in reader.load("train")}) == max(1, round(n / 2))
    for split in ("devel", "test"):
        assert [d.id for d in reader.load(split)] == [d.id for d in full.load(split)]
    assert reader.preparation()["train_subset"]["documents"] == n
    assert data_main(["stats", *overrides]) == 0
    assert f"dataset.train_subset: train keeps {max(1, round(n / 2))} of {n}" in (
        capsys.readouterr().out
    )
