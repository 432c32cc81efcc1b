"""Transforms: what each changes, what it never touches, and that it is seeded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bioner.augment import (
    Abbreviate,
    Case,
    EntityShuffle,
    Lexicon,
    MentionReplacement,
    Mix,
    Noise,
    SegmentShuffle,
    Shuffle,
    Synonym,
    TokenReplacement,
    Typos,
    abbreviation_table,
    chain,
    from_marked,
    mark,
    mention_pool,
    perturb,
    typo_edit,
    word_infos,
)
from bioner.augment.character import NEIGHBOURS
from bioner.augment.edits import EditResult
from bioner.data.document import Document

MARKED = [
    "[Aspirin|Chemical] caused acute [renal failure|Disease] in patients. The [lithium|Chemical] "
    "level was increased in most subjects with [heart failure|Disease] or [A|Disease].",
    "Treatment with [haloperidol|Chemical] and [cocaine|Chemical] induced [seizures|Disease] . "
    "Patients showed [hypotension|Disease] after [dopamine|Chemical] infusion.",
]


@pytest.fixture
def docs() -> list[Document]:
    return [from_marked(m, f"d{i}") for i, m in enumerate(MARKED)]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def outside_text(doc: Document) -> list[str]:
    """The text between the spans (context), in order."""
    bounds = [0, *[b for s in doc.spans for b in (s.start, s.end)], len(doc.text)]
    return [doc.text[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]


def surfaces(doc: Document) -> list[str]:
    return [s.text(doc.text) for s in doc.spans]


def assert_labels_kept(result: EditResult) -> None:
    assert [s.label for s in result.document.spans] == [s.label for s in result.original.spans]
    result.document.validate()


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance (a swap of adjacent characters costs 1)."""
    d = [[max(i, j) if min(i, j) == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(
                d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])
            )
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


# --- typos -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "word", "check"),
    [
        ("swap", "ab", lambda new: new == "ba"),
        ("drop", "ab", lambda new: new in ("a", "b")),
        ("insert", "a", lambda new: len(new) == 2 and new[0] == "a" and new[1] in NEIGHBOURS["a"]),
        ("substitute", "K", lambda new: new.lower() in NEIGHBOURS["k"] and new.isupper()),
    ],
)
def test_each_typo_kind(op, word, check):
    text = f"x {word} y"
    for seed in range(20):
        edit = typo_edit(text, 2, 2 + len(word), rng(seed), [op])
        assert edit is not None and edit.start >= 2 and edit.end <= 2 + len(word)
        new = text[:2] + (text[2 : edit.start] + edit.new + text[edit.end : 2 + len(word)])
        assert check(new[2:]), (op, new)


def test_typos_that_cannot_apply_give_nothing():
    assert typo_edit("a", 0, 1, rng(), ["drop", "swap"]) is None  # a word never disappears
    assert typo_edit("aa", 0, 2, rng(), ["swap"]) is None  # swapping equal letters changes nothing
    assert typo_edit("(", 0, 1, rng()) is None  # punctuation is left alone


def test_typos_inside_only_leave_the_context_untouched(docs):
    for doc in docs:
        result = Typos(inside_rate=1.0, outside_rate=0.0)(doc, rng())
        new = result.document
        assert_labels_kept(result)
        assert outside_text(new) == outside_text(doc)
        assert all(result.changed_spans())  # every entity word got a typo
        for old, span in result.span_pairs():
            n_words = len(old.text(doc.text).split())
            assert 1 <= edit_distance(old.text(doc.text), span.text(new.text)) <= n_words
            assert len(span.text(new.text)) >= 1  # the one-letter entity "A" survives


def test_typos_outside_only_leave_every_entity_exact(docs):
    for doc in docs:
        result = Typos(inside_rate=0.0, outside_rate=1.0)(doc, rng(1))
        assert surfaces(result.document) == surfaces(doc)
        assert not any(result.changed_spans())
        old_words = [w.text for w in word_infos(doc) if not w.inside]
        new_words = [w.text for w in word_infos(result.document) if not w.inside]
        assert len(new_words) == len(old_words) > 8  # a typo never adds or removes a word
        for old, new in zip(old_words, new_words):
            assert (old != new) == old.isalnum()  # every word with letters, no punctuation


def test_transforms_are_deterministic_given_the_seed(docs):
    transforms = [Typos(0.3), Case(0.3), Noise(0.3), Shuffle(0.5), Synonym(0.5)]
    for t in transforms:
        a = [t(d, rng(7)).document for d in docs]
        b = [t(d, rng(7)).document for d in docs]
        c = [t(d, rng(8)).document for d in docs]
        assert a == b, t
        assert a != c, t


