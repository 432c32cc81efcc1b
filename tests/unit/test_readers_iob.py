"""The IOB/CoNLL TSV reader: documents, schemes, inferred labels and every format error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import CorpusNotFoundError, IOBReader
from bioner.data.stats import corpus_stats, stats_table
from bioner.data.tags import spans_to_tags
from bioner.errors import ConfigError

CLEAN = "Aspirin\tB-Chemical\nhelps\tO\n.\tO\n\n"


def write_corpus(folder: Path, train: str, devel: str = CLEAN, test: str = CLEAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, content in (("train", train), ("devel", devel), ("test", test)):
        (folder / f"{split}.tsv").write_bytes(content.encode("utf-8"))
    return folder


def reader(folder: Path, **kwargs) -> IOBReader:
    kwargs.setdefault("entity_types", ["Chemical", "Disease"])
    return IOBReader("test", folder, **kwargs)


def format_error(r: IOBReader, split: str = "train") -> CorpusFormatError:
    with pytest.raises(CorpusFormatError) as info:
        r.load(split)
    return info.value


def test_generic_iob_config_reads_the_fixture_and_infers_labels(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "iob"
    cfg = compose_config("data", ["dataset=iob", f"dataset.data_dir={folder}"])
    r = instantiate(cfg.dataset)
    assert isinstance(r, IOBReader) and r.name == "iob"
    assert r.splits == ["train", "devel", "test"]
    assert r.entity_types == ["Chemical", "Disease", "Gene"]  # sorted, from train.tsv
    train = r.load("train")
    assert [d.id for d in train] == ["train-0", "train-1", "train-2"]
    doc = train[0]
    assert doc.text == "Aspirin reduces the risk of myocardial infarction ."
    assert [doc.word_text(i) for i in range(len(doc.words))] == doc.text.split(" ")
    assert doc.sentences == [(0, len(doc.text))]
    assert [(s.text(doc.text), s.label) for s in doc.spans] == [
        ("Aspirin", "Chemical"),
        ("myocardial infarction", "Disease"),
    ]
    assert doc.meta["line"] == 1 and doc.meta["source"].endswith("train.tsv")
    # the word tags reproduce the file's tag column
    lines = (folder / "train.tsv").read_text().splitlines()
    file_tags = [line.split("\t")[1] if line else "" for line in lines]
    tags = [t for d in train for t in [*spans_to_tags(d.words, d.spans), ""]]
    assert tags == file_tags
    test = r.load("test")
    assert [(s.text(test[0].text), s.label) for s in test[0].spans] == [
        ("Lithium carbonate", "Chemical"),
        ("haloperidol", "Chemical"),
    ]


def test_corpus_stats_on_the_fixture(fixtures_dir: Path) -> None:
    r = IOBReader("iob", fixtures_dir / "iob")
    stats = corpus_stats(r)
    assert stats["train"] == {
        "documents": 3,
        "sentences": 3,
        "tokens": 22,
        "mentions": 4,
        "per_type": {"Chemical": 1, "Disease": 2, "Gene": 1},
        "overlaps": {"crossing": 0, "nested": 0, "same_extent": 0},
    }
    assert stats["devel"]["per_type"] == {"Chemical": 1, "Disease": 1, "Gene": 1}
    assert stats["test"]["per_type"] == {"Chemical": 3, "Disease": 1, "Gene": 0}
    table = stats_table(stats)
    assert table.splitlines()[0] == (
        "| split | documents | sentences | tokens | mentions | nested | crossing | same extent "
        "| Chemical | Disease | Gene |"
    )
    assert "| train | 3 | 3 | 22 | 4 | 0 | 0 | 0 | 1 | 2 | 1 |" in table


def test_docstart_blocks_become_documents(tmp_path: Path) -> None:
    content = (
        "-DOCSTART-\tO\n\nAspirin\tB-Chemical\nhelps\tO\n\nIt\tO\nworks\tO\n\n"
        "-DOCSTART-\tO\n\nFever\tB-Disease\n\n"
    )
    docs = reader(write_corpus(tmp_path, content)).load("train")
    assert [d.id for d in docs] == ["train-0", "train-1"]
    assert docs[0].text == "Aspirin helps\nIt works"
    assert docs[0].sentences == [(0, 13), (14, 22)]
    assert docs[0].sentence_word_ranges() == [(0, 2), (2, 4)]
    assert [s.text(docs[1].text) for s in docs[1].spans] == ["Fever"]


def test_extra_columns_token_first_tag_last(tmp_path: Path) -> None:
    content = "Aspirin\tNN\tX\tB-Chemical\nhelps\tVBZ\tO\n\n"
    doc = reader(write_corpus(tmp_path, content)).load("train")[0]
    assert doc.text == "Aspirin helps"
    assert [s.label for s in doc.spans] == ["Chemical"]


@pytest.mark.parametrize(
    ("scheme", "tags"),
    [
        ("IOB1", ["I-Chemical", "I-Chemical", "B-Chemical", "O", "I-Disease"]),
        ("IOB2", ["B-Chemical", "I-Chemical", "B-Chemical", "O", "B-Disease"]),
        ("IOBES", ["B-Chemical", "E-Chemical", "S-Chemical", "O", "S-Disease"]),
    ],
)
def test_schemes(tmp_path: Path, scheme: str, tags: list[str]) -> None:
    tokens = ["a", "b", "c", "d", "e"]
    content = "".join(f"{w}\t{t}\n" for w, t in zip(tokens, tags)) + "\n"
    doc = reader(write_corpus(tmp_path, content), scheme=scheme).load("train")[0]
    assert [(s.text(doc.text), s.label) for s in doc.spans] == [
        ("a b", "Chemical"),
        ("c", "Chemical"),
        ("e", "Disease"),
    ]


def test_crlf_and_bom_read_like_lf(tmp_path: Path) -> None:
    content = "Aspirin\tB-Chemical\nhelps\tO\n\nFever\tB-Disease\n"
    lf = reader(write_corpus(tmp_path / "lf", content)).load("train")
    crlf_text = "\ufeff" + content.replace("\n", "\r\n")
    crlf = reader(write_corpus(tmp_path / "crlf", crlf_text)).load("train")
    assert [(d.text, d.spans, d.words) for d in crlf] == [(d.text, d.spans, d.words) for d in lf]
    assert len(lf) == 2  # no trailing blank line needed


def test_line_without_tab(tmp_path: Path) -> None:
    err = format_error(reader(write_corpus(tmp_path, "Aspirin\tB-Chemical\nhelps O\n")))
    assert err.line == 2 and err.path.endswith("train.tsv")
    assert "TAB" in err.problem and "token<TAB>tag" in err.fix


@pytest.mark.parametrize("tag", ["X-Chemical", "B-", "b-Chemical", "B_Chemical", "BI-Chemical"])
def test_malformed_tag(tmp_path: Path, tag: str) -> None:
    err = format_error(reader(write_corpus(tmp_path, f"a\tO\nb\t{tag}\n")))
    assert err.line == 2 and "malformed tag" in err.problem


def test_tag_of_another_scheme(tmp_path: Path) -> None:
    err = format_error(reader(write_corpus(tmp_path, "a\tS-Chemical\n")))
    assert err.line == 1 and "not a IOB2 tag" in err.problem and "dataset.scheme" in err.fix


def test_token_with_whitespace(tmp_path: Path) -> None:
    err = format_error(reader(write_corpus(tmp_path, "a\tO\nb c\tO\n")))
    assert err.line == 2 and "whitespace" in err.problem


def test_invalid_transition_rejected_with_the_line(tmp_path: Path) -> None:
    content = "a\tO\nb\tB-Chemical\n\nc\tO\nd\tI-Chemical\ne\tI-Disease\n"
    err = format_error(reader(write_corpus(tmp_path, content)))
    assert err.line == 5 and "I-Chemical at word 1 follows O" in err.problem
    assert "on_invalid=repair" in err.fix


def test_invalid_transition_repaired_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = "c\tO\nd\tI-Chemical\ne\tI-Disease\n\nf\tI-Disease\n"
    r = reader(write_corpus(tmp_path, content), on_invalid="repair")
    with caplog.at_level(logging.WARNING):
        docs = r.load("train")
    assert [[(s.text(d.text), s.label) for s in d.spans] for d in docs] == [
        [("d", "Chemical"), ("e", "Disease")],
        [("f", "Disease")],
    ]
    assert r.repairs == {"train": 3}
    assert "3 invalid tag transitions repaired" in caplog.text


def test_iobes_unclosed_entity_points_at_its_last_token(tmp_path: Path) -> None:
    err = format_error(reader(write_corpus(tmp_path, "a\tO\nb\tB-Chemical\n\n"), scheme="IOBES"))
    assert err.line == 2


def test_label_outside_configured_types(tmp_path: Path) -> None:
    err = format_error(reader(write_corpus(tmp_path, "a\tO\nb\tB-Gene\n")))
    assert err.line == 2 and "'Gene'" in err.problem and "dataset.entity_types" in err.fix


def test_devel_label_unseen_in_train_when_inferred(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path, CLEAN, devel="a\tO\nb\tB-Gene\n")
    r = reader(folder, entity_types=None)
    assert r.load("test")[0].spans[0].label == "Chemical"
    err = format_error(r, "devel")
    assert err.line == 2 and err.path.endswith("devel.tsv")
    assert "does not occur in the training split" in err.problem


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    err = format_error(reader(write_corpus(tmp_path, content)))
    assert err.line is None and "empty" in err.problem


def test_file_of_only_docstart_lines(tmp_path: Path) -> None:
    err = format_error(reader(write_corpus(tmp_path, "-DOCSTART- -X- O\n\n")))
    assert "no tokens" in err.problem


def test_invalid_utf8(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path, CLEAN)
    (folder / "train.tsv").write_bytes(b"a\tO\n\nb\xff\tO\n")
    err = format_error(reader(folder))
    assert err.line == 3 and "UTF-8" in err.problem


def test_missing_files_name_the_path_and_the_fixes(tmp_path: Path) -> None:
    cfg = compose_config("data", ["dataset=bc5cdr", f"paths.data_dir={tmp_path}"])
    r = instantiate(cfg.dataset)
    with pytest.raises(CorpusNotFoundError) as info:
        r.load("train")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "bc5cdr" / "train.tsv") in msg
    assert "BIONER_DATA_DIR" in msg and "paths.data_dir=" in msg and "bc5cdr/train.tsv" in msg
    assert "bioner-data download bc5cdr" in msg
    generic = IOBReader("iob", tmp_path / "mine")
    with pytest.raises(CorpusNotFoundError, match="mine/train.tsv") as info:
        generic.ensure_available()
    assert "bioner-data download" not in str(info.value)


def test_load_is_cached_and_checks_its_arguments(tmp_path: Path) -> None:
    folder = write_corpus(tmp_path, CLEAN)
    r = reader(folder)
    first = r.load("train")
    (folder / "train.tsv").unlink()
    assert r.load("train") == first
    with pytest.raises(ConfigError, match="unknown split"):
        r.load("dev")
    with pytest.raises(ValueError, match="scheme"):
        IOBReader("x", folder, scheme="BIO")
    with pytest.raises(ValueError, match="on_invalid"):
        IOBReader("x", folder, on_invalid="ignore")
