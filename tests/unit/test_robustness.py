"""Text-space robustness with fake taggers whose scores are worked out by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest

from bioner.attacks.robustness import TEXT_KINDS
from bioner.augment import Abbreviate, Case, MentionReplacement, Synonym, Typos, from_marked
from bioner.augment.robustness import default_perturbations, text_robustness
from bioner.data.document import Document, Span

MARKED = [
    "[Aspirin|Chemical] caused [renal failure|Disease] in patients.",
    "[Lithium|Chemical] toxicity and [seizures|Disease] were seen.",
    "Patients received [haloperidol|Chemical] for [psychosis|Disease].",
]
# Finds 5 of the 6 gold mentions (not "psychosis") and one false positive ("toxicity").
KNOWN = {
    "Aspirin": "Chemical",
    "Lithium": "Chemical",
    "haloperidol": "Chemical",
    "renal failure": "Disease",
    "seizures": "Disease",
    "toxicity": "Disease",
}


@pytest.fixture
def docs() -> list[Document]:
    return [from_marked(m, f"d{i}") for i, m in enumerate(MARKED)]


class DictionaryTagger:
    """Exact, case-sensitive string matches of known surfaces, optionally needing a left word."""

    def __init__(self, known: dict[str, str], needs_left: dict[str, str] | None = None) -> None:
        self.known = known
        self.needs_left = needs_left or {}
        alternatives = "|".join(re.escape(s) for s in sorted(known, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        self.calls: list[list[Document]] = []

    def __call__(self, docs: list[Document]) -> list[list[Span]]:
        self.calls.append(docs)
        out = []
        for doc in docs:
            spans = []
            for m in self.pattern.finditer(doc.text):
                left = doc.text[: m.start()].split()
                need = self.needs_left.get(m.group())
                if need is None or (left and left[-1] == need):
                    spans.append(Span(m.start(), m.end(), self.known[m.group()]))
            out.append(spans)
        return out


def run(docs: Sequence[Document], predict, **perturbations) -> dict:
    return text_robustness(docs, predict, perturbations, seed=0)


def test_upper_case_flips_every_found_entity(docs):
    out = run(docs, DictionaryTagger(KNOWN), case=Case(rate=1.0, modes=["upper"]))["case"]
    assert out["f1_clean"] == pytest.approx(5 / 6)  # tp 5, fp 1, fn 1
    assert out["f1"] == 0.0
    assert out["drop"] == pytest.approx(5 / 6)
    assert (out["n_found_clean"], out["n_flipped"], out["flip_rate"]) == (5, 5, 1.0)
    assert (out["n_entities"], out["n_entities_changed"], out["n_documents"]) == (6, 6, 3)
    assert out["flip_rate_changed"] == 1.0 and out["n_gained"] == 0


def test_typos_outside_entities_leave_a_dictionary_tagger_unmoved(docs):
    typos = Typos(inside_rate=0.0, outside_rate=1.0)
    out = run(docs, DictionaryTagger(KNOWN), typos=typos)["typos"]
    # "toxicity" (the false positive) is outside the entities, so its typo removes it.
    assert out["f1"] == pytest.approx(10 / 11)  # tp 5, fp 0, fn 1
    assert out["drop"] == pytest.approx(5 / 6 - 10 / 11)
    assert out["flip_rate"] == 0.0 and out["n_entities_changed"] == 0
    assert out["n_documents_changed"] == 3 and out["n_edits"] > 6


def test_context_synonym_flips_a_context_sensitive_entity(docs, tmp_path):
    lexicon = tmp_path / "lex.tsv"
    lexicon.write_text("caused\tinduced\n")
    tagger = DictionaryTagger(KNOWN, needs_left={"renal failure": "caused"})
    out = run(docs, tagger, synonym=Synonym(rate=1.0, lexicon=lexicon))["synonym"]
    assert out["f1_clean"] == pytest.approx(5 / 6)
    assert out["f1"] == pytest.approx(8 / 11)  # tp 4, fp 1, fn 2
    assert (out["n_flipped"], out["flip_rate"]) == (1, pytest.approx(1 / 5))
    assert out["flip_rate_unchanged"] == pytest.approx(1 / 5)  # the entity itself is intact
    assert out["flip_rate_changed"] == 0.0 and out["n_found_clean_changed"] == 0
    # The tagger saw the clean documents once, then the perturbed ones with "induced".
    assert len(tagger.calls) == 2 and "induced renal failure" in tagger.calls[1][0].text


def test_mention_replacement_flips_exactly_the_mentions_turned_into_unknown_ones(docs):
    tagger = DictionaryTagger(KNOWN)
    transform = MentionReplacement.from_documents(docs, rate=1.0)
    for seed in range(5):
        out = text_robustness(docs, tagger, {"mr": transform}, seed=seed)["mr"]
        perturbed = tagger.calls[-1]
        became_unknown = sum(s.text(d.text) == "psychosis" for d in perturbed for s in d.spans)
        assert out["n_entities_changed"] == 6  # never the identical surface
        assert out["n_flipped"] == became_unknown
        assert out["n_gained"] == 1  # the unknown "psychosis" always becomes a known disease
        expected_tp = 6 - became_unknown
        precision, recall = expected_tp / (expected_tp + 1), expected_tp / 6
        f1 = 2 * precision * recall / (precision + recall)
        assert out["f1"] == pytest.approx(f1)


def test_abbreviation_flips_the_mentions_a_tagger_knows_only_in_full():
    defining = from_marked("[Nitric oxide|Chemical] ( [NO|Chemical] ) relaxes vessels .")
    docs = [
        from_marked("[nitric oxide|Chemical] and [seizures|Disease] .", "a"),
        from_marked("[Aspirin|Chemical] and [nitric oxide|Chemical] .", "b"),
    ]
    tagger = DictionaryTagger({**KNOWN, "nitric oxide": "Chemical"})  # never "NO"
    transform = Abbreviate.from_documents([defining])
    out = text_robustness(docs, tagger, {"abbreviation": transform})["abbreviation"]
    assert (out["n_entities_changed"], out["n_found_clean"], out["n_flipped"]) == (2, 4, 2)
    assert out["flip_rate_changed"] == 1.0 and out["flip_rate_unchanged"] == 0.0
    assert out["f1"] == pytest.approx(2 / 3)  # precision 1, recall 2 of 4


def test_default_perturbations_builds_only_the_kinds_asked(docs, tmp_path):
    # A lexicon that does not exist fails only if the synonym kind is built.
    missing = tmp_path / "no_lexicon.tsv"
    chosen = default_perturbations(docs, synonyms=missing, kinds=["typos_outside", "case"])
    assert list(chosen) == ["typos_outside", "case"]
    with pytest.raises(FileNotFoundError, match="no_lexicon"):
        default_perturbations(docs, synonyms=missing, kinds=["synonym"])
    with pytest.raises(ValueError, match="unknown text perturbation kinds \\['typo'\\]"):
        default_perturbations(docs, kinds=["typo"])


def test_defaults_are_json_ready_seeded_and_named(docs):
    tagger = DictionaryTagger(KNOWN)
    first = text_robustness(docs, tagger, seed=1)
    assert list(first) == list(TEXT_KINDS)  # what robustness.text_kinds accepts
    assert json.loads(json.dumps(first)) == first
    assert text_robustness(docs, tagger, seed=1) == first
    assert set(default_perturbations(docs, rate=0.5)) == set(first)
    for kind, row in first.items():
        assert row["f1_clean"] == pytest.approx(5 / 6), kind
        assert row["drop"] == pytest.approx(row["f1_clean"] - row["f1"])
        assert 0.0 <= row["flip_rate"] <= 1.0


def test_rate_zero_changes_nothing(docs):
    out = text_robustness(docs, DictionaryTagger(KNOWN), default_perturbations(docs, rate=0.0))
    for row in out.values():
        assert (row["n_edits"], row["drop"], row["flip_rate"]) == (0, 0.0, 0.0)


def test_a_predictor_returning_the_wrong_number_of_lists_is_refused(docs):
    with pytest.raises(ValueError, match="prediction lists"):
        text_robustness(docs, lambda ds: [[] for _ in ds[1:]], {"case": Case(1.0)})
