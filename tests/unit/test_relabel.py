"""dataset.relabel: entity types renamed, merged or dropped as a corpus is read, every change
counted; the corpus's own types still check its files."""

from __future__ import annotations

from pathlib import Path

import pytest

from bioner.cli.data import main as data_main
from bioner.config import compose_config, instantiate_node
from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import IOBReader, MultiCorpusReader
from bioner.data.relabel import Relabel
from bioner.errors import ConfigError

TEXT = "Aspirin and TNF bind DNA"


def jnlpba_like() -> Document:
    # "TNF" is annotated twice, as protein and as DNA (one extent, two types).
    spans = sorted(
        [
            Span(0, 7, "Chemical"),
            Span(12, 15, "protein"),
            Span(12, 15, "DNA", id="D1"),
            Span(21, 24, "DNA"),
        ]
    )
    words = [(0, 7), (8, 11), (12, 15), (16, 20), (21, 24)]
    return Document("d1", TEXT, spans, [(0, len(TEXT))], words, {"source": "x"})


def test_types_are_renamed_merged_and_dropped_and_every_change_is_counted() -> None:
    rule = Relabel(map={"DNA": "Gene", "protein": "Gene", "Chemical": None})
    assert rule.types(["Chemical", "DNA", "protein"], "c") == ["Gene"]
    plain = Document("d2", "none here", [], [(0, 9)], [(0, 4), (5, 9)])
    (doc, same) = rule.apply("train", [jnlpba_like(), plain], "c")
    assert same is plain  # nothing to change: the document itself
    assert [(s.start, s.end, s.label) for s in doc.spans] == [(12, 15, "Gene"), (21, 24, "Gene")]
    doc.validate()
    # The merged pair keeps the first of the two (DNA, with its normalisation id).
    assert doc.spans[0].id == "D1"
    assert (doc.text, doc.words, doc.sentences, doc.meta) == (
        TEXT,
        jnlpba_like().words,
        jnlpba_like().sentences,
        {"source": "x"},
    )
    assert rule.counts["train"] == {
        "mentions": 4,
        "renamed": {"DNA": 2, "protein": 1},
        "dropped": {"Chemical": 1},
        "merged": 1,
    }


