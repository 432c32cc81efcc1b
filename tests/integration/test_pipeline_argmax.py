"""``decode_rule=argmax``: bioner's Tagger gives the spans (and scores) of
``transformers.pipeline("token-classification", aggregation_strategy="first")``."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from test_predict import exported  # noqa: F401  (the tiny BERT with a wide random head)
from test_train import words_like_bert

from bioner.config import compose_config
from bioner.data.tokenize import word_ranges
from bioner.inference import Tagger
from bioner.inference.export import METADATA_FILE, export_pretrained
from bioner.predict import predict

# Sentences whose bioner words are BERT's pre-tokens, so both decoders see the same words.
SENTENCES = [
    "Naloxone reverses the antihypertensive effect of clonidine.",
    "Acute renal failure (ARF) after cisplatin-induced nephrotoxicity in 12 patients.",
    "Lidocaine-induced cardiac arrest, p = 0.003, in rats' hearts.",
    "Famotidine-associated delirium: a series of six cases.",
    "Suxamethonium infusion rate and observed fasciculations in children with burns.",
]
SCALE = 0.1  # of the hesitant model's head


@pytest.fixture(scope="module")
def hesitant(exported: Path, tmp_path_factory) -> Path:  # noqa: F811
    """The same model with its head scaled down: close calls between tags everywhere."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(exported)
    with torch.no_grad():
        model.classifier.weight.mul_(SCALE)
    metadata = json.loads((exported / METADATA_FILE).read_text())
    folder = tmp_path_factory.mktemp("hesitant") / "model"
    return export_pretrained(model, AutoTokenizer.from_pretrained(exported), folder, metadata)


def pipeline_entities(folder: Path) -> list[list[dict]]:
    from transformers import pipeline

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the pipeline's notes on its own defaults
        pipe = pipeline(
            "token-classification", model=str(folder), aggregation_strategy="first", device=-1
        )
        return pipe(SENTENCES)


def spans_of(predicted: list[list]) -> list[list[tuple]]:
    return [[(s.start, s.end, s.label) for s in doc] for doc in predicted]


def entity_spans(entities: list[list[dict]]) -> list[list[tuple]]:
    return [[(e["start"], e["end"], e["entity_group"]) for e in doc] for doc in entities]


def tag(folder: Path, decode_rule: str | None = None) -> list[list]:
    # Each text is one sentence, as the pipeline reads it.
    tagger = Tagger.load(folder, device="cpu", split_sentences=False, decode_rule=decode_rule)
    return tagger.predict(SENTENCES)


@pytest.mark.parametrize("model", ["exported", "hesitant"])
def test_argmax_tagger_spans_equal_the_pipeline_spans(model: str, request) -> None:
    for i, text in enumerate(SENTENCES):
        assert word_ranges(text) == words_like_bert(str(i), text).words, text
    folder = request.getfixturevalue(model)
    theirs = pipeline_entities(folder)
    assert sum(map(len, theirs)) >= 5  # the random head tags plenty
    ours = tag(folder, "argmax")
    assert spans_of(ours) == entity_spans(theirs)
    # The scores agree too: mean over a span's words of the first sub-word's top probability.
    for doc_ours, doc_theirs in zip(ours, theirs):
        for s, e in zip(doc_ours, doc_theirs):
            assert s.score == pytest.approx(float(e["score"]), abs=1e-4)


def test_the_default_rule_differs_and_predict_takes_the_option(
    hesitant: Path, tmp_path: Path
) -> None:
    expected = entity_spans(pipeline_entities(hesitant))
    # Where the model hesitates between B-X and I-X, the type mass still tags the word.
    default = Tagger.load(hesitant, device="cpu", split_sentences=False)
    assert default.members[0].alignment.decode_rule == "mass"
    assert spans_of(tag(hesitant)) != expected

    # bioner-predict's tagger.decode_rule reaches the tagger.
    source, out = tmp_path / "in.txt", tmp_path / "out.jsonl"
    source.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    cfg = compose_config(
        "predict",
        [
            f"tagger.folder={hesitant}",
            f"input={source}",
            f"output={out}",
            "tagger.decode_rule=argmax",
            "tagger.split_sentences=false",
            "tagger.device=cpu",
        ],
    )
    predict(cfg)
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [[(s["start"], s["end"], s["type"]) for s in r["spans"]] for r in records] == expected
