"""``bioner-data`` on the synthetic fixtures: tables, JSON, the round trip and clear failures."""

from __future__ import annotations

import json

import pytest

from bioner.cli.data import main

IOB = ["dataset=iob"]


@pytest.fixture
def iob(fixtures_dir):
    return [*IOB, f"dataset.data_dir={fixtures_dir / 'iob'}"]


def test_stats_json_counts_the_fixture(iob, capsys):
    assert main(["stats", *iob, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    train = result["splits"]["train"]
    assert set(result["splits"]) == {"train", "devel", "test"}
    assert train["mentions"] == sum(train["per_type"].values()) > 0
    assert train["sentences"] >= train["documents"] > 0


def test_stats_table_names_every_split(iob, capsys):
    assert main(["stats", *iob]) == 0
    out = capsys.readouterr().out
    assert all(split in out for split in ("train", "devel", "test"))


@pytest.mark.parametrize("alignment", ["first", "all", "last"])
def test_check_loses_nothing_even_in_tiny_windows(iob, alignment, tiny_model_dir, capsys):
    overrides = [
        *iob,
        "model=tiny",
        f"alignment={alignment}",
        "alignment.max_length=8",
        "alignment.stride=2",
    ]
    assert main(["check", *overrides, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for split in result["splits"].values():
        assert split["lost"] == split["changed"] == split["spurious"] == 0
        assert split["gold"] > 0
    assert any(s["long_units"] for s in result["splits"].values())


def test_augment_shows_originals_beside_augmented_sentences(iob, capsys):
    args = [
        "augment",
        *iob,
        "augmentation=token_replacement",
        "augmentation.probability=1.0",
        "augmentation.transform.rate=1.0",
    ]
    assert main([*args, "n=2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["augmentation"] == "token_replacement" and len(result["sentences"]) == 2
    assert all(s["original"] != s["augmented"] for s in result["sentences"])
    assert main([*args, "n=10", "--json"]) == 0
    marked = [s for s in json.loads(capsys.readouterr().out)["sentences"] if "|" in s["original"]]
    # Spans stay marked with their labels, on the replacement words.
    assert marked and all(s["augmented"].count("|") == s["original"].count("|") for s in marked)
    # The same seed shows the same sentences; the table marks spans as [text|Label].
    assert main([*args, "n=2"]) == 0
    table = capsys.readouterr().out
    assert f"  + {result['sentences'][0]['augmented']}" in table


def test_augment_without_an_augmentation_says_which_to_choose(iob, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["augment", *iob])
    assert exit_.value.code == 2
    assert "augmentation=mix" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("split=dev", "unknown split 'dev'; choose one of train, devel, test"),
        ("n=-2", "n=-2: must be a positive integer"),
    ],
)
def test_augment_settings_out_of_range_are_one_message(iob, capsys, setting, message):
    with pytest.raises(SystemExit) as exit_:
        main(["augment", *iob, "augmentation=noise", setting])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_corpus_says_how_to_point_at_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["stats", "dataset=ncbi_disease", f"paths.data_dir={tmp_path}"])
    assert exit_.value.code == 2
    assert "BIONER_DATA_DIR" in capsys.readouterr().err


def test_unknown_command_prints_usage(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and "bioner-data {stats," in err
    assert main(["stat"]) == 2
    assert "did you mean stats?" in capsys.readouterr().err


def test_help_is_plain_text_and_exits_0(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "commands:" in out and "examples:" in out and "::" not in out and "``" not in out


@pytest.mark.parametrize("fmt", ["brat", "bioc"])
def test_export_gives_a_corpus_that_reads_back_the_same(fmt, fixtures_dir, tmp_path, capsys):
    from hydra.utils import instantiate

    from bioner.config import compose_config

    source = ["dataset=bc5cdr_pubtator", f"dataset.data_dir={fixtures_dir / 'pubtator'}"]
    out = tmp_path / "out"
    assert main(["export", *source, f"format={fmt}", f"output={out}"]) == 0
    assert "train  " in capsys.readouterr().out
    listing = sorted(p.name for p in out.iterdir())
    assert listing == (["devel", "test", "train"] if fmt == "brat" else
                       ["devel.xml", "test.xml", "train.xml"])  # fmt: skip
    original = instantiate(compose_config("data", source).dataset)
    again = instantiate(
        compose_config("data", [f"dataset={fmt}", f"dataset.data_dir={out}"]).dataset
    )
    for split in ("train", "devel", "test"):
        a, b = original.load(split), again.load(split)
        assert [(d.id, d.text, d.spans) for d in a] == [(d.id, d.text, d.spans) for d in b]
    assert again.repairs == {}
    if fmt == "brat":  # gold spans carry no score: no notes
        assert "AnnotatorNotes" not in (out / "train" / "1000001.ann").read_text()
        assert "Chemical\nDisease\n" in (out / "train" / "annotation.conf").read_text()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("format=xml", "format='xml': choose one of jsonl, pubtator, bioc, conll, brat"),
        ("output=null", "bioner-data export needs output=<new folder>"),
        ("splits=[train,dev]", "splits=['train', 'dev']: choose among train, devel, test"),
        ("output={taken}", "is a folder that is not empty"),
    ],
)
def test_export_errors_are_one_message(iob, tmp_path, capsys, setting, message):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.ann").write_text("corrected\n")
    overrides = [*iob, f"output={tmp_path / 'new'}", setting.format(taken=tmp_path / "taken")]
    with pytest.raises(SystemExit) as exit_:
        main(["export", *overrides])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "taken" / "mine.ann").read_text() == "corrected\n"


def test_stats_says_what_a_lenient_option_repaired(fixtures_dir, tmp_path, capsys):
    corpus = tmp_path / "brat"
    for split in ("train", "devel", "test"):
        (corpus / split).mkdir(parents=True)
        (corpus / split / "d.txt").write_text("The breast cancer grew.\n")
        (corpus / split / "d.ann").write_text("T1\tDisease 4 10;18 22\tbreast grew\n")
    overrides = ["dataset=brat", f"dataset.data_dir={corpus}", "dataset.discontinuous=span"]
    assert main(["stats", *overrides, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    kind = "discontinuous mentions read as discontinuous=span"
    assert result["repairs"] == {split: {kind: 1} for split in ("train", "devel", "test")}
    assert main(["stats", *overrides]) == 0
    assert f"repaired by a dataset option: train 1 {kind}; devel" in capsys.readouterr().out


def test_stats_of_several_corpora_counts_each_member_on_its_own_types(
    fixtures_dir, tmp_path, capsys
):
    diseases = tmp_path / "diseases"
    diseases.mkdir()
    for split in ("train", "devel", "test"):
        (diseases / f"{split}.tsv").write_text("acute\tB-Disease\npain\tI-Disease\n\n")
    overrides = [
        "dataset=multi",
        "+dataset@dataset.corpora.a=iob",
        f"dataset.corpora.a.data_dir={fixtures_dir / 'iob'}",
        "+dataset@dataset.corpora.b=iob",
        f"dataset.corpora.b.data_dir={diseases}",
    ]
    assert main(["stats", *overrides, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    a, b = (result["members"][k]["train"] for k in ("a", "b"))
    assert result["splits"]["train"]["documents"] == a["documents"] + b["documents"]
    assert list(b["per_type"]) == ["Disease"]
    assert main(["stats", *overrides]) == 0
    lines = capsys.readouterr().out.splitlines()
    member_b = next(line for line in lines if line.startswith("  b "))
    assert " - " in member_b  # the types b does not annotate: unknown, not 0


def test_stats_of_a_corpus_trained_on_only_need_and_show_its_training_file_alone(
    fixtures_dir, tmp_path, capsys
):
    silver = tmp_path / "silver"
    silver.mkdir()
    (silver / "train.tsv").write_text("acute\tB-Disease\npain\tI-Disease\n\n")
    overrides = [
        "dataset=multi",
        "+dataset@dataset.corpora.a=iob",
        f"dataset.corpora.a.data_dir={fixtures_dir / 'iob'}",
        "+dataset@dataset.corpora.silver=iob",
        f"dataset.corpora.silver.data_dir={silver}",
        "dataset.train_only=[silver]",
    ]
    assert main(["stats", *overrides, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["members"]["silver"]) == ["train"]
    assert main(["stats", *overrides]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("  silver ") for line in lines) == 1  # its training row only
    assert sum(line.startswith("  a ") for line in lines) == 3
