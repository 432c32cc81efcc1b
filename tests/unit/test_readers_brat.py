"""The brat standoff reader: the synthetic fixture, each option, and every error it names."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.document import GOLD_FREE_WORDS
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import BratReader, CorpusNotFoundError

TEXT = "Aspirin reduces fever.\nThe breast cancer grew.\n"


def offsets(phrase: str, text: str = TEXT, occurrence: int = 0) -> str:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(phrase, start + 1)
    return f"{start} {start + len(phrase)}"


def corpus(
    folder: Path,
    ann: str,
    text: str = TEXT,
    clean: str = "T1\tChemical 0 7\tAspirin\n",
    encoding: str = "utf-8",
) -> Path:
    """A corpus whose training split is one document (``ann`` over ``text``); devel and test
    hold a clean copy of TEXT."""
    for split, (content, standoff) in {
        "train": (text, ann),
        "devel": (TEXT, clean),
        "test": (TEXT, clean),
    }.items():
        (folder / split).mkdir(parents=True, exist_ok=True)
        (folder / split / "d.txt").write_bytes(content.encode(encoding))
        (folder / split / "d.ann").write_bytes(standoff.encode("utf-8"))
    return folder


def reader(folder: Path, **kwargs) -> BratReader:
    return BratReader("test", folder, **kwargs)


def mentions(r: BratReader, split: str = "train") -> list[tuple[str, str]]:
    doc = r.load(split)[0]
    return [(s.text(doc.text), s.label) for s in doc.spans]


def format_error(r: BratReader, split: str = "train") -> CorpusFormatError:
    with pytest.raises(CorpusFormatError) as info:
        r.load(split)
    return info.value


def test_brat_config_reads_the_fixture(fixtures_dir: Path, caplog) -> None:
    cfg = compose_config("data", ["dataset=brat", f"dataset.data_dir={fixtures_dir / 'brat'}"])
    r = instantiate(cfg.dataset)
    assert isinstance(r, BratReader)
    with caplog.at_level(logging.INFO):
        train = r.load("train")
    assert r.entity_types == ["Chemical", "Disease"]  # inferred from the training split
    assert [d.id for d in train] == ["doc01", "doc02", "doc03", "doc05", "notes/doc04"]
    by_id = {d.id: d for d in train}
    assert mentions(r)[:2] == [("Aspirin", "Chemical"), ("fever", "Disease")]
    # A selection across a line break (two fragments joined by whitespace) is one mention, and
    # no sentence boundary cuts it.
    doc = by_id["doc02"]
    assert ("renal\nfailure", "Disease") in [(s.text(doc.text), s.label) for s in doc.spans]
    assert [doc.text[s:e] for s, e in doc.sentences][1] == (
        "The renal\nfailure resolved after hydration with saline."
    )
    # CRLF: offsets count the \r, as brat does; the text is the file's, unchanged.
    doc = by_id["notes/doc04"]
    assert "\r\n" in doc.text
    assert [s.text(doc.text) for s in doc.spans] == [
        "Warfarin",
        "bleeding",
        "seizures",
        "phenytoin",
    ]
    assert by_id["doc05"].spans == [] and by_id["doc05"].sentences  # an empty .ann
    assert doc.meta["source"].endswith("notes/doc04.txt")
    assert "skipped (not mentions): 1 attributes, 1 equivalences, 1 normalisations, 1 notes, " \
        "1 relations" in caplog.text  # fmt: skip
    assert [d.id for d in r.load("devel")] == ["doc06", "doc07"]
    doc = by_id["doc03"]  # "tremor " (a selection that took in the space after it) is trimmed
    assert ("tremor", "Disease") in [(s.text(doc.text), s.label) for s in doc.spans]
    assert len(r.load("test")) == 2 and r.repairs == {"train": 1}


def test_sentences_by_line_and_the_gold_free_evaluation_view(fixtures_dir: Path) -> None:
    r = reader(fixtures_dir / "brat", sentences="lines")
    doc = {d.id: d for d in r.load("train")}["doc02"]
    assert [doc.text[s:e] for s, e in doc.sentences] == [
        "Cisplatin nephrotoxicity was reported.",
        "The renal\nfailure resolved after hydration with saline.",  # joined: a mention crosses
    ]
    view = r.evaluation_document(doc)
    assert view.meta[GOLD_FREE_WORDS] and view.spans == doc.spans
    assert [view.text[s:e] for s, e in view.sentences][1:] == [
        "The renal",
        "failure resolved after hydration with saline.",
    ]


def test_words_split_at_mention_edges_for_training_only(tmp_path: Path) -> None:
    text = "Na+/K+-ATPase was low.\n"
    r = reader(corpus(tmp_path, f"T1\tChemical {offsets('Na', text)}\tNa\n", text=text))
    doc = r.load("train")[0]
    assert doc.word_text(0) == "Na"
    assert r.evaluation_document(doc).word_text(0) == "Na"  # "Na" is a word of the text anyway
    text = "DA1 receptors\n"
    r = reader(corpus(tmp_path / "b", "T1\tChemical 0 2\tDA\n", text=text))
    doc = r.load("train")[0]
    assert [doc.word_text(i) for i in range(2)] == ["DA", "1"]
    assert r.evaluation_document(doc).word_text(0) == "DA1"


@pytest.mark.parametrize(
    ("policy", "expected", "repairs"),
    [
        ("fragments", [("breast", "Disease"), ("grew", "Disease")], 1),
        ("span", [("breast cancer grew", "Disease")], 1),
        ("skip", [], 1),
    ],
)
def test_discontinuous_mentions(tmp_path: Path, policy: str, expected, repairs: int) -> None:
    # "breast ... grew": two fragments with a word between them.
    ann = f"T1\tDisease {offsets('breast')};{offsets('grew')}\tbreast grew\n"
    r = reader(corpus(tmp_path, ann), discontinuous=policy, entity_types=["Disease", "Chemical"])
    assert mentions(r) == expected
    assert r.repairs == {"train": repairs}


def test_a_discontinuous_mention_is_an_error_by_default(tmp_path: Path) -> None:
    ann = f"T1\tChemical 0 7\tAspirin\nT2\tDisease {offsets('breast')};{offsets('grew')}\t" \
        "breast grew\n"  # fmt: skip
    err = format_error(reader(corpus(tmp_path, ann)))
    assert err.line == 2 and Path(err.path).name == "d.ann"
    assert "T2 (Disease) is discontinuous: 'breast' (27-33), 'grew' (41-45)" in str(err)
    assert "dataset.discontinuous=fragments" in str(err)


def test_fragments_in_any_order_and_whitespace_trimmed(tmp_path: Path) -> None:
    cancer, breast = offsets("cancer"), offsets("breast")
    ann = f"T1\tDisease {cancer};{breast}\tcancer breast\nT2\tChemical 0 8\tAspirin \n"
    r = reader(corpus(tmp_path, ann))
    assert mentions(r) == [("Aspirin", "Chemical"), ("breast cancer", "Disease")]
    assert r.repairs == {"train": 1}  # "Aspirin " trimmed


def test_text_that_differs_from_the_offsets(tmp_path: Path) -> None:
    ann = "T1\tChemical 0 7\tAspirin\nT2\tDisease 16 21\tfevers\n"
    err = format_error(reader(corpus(tmp_path, ann)))
    assert err.line == 2
    assert "annotation text 'fevers' differs from the text at 16 21: 'fever'" in str(err)
    assert "dataset.on_mismatch=skip" in str(err)
    r = reader(corpus(tmp_path, ann), on_mismatch="skip")
    assert mentions(r) == [("Aspirin", "Chemical")] and r.repairs == {"train": 1}


@pytest.mark.parametrize(
    ("ann", "line", "message"),
    [
        ("T1\tChemical 0 7\n", 1, "malformed text-bound annotation"),
        ("T1\tChemical 0-7\tAspirin\n", 1, "malformed text-bound annotation"),
        ("T1\tChemical\tAspirin\n", 1, "malformed text-bound annotation"),
        ("\nX1\tChemical 0 7\tAspirin\n", 2, "not a brat annotation line"),
        ("R1 Treats Arg1:T1 Arg2:T2\n", 1, "not a brat annotation line"),
        ("T1\tChemical 0 7\tAspirin\nT1\tDisease 16 21\tfever\n", 2, "also used on line 1"),
        ("T1\tChemical 0 99\tAspirin\n", 1, "fragment 0-99 is empty or lies outside the text"),
        ("T1\tChemical 7 7\t\n", 1, "fragment 7-7 is empty"),
        ("T1\tChemical 0 7;3 10\tAspirin irin re\n", 1, "fragments 0-7 and 3-10 overlap"),
        ("T1\tChemical 7 8\t \n", 1, "fragment 7-8 covers only whitespace"),
    ],
)
def test_malformed_lines_name_file_and_line(
    tmp_path: Path, ann: str, line: int, message: str
) -> None:
    err = format_error(reader(corpus(tmp_path, ann)))
    assert err.line == line and err.path == str(tmp_path / "train" / "d.ann")
    assert message in str(err)


def test_labels_ignored_types_and_the_configured_types(tmp_path: Path, caplog) -> None:
    ann = f"T1\tChemical 0 7\tAspirin\nT2\tTrigger {offsets('grew')}\tgrew\n"
    folder = corpus(tmp_path, ann, clean="T1\tDrug 0 7\tAspirin\n")
    err = format_error(reader(folder), "devel")
    assert err.path == str(folder / "devel" / "d.ann") and err.line == 1
    assert "label 'Drug' does not occur in the training split" in str(err)
    err = format_error(reader(folder, entity_types=["Chemical"]))
    assert err.line == 2 and "'Trigger' is not one of the configured entity types" in str(err)
    r = reader(folder, entity_types=["Chemical", "Drug"], ignore_types=["Trigger"])
    with caplog.at_level(logging.INFO):
        assert mentions(r) == [("Aspirin", "Chemical")]
    assert "mentions of ignore_types left out: 1 Trigger" in caplog.text
    with pytest.raises(ValueError, match="both entity types and ignore_types"):
        reader(folder, entity_types=["Chemical"], ignore_types=["Chemical"])


def test_overlap_policies(tmp_path: Path) -> None:
    ann = (
        f"T1\tDisease {offsets('breast cancer')}\tbreast cancer\n"
        f"T2\tAnatomy {offsets('breast')}\tbreast\n"
        f"T3\tAnatomy {offsets('breast')}\tbreast\n"  # the same mention twice: read once
    )
    folder = corpus(tmp_path, ann)
    types = ["Anatomy", "Chemical", "Disease"]
    assert mentions(reader(folder, entity_types=types)) == [
        ("breast", "Anatomy"),
        ("breast cancer", "Disease"),
    ]
    r = reader(folder, entity_types=types, overlaps="keep_longest")
    assert mentions(r) == [("breast cancer", "Disease")] and r.repairs == {"train": 1}
    err = format_error(reader(folder, entity_types=types, overlaps="error"))
    assert err.line == 1 and "overlaps mention [27, 33) Anatomy of line 2" in str(err)


def test_missing_files_and_folders(tmp_path: Path) -> None:
    folder = corpus(tmp_path / "c", "")
    (folder / "train" / "e.txt").write_text("Text without annotations.\n")
    err = format_error(reader(folder))
    assert err.path == str(folder / "train" / "e.txt") and "e.ann are missing" in str(err)
    assert "create an empty .ann" in str(err)
    (folder / "train" / "e.txt").unlink()
    (folder / "train" / "f.ann").write_text("")
    err = format_error(reader(folder))
    assert err.path == str(folder / "train" / "f.ann") and "its text f.txt is missing" in str(err)
    (folder / "train" / "f.ann").unlink()
    # Hidden files and folders (a notebook's checkpoints, an editor's backup) are not documents.
    (folder / "train" / ".ipynb_checkpoints").mkdir()
    (folder / "train" / ".ipynb_checkpoints" / "d-checkpoint.txt").write_text("x\n")
    (folder / "train" / ".d.txt").write_text("x\n")
    assert [d.id for d in reader(folder).load("train")] == ["d"]
    for f in (folder / "test").iterdir():
        f.unlink()
    err = format_error(reader(folder), "test")
    assert err.path == str(folder / "test") and "no brat documents" in str(err)
    with pytest.raises(CorpusNotFoundError, match="missing .*nowhere"):
        reader(folder, folders={"train": "train", "devel": "nowhere", "test": "test"}).load("devel")


def test_byte_order_mark_and_other_encodings(tmp_path: Path) -> None:
    # brat counts a BOM as a character: the offsets of a file with one are one further on.
    ann = "T1\tChemical 1 8\tAspirin\n"
    r = reader(corpus(tmp_path, ann, text="\ufeff" + TEXT))
    doc = r.load("train")[0]
    assert doc.text == " " + TEXT and mentions(r) == [("Aspirin", "Chemical")]
    r = reader(corpus(tmp_path / "blank", "", text=" \n"))
    assert r.load("train")[0].text == " \n" and r.load("train")[0].spans == []
    err = format_error(reader(corpus(tmp_path / "latin", "", text="Café\n", encoding="latin-1")))
    assert Path(err.path).name == "d.txt" and "not valid UTF-8" in str(err)


def test_one_folder_dealt_into_splits(fixtures_dir: Path) -> None:
    cfg = compose_config(
        "data",
        [
            "dataset=brat",
            f"dataset.data_dir={fixtures_dir / 'brat'}",
            "dataset.folders.train=.",
            "dataset/split=ratio",
            "dataset.split.source=[train]",
            "dataset.split.ratios=[0.6,0.2,0.2]",
        ],
    )
    r = instantiate(cfg.dataset)
    ids = [d.id for s in ("train", "devel", "test") for d in r.load(s)]
    assert sorted(ids) == sorted(
        ["train/doc01", "train/doc02", "train/doc03", "train/doc05", "train/notes/doc04"]
        + ["devel/doc06", "devel/doc07", "test/doc08", "test/doc09"]
    )


def test_options_are_checked() -> None:
    for key, value in (
        ("sentences", "paragraphs"),
        ("discontinuous", "join"),
        ("overlaps", "nested"),
        ("on_mismatch", "repair"),
    ):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            BratReader("x", "/nowhere", **{key: value})
    with pytest.raises(ValueError, match="folders must name the splits"):
        BratReader("x", "/nowhere", folders={"train": "a"})
