"""PubMed XML input (``input_format=pubmed``): text layout, markup, deleted and broken records."""

from __future__ import annotations

import gc
import gzip
import importlib.util
import json
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bioner.inference.formats import PubTatorWriter
from bioner.inference.inputs import detect_format, read_inputs, read_pubtator
from bioner.inference.pubmed import PubMedReader
from bioner.inference.run import predict_files
from bioner.inference.tagger import make_document

_spec = importlib.util.spec_from_file_location(
    "pubmed_xml", Path(__file__).resolve().parents[1] / "fixtures" / "pubmed_xml.py"
)
pubmed_xml = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pubmed_xml)

STRUCTURED = (
    "101",
    "Effects of <i>N</i>-acetylcysteine on Na<sup>+</sup>/K<sup>+</sup>-ATPase\n   in rats",
    [
        ("BACKGROUND", "Cisplatin causes <b>renal</b> failure."),
        ("METHODS", "Rats got 5 mg/kg\n        CO<sub>2</sub>&#160;in water &amp; saline."),
        ("RESULTS", "Creatinine rose (<i>p</i>&lt;0.05)."),
    ],
)
NO_ABSTRACT = ("102", "[Naloxone in shock].", None)
UNLABELLED = (
    "103",
    "Clonidine and   hypotension.",
    [(None, "Clonidine <u>lowers</u> blood pressure.")],
)
TEXTS = {
    "101": "Effects of N-acetylcysteine on Na+/K+-ATPase in rats BACKGROUND: Cisplatin causes "
    "renal failure. METHODS: Rats got 5 mg/kg CO2\u00a0in water & saline. RESULTS: Creatinine rose "
    "(p<0.05).",
    "102": "[Naloxone in shock].",
    "103": "Clonidine and hypotension. Clonidine lowers blood pressure.",
}
TITLES = {
    "101": "Effects of N-acetylcysteine on Na+/K+-ATPase in rats",
    "102": "[Naloxone in shock].",
    "103": "Clonidine and hypotension.",
}


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    """A folder as a baseline download looks: two good files (one an update file with a
    DeleteCitation), one truncated .xml.gz, one malformed .xml, and the .md5 files beside."""
    folder = tmp_path / "baseline"
    folder.mkdir()
    pubmed_xml.write_pubmed(folder / "pubmed26n0001.xml.gz", [STRUCTURED, NO_ABSTRACT])
    many = [
        pubmed_xml.plain_article(str(200 + i), f"Title {i}.", f"Aspirin {i}. " * 300)
        for i in range(30)
    ]
    full = pubmed_xml.pubmed_xml(many).encode()
    cut = len(gzip.compress(full)) * 2 // 3
    pubmed_xml.write_pubmed(folder / "pubmed26n0002.xml.gz", many, keep_bytes=cut)
    pubmed_xml.write_pubmed(
        folder / "pubmed26n0003.xml",
        [UNLABELLED],
        extra="  <PubmedArticle><Oops></PubmedArticle>\n",
    )
    pubmed_xml.write_pubmed(folder / "pubmed26n0004.xml", [UNLABELLED], deleted=["7", "8"])
    (folder / "pubmed26n0001.xml.gz.md5").write_text("MD5(pubmed26n0001.xml.gz)= 0\n")
    return folder


def test_layout_is_pubtators_with_labels_markup_dropped_and_space_collapsed(
    tmp_path: Path,
) -> None:
    path = pubmed_xml.write_pubmed(tmp_path / "a.xml", [STRUCTURED, NO_ABSTRACT, UNLABELLED])
    assert detect_format(path) == "pubmed"
    records = list(read_inputs(path))
    assert [r.id for r in records] == ["101", "102", "103"]
    for r in records:
        assert r.text == TEXTS[r.id]
        title = TITLES[r.id]
        assert r.meta["title_end"] == len(title) and r.text.startswith(title)
        # The title/abstract seam is a forced sentence boundary, as for PubTator input.
        assert r.forced == ([len(title)] if r.text != title else [])
    # Written as PubTator and read back: the same text, title and abstract on their own lines.
    out = tmp_path / "a.pubtator"
    with out.open("w", encoding="utf-8") as stream, PubTatorWriter(stream) as writer:
        for r in records:
            doc = make_document(r.text, r.id, r.forced)
            doc.meta.update(r.meta)
            writer.write(doc, [])
    assert [(r.id, r.text, r.forced) for r in read_pubtator(out)] == [
        (r.id, r.text, r.forced) for r in records
    ]
    assert "101|t|Effects of N-acetylcysteine on Na+/K+-ATPase in rats\n" in out.read_text()


