"""preprocess: shorthand expansion and spelling correction with an exact map back to the original
text; gold spans never rewritten in training; the same rewrites in evaluation and prediction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from bioner.cli.data import main as data_main
from bioner.data.alignment import Alignment
from bioner.data.document import Span
from bioner.data.errors import CorpusFormatError
from bioner.inference import Tagger
from bioner.inference.export import export_pretrained
from bioner.inference.tagger import make_document
from bioner.models.encoders import HubEncoder
from bioner.preprocess import (
    OffsetMap,
    Preprocessor,
    ShorthandExpander,
    SpellingCorrector,
    build_preprocessor,
)
from bioner.preprocess.base import Edit

TEXT = "Pt w/o fever vs. controls had approx 3 yrs of aspirin use; HR 2.1."


def words_of(doc) -> list[str]:
    return [doc.text[s:e] for s, e in doc.words]


def test_shorthand_rewrites_words_and_maps_every_offset_back() -> None:
    doc = make_document(TEXT)
    new, mapping = Preprocessor([ShorthandExpander()]).normalise(doc)
    assert new.text == (
        "Patient without fever versus controls had approximately 3 years of aspirin use; HR 2.1."
    )
    new.validate()
    assert words_of(new)[:4] == ["Patient", "without", "fever", "versus"]
    # Every word of the new text maps onto whole original words.
    back = [
        doc.text[mapping.to_original(s, False) : mapping.to_original(e, True)] for s, e in new.words
    ]
    assert back[:4] == ["Pt", "w/o", "fever", "vs."] and back[6] == "approx"
    # A span over part of a multi-word expansion covers the whole original word.
    h = Preprocessor([ShorthandExpander()]).normalise(make_document("h/o asthma"))
    start = h[0].text.index("of")
    assert h[1].span_to_original(Span(start, len(h[0].text), "Disease")) == Span(0, 10, "Disease")
    # Upper case "HR" (hazard ratio) is not the shorthand "hr" (hours).
    assert "HR 2.1" in new.text


def test_offset_map_is_exact_around_and_between_edits() -> None:
    # "ab cd ef" -> "ab XXXX ef" -> ... : one edit of cd (2, 5) growing by 2.
    mapping = OffsetMap([Edit(3, 5, 3, 7)])
    assert [mapping.to_new(p) for p in (0, 2, 3, 5, 8)] == [0, 2, 3, 7, 10]
    assert mapping.to_original(3, False) == 3 and mapping.to_original(7, True) == 5
    assert mapping.to_original(5, False) == 3 and mapping.to_original(5, True) == 5
    assert mapping.to_original(10, True) == 8


def test_gold_spans_are_never_rewritten_in_training() -> None:
    doc = make_document("The pt vs the pts")
    gold = [Span(4, 6, "X"), Span(14, 17, "X")]  # "pt" and "pts" are entities here
    doc.spans = gold
    new, mapping = Preprocessor([ShorthandExpander()]).normalise(doc, protect=gold)
    assert new.text == "The pt versus the pts"
    new.validate()
    assert [s.text(new.text) for s in new.spans] == ["pt", "pts"]
    assert [mapping.span_to_original(s) for s in new.spans] == gold
    # Without protection (evaluation text) they are rewritten, and map back to the gold spans.
    new, mapping = Preprocessor([ShorthandExpander()]).normalise(doc)
    assert new.text == "The patient versus the patients"
    assert [mapping.span_to_original(s) for s in new.spans] == gold
    # A rewrite never straddles a span boundary: "w" of "w/o" is a span of its own here.
    doc = make_document("pt w/o x")
    doc.spans = [Span(3, 4, "X")]
    new, mapping = Preprocessor([ShorthandExpander()]).normalise(doc)
    assert new.text == "patient w/o x" and new.spans == [Span(8, 9, "X")]


def test_a_user_table_adds_and_overrides_and_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    table = tmp_path / "mine.tsv"
    table.write_text("# mine\nvs\tagainst\nSOB\tshortness of breath\n")
    expander = ShorthandExpander(table)
    new, _ = Preprocessor([expander]).normalise(make_document("SOB vs sob w/o pain"))
    assert new.text == "shortness of breath against sob without pain"
    table.write_text("vs\tagainst\nno tab here\n")
    with pytest.raises(CorpusFormatError, match=r"mine\.tsv:2: expected 2 tab-separated fields"):
        ShorthandExpander(table)


def test_spelling_knows_the_training_words_and_corrects_only_unknown_ones() -> None:
    train = [make_document("Nephrogenic diabetes insipidus after lithium in patients.")]
    corrector = SpellingCorrector(english=False)
    corrector.fit(train)
    pre = Preprocessor([corrector])
    new, mapping = pre.normalise(make_document("Diabtes insipidus in pateints and nephrogenics."))
    # Misspellings of training words are fixed (capital kept); an inflection is not a typo.
    assert new.text == "Diabetes insipidus in patients and nephrogenics."
    assert mapping.span_to_original(Span(0, 8, "Disease")) == Span(0, 7, "Disease")
    # Nothing known yet, symbols, and edits in the last two letters (inflections) stay.
    assert SpellingCorrector(english=False).replace(["diabtes"]) is None  # nothing known yet
    assert corrector.replace(["BRCA"]) is None and corrector.replace(["lithim"]) is None
    assert corrector.replace(["lithiumm"]) is None  # a suffix edit (keep_suffix=2)
    assert SpellingCorrector(english=False, keep_suffix=0, min_length=6).replace(["x"]) is None
    # The fitted lexicon travels in the record (bioner.json, checkpoints).
    again = Preprocessor.from_record(json.loads(json.dumps(pre.record())), "test")
    assert again.normalise(make_document("pateints"))[0].text == "patients"


def test_records_never_name_code() -> None:
    with pytest.raises(Exception, match="not one of .*shorthand.*spelling"):
        Preprocessor.from_record([{"kind": "os.system", "params": {}}], "bioner.json")


def test_the_config_group_builds_the_steps_in_order() -> None:
    from bioner.config import compose_config

    cfg = compose_config("data", ["preprocess=[shorthand,spelling]"])
    pre = build_preprocessor(cfg.preprocess)
    assert pre is not None
    assert [type(s).__name__ for s in pre.steps] == ["ShorthandExpander", "SpellingCorrector"]
    assert build_preprocessor(compose_config("data", []).get("preprocess")) is None


def test_check_with_preprocess_loses_no_entity(fixtures_dir: Path, tiny_model_dir, capsys) -> None:
    overrides = [
        "dataset=iob",
        f"dataset.data_dir={fixtures_dir / 'iob'}",
        "model=tiny",
        "preprocess=[shorthand,spelling]",
        "preprocess.spelling.english=false",
    ]
    assert data_main(["check", *overrides, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "SpellingCorrector" in result["preprocess"]
    for split in result["splits"].values():
        assert split["gold"] > 0 and split["lost"] == split["spurious"] == 0


def test_the_tagger_rewrites_as_trained_and_reports_spans_on_the_original_text(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    settings = {"label_strategy": "first", "decode": "first", "scheme": "IOB2"}
    settings.update({"max_length": None, "stride": 128, "unit": "sentence"})
    labels = Alignment(**settings).labels(["Chemical", "Disease"])
    encoder = HubEncoder(str(tiny_model_dir), name="tiny")
    model = encoder.load_model(dict(enumerate(labels)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        torch.nn.init.normal_(model.classifier.weight, std=2.0)  # confident, varied spans
    pre = Preprocessor([ShorthandExpander()])
    metadata = {
        "alignment": {"_target_": "bioner.data.alignment.Alignment", **settings},
        "entity_types": ["Chemical", "Disease"],
        "preprocess": pre.record(),
    }
    folder = export_pretrained(model, encoder.load_tokenizer(), tmp_path / "m", metadata)
    tagger = Tagger.load(folder, device="cpu")
    assert tagger.members[0].preprocess is not None
    text = "Pt w/o fever vs controls had approx 3 yrs of aspirin use and pts had hx of asthma"
    got = tagger.predict(text)
    # The model saw the rewritten text: its spans there, mapped back, are what the tagger says.
    new, mapping = pre.normalise(make_document(text))
    metadata.pop("preprocess")
    (folder / "bioner.json").write_text(json.dumps(metadata))
    plain = Tagger.load(folder, device="cpu").predict(new.text)
    expected = [mapping.span_to_original(s) for s in plain]
    assert got == expected and got
    # Mapping a span back keeps its score.
    assert [s.score for s in got] == pytest.approx([s.score for s in plain], abs=1e-5)
