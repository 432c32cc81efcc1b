"""The PubTator reader: BC5CDR-style split files, MedMentions-style PMID splits, every error."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import logging
import shutil
from pathlib import Path

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.document import Span, overlaps
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import PubTatorReader

TITLE = "Cocaine and seizures."
ABSTRACT = "Seizures occurred in users of cocaine. None had epilepsy."
TEXT = f"{TITLE} {ABSTRACT}"
FILES = {"train": "train.txt", "devel": "devel.txt", "test": "test.txt"}
MM_PMIDS = {
    "train": "corpus_pubtator_pmids_trng.txt",
    "devel": "corpus_pubtator_pmids_dev.txt",
    "test": "corpus_pubtator_pmids_test.txt",
}


def mention(pmid: str, phrase: str, label: str, occurrence: int = 0, text: str = TEXT) -> str:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(phrase, start + 1)
    return f"{pmid}\t{start}\t{start + len(phrase)}\t{phrase}\t{label}\tD000001"


def document(pmid: str = "1", *lines: str) -> str:
    return "\n".join([f"{pmid}|t|{TITLE}", f"{pmid}|a|{ABSTRACT}", *lines]) + "\n\n"


CLEAN = document("9", mention("9", "Cocaine", "Chemical"))


def write(folder: Path, train: str, devel: str = CLEAN, test: str = CLEAN) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, content in (("train", train), ("devel", devel), ("test", test)):
        (folder / FILES[split]).write_bytes(content.encode("utf-8"))
    return folder


def reader(folder: Path, **kwargs) -> PubTatorReader:
    kwargs.setdefault("entity_types", ["Chemical", "Disease"])
    return PubTatorReader("test", folder, files=FILES, **kwargs)


def format_error(r: PubTatorReader, split: str = "train") -> CorpusFormatError:
    with pytest.raises(CorpusFormatError) as info:
        r.load(split)
    return info.value


def test_bc5cdr_pubtator_config_reads_the_fixture(fixtures_dir: Path) -> None:
    cfg = compose_config(
        "data", ["dataset=bc5cdr_pubtator", f"dataset.data_dir={fixtures_dir / 'pubtator'}"]
    )
    r = instantiate(cfg.dataset)
    assert isinstance(r, PubTatorReader) and r.entity_types == ["Chemical", "Disease"]
    train = r.load("train")
    assert [d.id for d in train] == ["1000001", "1000002"]
    doc = train[0]
    title = "Lithium-induced nephrogenic diabetes insipidus in a patient with bipolar disorder."
    assert doc.text.startswith(title + " Nephrogenic diabetes insipidus (NDI)")
    assert doc.meta["title_end"] == len(title) and doc.meta["line"] == 1
    assert len(doc.spans) == 12  # the composite 7-column line is read, the CID line ignored
    assert ("renal and hepatic failure", "Disease") in [
        (s.text(doc.text), s.label) for s in doc.spans
    ]
    sentences = [doc.text[s:e] for s, e in doc.sentences]
    assert sentences[0] == title  # the title is a sentence of its own
    assert sentences[1].endswith("lithium therapy, e.g. in long-term use.")  # "e.g." kept
    assert sentences[-1] == "Amiloride improved the NDI, as reported by Smith et al. in 2001."
    assert len(sentences) == 5
    # "5-HT" is annotated inside the token "5-HT6": the words are split there
    doc2 = train[1]
    words = [doc2.word_text(i) for i in range(len(doc2.words))]
    assert words[:6] == ["Serotonin", "5", "-", "HT", "6", "receptor"]
    assert [s.text(doc2.text) for s in doc2.spans][:2] == ["5-HT", "5-HT"]
    assert [d.id for d in r.load("devel")] == ["1000003"]
    assert r.load("test")[0].text.startswith("Haloperidol and tardive dyskinesia Tardive")
    assert r.load("test")[0].sentences[0] == (0, 34)  # forced title boundary, no full stop


def test_evaluation_text_is_segmented_without_the_gold_spans(
    fixtures_dir: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    from bioner.data.alignment import Alignment
    from bioner.data.datamodule import NERDataModule
    from bioner.data.document import GOLD_FREE_WORDS
    from bioner.inference.formats import write_conll
    from bioner.models.encoders import HubEncoder

    cfg = compose_config(
        "data", ["dataset=bc5cdr_pubtator", f"dataset.data_dir={fixtures_dir / 'pubtator'}"]
    )
    reader = instantiate(cfg.dataset)
    doc = reader.load("train")[1]
    view = reader.evaluation_document(doc)
    # "5-HT" inside "5-HT6" no longer splits the word: the model must find the boundary itself.
    assert [view.word_text(i) for i in range(5)] == ["Serotonin", "5", "-", "HT6", "receptor"]
    assert view.spans == doc.spans and view.meta[GOLD_FREE_WORDS] and view.text == doc.text
    assert view.sentences[0] == doc.sentences[0]  # the title still ends a sentence
    assert not doc.meta.get(GOLD_FREE_WORDS)  # the training document is unchanged
    # The datamodule serves scored splits so and training as the corpus reads it; labels and
    # CoNLL gold columns snap a gold span to the words it overlaps.
    tokenizer = HubEncoder(str(tiny_model_dir), name="tiny").load_tokenizer()
    dm = NERDataModule(reader, Alignment(), tokenizer)
    for split in ("devel", "test"):
        assert all(d.meta[GOLD_FREE_WORDS] for d in dm.encoded(split).docs)
        assert all(f.labels is not None for f in dm.encoded(split).features)
    assert not any(d.meta.get(GOLD_FREE_WORDS) for d in dm.encoded("train").docs)
    lines = "".join(write_conll(tmp_path / "x.conll", [view], [[]]).read_text())
    assert "5\tB-Chemical\tO\n-\tI-Chemical\tO\nHT6\tI-Chemical\tO\n" in lines


def test_crlf_bom_and_missing_final_blank_line(tmp_path: Path) -> None:
    content = document("1", mention("1", "seizures", "Disease")).rstrip("\n")
    crlf = "\ufeff" + content.replace("\n", "\r\n")
    lf_doc = reader(write(tmp_path / "lf", content)).load("train")[0]
    crlf_doc = reader(write(tmp_path / "crlf", crlf)).load("train")[0]
    assert (crlf_doc.text, crlf_doc.spans, crlf_doc.words) == (
        lf_doc.text,
        lf_doc.spans,
        lf_doc.words,
    )
    assert lf_doc.text == TEXT


def test_offsets_that_do_not_match_the_text(tmp_path: Path) -> None:
    bad = document("1", mention("1", "Cocaine", "Chemical"), "1\t0\t7\tcocaine\tChemical\tD1")
    err = format_error(reader(write(tmp_path, bad)))
    assert err.line == 4 and err.path.endswith("train.txt")
    assert "'cocaine' differs from the text at 0-7: 'Cocaine'" in err.problem


def test_offsets_outside_the_text(tmp_path: Path) -> None:
    bad = document("1", f"1\t70\t{len(TEXT) + 1}\tx\tChemical\tD1")
    err = format_error(reader(write(tmp_path, bad)))
    assert err.line == 3 and "outside the text" in err.problem


@pytest.mark.parametrize(
    "line",
    [
        "1\t0\tseven\tCocaine\tChemical\tD1",  # end is no integer
        "1\t0\t7\tCocaine",  # too few fields
        "1\t0\t7\tCocaine\tChemical\tD1\tx\ty",  # too many fields
        "1\tCID",  # nothing PubTator knows
    ],
)
def test_malformed_annotation_lines(tmp_path: Path, line: str) -> None:
    err = format_error(reader(write(tmp_path, document("1", line))))
    assert err.line == 3


def test_mention_of_another_pmid(tmp_path: Path) -> None:
    err = format_error(reader(write(tmp_path, document("1", mention("2", "Cocaine", "Chemical")))))
    assert err.line == 3 and "PMID 2" in err.problem


def test_mention_with_whitespace_edges_or_across_the_title(tmp_path: Path) -> None:
    edge = document("1", "1\t7\t11\t and\tChemical\tD1")
    assert "whitespace" in format_error(reader(write(tmp_path / "a", edge))).problem
    seam = TEXT.index("seizures. Seizures")
    across = document("1", f"1\t{seam}\t{seam + 18}\tseizures. Seizures\tDisease\tD1")
    err = format_error(reader(write(tmp_path / "b", across)))
    assert err.line == 3 and "from the title into the abstract" in err.problem


def test_structure_errors(tmp_path: Path) -> None:
    no_abstract = f"1|t|{TITLE}\n\n"
    assert "no abstract" in format_error(reader(write(tmp_path / "a", no_abstract))).problem
    orphan = f"1|a|{ABSTRACT}\n\n"
    assert format_error(reader(write(tmp_path / "b", orphan))).line == 1
    twice = document("1") + document("1")
    err = format_error(reader(write(tmp_path / "c", twice)))
    assert err.line == 4 and "already began a document at line 1" in err.problem
    stray = "just some text\n"
    assert format_error(reader(write(tmp_path / "d", stray))).line == 1
    empty = format_error(reader(write(tmp_path / "e", "")))
    assert empty.line is None and "empty" in empty.problem


def test_label_outside_configured_types(tmp_path: Path) -> None:
    err = format_error(reader(write(tmp_path, document("1", mention("1", "Cocaine", "Drug")))))
    assert err.line == 3 and "'Drug'" in err.problem


NESTED_AND_CROSSING = document(
    "1",
    mention("1", "users of cocaine", "Disease"),
    mention("1", "cocaine", "Chemical", 1, TEXT.lower()),  # nested in the one above
    mention("1", "Cocaine and", "Chemical"),
    mention("1", "and seizures", "Disease"),  # crosses the one above
)


def test_overlapping_mentions_are_kept_and_counted_by_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    r = reader(write(tmp_path, NESTED_AND_CROSSING))
    with caplog.at_level(logging.INFO):
        doc = r.load("train")[0]
    assert [s.text(doc.text) for s in doc.spans] == [
        "Cocaine and",
        "and seizures",
        "users of cocaine",
        "cocaine",
    ]
    assert r.repairs == {}
    assert "1 nested, 2 crossing, 0 same extent" in caplog.text
    doc.validate()  # every span on word boundaries, inside one sentence
    scored = r.evaluation_document(doc)
    assert scored.spans == doc.spans


def test_overlapping_mentions_are_an_error_on_request(tmp_path: Path) -> None:
    content = document(
        "1",
        mention("1", "users of cocaine", "Disease"),
        mention("1", "cocaine", "Chemical", 1, TEXT.lower()),
    )
    err = format_error(reader(write(tmp_path, content), overlaps="error"))
    assert err.line == 4 and "overlaps mention" in err.problem and "line 3" in err.problem
    assert "overlaps=keep " in err.fix and "keep_longest" in err.fix


def test_keep_longest_drops_counts_and_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    content = document(
        "1",
        mention("1", "Cocaine", "Chemical"),
        mention("1", "Cocaine and", "Chemical"),  # the longest of a group of three
        mention("1", "and", "Disease"),
        mention("1", "users of cocaine", "Disease"),
        mention("1", "cocaine", "Chemical", 1, TEXT.lower()),  # nested in the one above
        mention("1", "epilepsy", "Disease"),
    )
    r = reader(write(tmp_path, content), overlaps="keep_longest")
    with caplog.at_level(logging.WARNING):
        doc = r.load("train")[0]
    assert [s.text(doc.text) for s in doc.spans] == ["Cocaine and", "users of cocaine", "epilepsy"]
    assert r.repairs == {"train": 3}
    assert "3 overlapping mentions dropped" in caplog.text


def test_exact_duplicate_mentions_are_read_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    line = mention("1", "Cocaine", "Chemical")
    with caplog.at_level(logging.WARNING):
        doc = reader(write(tmp_path, document("1", line, line))).load("train")[0]
    assert len(doc.spans) == 1
    assert "1 exact duplicate mention lines" in caplog.text


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        PubTatorReader("x", ".", files=FILES, overlaps="merge")
    with pytest.raises(ValueError, match="either"):
        PubTatorReader("x", ".", files=FILES, corpus="c.txt", pmids=MM_PMIDS)
    with pytest.raises(ValueError, match="either"):
        PubTatorReader("x", ".", corpus="c.txt")


def medmentions(folder: Path, gz: bool = True) -> Path:
    """The synthetic MedMentions-style fixture, copied to ``folder`` (gzipped like the release)."""
    src = Path(__file__).resolve().parent.parent / "fixtures" / "pubtator" / "medmentions"
    shutil.copytree(src, folder)
    if gz:
        corpus = folder / "corpus_pubtator.txt"
        (folder / "corpus_pubtator.txt.gz").write_bytes(gzip.compress(corpus.read_bytes()))
        corpus.unlink()
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_medmentions_config_splits_by_pmid_lists(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, gz: bool
) -> None:
    folder = medmentions(tmp_path / "mm", gz)
    cfg = compose_config("data", ["dataset=medmentions_st21pv", f"dataset.data_dir={folder}"])
    r = instantiate(cfg.dataset)
    assert len(r.entity_types) == 21 and r.entity_types[0] == "T005"
    with caplog.at_level(logging.WARNING):
        ids = {split: [d.id for d in r.load(split)] for split in r.splits}
    assert ids == {"train": ["2000001", "2000002"], "devel": ["2000003"], "test": ["2000004"]}
    assert "1 documents of the corpus are in no split list" in caplog.text
    assert "1 of 5 listed PMIDs are not in the corpus file" in caplog.text
    doc = r.load("train")[1]
    assert [(s.text(doc.text), s.label) for s in doc.spans][:3] == [
        ("Gut", "T017"),
        ("bacteria", "T007"),
        ("obesity", "T033"),
    ]


def test_medmentions_pmid_in_two_splits(tmp_path: Path) -> None:
    folder = medmentions(tmp_path / "mm")
    (folder / MM_PMIDS["test"]).write_text("2000004\n2000001\n")
    r = PubTatorReader("mm", folder, corpus="corpus_pubtator.txt", pmids=MM_PMIDS)
    err = format_error(r)
    assert err.line == 2 and err.path.endswith("corpus_pubtator_pmids_test.txt")
    assert "corpus_pubtator_pmids_trng.txt:1" in err.problem


def test_inferred_types_reject_a_devel_type_unseen_in_train(tmp_path: Path) -> None:
    folder = medmentions(tmp_path / "mm")
    r = PubTatorReader("mm", folder, corpus="corpus_pubtator.txt.gz", pmids=MM_PMIDS)
    assert "T170" not in r.entity_types and "T005" in r.entity_types
    err = format_error(r, "devel")
    assert "label 'T170' does not occur in the training split" in err.problem
    assert err.path.endswith("corpus_pubtator.txt.gz") and err.line == 25


def test_broken_gzip(tmp_path: Path) -> None:
    folder = medmentions(tmp_path / "mm")
    (folder / "corpus_pubtator.txt.gz").write_bytes(b"not gzip at all")
    r = PubTatorReader("mm", folder, corpus="corpus_pubtator.txt.gz", pmids=MM_PMIDS)
    assert "gzip" in format_error(r).problem


def test_medmentions_format_sample(shared_data: Path) -> None:
    """The 3-document ST21pv sample (not the corpus) read with the official PMID lists."""
    folder = shared_data / "medmentions_splits_only"
    cfg = compose_config(
        "data",
        [
            "dataset=medmentions_st21pv",
            f"dataset.data_dir={folder}",
            "dataset.corpus=FORMAT_SAMPLE_st21pv_3docs_NOT_THE_CORPUS.txt",
        ],
    )
    r = instantiate(cfg.dataset)
    docs = {split: r.load(split) for split in r.splits}
    assert [d.id for d in docs["train"]] == ["25763772", "26316050"]
    assert docs["devel"] == []
    assert [d.id for d in docs["test"]] == ["25847295"]
    assert sum(len(d.spans) for split in docs.values() for d in split) == 115
    first = docs["train"][0]
    assert first.spans[0] == Span(0, 5, "T103")
    assert first.spans[0].text(first.text) == "DCTN4"
    for split in docs.values():
        for doc in split:
            doc.validate()
            assert len(doc.sentences) > 3


# The synthetic 50-document release (tests/fixtures/make_medmentions.py writes it).
RELEASE = Path(__file__).resolve().parent.parent / "fixtures" / "pubtator" / "medmentions_release"


def release_reader(**overrides: str) -> PubTatorReader:
    cfg = compose_config(
        "data",
        [
            "dataset=medmentions_st21pv",
            f"dataset.data_dir={RELEASE}",
            *(f"dataset.{k}={v}" for k, v in overrides.items()),
        ],
    )
    return instantiate(cfg.dataset)


def release_mentions() -> dict[str, list[tuple[int, int, str, str]]]:
    """Every mention line of the fixture, parsed independently of the reader."""
    found: dict[str, list[tuple[int, int, str, str]]] = {}
    for line in (RELEASE / "corpus_pubtator.txt").read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 6:
            found.setdefault(fields[0], []).append(
                (int(fields[1]), int(fields[2]), fields[4], fields[3])
            )
    return found


def test_release_fixture_loads_every_mention_with_the_default_config(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = release_reader()
    with caplog.at_level(logging.INFO):
        docs = {split: r.load(split) for split in r.splits}
    assert {s: len(d) for s, d in docs.items()} == {"train": 30, "devel": 10, "test": 10}
    # Official lists: each document sits in the split whose list names it.
    for split, name in MM_PMIDS.items():
        listed = set((RELEASE / name).read_text().split())
        assert {d.id for d in docs[split]} <= listed, split
    assert "4342 of 4392 listed PMIDs are not in the corpus file" in caplog.text
    assert "nested" in caplog.text and "crossing" in caplog.text
    expected = release_mentions()
    edges = {"title start": 0, "title end": 0, "abstract start": 0, "text end": 0}
    kinds = dict.fromkeys(("nested", "crossing", "same_extent"), 0)
    for doc in (d for split in docs.values() for d in split):
        doc.validate()
        got = [(s.start, s.end, s.label, s.text(doc.text)) for s in doc.spans]
        assert got == sorted(expected[doc.id]), doc.id  # every mention, none dropped
        title_end = doc.meta["title_end"]
        assert any(e == title_end for _, e in doc.sentences)  # the title ends a sentence
        edges["title start"] += any(s.start == 0 for s in doc.spans)
        edges["title end"] += any(s.end == title_end for s in doc.spans)
        edges["abstract start"] += any(s.start == title_end + 1 for s in doc.spans)
        edges["text end"] += any(s.end == len(doc.text) for s in doc.spans)
        for kind, n in overlaps(doc.spans).items():
            kinds[kind] += n
    assert all(edges.values()), edges
    assert all(kinds.values()), kinds


def test_release_fixture_pmid_lists_are_the_official_ones() -> None:
    cfg = compose_config("data", ["dataset=medmentions_st21pv"])
    for entry in cfg.dataset.download:
        if "pmids" in entry.path:
            digest = hashlib.sha256((RELEASE / entry.path).read_bytes()).hexdigest()
            assert digest == entry.sha256, entry.path


def test_release_fixture_is_what_its_script_writes(tmp_path: Path) -> None:
    script = RELEASE.parent.parent / "make_medmentions.py"
    spec = importlib.util.spec_from_file_location("make_medmentions", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(RELEASE, tmp_path)
    name = "corpus_pubtator.txt"
    assert (tmp_path / name).read_bytes() == (RELEASE / name).read_bytes()


@pytest.mark.parametrize("policy", ["keep_longest", "error"])
def test_release_fixture_under_the_other_policies(policy: str) -> None:
    r = release_reader(overlaps=policy)
    if policy == "error":
        err = format_error(r)
        assert "overlaps mention" in err.problem and err.path.endswith("corpus_pubtator.txt")
        return
    docs = r.load("train")
    kept = sum(len(d.spans) for d in docs)
    listed = {d.id for d in docs}
    total = sum(len(m) for pmid, m in release_mentions().items() if pmid in listed)
    assert r.repairs == {"train": total - kept} and total > kept
    assert all(not any(overlaps(d.spans).values()) for d in docs)
