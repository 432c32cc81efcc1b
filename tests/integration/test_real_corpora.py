"""Every public corpus in ../shared/data read through its dataset config.

The expected numbers are those of shared/data/README.md (counted there from the files' tag
columns and PubTator lines, independently of bioner).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.readers import CorpusReader
from bioner.data.stats import corpus_stats

# split: (sentences, tokens, {type: mentions})
IOB = {
    "bc5cdr": {
        "train": (4560, 118170, {"Chemical": 5203, "Disease": 4182}),
        "devel": (4581, 117453, {"Chemical": 5347, "Disease": 4246}),
        "test": (4797, 124750, {"Chemical": 5385, "Disease": 4424}),
    },
    "bc5cdr_chem": {
        "train": (4560, 118170, {"Chemical": 5203}),
        "devel": (4581, 117453, {"Chemical": 5347}),
        "test": (4797, 124750, {"Chemical": 5385}),
    },
    "bc5cdr_disease": {
        "train": (4560, 118170, {"Disease": 4182}),
        "devel": (4581, 117453, {"Disease": 4246}),
        "test": (4797, 124750, {"Disease": 4424}),
    },
    "ncbi_disease": {
        "train": (5424, 135701, {"Disease": 5134}),
        "devel": (923, 23969, {"Disease": 787}),
        "test": (940, 24497, {"Disease": 960}),
    },
    "bc2gm": {
        "train": (12574, 355405, {"GENE": 15197}),
        "devel": (2519, 71042, {"GENE": 3061}),
        "test": (5038, 143465, {"GENE": 6325}),
    },
}
PUBTATOR = {
    "train": {"Chemical": 5203, "Disease": 4182},
    "devel": {"Chemical": 5347, "Disease": 4244},
    "test": {"Chemical": 5385, "Disease": 4424},
}


def load_reader(name: str, data_dir: Path) -> CorpusReader:
    cfg = compose_config("data", [f"dataset={name}", f"paths.data_dir={data_dir}"])
    reader = instantiate(cfg.dataset)
    assert reader.name == name
    return reader


def all_validate(reader: CorpusReader) -> None:
    for split in reader.splits:
        for doc in reader.load(split):
            doc.validate()


@pytest.mark.parametrize("name", sorted(IOB))
def test_iob_corpus_counts(shared_data: Path, name: str) -> None:
    reader = load_reader(name, shared_data)
    stats = corpus_stats(reader)
    for split, (sentences, tokens, per_type) in IOB[name].items():
        got = stats[split]
        # one document per sentence: the files carry no document boundaries
        assert (got["documents"], got["sentences"], got["tokens"]) == (
            sentences,
            sentences,
            tokens,
        ), split
        assert got["per_type"] == per_type, split
        assert got["mentions"] == sum(per_type.values())
    assert reader.repairs == {}  # no invalid transition occurs in these files
    all_validate(reader)


def test_iob_config_reads_a_real_corpus_folder(shared_data: Path) -> None:
    cfg = compose_config(
        "data", ["dataset=iob", f"dataset.data_dir={shared_data / 'ncbi_disease'}"]
    )
    reader = instantiate(cfg.dataset)
    assert reader.entity_types == ["Disease"]
    assert len(reader.load("devel")) == 923


def test_bc5cdr_pubtator_counts(shared_data: Path) -> None:
    reader = load_reader("bc5cdr_pubtator", shared_data)
    stats = corpus_stats(reader)
    for split, per_type in PUBTATOR.items():
        assert stats[split]["documents"] == 500, split
        assert stats[split]["per_type"] == per_type, split
    all_validate(reader)
    # "St. Anthony's fire" stays one mention in one sentence (the IOB version cuts it after "St.")
    doc = next(d for d in reader.load("devel") if d.id == "3300918")
    fires = [s for s in doc.spans if s.text(doc.text) == "St. Anthony's fire"]
    assert len(fires) == 2
    assert all(any(a <= f.start and f.end <= b for a, b in doc.sentences) for f in fires)


def test_bc5cdr_as_bioc_gives_the_pubtator_documents(shared_data: Path, tmp_path: Path) -> None:
    # The real BC5CDR release written as BioC (tests/fixtures/make_bioc.py, as BioCreative lays
    # it out): the BioC reader gives every document back, text, spans, words and sentences.
    spec = importlib.util.spec_from_file_location(
        "make_bioc", Path(__file__).resolve().parents[1] / "fixtures" / "make_bioc.py"
    )
    make_bioc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_bioc)
    pubtator = load_reader("bc5cdr_pubtator", shared_data)
    for split in ("train", "devel", "test"):
        (tmp_path / f"{split}.xml").write_text(
            make_bioc.as_bioc(pubtator.load(split)), encoding="utf-8"
        )
    bioc = instantiate(
        compose_config("data", ["dataset=bioc", f"dataset.data_dir={tmp_path}"]).dataset
    )
    for split in ("train", "devel", "test"):
        docs = bioc.load(split)
        assert len(docs) == 500
        for a, b in zip(pubtator.load(split), docs, strict=True):
            assert (a.id, a.text, a.spans, a.sentences, a.words) == (
                b.id, b.text, b.spans, b.sentences, b.words,
            )  # fmt: skip
    assert bioc.repairs == {}


@pytest.mark.parametrize("fmt", ["brat", "bioc"])
def test_bc5cdr_exported_and_read_back_is_the_same_corpus(
    shared_data: Path, tmp_path: Path, fmt: str
) -> None:
    # bioner-data export writes the real release; dataset=brat / dataset=bioc read the same 1,500
    # documents back, mention for mention, nothing trimmed, joined or skipped. BioC keeps title
    # and abstract as two passages, so words and sentences come back too (brat has no passages:
    # a title without a full stop then runs into the abstract's first sentence).
    from bioner.cli.data import main

    out = tmp_path / fmt
    source = ["dataset=bc5cdr_pubtator", f"paths.data_dir={shared_data}"]
    assert main(["export", *source, f"format={fmt}", f"output={out}"]) == 0
    pubtator = load_reader("bc5cdr_pubtator", shared_data)
    again = instantiate(
        compose_config("data", [f"dataset={fmt}", f"dataset.data_dir={out}"]).dataset
    )

    def view(docs: list) -> list:
        fields = [
            (d.id, d.text, d.spans, *((d.words, d.sentences) if fmt == "bioc" else ()))
            for d in docs
        ]
        return sorted(fields, key=lambda f: f[0])

    for split in ("train", "devel", "test"):
        assert view(pubtator.load(split)) == view(again.load(split))
        assert len(again.load(split)) == 500
    assert again.repairs == {}
