"""The BioC XML reader: the same documents as the PubTator release of a corpus, each option,
and every error it names."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hydra.utils import instantiate

from bioner.config import compose_config
from bioner.data.errors import CorpusFormatError
from bioner.data.readers import BioCReader, PubTatorReader

SPLITS = ("train", "devel", "test")


def annotation(ident: str, label: str, locations: list[tuple[int, int]], text: str) -> str:
    where = "".join(f'<location offset="{s}" length="{e - s}"/>' for s, e in locations)
    return (
        f'<annotation id="{ident}"><infon key="type">{escape(label)}</infon>'
        f'<infon key="identifier">D0001</infon>{where}<text>{escape(text)}</text></annotation>'
    )


def passage(offset: int, text: str, *annotations: str, kind: str = "abstract") -> str:
    return (
        f'<passage><infon key="type">{kind}</infon><offset>{offset}</offset>'
        f"<text>{escape(text)}</text>{''.join(annotations)}</passage>"
    )


def collection(*documents: str) -> str:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n<!DOCTYPE collection SYSTEM 'BioC.dtd'>\n"
        "<collection><source>test</source><date>20261206</date><key>test.key</key>\n"
        + "\n".join(documents)
        + "\n</collection>\n"
    )


def document(doc_id: str, *passages: str) -> str:
    return f"<document><id>{escape(doc_id)}</id>{''.join(passages)}</document>"


def write(folder: Path, train: str, devel: str | None = None, test: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, content in zip(SPLITS, (train, devel or train, test or train)):
        (folder / f"{split}.xml").write_text(content, encoding="utf-8")
    return folder


TEXT = "Aspirin reduces fever. The breast cancer grew."


def one(*annotations: str, text: str = TEXT) -> str:
    return collection(document("d1", passage(0, text, *annotations)))


def mentions(r: BioCReader, split: str = "train") -> list[tuple[str, str]]:
    doc = r.load(split)[0]
    return [(s.text(doc.text), s.label) for s in doc.spans]


def format_error(r: BioCReader, split: str = "train") -> CorpusFormatError:
    with pytest.raises(CorpusFormatError) as info:
        r.load(split)
    return info.value


def test_the_same_documents_as_the_pubtator_release(fixtures_dir: Path, tmp_path: Path) -> None:
    # tests/fixtures/make_bioc.py wrote the PubTator fixture as BioC, passages and all.
    files = {
        "train": "CDR_TrainingSet.PubTator.txt",
        "devel": "CDR_DevelopmentSet.PubTator.txt",
        "test": "CDR_TestSet.PubTator.txt",
    }
    pubtator = PubTatorReader("p", fixtures_dir / "pubtator", files=files)
    for split in SPLITS:  # gzipped, as large collections come: train.xml is absent, its twin read
        data = (fixtures_dir / "bioc" / f"{split}.xml").read_bytes()
        (tmp_path / f"{split}.xml.gz").write_bytes(gzip.compress(data))
    for folder in (fixtures_dir / "bioc", tmp_path):
        cfg = compose_config("data", ["dataset=bioc", f"dataset.data_dir={folder}"])
        bioc = instantiate(cfg.dataset)
        assert isinstance(bioc, BioCReader) and bioc.entity_types == pubtator.entity_types
        for split in SPLITS:
            for a, b in zip(pubtator.load(split), bioc.load(split), strict=True):
                assert (a.id, a.text, a.spans, a.words, a.sentences) == (
                    b.id, b.text, b.spans, b.words, b.sentences,
                )  # fmt: skip
                ea, eb = pubtator.evaluation_document(a), bioc.evaluation_document(b)
                assert (ea.words, ea.sentences) == (eb.words, eb.sentences)


def test_passages_in_sentences_gaps_and_skipped_annotations(tmp_path: Path, caplog) -> None:
    # A passage given as sentences; a gap of three characters before the second passage; an
    # annotation without a location (an index term) and one in a sentence.
    first = (
        "<passage><offset>0</offset><sentence><offset>0</offset><text>Aspirin works.</text>"
        + annotation("a", "Chemical", [(0, 7)], "Aspirin")
        + "</sentence><sentence><offset>15</offset><text>Fever fell.</text></sentence></passage>"
    )
    index = '<annotation id="x"><infon key="type">MeSH</infon></annotation>'
    content = collection(
        document("d1", first, passage(29, "Salt", annotation("b", "Chemical", [(29, 33)], "Salt")),
                 index)
    )  # fmt: skip
    r = BioCReader("t", write(tmp_path, content))
    with caplog.at_level(logging.INFO):
        doc = r.load("train")[0]
    assert doc.text == "Aspirin works. Fever fell.   Salt"
    assert [doc.text[s:e] for s, e in doc.sentences] == ["Aspirin works.", "Fever fell.", "Salt"]
    assert mentions(r) == [("Aspirin", "Chemical"), ("Salt", "Chemical")]
    assert "skipped (not mentions): 1 annotations without a location" in caplog.text
    assert r.entity_types == ["Chemical"]  # "MeSH" had no location: not a mention type


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("fragments", [("breast", "Disease"), ("grew", "Disease")]),
        ("span", [("breast cancer grew", "Disease")]),
        ("skip", []),
    ],
)
def test_several_locations(tmp_path: Path, policy: str, expected) -> None:
    loc = [(TEXT.index("breast"), TEXT.index("breast") + 6), (TEXT.index("grew"), len(TEXT) - 1)]
    content = one(annotation("7", "Disease", loc, "breast grew"))
    r = BioCReader("t", write(tmp_path, content), discontinuous=policy, entity_types=["Disease"])
    assert mentions(r) == expected and r.repairs == {"train": 1}
    err = format_error(BioCReader("t", tmp_path, entity_types=["Disease"]))
    assert "document d1, annotation 7 (Disease) is discontinuous: 'breast'" in str(err)
    assert str(err).startswith(f"{tmp_path / 'train.xml'}: ")


def test_annotation_text_that_differs(tmp_path: Path) -> None:
    err = format_error(BioCReader("t", write(tmp_path, one(annotation("1", "X", [(0, 7)], "Asp")))))
    assert "document d1, annotation 1: annotation text 'Asp' differs" in str(err)
    assert "dataset.on_mismatch=skip" in str(err) and "byte" not in str(err)
    r = BioCReader("t", tmp_path, on_mismatch="skip", entity_types=["X"])
    assert mentions(r) == [] and r.repairs == {"train": 1}
    # Offsets that count UTF-8 bytes: said so.
    text = "Café au lait. Aspirin works well."
    start = len(text[: text.index("Aspirin")].encode("utf-8"))
    content = one(annotation("1", "X", [(start, start + 7)], "Aspirin"), text=text)
    err = format_error(BioCReader("t", write(tmp_path / "b", content)))
    assert "read as UTF-8 byte offsets they fit" in str(err)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (collection(document("", passage(0, TEXT))), "a <document> without an <id>"),
        (
            collection(document("d1", passage(0, TEXT)), document("d1", passage(0, TEXT))),
            "document d1 occurs twice",
        ),
        (collection(), "the file holds no <document>"),
        (one('<annotation id="1"><location offset="0" length="7"/></annotation>'),
         'annotation 1 has no <infon key="type">'),
        (one(annotation("1", "X", [(40, 99)], "x")), "location 40+59 is empty or lies outside"),
        (one(annotation("1", "X", [(0, 7), (3, 9)], "Aspirin irin r")),
         "fragments 0-7 and 3-9 overlap"),
        (one('<annotation id="1"><infon key="type">X</infon><location offset="a"/></annotation>'),
         "a <location> without integer offset and length"),
        (collection(document("d1", passage(0, "Aspirin"), passage(3, "x"))),
         "a passage or sentence at offset 3 overlaps the text before it (which ends at 7)"),
        (collection(document("d1", "<passage><text>x</text></passage>")),
         "a <passage> without an integer <offset>"),
        (
            collection(document("d1", passage(0, "Aspirin", annotation("1", "X", [(0, 9)],
                       "Aspirin x")), passage(8, "x"))),
            "mention 'Aspirin x' (X, 0-9) runs from one passage into the next (at 7)",
        ),
        ("<collection><document><id>1</id>", "malformed or truncated XML"),
        ("<PubmedArticleSet/>", "the root element is <PubmedArticleSet>, not <collection>"),
        (
            '<?xml version="1.0"?><!DOCTYPE c [<!ENTITY a "aaaa">]><collection/>',
            "the file declares XML entities",
        ),
    ],
)  # fmt: skip
def test_errors_name_the_file_and_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    err = format_error(BioCReader("t", write(tmp_path, content)))
    assert err.path == str(tmp_path / "train.xml") and message in str(err)


def test_overlapping_mentions_are_named_by_document_and_annotation(tmp_path: Path) -> None:
    b = TEXT.index("breast")
    content = one(
        annotation("1", "Disease", [(b, b + 13)], "breast cancer"),
        annotation("2", "Anatomy", [(b, b + 6)], "breast"),
    )
    err = format_error(BioCReader("t", write(tmp_path, content), overlaps="error"))
    assert "mention [27, 40) Disease (document d1, annotation 1) overlaps mention [27, 33) " \
        "Anatomy (document d1, annotation 2)" in str(err)  # fmt: skip


def test_labels_and_options(tmp_path: Path) -> None:
    train = one(annotation("1", "Chemical", [(0, 7)], "Aspirin"))
    devel = one(annotation("1", "Drug", [(0, 7)], "Aspirin"))
    err = format_error(BioCReader("t", write(tmp_path, train, devel)), "devel")
    assert "annotation 1: label 'Drug' does not occur in the training split" in str(err)
    r = BioCReader("t", tmp_path, entity_types=["Chemical"], ignore_types=["Drug"])
    assert mentions(r, "devel") == [] and mentions(r) == [("Aspirin", "Chemical")]
    other = one(annotation("1", "Chemical", [(0, 7)], "Aspirin").replace('key="type"', 'key="t"'))
    assert mentions(BioCReader("t", write(tmp_path / "o", other), type_infon="t")) == [
        ("Aspirin", "Chemical")
    ]
    for key, value in (("discontinuous", "join"), ("overlaps", "x"), ("on_mismatch", "fix")):
        with pytest.raises(ValueError, match=f"{key} must be one of"):
            BioCReader("t", tmp_path, **{key: value})
    with pytest.raises(ValueError, match="files must name the splits"):
        BioCReader("t", tmp_path, files={"train": "a.xml"})


def test_xml_specials_and_attributes_are_read_as_text(tmp_path: Path) -> None:
    text = 'Na+ & K+ <ATPase> "x"'
    content = one(annotation("1", "Protein", [(9, 17)], "<ATPase>"), text=text)
    assert mentions(BioCReader("t", write(tmp_path, content))) == [("<ATPase>", "Protein")]
