"""Post-processing steps: overlaps, Schwartz & Hearst abbreviations, dictionary normalisation, the
config group; and the repairs that decoding already makes (so no step repeats them)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bioner.config import compose_config
from bioner.data.alignment import Alignment
from bioner.data.document import Span
from bioner.data.errors import CorpusFormatError
from bioner.inference.tagger import make_document
from bioner.models.encoders import PackagedEncoder
from bioner.postprocess import (
    AbbreviationResolver,
    DictionaryNormalizer,
    OverlapResolver,
    apply_steps,
    build_postprocessors,
    find_abbreviations,
    normalize,
)


def span(text: str, sub: str, type_: str, score: float = 0.9, nth: int = 0) -> Span:
    """The span over the ``nth`` occurrence of ``sub`` in ``text``."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(sub, at + 1)
    return Span(at, at + len(sub), type_, score)


# ---------------------------------------------------------------------- predicted spans


def test_a_prediction_is_a_span_whose_score_and_id_do_not_count_in_comparisons() -> None:
    s = Span(3, 6, "Chemical", 0.5)
    assert s == Span(3, 6, "Chemical") and hash(s) == hash(Span(3, 6, "Chemical"))
    assert replace(s, id="D1") == s and replace(s, id="D1").id == "D1"
    assert sorted([Span(3, 6, "X", 0.1), Span(0, 2, "X", 0.9)])[0].score == 0.9
    assert s.text("xyzabcd") == "abc" and s.overlaps(Span(5, 9, "Y"))
    with pytest.raises(ValueError, match="empty"):
        Span(3, 3, "Chemical", 0.5)


# ---------------------------------------------------------------------- overlaps


def test_overlaps_keep_highest_score_or_longest() -> None:
    text = "acute renal failure after cisplatin"
    long_low = span(text, "acute renal failure", "Disease", 0.6)
    short_high = span(text, "renal", "Chemical", 0.9)
    tail = span(text, "failure", "Chemical", 0.7)
    separate = span(text, "cisplatin", "Chemical", 0.8)
    spans = [long_low, short_high, tail, separate]
    assert OverlapResolver("score")(text, spans) == [short_high, tail, separate]
    assert OverlapResolver("longest")(text, spans) == [long_low, separate]
    # The result does not depend on the input order.
    rng = random.Random(0)
    for _ in range(5):
        shuffled = spans[:]
        rng.shuffle(shuffled)
        assert OverlapResolver("score")(text, shuffled) == [short_high, tail, separate]
    with pytest.raises(ValueError, match="keep"):
        OverlapResolver("first")


def test_overlaps_random_sets_end_disjoint_and_maximal() -> None:
    rng = random.Random(1)
    text = "x" * 60
    for _ in range(50):
        spans = []
        for _ in range(rng.randint(0, 12)):
            a = rng.randrange(59)
            b = rng.randint(a + 1, min(60, a + 10))
            spans.append(Span(a, b, rng.choice("AB"), rng.random()))
        kept = OverlapResolver("score")(text, spans)
        assert all(k in spans for k in kept)
        assert all(a.end <= b.start for a, b in zip(kept, kept[1:]))
        # Maximal: every dropped span overlaps a kept one with a score at least as high.
        for s in spans:
            if s not in kept:
                assert any(s.overlaps(k) and k.score >= s.score for k in kept)


