"""Raw-text inputs (lines, text, folder, JSONL, PubTator, stdin) and tagger outputs (JSONL,
PubTator, BioC, CoNLL): exact text, exact offsets, round trips, clear errors."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from bioner.data.document import Document, Span
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import BioCReader, BratReader, PubTatorReader
from bioner.data.tags import tags_to_spans
from bioner.errors import ConfigError
from bioner.inference.formats import (
    OUTPUT_FORMATS,
    BratWriter,
    open_writer,
    read_jsonl,
    text_matches_hash,
    text_sha256,
    write_jsonl,
    write_text_free_jsonl,
)
from bioner.inference.inputs import TextRecord, detect_format, read_inputs
from bioner.inference.run import check_output_folder, open_output_folder
from bioner.inference.tagger import make_document

# ---------------------------------------------------------------------- inputs


def test_lines_keep_text_exactly(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    lines = ["First\tdoc \u2028 with a form\x0cfeed", "", "CRLF line  ", "lone\rreturn", "last"]
    raw = "\ufeff" + lines[0] + "\r\n" + "\n".join(lines[1:])  # BOM, CRLF, no final newline
    path.write_bytes(raw.encode("utf-8"))
    records = list(read_inputs(path))
    assert [r.text for r in records] == lines  # empty lines are documents; \u2028, \r stay text
    assert [r.id for r in records] == ["1", "2", "3", "4", "5"]
    path.write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(CorpusFormatError, match=r"in.txt:2: not valid UTF-8"):
        list(read_inputs(path))


def test_text_folder_jsonl_and_pubtator_inputs(tmp_path: Path) -> None:
    whole = tmp_path / "note.txt"
    whole.write_bytes("Line one.\r\n\r\nLine two\u00a0x.\n".encode())
    [note] = read_inputs(whole, "text")
    assert note.id == "note" and note.text == "Line one.\r\n\r\nLine two\u00a0x.\n"

    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("Bee.", encoding="utf-8")
    (folder / "sub" / "a.txt").write_text("A\r\nfile.", encoding="utf-8", newline="")
    (folder / "skip.md").write_text("not a document")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "b-checkpoint.txt").write_text("Old bee.")
    (folder / ".b.txt").write_text("An editor's copy.")
    assert [(r.id, r.text) for r in read_inputs(folder)] == [("b", "Bee."), ("sub/a", "A\r\nfile.")]

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"id": "x1", "text": "a\\r\\nb"}\n\n{"text": "no id"}\n', encoding="utf-8")
    assert [(r.id, r.text) for r in read_inputs(jsonl)] == [("x1", "a\r\nb"), ("3", "no id")]
    jsonl.write_text('{"id": "x1", "txt": "a"}\n', encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"in.jsonl:1: no string field 'text'"):
        list(read_inputs(jsonl))

    pubtator = tmp_path / "abstracts.txt"
    pubtator.write_text(
        "1|t|Naloxone and clonidine.\n1|a|Hypotension was seen.\n"
        "1\t0\t8\tNaloxone\tChemical\tD009270\n\n2|t|Only a title\n2|a|\n",
        encoding="utf-8",
    )
    assert detect_format(pubtator) == "pubtator"
    first, second = read_inputs(pubtator)
    assert first.text == "Naloxone and clonidine. Hypotension was seen."
    assert first.forced == [23] and first.meta["title_end"] == 23
    assert second.text == "Only a title" and second.forced == []
    pubtator.write_text("1|t|Title only\n\n2|t|x\n2|a|y\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"abstracts.txt:1: document 1 has a title but no"):
        list(read_inputs(pubtator))

    with pytest.raises(ValueError, match="input_format=folder"):
        read_inputs(whole, "folder")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_inputs(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="choose one of"):
        read_inputs(whole, "docx")


def test_stdin_is_read_as_bytes_split_at_newlines() -> None:
    code = (
        "from bioner.inference.inputs import read_inputs\nprint([r.text for r in read_inputs('-')])"
    )
    data = "a\u2028b\r\nc\rd\n\n".encode()
    out = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, check=True)
    assert out.stdout.decode().strip() == repr(["a\u2028b", "c\rd", ""])


# ---------------------------------------------------------------------- outputs


def documents() -> list[tuple]:
    """Documents with spans and tricky text: tabs, CRLF, XML specials, a title/abstract seam."""
    texts = [
        ("d1", "Naloxone <reverses> & clonidine\t(CLO) hypotension.\r\nRats & mice.", {}),
        ("d2", "", {}),
        ("d3", "Cisplatin nephrotoxicity. Renal \u03b1-failure 😀 follows.", {"title_end": 25}),
    ]
    out = []
    for doc_id, text, meta in texts:
        doc = make_document(text, doc_id, [meta["title_end"]] if meta else [])
        doc.meta.update(meta)
        spans = []
        for k, (a, b) in enumerate(doc.words):
            if k % 3 == 0:  # every third word, two-word spans now and then
                end = doc.words[k + 1][1] if k % 2 and k + 1 < len(doc.words) else b
                spans.append(Span(a, end, ["Chemical", "Disease"][k % 2], 0.5 + k / 100))
        spans = [s for i, s in enumerate(spans) if i == 0 or spans[i - 1].end <= s.start]
        spans[0:1] = [replace(spans[0], id="D009270")] if spans else []
        out.append((doc, spans))
    return out


def write(fmt: str, docs: list[tuple]) -> str:
    stream = io.StringIO(newline="")
    with open_writer(fmt, stream) as writer:
        for doc, spans in docs:
            writer.write(doc, spans)
    assert writer.documents == len(docs)
    return stream.getvalue()


def test_jsonl_output_round_trips_and_is_valid_input(tmp_path: Path) -> None:
    docs = documents()
    path = tmp_path / "out.jsonl"
    path.write_text(write("jsonl", docs), encoding="utf-8", newline="")
    for line, (doc, spans) in zip(path.read_text(encoding="utf-8").splitlines(), docs):
        record = json.loads(line)
        assert record["id"] == doc.id and record["text"] == doc.text
        # The output format of the tagger: text, type, score, and id only when set.
        assert record["spans"] == [
            {
                "start": s.start,
                "end": s.end,
                "text": doc.text[s.start : s.end],
                "type": s.label,
                "score": round(s.score, 6),
                **({"id": s.id} if s.id is not None else {}),
            }
            for s in spans
        ]
    assert [(r.id, r.text) for r in read_inputs(path)] == [(d.id, d.text) for d, _ in docs]


def test_text_free_predictions_are_compact_and_read_back(tmp_path: Path) -> None:
    """A kept predictions file: gzipped, no text or gold, spans as arrays, a 16-digit hash
    prefix, the same bytes for the same predictions; read back with ``text`` None."""
    docs = [
        Document("d1", "Selegiline-induced seizures.", [Span(0, 10, "Chemical")]),
        Document("d2", "Naloxone \u00e9 reverses.", []),
    ]
    predicted = [[Span(0, 10, "Chemical"), Span(19, 27, "Disease")], []]
    source = write_jsonl(tmp_path / "test.jsonl", docs, predicted)
    kept = write_text_free_jsonl(source, tmp_path / "kept" / "test.jsonl.gz")
    lines = gzip.decompress(kept.read_bytes()).decode().splitlines()
    assert lines[0] == (
        f'{{"id":"d1","text_sha256":"{text_sha256(docs[0].text)[:16]}",'
        '"spans":[[0,10,"Chemical"],[19,27,"Disease"]]}'
    )
    records = read_jsonl(kept)
    assert [(r["id"], r["text"], r["spans"]) for r in records] == [
        ("d1", None, predicted[0]),
        ("d2", None, []),
    ]
    assert all(text_matches_hash(d.text, r["text_sha256"]) for d, r in zip(docs, records))
    assert not text_matches_hash(docs[1].text, records[0]["text_sha256"])
    assert not text_matches_hash(docs[0].text, records[0]["text_sha256"][:8])  # too short
    # Copying a kept file keeps its bytes; a plain name is written uncompressed.
    again = write_text_free_jsonl(kept, tmp_path / "again.jsonl.gz")
    assert again.read_bytes() == kept.read_bytes()
    plain = write_text_free_jsonl(kept, tmp_path / "plain.jsonl")
    assert plain.read_text().splitlines() == lines
    # Files kept before the compact form (the full hash, spans as objects) still read.
    old = tmp_path / "old.jsonl"
    old.write_text(
        json.dumps(
            {
                "id": "d1",
                "text_sha256": text_sha256(docs[0].text),
                "spans": [{"start": 0, "end": 10, "label": "Chemical"}],
            }
        )
        + "\n"
    )
    (record,) = read_jsonl(old)
    assert record["spans"] == [Span(0, 10, "Chemical")]
    assert text_matches_hash(docs[0].text, record["text_sha256"])


def test_unreadable_predictions_files_name_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "test.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"test\.jsonl\.gz: not a readable predictions file"):
        read_jsonl(broken)
    damaged = bytearray(gzip.compress(b'{"id":"a"}\n' * 50))
    damaged[15] ^= 0xFF  # the deflate stream, not the header
    damaged[20] ^= 0xFF
    broken.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"test\.jsonl\.gz: not a readable predictions file"):
        read_jsonl(broken)
    short = tmp_path / "short.jsonl.gz"
    short.write_bytes(gzip.compress(b'{"id": "a", "text_sha256": "ab", "spans": [[0, 1]]}\n'))
    with pytest.raises(ValueError, match=r"short\.jsonl\.gz:1: .*is not \[start, end, label\]"):
        read_jsonl(short)


def test_pubtator_output_is_read_back_by_the_corpus_reader(tmp_path: Path) -> None:
    docs = documents()
    text = write("pubtator", docs)
    for split in ("train", "devel", "test"):
        (tmp_path / f"{split}.txt").write_text(text, encoding="utf-8", newline="")
    reader = PubTatorReader(
        "out", tmp_path, None, files={s: f"{s}.txt" for s in ("train", "devel", "test")}
    )
    read = reader.load("test")  # validates every mention's text against the offsets
    assert [d.id for d in read] == [d.id for d, _ in docs]
    for back, (doc, spans) in zip(read, docs):
        assert [(s.start, s.end, s.label) for s in back.spans] == [
            (s.start, s.end, s.label) for s in spans
        ]
        # Line breaks and tabs became spaces one for one; everything else is the text.
        assert back.text.rstrip(" ") == doc.text.replace("\t", " ").replace("\r\n", "  ")
    # Documents read from PubTator come back with their title and abstract lines.
    assert "d3|t|Cisplatin nephrotoxicity.\nd3|a|Renal" in text
    assert "\tD009270\n" in text
    # PubTator input -> the same text again.
    (tmp_path / "again.pubtator").write_text(text, encoding="utf-8")
    third = list(read_inputs(tmp_path / "again.pubtator"))[2]
    assert third.text == docs[2][0].text and third.forced == [25]
    with pytest.raises(ValueError, match="cannot be a PubTator id"):
        write("pubtator", [(make_document("x", "a|b"), [])])


def test_bioc_output_parses_with_exact_text_and_offsets() -> None:
    docs = documents()
    root = ET.fromstring(write("bioc", docs).encode("utf-8"))
    assert root.tag == "collection"
    for element, (doc, spans) in zip(root.findall("document"), docs):
        assert element.findtext("id") == doc.id
        passages = element.findall("passage")
        # A title (d3, read from PubTator) is a passage of its own, the abstract one after it.
        assert len(passages) == (2 if "title_end" in doc.meta else 1)
        text = " ".join(p.findtext("text") or "" for p in passages)
        assert [int(p.findtext("offset")) for p in passages] == [0, 26][: len(passages)]
        assert text == doc.text  # "\r" survives as a character reference, & and < escaped
        annotations = [a for p in passages for a in p.findall("annotation")]
        assert len(annotations) == len(spans)
        for a, s in zip(annotations, spans):
            location = a.find("location")
            start, length = int(location.get("offset")), int(location.get("length"))
            assert (start, start + length) == (s.start, s.end)
            assert text[start : start + length] == a.findtext("text") == s.text(doc.text)
            infons = {i.get("key"): i.text for i in a.findall("infon")}
            assert infons["type"] == s.label and float(infons["score"]) == pytest.approx(s.score)
            assert infons.get("identifier") == s.id
    with pytest.raises(ValueError, match="cannot be written in XML"):
        write("bioc", [(make_document("bad \x0b char", "x"), [])])


def test_bioc_output_is_read_back_by_the_corpus_reader(tmp_path: Path) -> None:
    docs = documents()
    for split in ("train", "devel", "test"):
        (tmp_path / f"{split}.xml").write_text(write("bioc", docs), encoding="utf-8")
    read = BioCReader("out", tmp_path).load("test")  # checks every annotation's text
    assert [(d.id, d.text) for d in read] == [(d.id, d.text) for d, _ in docs]
    for back, (_, spans) in zip(read, docs):
        assert [(s.start, s.end, s.label) for s in back.spans] == [
            (s.start, s.end, s.label) for s in spans
        ]


def test_conll_output_gives_the_spans_back() -> None:
    docs = documents()
    blocks = write("conll", docs).split("-DOCSTART-\tO\n\n")[1:]
    assert len(blocks) == len(docs)
    for block, (doc, spans) in zip(blocks, docs):
        rows = [line.split("\t") for line in block.splitlines() if line]
        assert [w for w, _ in rows] == [doc.text[a:b] for a, b in doc.words]
        back = tags_to_spans(doc.words, [t for _, t in rows])
        assert back == spans
        # One blank line after each sentence.
        assert block.count("\n\n") == len([1 for a, b in doc.sentence_word_ranges() if b > a])
    overlapping = [
        Span(0, 3, "Chemical", 1.0),
        Span(0, 3, "X", 1.0),
    ]
    with pytest.raises(ValueError, match="CoNLL needs spans on word boundaries without overlaps"):
        write("conll", [(make_document("abc def", "o"), overlapping)])
    with pytest.raises(ValueError, match="choose one of"):
        open_writer("xml", io.StringIO())
    assert set(OUTPUT_FORMATS) == {"jsonl", "pubtator", "bioc", "conll", "brat"}
    with pytest.raises(ValueError, match="choose one of jsonl, pubtator, bioc, conll$"):
        open_writer("brat", io.StringIO())  # a folder format


def test_brat_output_is_read_back_by_the_corpus_reader(tmp_path: Path) -> None:
    docs = documents()
    # A span across a line break ("clonidine\t(CLO) hypotension.\r\nRats") and one that ends in
    # a tab-separated word: brat needs fragments where the text breaks a line.
    doc, spans = docs[0]
    crossing = Span(doc.text.index("hypotension"), doc.text.index("Rats") + 4, "Disease", 0.9)
    docs[0] = (doc, [s for s in spans if not s.overlaps(crossing)] + [crossing])
    docs[1] = (make_document("", "sub/d2.txt"), [])  # a folder input's id, and an empty text
    folder = tmp_path / "brat"
    folder.mkdir()
    with BratWriter(folder, ["Chemical", "Disease", "Gene"]) as writer:
        for d, sp in docs:
            writer.write(d, sp)
    ann = (folder / "d1.ann").read_text(encoding="utf-8")
    start, cut, end = crossing.start, doc.text.index("\r\n"), crossing.end
    assert f"Disease {start} {cut};{cut + 2} {end}\thypotension. Rats\n" in ann
    assert "#1\tAnnotatorNotes T1\tscore 0.5000; id D009270\n" in ann
    assert (
        (folder / "annotation.conf").read_text().startswith("[entities]\nChemical\nDisease\nGene\n")
    )
    assert (folder / "sub" / "d2.ann").read_bytes() == b""
    # The texts are written as they are, so the offsets index them, CRLF and all.
    assert (folder / "d1.txt").read_bytes() == doc.text.encode("utf-8")
    reader = BratReader("out", tmp_path, folders={"train": "brat", "devel": "brat", "test": "brat"})
    by_id = {d.id: d for d in reader.load("test")}  # no error: every text field matches
    for d, sp in docs[::2]:
        assert [(s.start, s.end, s.label) for s in by_id[d.id].spans] == sorted(
            (s.start, s.end, s.label) for s in sp
        )
    assert reader.repairs == {}  # nothing trimmed, no fragment left apart


def test_a_folder_output_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="half-way"), open_output_folder(out) as folder:
        (folder / "a.txt").write_text("x")
        raise RuntimeError("half-way")
    assert list(tmp_path.iterdir()) == []  # no output, no partial folder
    out.mkdir()  # an empty folder is taken
    with open_output_folder(out) as folder:
        (folder / "a.txt").write_text("x")
    assert [p.name for p in out.iterdir()] == ["a.txt"] and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(ConfigError, match="is a folder that is not empty"):
        check_output_folder(out)
    with pytest.raises(ConfigError, match="is a file"):
        check_output_folder(out / "a.txt")


@pytest.mark.parametrize("doc_id", ["", "../up", "a//b", "a:b", "tab\tid", "./x"])
def test_brat_output_refuses_ids_that_are_not_file_names(tmp_path: Path, doc_id: str) -> None:
    with pytest.raises(ValueError, match="cannot be a file name in a brat folder"):
        BratWriter(tmp_path).write(make_document("text", doc_id), [])
    with pytest.raises(ValueError, match="type 'Gene product' cannot be a brat type"):
        BratWriter(tmp_path).write(make_document("one two", "x"), [Span(0, 3, "Gene product")])
    writer = BratWriter(tmp_path)
    writer.write(make_document("one", "same"), [])
    with pytest.raises(ValueError, match="'same' and 'same.txt' would both be same.txt"):
        writer.write(make_document("two", "same.txt"), [])


def test_text_records_default_meta() -> None:
    record = TextRecord("a", "b")
    assert record.meta == {} and record.forced == []