def test_perturb_seeds_each_document_by_its_position(docs):
    t = Typos(0.5)
    results = perturb(docs, t, seed=(3, 1))
    assert results[1].document == t(docs[1], np.random.default_rng([3, 1, 1])).document
    assert [r.document for r in perturb(docs, t, (3, 1))] == [r.document for r in results]
    assert [r.document for r in perturb(docs, t, (3, 2))] != [r.document for r in results]


# --- case --------------------------------------------------------------------------------------


def test_case_changes_every_cased_word_and_nothing_else(docs):
    doc = docs[0]
    result = Case(rate=1.0)(doc, rng())
    new = result.document
    assert_labels_kept(result)
    assert new.text.lower() == doc.text.lower()
    assert [(s.start, s.end) for s in new.spans] == [(s.start, s.end) for s in doc.spans]
    changed = [new.text[s:e] != doc.text[s:e] for s, e in doc.words]
    cased = [doc.text[s:e].lower() != doc.text[s:e].upper() for s, e in doc.words]
    assert changed == cased


def test_case_modes_are_respected(docs):
    new = Case(rate=1.0, modes=["upper"])(docs[0], rng()).document
    assert new.text == docs[0].text.upper()
    with pytest.raises(ValueError, match="case modes"):
        Case(modes=["shout"])


# --- synonyms ----------------------------------------------------------------------------------


def test_synonyms_replace_context_words_in_their_case_and_never_entities(tmp_path):
    lexicon = tmp_path / "lex.tsv"
    lexicon.write_text("patients\tsubjects\nheart failure\tcardiac failure\ncaused\tinduced\n")
    doc = from_marked("Patients had [heart failure|Disease] ; heart failure caused [pain|Disease].")
    result = Synonym(rate=1.0, lexicon=lexicon)(doc, rng())
    assert_labels_kept(result)
    assert mark(result.document) == (
        "Subjects had [heart failure|Disease] ; cardiac failure induced [pain|Disease]."
    )


def test_default_lexicon_is_used_when_none_is_given(docs):
    result = Synonym(rate=1.0)(docs[0], rng())
    assert "subjects" in docs[0].text  # "subjects" <-> "patients" (symmetric)
    assert "patients in" not in result.document.text
    assert surfaces(result.document) == surfaces(docs[0])
    assert result.n_edits >= 3


# --- mention replacement -----------------------------------------------------------------------


def test_mention_replacement_uses_same_type_mentions_from_the_pool(docs):
    pool = mention_pool(docs)
    assert pool["Chemical"] == ["Aspirin", "cocaine", "dopamine", "haloperidol", "lithium"]
    t = MentionReplacement.from_documents(docs, rate=1.0)
    for doc in docs:
        result = t(doc, rng())
        assert_labels_kept(result)
        assert all(result.changed_spans())
        assert outside_text(result.document) == outside_text(doc)
        for old, span in result.span_pairs():
            assert span.text(result.document.text) in pool[old.label]


def test_mention_replacement_skips_mentions_without_an_alternative():
    doc = from_marked("[aspirin|Chemical] and [aspirin|Chemical] caused [pain|Disease].")
    result = MentionReplacement.from_documents([doc], rate=1.0)(doc, rng())
    assert result.n_edits == 0 and result.document == doc


def test_mention_replacement_from_a_concept_lexicon_never_writes_the_id(tmp_path):
    path = tmp_path / "concepts.tsv"
    path.write_text("heart attack\tD009203\nmyocardial infarction\tD009203\nMI\tD009203\n")
    lexicon = Lexicon.from_tsv(path, second_column="concept")
    doc = from_marked("After a [Heart Attack|Disease] , [aspirin|Chemical] helps.")
    seen = set()
    for seed in range(30):
        result = MentionReplacement(rate=1.0, lexicon=lexicon)(doc, rng(seed))
        assert_labels_kept(result)
        seen.add(surfaces(result.document)[0])
        assert surfaces(result.document)[1] == "aspirin"  # not in the lexicon: kept
    assert seen == {"myocardial infarction", "MI"}  # "heart attack" is the same surface


def test_mention_replacement_needs_a_source():
    with pytest.raises(ValueError, match="needs a mention pool"):
        MentionReplacement(rate=0.5)


# --- abbreviations ------------------------------------------------------------------------------

DEFINING = (
    "[Nonsteroidal anti - inflammatory drugs|Chemical] ( [NSAIDs|Chemical] ) and "
    "sham-operated (Sham) rats got [nitric oxide|Chemical] ( NO ) ."
)


def test_abbreviation_table_keeps_real_definitions_only():
    doc = from_marked(DEFINING)
    assert abbreviation_table([doc]) == {
        "nitric oxide": ["NO"],
        "nonsteroidal anti - inflammatory drugs": ["NSAIDs"],
    }  # "Sham" is a word of "sham-operated": no abbreviation