# ---------------------------------------------------------------------- abbreviations


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("Patients with acute renal failure (ARF) were studied.", [("ARF", "acute renal failure")]),
        ("Use 3,4-methylenedioxyamphetamine (MDA).", [("MDA", "3,4-methylenedioxyamphetamine")]),
        # Content cut at ", ": the rest of the parenthesis is not part of the short form.
        ("Rats got hydrochlorothiazide (HCTZ, 25 mg/kg) daily.", [("HCTZ", "hydrochlorothiazide")]),
        # Short form (long form), two definitions in one sentence.
        (
            "HSP (heat shock protein) and tumor necrosis factor alpha (TNF-alpha) rose.",
            [("HSP", "heat shock protein"), ("TNF-alpha", "tumor necrosis factor alpha")],
        ),
        # Not abbreviations: statistics, numbers, letters that are not in the preceding words.
        ("Values rose (p < 0.05) in both groups (n = 5).", []),
        ("The dose was 5 mg (2 weeks).", []),
        ("Blood pressure (XYZ) fell.", []),
        # The first letter must start a word; later ones may sit inside words.
        ("They used ketamine (KM).", [("KM", "ketamine")]),
        ("They used ketamine (AM).", []),
        # Definitions do not cross sentences: the long form must be in the same sentence.
        ("Acute renal failure is rare. (ARF) was seen.", []),
    ],
)  # fmt: skip
def test_schwartz_hearst_pairs(text: str, pairs: list[tuple[str, str]]) -> None:
    found = find_abbreviations(text)
    assert [(a.short_text(text), a.long_text(text)) for a in found] == pairs


def test_abbreviations_give_short_forms_the_long_form_type() -> None:
    text = (
        "Cisplatin-induced acute renal failure (ARF) in rats. ARF was seen in 5 rats; "
        "pre-ARF values and ARFs were normal."
    )
    long_form = span(text, "acute renal failure", "Disease", 0.8)
    wrong = span(text, "ARF", "Chemical", 0.55, nth=1)  # an occurrence typed wrongly
    other = span(text, "Cisplatin", "Chemical", 0.9)
    out = apply_steps([AbbreviationResolver()], text, [long_form, wrong, other])
    arf = [s for s in out if s.text(text) == "ARF"]
    # Every whole-word occurrence: the definition, the sentence start and "pre-ARF" ("ARFs" is
    # another word); the wrongly typed one keeps its score, new ones take the long form's.
    assert [(s.start, s.label) for s in arf] == [
        (text.index("(ARF") + 1, "Disease"),
        (text.index("ARF was"), "Disease"),
        (text.index("ARF values"), "Disease"),
    ]
    assert [s.score for s in arf] == [0.8, 0.55, 0.8]
    assert long_form in out and other in out and len(out) == 5


def test_abbreviations_leave_longer_mentions_and_unsupported_short_forms() -> None:
    text = "We studied acute renal failure (ARF). ARF-associated injury and ARF occurred."
    containing = span(text, "ARF-associated injury", "Disease", 0.7)
    lone = span(text, "ARF", "Chemical", 0.6, nth=2)
    # No span on the long form: nothing to propagate; drop_unsupported removes the lone one.
    assert AbbreviationResolver()(text, [containing, lone]) == [containing, lone]
    assert AbbreviationResolver(drop_unsupported=True)(text, [containing, lone]) == [containing]
    # With a long-form span, the mention containing "ARF" stays as it is.
    long_form = span(text, "acute renal failure", "Disease", 0.9)
    out = AbbreviationResolver()(text, [long_form, containing, lone])
    assert containing in out
    assert sorted((s.start, s.label) for s in out if s.text(text) == "ARF") == [
        (text.index("(ARF") + 1, "Disease"),
        (text.index("ARF occurred"), "Disease"),
    ]


# ---------------------------------------------------------------------- dictionary


def test_dictionary_exact_then_normalised_match(tmp_path: Path) -> None:
    path = tmp_path / "dict.tsv"
    path.write_text(
        "cisplatin\tD002945\n"
        "Non-steroidal anti-inflammatory drug\tD000894\n"
        "\n"
        "NSAID\tD000894\n"
        "cold\tD003139\n"
        "COLD\tD029424\n"  # exact case decides before normalisation
        "cold\tD999999\n",  # a second id for the same surface
        encoding="utf-8",
    )
    normalizer = DictionaryNormalizer(path)
    text = "CISPLATIN and non steroidal anti inflammatory drugs, NSAID, cold, COLD, Cold, xyz"
    spans = [
        span(text, "CISPLATIN", "Chemical"),
        span(text, "non steroidal anti inflammatory drug", "Chemical"),
        span(text, "NSAID", "Chemical"),
        span(text, "cold", "Disease"),
        span(text, "COLD", "Disease"),
        span(text, "Cold", "Disease"),
        span(text, "xyz", "Disease"),
    ]
    ids = [s.id for s in normalizer(text, spans)]
    assert ids == [
        "D002945",
        "D000894",
        "D000894",
        "D003139|D999999",
        "D029424",
        "D003139|D029424|D999999",  # every id of the normalised key, in file order
        None,
    ]
    assert normalize("Non-Steroidal  Anti\u2010Inflammatory") == "nonsteroidalantiinflammatory"
    # types= restricts the lookup.
    only = DictionaryNormalizer(path, types=["Chemical"])(text, spans)
    assert [s.id for s in only][3:] == [None] * 4