def test_keep_names_types_after_the_map() -> None:
    rule = Relabel(map={"protein": "Gene"}, keep=["Gene"])
    assert rule.types(["Chemical", "DNA", "protein"], "c") == ["Gene"]
    (doc,) = rule.apply("devel", [jnlpba_like()])
    assert [s.label for s in doc.spans] == ["Gene"]
    assert rule.counts["devel"]["dropped"] == {"Chemical": 1, "DNA": 2}
    # Without a rule nothing is active and the types are the corpus's, in its order.
    assert not Relabel().active and not Relabel(map=None).active
    assert Relabel(map={"DNA": "Gene"}).types(["protein", "DNA"], "c") == ["protein", "Gene"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"map": {"Chemicals": "Drug"}},
            r"map: 'Chemicals' is not an entity type of c \(its types: Chemical, DNA\); "
            r"did you mean 'Chemical'\?",
        ),
        (
            {"map": {"DNA": "Gene"}, "keep": ["DNA"]},
            r"keep: 'DNA' is not an entity type of c \(after dataset.relabel.map: Chemical, Gene\)",
        ),
        ({"keep": ["Chemical"], "map": {"Chemical": None}}, r"keep: 'Chemical' is not"),
        ({"map": {"Chemical": None, "DNA": None}}, "drops every entity type of c"),
    ],
)
def test_a_rule_that_names_a_missing_type_or_keeps_none_says_which(
    rule: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Relabel(**rule).types(["Chemical", "DNA"], "c")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"map": ["DNA"]}, r"map must be a mapping old type -> new name"),
        ({"map": {"DNA": "Gene product"}}, r"map.DNA: 'Gene product' is not a type name"),
        ({"map": {"DNA": ""}}, r"map.DNA: '' is not a type name"),
        ({"keep": "Gene"}, r"keep must be a list of types"),
        ({"keep": []}, r"keep=\[\] keeps no type"),
    ],
)
def test_malformed_rules_are_refused(rule: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Relabel(**rule)


TRAIN = (
    "Aspirin\tB-Chemical\ncures\tO\nfever\tB-Disease\n\nrest\tO\nhelps\tO\n\n"
    "high\tO\nfever\tB-Disease\n\n"
)
DEVEL = "Heparin\tB-Chemical\nstops\tO\nclots\tB-Disease\n\n"


def corpus(folder: Path, devel: str = DEVEL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, text in (("train", TRAIN), ("devel", devel), ("test", DEVEL)):
        (folder / f"{split}.tsv").write_text(text)
    return folder


def test_a_reader_reads_its_own_types_and_returns_the_relabelled_ones(tmp_path: Path) -> None:
    folder = corpus(tmp_path / "c", devel=DEVEL + "x\tB-Gene\n\n")
    rule = {"map": {"Chemical": "Drug"}, "keep": ["Drug"]}
    reader = IOBReader("c", folder, None, relabel=rule, filter={"drop_empty_train": True})
    assert reader.source_types == ["Chemical", "Disease"]  # inferred from train.tsv
    assert reader.entity_types == ["Drug"]
    # The relabelled document without a mention is dropped by drop_empty_train, after relabel.
    assert [[(s.label, s.text(d.text)) for s in d.spans] for d in reader.load("train")] == [
        [("Drug", "Aspirin")]
    ]
    assert reader.preparation()["relabel"] == {
        "train": {"mentions": 3, "renamed": {"Chemical": 1}, "dropped": {"Disease": 2}, "merged": 0}
    }
    assert reader.preparation()["filter"]["train"]["removed"] == {"no_entities": 2}
    # A label the files' own types lack is still an error naming file and line.
    with pytest.raises(CorpusFormatError, match=r"devel.tsv:5: label 'Gene'.*\['Chemical', 'Dis"):
        reader.load("devel")


def test_a_rule_naming_a_type_the_files_lack_is_an_error_when_built_or_first_read(
    tmp_path: Path,
) -> None:
    folder = corpus(tmp_path / "c")
    with pytest.raises(ValueError, match="'Chemicals' is not an entity type of c"):
        IOBReader("c", folder, ["Chemical", "Disease"], relabel={"map": {"Chemicals": "X"}})
    # Types inferred from train.tsv are known once it is read: a ConfigError then.
    reader = IOBReader("c", folder, None, relabel={"map": {"Chemicals": "X"}})
    with pytest.raises(ConfigError, match="did you mean 'Chemical'"):
        _ = reader.entity_types


def test_members_of_dataset_multi_relabel_their_own_types(tmp_path: Path) -> None:
    gm = tmp_path / "gm"
    gm.mkdir()
    for split in ("train", "devel", "test"):
        (gm / f"{split}.tsv").write_text("BRCA1\tB-GENE\nbinds\tO\n\n")
    members = {
        "chem": IOBReader("c", corpus(tmp_path / "c"), None, relabel={"keep": ["Chemical"]}),
        "gm": IOBReader("gm", gm, None, relabel={"map": {"GENE": "Gene"}}),
    }
    reader = MultiCorpusReader(members, name="c+gm")
    assert reader.entity_types == ["Chemical", "Gene"]
    assert reader.member_types() == {"chem": ("Chemical",), "gm": ("Gene",)}
    labels = {d.id: [s.label for s in d.spans] for d in reader.load("train")}
    assert labels == {
        "chem/train-0": ["Chemical"],
        "chem/train-1": [],
        "chem/train-2": [],
        "gm/train-0": ["Gene"],
    }
    assert set(reader.preparation()["corpora"]) == {"chem", "gm"}
    # An inferred type a member's rule misnames is named under the member's key.
    members["gm"] = IOBReader("gm", gm, None, relabel={"map": {"GENES": "Gene"}})
    with pytest.raises(ConfigError, match=r"^dataset.corpora.gm.relabel.map: 'GENES'"):
        _ = MultiCorpusReader(members).entity_types


def test_the_config_key_reaches_the_reader_and_stats_show_the_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = corpus(tmp_path / "c")
    overrides = ["dataset=iob", f"dataset.data_dir={folder}", "dataset.relabel.keep=[Disease]"]
    reader = instantiate_node(compose_config("data", overrides).dataset, "dataset")
    assert reader.entity_types == ["Disease"]
    assert data_main(["stats", *overrides]) == 0
    out = capsys.readouterr().out
    assert "dataset.relabel (gold mentions): train dropped Chemical 1; devel dropped" in out
    header = next(line for line in out.splitlines() if line.startswith("split"))
    assert header.split()[-1] == "Disease" and "Chemical" not in header
    bad = ["dataset=bc5cdr", "dataset.relabel.map={Diseases: X}"]
    with pytest.raises(ConfigError, match=r"^dataset.relabel.map: 'Diseases' is not an entity"):
        instantiate_node(compose_config("data", bad).dataset, "dataset")
    # A member's rule, under its key.
    bad = [
        "dataset=multi",
        "+dataset@dataset.corpora.gm=bc2gm",
        "+dataset@dataset.corpora.ncbi=ncbi_disease",
        "dataset.corpora.gm.relabel.map={GENES: Gene}",
    ]
    with pytest.raises(ConfigError, match=r"^dataset.corpora.gm.relabel.map: 'GENES'.*'GENE'\?"):
        instantiate_node(compose_config("data", bad).dataset, "dataset")


@pytest.mark.parametrize(
    ("kept", "alone"), [("Chemical", "bc5cdr_chem"), ("Disease", "bc5cdr_disease")]
)
def test_bc5cdr_keeping_one_type_is_that_type_s_own_corpus(
    shared_data: Path, kept: str, alone: str
) -> None:
    # Crichton et al. released BC5CDR with both types and once per type: the same sentences.
    from bioner import load_corpus

    for split in ("train", "devel", "test"):
        relabelled = load_corpus(
            "bc5cdr", split, data_dir=shared_data, overrides=[f"dataset.relabel.keep=[{kept}]"]
        )
        own = load_corpus(alone, split, data_dir=shared_data)
        assert [(d.text, d.spans) for d in relabelled] == [(d.text, d.spans) for d in own]
        assert sum(len(d.spans) for d in own) > 4000
