"""The i2b2/VA 2010 reader on a synthetic fixture in the release's layout and format."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import CorpusNotFoundError, I2B2Reader

TRAIN = "concept_assertion_relation_training_data"
NOTE = f"{TRAIN}/beth/txt/record-103.txt"
CON = f"{TRAIN}/beth/concept/record-103.con"


@pytest.fixture
def corpus(fixtures_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture, for the error cases."""
    return Path(shutil.copytree(fixtures_dir / "i2b2", tmp_path / "i2b2_2010"))


def spans_of(doc) -> list[tuple[str, str]]:
    return [(s.text(doc.text), s.label) for s in doc.spans]


def format_error(r: I2B2Reader, split: str = "train") -> CorpusFormatError:
    with pytest.raises(CorpusFormatError) as info:
        r.load(split)
    return info.value


def test_config_reads_the_fixture(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "i2b2"
    cfg = compose_config("data", ["dataset=i2b2_2010", f"dataset.data_dir={folder}"])
    r = instantiate(cfg.dataset)
    assert isinstance(r, I2B2Reader) and r.entity_types == ["problem", "test", "treatment"]
    ids = {split: [d.id for d in r.load(split)] for split in r.splits}
    # 5 annotated training notes (partners/unannotated skipped), 10 % held out: 1 devel note
    assert sorted(ids["train"] + ids["devel"]) == [
        "311502845",
        "645213778_WGH",
        "record-101",
        "record-102",
        "record-103",
    ]
    assert len(ids["devel"]) == 1
    assert ids["test"] == ["387114935", "record-201"]
    test = {d.id: d for d in r.load("test")}
    assert spans_of(test["387114935"]) == [
        ("abdominal pain", "problem"),
        ("CT of the abdomen", "test"),
        ("appendicitis", "problem"),
        ("Appendectomy", "treatment"),
    ]


def test_devel_draw_is_seeded_by_note_name(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "i2b2"

    def devel(**kw) -> list[str]:
        return [d.id for d in I2B2Reader("i2b2", folder, **kw).load("devel")]

    assert devel(seed=0) == devel(seed=0)
    draws = {tuple(devel(seed=s)) for s in range(8)}
    assert len(draws) > 1  # the seed matters
    assert len(devel(dev_fraction=0.5)) == 3  # 2.5 notes round half up
    assert devel(dev_fraction=0.0) == []
    with pytest.raises(ValueError, match="dev_fraction"):
        I2B2Reader("i2b2", folder, dev_fraction=1.0)


def test_note_words_sentences_and_concepts(fixtures_dir: Path) -> None:
    r = I2B2Reader("i2b2", fixtures_dir / "i2b2", dev_fraction=0.0)
    docs = {d.id: d for d in r.load("train")}
    doc = docs["record-101"]
    txt = fixtures_dir / "i2b2" / TRAIN / "beth" / "txt" / "record-101.txt"
    assert doc.text == txt.read_text()  # the note as is
    assert [doc.word_text(i) for i in range(len(doc.words))] == doc.text.split()
    # non-empty lines are the sentences: the empty line 5 is none, the header lines are
    sentences = [doc.text[s:e] for s, e in doc.sentences]
    assert sentences[:5] == [
        "Admission Date :",
        "2019-03-02",
        "Discharge Date :",
        "2019-03-09",
        "HISTORY OF PRESENT ILLNESS :",
    ]
    assert len(sentences) == 9
    # unsorted .con lines come out sorted; the duplicated "hypertension" line is read once
    assert spans_of(doc) == [
        ("hypertension", "problem"),
        ("type 2 diabetes", "problem"),
        ("chest pain", "problem"),
        ("shortness of breath", "problem"),
        ("An electrocardiogram", "test"),
        ("ST elevations", "problem"),
        ("aspirin", "treatment"),
        ("a heparin drip", "treatment"),
    ]
    assert ('"leaky valve"', "problem") in spans_of(docs["311502845"])


def test_two_line_concept_merges_its_lines_into_one_sentence(fixtures_dir: Path) -> None:
    r = I2B2Reader("i2b2", fixtures_dir / "i2b2", dev_fraction=0.0)
    doc = next(d for d in r.load("train") if d.id == "645213778_WGH")
    assert spans_of(doc)[0] == (
        "Chronic obstructive pulmonary\ndisease exacerbation",
        "problem",
    )
    assert [doc.text[s:e] for s, e in doc.sentences] == [
        "Assessment and plan :",
        "Chronic obstructive pulmonary\ndisease exacerbation , continue nebulizers .",
        "Follow up with an echocardiogram .",
    ]


def test_mismatching_concept_text_errors_or_is_skipped(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    con = corpus / CON
    # off by one token at the end, like a few lines of the real release
    con.write_text(con.read_text() + 'c="creatinine" 4:3 4:4||t="test"\n')
    err = format_error(I2B2Reader("i2b2", corpus, dev_fraction=0.0))
    assert err.path == str(con) and err.line == 5
    assert "'creatinine' differs from the tokens 4:3-4:4 of record-103.txt: 'creatinine 1.4'" in (
        err.problem
    )
    assert "on_mismatch=skip" in err.fix
    r = I2B2Reader("i2b2", corpus, dev_fraction=0.0, on_mismatch="skip")
    with caplog.at_level(logging.WARNING):
        doc = next(d for d in r.load("train") if d.id == "record-103")
    assert spans_of(doc)[-1] == ("creatinine", "test")  # the correct line is still there
    assert r.repairs == {"train": 1}
    assert "1 concepts whose text does not match their offsets skipped" in caplog.text


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('c="labs" 9:0 9:0||t="test"', "line 9 is outside record-103.txt (5 lines)"),
        ('c="labs" 0:0 0:0||t="test"', "line 0 is outside"),
        ('c="labs" 3:0 3:2||t="test"', "token 2 is outside line 3 of record-103.txt (2 tokens)"),
        ('c="labs" 3:1 3:0||t="test"', "ends before it starts"),
        ('c="labs" 3:0 3:0 t="test"', "not a concept line"),
        ('c="labs" 3:0 3:0||t="diagnosis"', "label 'diagnosis'"),
    ],
)
def test_concept_line_errors_name_file_and_line(corpus: Path, line: str, problem: str) -> None:
    con = corpus / CON
    con.write_text(con.read_text() + line + "\n")
    err = format_error(I2B2Reader("i2b2", corpus, dev_fraction=0.0))
    assert err.path == str(con) and err.line == 5
    assert problem in err.problem


def test_overlapping_concepts_are_kept_with_a_warning(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    con = corpus / CON
    con.write_text(con.read_text() + 'c="lisinopril 10" 2:6 2:7||t="treatment"\n')
    with caplog.at_level(logging.WARNING):
        docs = I2B2Reader("i2b2", corpus, dev_fraction=0.0).load("train")
    texts = [s.text(d.text) for d in docs for s in d.spans]
    assert "lisinopril 10" in texts and "lisinopril" in texts
    assert "concepts overlapping another, kept: 1 nested" in caplog.text


def test_missing_concept_file_and_empty_note(corpus: Path) -> None:
    (corpus / CON).unlink()
    err = format_error(I2B2Reader("i2b2", corpus))
    assert err.path == str(corpus / CON) and "concept file" in err.problem
    (corpus / CON).write_text("")  # a note without concepts is fine
    r = I2B2Reader("i2b2", corpus, dev_fraction=0.0)
    assert next(d for d in r.load("train") if d.id == "record-103").spans == []
    (corpus / NOTE).write_text("")
    err = format_error(I2B2Reader("i2b2", corpus))
    assert err.path == str(corpus / NOTE) and "empty" in err.problem


def test_crlf_and_bom_note_keeps_its_text(corpus: Path) -> None:
    note = corpus / NOTE
    text = note.read_text()
    note.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    r = I2B2Reader("i2b2", corpus, dev_fraction=0.0)
    doc = next(d for d in r.load("train") if d.id == "record-103")
    assert doc.text == text.replace("\n", "\r\n")  # as is, without the byte-order mark
    assert [doc.word_text(i) for i in range(len(doc.words))] == text.split()
    assert spans_of(doc)[0] == ("metoprolol", "treatment")
    assert all(not doc.text[s:e].endswith("\r") for s, e in doc.sentences)


def test_no_notes_and_missing_corpus(tmp_path: Path, corpus: Path) -> None:
    shutil.rmtree(corpus / "test_data")
    (corpus / "test_data").mkdir()
    err = format_error(I2B2Reader("i2b2", corpus), "test")
    assert "no notes" in err.problem and "test_data/NAME.txt" in err.fix
    cfg = compose_config("data", ["dataset=i2b2_2010", f"paths.data_dir={tmp_path / 'none'}"])
    with pytest.raises(CorpusNotFoundError) as info:
        instantiate(cfg.dataset).load("train")
    msg = str(info.value)
    assert "i2b2_2010/concept_assertion_relation_training_data" in msg and "n2c2" in msg
    assert "bioner-data download" not in msg
    # Scoring the test split asks for the test folders only, not the training notes.
    with pytest.raises(CorpusNotFoundError) as info:
        instantiate(cfg.dataset).load("test")
    root = tmp_path / "none" / "i2b2_2010"
    missing = [p.relative_to(root).parts[0] for p in info.value.missing]
    assert missing == ["test_data", "reference_standard_for_test_data"]