def test_dictionary_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("aspirin\tD001241\nibuprofen D007052\n", encoding="utf-8")
    with pytest.raises(CorpusFormatError, match=r"bad.tsv:2: 1 tab-separated"):
        DictionaryNormalizer(path)
    with pytest.raises(FileNotFoundError, match="postprocess.dictionary.path"):
        DictionaryNormalizer(tmp_path / "missing.tsv")


# ---------------------------------------------------------------------- the config group


def test_postprocess_group_composes_an_ordered_list(tmp_path: Path) -> None:
    dictionary = tmp_path / "d.tsv"
    dictionary.write_text("ARF\tD058186\n", encoding="utf-8")
    cfg = compose_config(
        "predict",
        [
            "postprocess=[abbreviations,overlaps,dictionary]",
            "postprocess.overlaps.keep=longest",
            f"postprocess.dictionary.path={dictionary}",
        ],
    )
    steps = build_postprocessors(cfg.postprocess)
    assert [type(s) for s in steps] == [AbbreviationResolver, OverlapResolver, DictionaryNormalizer]
    assert steps[1].keep == "longest"
    text = "Acute renal failure (ARF) and ARF."
    out = apply_steps(steps, text, [span(text, "Acute renal failure", "Disease")])
    assert [(s.text(text), s.label, s.id) for s in out] == [
        ("Acute renal failure", "Disease", None),
        ("ARF", "Disease", "D058186"),
        ("ARF", "Disease", "D058186"),
    ]
    assert build_postprocessors(compose_config("predict").get("postprocess")) == []
    with pytest.raises(ValueError, match="postprocess.x=null"):
        build_postprocessors({"x": {"keep": "score"}})


# ---------------------------------------------------------------------- already done by decoding


@pytest.fixture(scope="module")
def tokenizer():
    return PackagedEncoder().load_tokenizer()


def test_decoding_repairs_bio_and_joins_window_seams(tokenizer) -> None:
    """An I- without B- starts an entity, and one entity over many windows stays one span."""
    labels = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
    id2label = dict(enumerate(labels))
    text = " ".join(f"word{i}" for i in range(40)) + " end"
    doc = make_document(text)
    alignment = Alignment(max_length=10, stride=3)
    features = alignment.encode(doc, tokenizer)
    assert len(features) > 4  # the unit is cut into many overlapping windows

    def logits_for(tag_of_word) -> list[np.ndarray]:
        out = []
        for f in features:
            rows = np.zeros((len(f.input_ids), len(labels)))
            for k, w in enumerate(f.word_ids):
                rows[k, labels.index("O" if w is None else tag_of_word(w))] = 10.0
            out.append(rows)
        return out

    last = len(doc.words) - 1

    # Words 0..39 are one chemical ("B" then "I" across every seam), "end" is O.
    def one_chemical(w: int) -> str:
        return "O" if w == last else ("B-Chemical" if w == 0 else "I-Chemical")

    scored = alignment.decode(doc, features, logits_for(one_chemical), id2label)
    assert [(s.start, s.end, s.label) for s in scored] == [(0, text.rindex(" "), "Chemical")]
    assert 0.99 < scored[0].score <= 1.0
    # I- after O (no B-) starts an entity; I- of another type starts another.
    tags = {3: "I-Disease", 4: "I-Disease", 5: "I-Chemical"}
    spans = alignment.decode(doc, features, logits_for(lambda w: tags.get(w, "O")), id2label)
    assert [(doc.text[s.start : s.end], s.label) for s in spans] == [
        ("word3 word4", "Disease"),
        ("word5", "Chemical"),
    ]
