"""``Alignment(decode_rule=...)``: bioner's type-mass rule against the pipeline's argmax tag."""

from __future__ import annotations

import numpy as np
import pytest

from bioner.data.alignment import Alignment
from bioner.data.document import Document
from bioner.models.encoders import PackagedEncoder

LABELS = ["O", "B-Chemical", "I-Chemical", "B-Disease", "I-Disease"]
ID2LABEL = dict(enumerate(LABELS))


@pytest.fixture(scope="module")
def tokenizer():
    return PackagedEncoder().load_tokenizer()


def decode(rule: str, decode: str, probs: list[list[float]], tokenizer) -> list[tuple]:
    """Spans of "naloxone and clonidine" (naloxone: several sub-words) given each sub-word's
    probabilities (rows in order, special tokens excluded)."""
    text = "naloxone and clonidine"
    words = [(0, 8), (9, 12), (13, 22)]
    doc = Document("d", text, [], [(0, len(text))], words)
    alignment = Alignment("all", decode, decode_rule=rule)
    (feature,) = alignment.encode(doc, tokenizer)
    n = len(feature.input_ids) - 2
    assert len(probs) == n, f"give {n} rows"
    logits = np.log(np.clip([[1.0, 0, 0, 0, 0], *probs, [1.0, 0, 0, 0, 0]], 1e-12, None))
    spans = alignment.decode(doc, [feature], [logits], ID2LABEL)
    return [(text[s.start : s.end], s.label, round(s.score, 6)) for s in spans]


def row(**p: float) -> list[float]:
    """Probabilities of the five labels, named O, BC, IC, BD, ID."""
    keys = ["O", "BC", "IC", "BD", "ID"]
    return [p.get(k, 0.0) for k in keys]


def test_argmax_takes_the_best_tag_where_mass_takes_the_best_type(tokenizer) -> None:
    pieces = len(tokenizer.tokenize("naloxone"))
    assert pieces > 1  # the first word has continuation sub-words
    # naloxone: first sub-word hesitates between B- and I-Chemical (0.34 + 0.3 > O's 0.36, but
    # no single chemical tag beats O); and: O; clonidine: clearly B-Chemical.
    first = row(O=0.36, BC=0.34, IC=0.3)
    rest = [row(O=0.9, IC=0.1)] * (pieces - 1)
    rows = [first, *rest, row(O=1.0), *[row(BC=0.8, O=0.2)] * len(tokenizer.tokenize("clonidine"))]
    mass = decode("mass", "first", rows, tokenizer)
    argmax = decode("argmax", "first", rows, tokenizer)
    assert mass == [("naloxone", "Chemical", 0.64), ("clonidine", "Chemical", 0.8)]
    assert argmax == [("clonidine", "Chemical", 0.8)]
    # The confidence is the probability of the winning tag.
    first = row(O=0.3, BC=0.4, IC=0.3)
    rows[0] = first
    assert decode("argmax", "first", rows, tokenizer)[0] == ("naloxone", "Chemical", 0.4)


def test_argmax_aggregates_tags_as_decode_says(tokenizer) -> None:
    pieces = len(tokenizer.tokenize("naloxone"))
    # First sub-word says O, the others I-Disease: `first` reads O, `mean` and `max` Disease.
    rows = [row(O=0.9, ID=0.1), *[row(ID=0.95, O=0.05)] * (pieces - 1), row(O=1.0)]
    rows += [row(O=1.0)] * len(tokenizer.tokenize("clonidine"))
    assert decode("argmax", "first", rows, tokenizer) == []
    assert [s[:2] for s in decode("argmax", "max", rows, tokenizer)] == [("naloxone", "Disease")]
    # An I- tag without its B- starts an entity, as conlleval and the pipeline read it.
    assert [s[:2] for s in decode("argmax", "mean", rows, tokenizer)] == [("naloxone", "Disease")]


def test_decode_rule_is_checked_and_replace_keeps_the_rest() -> None:
    with pytest.raises(ValueError, match="decode_rule='best': choose one of mass, argmax"):
        Alignment(decode_rule="best")
    base = Alignment("last", "last", "IOBES", max_length=64, stride=8, unit="document")
    changed = base.replace(decode_rule="argmax")
    assert changed.decode_rule == "argmax" and base.decode_rule == "mass"
    assert repr(changed) == repr(base).replace("decode_rule='mass'", "decode_rule='argmax'")
    with pytest.raises(TypeError, match="no argument"):
        base.replace(window=3)


def test_viterbi_takes_the_best_sequence_the_scheme_allows(tokenizer) -> None:
    pieces = len(tokenizer.tokenize("naloxone"))
    tail = [row(O=1.0)] * (pieces - 1)  # continuation sub-words: not read under decode=first
    clonidine = [row(O=1.0)] * len(tokenizer.tokenize("clonidine"))
    # "and" is most likely I-Chemical, after a naloxone that is most likely O: argmax reads an
    # entity "and" (an I- after O starts one, as conlleval reads it). No allowed sequence tags
    # "and" alone as I-, and O O O (0.55 * 0.4) beats every sequence with an entity.
    rows = [row(O=0.55, IC=0.45), *tail, row(IC=0.6, O=0.4), *clonidine]
    assert [s[:2] for s in decode("argmax", "first", rows, tokenizer)] == [("and", "Chemical")]
    assert decode("viterbi", "first", rows, tokenizer) == []
    # A likely B- before it makes "naloxone and" one entity (0.4 * 0.9 beats O O's 0.6 * 0.1).
    rows = [row(O=0.6, BC=0.4), *tail, row(IC=0.9, O=0.1), *clonidine]
    [(text, label, score)] = decode("viterbi", "first", rows, tokenizer)
    assert (text, label) == ("naloxone and", "Chemical")
    # The score is the mean marginal of its words' tags over the allowed sequences:
    # B-C I-C (0.36), O O (0.06), B-C O (0.04) for naloxone and, each times clonidine's O:
    # naloxone is B-C in 0.40 of 0.46, and I-C in 0.36.
    assert score == pytest.approx((0.40 / 0.46 + 0.36 / 0.46) / 2, abs=1e-6)