def test_abbreviate_writes_known_long_forms_short_in_other_documents():
    t = Abbreviate.from_documents([from_marked(DEFINING)])
    doc = from_marked(
        "[NITRIC  OXIDE|Chemical] and [nonsteroidal anti - inflammatory drugs|Chemical] "
        "did not cause [pain|Disease] ."
    )
    result = t(doc, rng())
    assert_labels_kept(result)
    assert surfaces(result.document) == ["NO", "NSAIDs", "pain"]
    assert result.changed_spans() == [True, True, False]
    assert outside_text(result.document) == outside_text(doc)


def test_abbreviate_leaves_a_definition_alone_and_draws_per_abbreviable_mention():
    defining = from_marked(DEFINING)
    t = Abbreviate.from_documents([defining])
    assert t(defining, rng()).n_edits == 0  # its long forms sit in their own definitions
    doc = from_marked(" ".join(["[nitric oxide|Chemical] and [pain|Disease] ."] * 200))
    changed = Abbreviate(0.5, t.table)(doc, rng(3)).changed_spans()
    assert not any(changed[1::2])  # "pain" has no abbreviation
    assert 70 < sum(changed[::2]) < 130  # half of the 200 abbreviable mentions


def test_training_mentions_come_from_fit_and_are_required_before_use(docs):
    t = MentionReplacement(rate=1.0, training_mentions=True)
    with pytest.raises(RuntimeError, match=r"call \.fit"):
        t(docs[0], rng())
    fitted = t.fit(docs)
    assert fitted.pool == mention_pool(docs) and fitted is not t
    assert all(fitted(docs[0], rng()).changed_spans())
    # Without training_mentions, fit leaves a transform as it is.
    plain = MentionReplacement.from_documents(docs[:1], rate=1.0)
    assert plain.fit(docs) is plain


def test_a_concept_lexicon_path_is_read_by_its_columns(tmp_path):
    path = tmp_path / "concepts.tsv"
    path.write_text("heart attack\tD009203\nMI\tD009203\n")
    doc = from_marked("After a [heart attack|Disease] .")
    t = MentionReplacement(rate=1.0, lexicon=path, lexicon_columns="concept")
    assert surfaces(t(doc, rng()).document) == ["MI"]


# --- token replacement -------------------------------------------------------------------------


def test_token_replacement_draws_words_with_the_same_tag():
    doc = from_marked("[lithium carbonate|Chemical] caused [pain|Disease] .")
    vocabulary = {"B-Chemical": {"X": 1}, "I-Chemical": {"Y": 2}, "O": {"o": 5}, "B-Disease": {}}
    result = TokenReplacement(1.0, vocabulary)(doc, rng())
    assert_labels_kept(result)
    # B-Disease has no words to draw from, so "pain" stays.
    assert mark(result.document) == "[X Y|Chemical] o [pain|Disease] o"


def test_token_replacement_without_vocabulary_is_fitted_on_training_documents(docs):
    with pytest.raises(RuntimeError, match=r"call \.fit"):
        TokenReplacement(1.0)(docs[0], rng())
    fitted = TokenReplacement(1.0).fit(docs)
    expected = TokenReplacement.from_documents(docs, rate=1.0)
    assert mark(fitted(docs[0], rng(3)).document) == mark(expected(docs[0], rng(3)).document)
    # Mix fits every transform it holds.
    mix = Mix([TokenReplacement(1.0), Case(0.5)], [1.0, 0.0]).fit(docs)
    assert mark(mix(docs[0], rng(3)).document) != mark(docs[0])


def test_token_replacement_vocabulary_is_label_wise(docs):
    t = TokenReplacement.from_documents(docs, rate=1.0)
    words = dict(zip(("B-Disease", "I-Disease"), ([], [])))
    for seed in range(5):
        result = t(docs[0], rng(seed))
        for span in result.document.spans:
            if span.label == "Disease":
                parts = span.text(result.document.text).split()
                words["B-Disease"].append(parts[0])
                words["I-Disease"].extend(parts[1:])
    assert set(words["I-Disease"]) == {"failure"}
    assert set(words["B-Disease"]) <= {"renal", "heart", "A", "seizures", "hypotension"}


# --- shuffling ---------------------------------------------------------------------------------


def segment_words(doc: Document) -> list[Counter[str]]:
    """Word multisets of each entity and of each stretch between entities."""
    out: list[Counter[str]] = [Counter()]
    prev = -1
    for w in word_infos(doc):
        if w.span != prev:
            out.append(Counter())
            prev = w.span
        out[-1][w.text] += 1
    return out