def test_a_folder_reads_every_file_skips_deleted_and_counts_broken_files(
    baseline: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert detect_format(baseline) == "pubmed"
    reader = read_inputs(baseline)
    with caplog.at_level(logging.ERROR):
        records = list(reader)
    ids = [r.id for r in records]
    # File 2 breaks off inside its gzip stream: the records before the cut are read.
    truncated = [i for i in ids if i.startswith("2")]
    assert 0 < len(truncated) < 30 and truncated == [str(200 + i) for i in range(len(truncated))]
    assert ids == ["101", "102", *truncated, "103", "103"]
    assert reader.deleted == 2
    assert [(Path(f.path).name, f.records) for f in reader.failures] == [
        ("pubmed26n0002.xml.gz", len(truncated)),
        ("pubmed26n0003.xml", 1),
    ]
    gz, xml = (f.message for f in reader.failures)
    assert f"after PMID {truncated[-1]}" in gz and "gzip stream is cut" in gz
    assert "pubmed26n0003.xml:" in xml and "after PMID 103" in xml and "malformed" in xml
    assert "download the file again" in xml
    assert [r.message for r in caplog.records if r.levelno == logging.ERROR] == [gz, xml]


def test_the_run_goes_on_past_broken_files_and_counts_them(
    baseline: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Echo:
        """A tagger stand-in that tags every word of four letters or more as a Word."""

        def predict_stream(self, records):
            from bioner.data.document import Span

            for r in records:
                doc = make_document(r.text, r.id, r.forced)
                doc.meta.update(r.meta)
                spans = [Span(a, b, "Word") for a, b in doc.words if b - a >= 4]
                yield doc, spans

    out = tmp_path / "out.jsonl"
    with caplog.at_level(logging.WARNING):
        summary = predict_files(Echo(), baseline, out)
    assert summary["failed_files"] == 2
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert summary["documents"] == len(lines) > 4
    assert "2 input file(s) could not be read to the end" in caplog.text
    # Offsets index the laid-out text.
    for line in lines:
        for span in line["spans"]:
            assert line["text"][span["start"] : span["end"]] == span["text"]


def test_hostile_and_foreign_xml_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xml"
    bomb.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [\n <!ENTITY a "aaaaaaaaaa">\n'
        ' <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n]>\n'
        "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>"
        "<ArticleTitle>&b;</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
        "</PubmedArticleSet>\n",
        encoding="utf-8",
    )
    external = tmp_path / "external.xml"
    external.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet SYSTEM "file:///etc/passwd">\n'
        "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>2</PMID><Article>"
        "<ArticleTitle>&passwd;</ArticleTitle></Article></MedlineCitation></PubmedArticle>"
        "</PubmedArticleSet>\n",
        encoding="utf-8",
    )
    other = tmp_path / "bioc.xml"
    other.write_text("<?xml version='1.0'?>\n<collection><document/></collection>\n")
    reader = PubMedReader([bomb, external, other])
    assert list(reader) == []
    bomb_error, external_error, other_error = (f.message for f in reader.failures)
    assert bomb_error.startswith(f"{bomb}:3: the file declares XML entities")
    # The DTD is not fetched, so the entity it would define stays undefined.
    assert "undefined entity" in external_error
    assert "root element is <collection>, not <PubmedArticleSet>" in other_error
    with pytest.raises(ValueError, match="not -"):
        read_inputs("-", "pubmed")


def test_reading_is_incremental(tmp_path: Path) -> None:
    """Records come out while the file is read and are cleared after use: the reader holds the
    elements of one chunk of the file at a time, not the tree of the file."""
    many = [pubmed_xml.plain_article(str(i), f"T{i}.", "Word " * 200) for i in range(3000)]
    path = pubmed_xml.write_pubmed(tmp_path / "big.xml.gz", many)
    stream = iter(PubMedReader([path]))

    def live_elements() -> int:
        gc.collect()
        return sum(type(o) is ET.Element for o in gc.get_objects())

    before = live_elements()
    peak = 0
    for i, record in enumerate(stream):
        assert record.id == str(i)
        if i % 500 == 0:
            peak = max(peak, live_elements() - before)
    assert i == 2999
    whole = 3000 * pubmed_xml.article_xml("1", "T.", [(None, "x")]).count("</")
    assert 0 < peak < whole / 20


def test_bad_names_and_formats_in_read_inputs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no .xml or .xml.gz files"):
        list(read_inputs(empty, "pubmed"))
    blank = tmp_path / "blank.xml"
    blank.write_bytes(b"")
    reader = read_inputs(blank)
    assert list(reader) == [] and "no element found" in reader.failures[0].message