def test_segment_shuffle_permutes_words_within_each_segment(docs):
    doc = from_marked("The [5-HT6 receptor|Gene] binds 5-HT2 well; [X|Gene] and [Y|Gene] too.")
    for d in [*docs, doc]:
        result = SegmentShuffle(rate=1.0)(d, rng(2))
        new = result.document
        assert_labels_kept(result)
        assert new.text != d.text and len(new.text) == len(d.text)
        assert len(new.words) == len(d.words)  # "5-HT2" shuffled stays three words
        assert segment_words(new) == segment_words(d)
    assert not SegmentShuffle(rate=0.0)(docs[0], rng()).n_edits


def test_entity_shuffle_moves_mentions_between_slots_of_their_type(docs):
    doc = docs[1]
    result = EntityShuffle(rate=1.0)(doc, rng(0))
    new = result.document
    assert_labels_kept(result)
    assert outside_text(new) == outside_text(doc)
    for label in ("Chemical", "Disease"):
        before = [s.text(doc.text) for s in doc.spans if s.label == label]
        after = [s.text(new.text) for s in new.spans if s.label == label]
        assert sorted(before) == sorted(after)
        assert all(a != b for a, b in zip(before, after))  # a cycle moves every chosen mention


def test_shuffle_runs_both_stages(docs):
    result = Shuffle(rate=0.0, entity_rate=1.0)(docs[1], rng())
    assert outside_text(result.document) == outside_text(docs[1])
    assert all(result.changed_spans())


# --- noise -------------------------------------------------------------------------------------


def test_noise_deletes_context_words_but_keeps_entities_and_one_word_per_sentence():
    doc = from_marked("[Aspirin|Chemical] caused [pain|Disease] in rats. Rats died quickly today.")
    result = Noise(rate=1.0, inside_rate=0.0, ops=["delete"])(doc, rng())
    new = result.document
    assert_labels_kept(result)
    assert surfaces(new) == ["Aspirin", "pain"]
    assert new.text.startswith("Aspirin pain")
    assert len(new.sentences) == 2 and len(new.words) == 3  # the second sentence keeps one word


def test_noise_inserts_words_from_the_context_before_words_outside_entities():
    doc = from_marked("[Aspirin|Chemical] caused [pain|Disease] in rats.")
    result = Noise(rate=1.0, inside_rate=0.0, ops=["insert"])(doc, rng())
    new = result.document
    assert surfaces(new) == ["Aspirin", "pain"]
    assert len(new.words) == 2 * len(doc.words) - 2  # one insertion per outside word
    assert "rats rats ." in new.text or "rats in ." in new.text or "rats caused ." in new.text
    fillers = {"caused", "in", "rats"}
    inserted = Counter(new.text[s:e] for s, e in new.words) - Counter(
        doc.text[s:e] for s, e in doc.words
    )
    assert set(inserted) <= fillers and sum(inserted.values()) == 4


def test_noise_typos_inside_entities_at_their_own_rate(docs):
    result = Noise(rate=0.0, inside_rate=1.0)(docs[0], rng())
    assert outside_text(result.document) == outside_text(docs[0])
    assert all(result.changed_spans())


# --- mix ---------------------------------------------------------------------------------------


def test_mix_applies_each_transform_with_its_probability(docs):
    typos, case = Typos(0.5), Case(0.5)
    assert Mix([typos, case], [0.0, 0.0])(docs[0], rng()).document == docs[0]
    both = Mix([typos, case], [1.0, 1.0])(docs[0], rng(4)).document
    generator = rng(4)
    generator.random(2)  # Mix draws one number per transform first
    assert both == chain(docs[0], generator, [typos, case]).document
    with pytest.raises(ValueError, match="one probability per transform"):
        Mix([typos], [0.5, 0.5])


def test_every_transform_keeps_gold_valid_on_real_abstracts(shared_data):
    from bioner.data.readers import PubTatorReader

    reader = PubTatorReader(
        "bc5cdr_pubtator",
        shared_data / "bc5cdr_pubtator",
        ["Chemical", "Disease"],
        files={"train": "CDR_TrainingSet.PubTator.txt", "devel": "CDR_DevelopmentSet.PubTator.txt",
               "test": "CDR_TestSet.PubTator.txt"},
    )  # fmt: skip
    docs = reader.load("devel")[:60]
    parts = [
        Typos(0.3),
        Case(0.3),
        Synonym(0.5),
        MentionReplacement.from_documents(docs, 0.5),
        TokenReplacement.from_documents(docs, 0.3),
        Shuffle(0.3),
        Noise(0.3),
    ]
    for t in [*parts, Mix(parts, [0.5] * len(parts))]:
        for result in perturb(docs, t, 0):
            assert_labels_kept(result)
            for (old, span), changed in zip(result.span_pairs(), result.changed_spans()):
                same = old.text(result.original.text) == span.text(result.document.text)
                assert same != changed
