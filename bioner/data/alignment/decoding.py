"""Decoding: sub-word logits to one tag per word (type, then boundary) and to character spans
with confidence scores; the rules are in the package docstring, :mod:`bioner.data.alignment`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from bioner.data.alignment.crf import Transitions
from bioner.data.alignment.feature import Feature
from bioner.data.alignment.labels import LabelTable, layer_columns, layer_logits
from bioner.data.alignment.windows import unit_rows
from bioner.data.document import Document, Span
from bioner.data.tags import tags_to_word_spans, word_to_char_spans

if TYPE_CHECKING:
    from bioner.data.alignment.core import Alignment


def decode(
    alignment: Alignment,
    doc: Document,
    features: Sequence[Feature],
    logits: Sequence[np.ndarray],
    id2label: Mapping[int, str],
    transitions: Transitions | None = None,
) -> list[Span]:
    """Predicted character spans of ``doc`` from the logits of its features.

    Args:
        doc: the document the features were encoded from.
        features: every feature :meth:`encode` returned for ``doc``.
        logits: per feature, an array ``(len(input_ids), num_labels)``; extra trailing rows
            (right padding of a batch) are ignored.
        id2label: label id -> tag, in this alignment's scheme.
        transitions: the ``crf`` head's learned transitions over ``id2label``'s tags (that
            head needs them under every rule but ``argmax``, which reads the emissions alone,
            as transformers' pipeline does).

    Each span's ``score`` is the model's confidence: a word's is the probability mass of its
    chosen type (``argmax`` rule: the probability of its tag), aggregated over its sub-words
    as the type was (``majority`` uses the mean); a span's is the mean over its words. Under
    the ``crf`` head, and the ``viterbi`` rule, a word's tags are the unit's Viterbi path
    (:mod:`.crf`) and its confidence the marginal probability of its tag.

    Returns:
        Sorted spans with scores, each inside one unit; non-overlapping for the ``flat``
        head (the ``multilabel`` head's layers may overlap one another).
    """
    if len(features) != len(logits):
        raise ValueError(f"{len(features)} features but {len(logits)} logit arrays")
    if alignment.head == "multilabel":
        flat = alignment.replace(head="flat")
        out: list[Span] = []
        for layer2id, columns in layer_columns(id2label):
            layer = [layer_logits(np.asarray(raw), columns) for raw in logits]
            out += flat.decode(doc, features, layer, dict(enumerate(layer2id)))
        return sorted(out)
    if alignment.head == "crf":
        if alignment.decode_rule == "argmax":
            return decode(alignment.replace(head="flat"), doc, features, logits, id2label)
        if transitions is None:
            raise ValueError(
                "the crf head decodes with the model's learned transitions: pass transitions "
                "(TokenClassifier.transitions(), or bioner.json's 'crf' through Tagger.load)"
            )
    else:
        transitions = None
    table = LabelTable(id2label, alignment.scheme)
    if transitions is not None and transitions.tags != tuple(table.tags):
        raise ValueError(f"the CRF's tags {list(transitions.tags)} are not id2label's {table.tags}")
    # The viterbi rule's transitions only forbid: built once per document, not per unit.
    constraints = (
        Transitions.constraints(table.tags)
        if transitions is None and alignment.decode_rule == "viterbi"
        else None
    )
    by_unit: dict[int, list[tuple[Feature, np.ndarray]]] = {}
    for feature, raw in zip(features, logits):
        array = np.asarray(raw, dtype=np.float64)
        if array.ndim != 2 or array.shape[1] != table.num_labels:
            raise ValueError(
                f"logits of shape {array.shape} do not match {table.num_labels} labels"
            )
        if array.shape[0] < len(feature.input_ids):
            raise ValueError(
                f"logits have {array.shape[0]} rows for {len(feature.input_ids)} sub-words"
            )
        by_unit.setdefault(feature.unit, []).append((feature, array))
    spans: list[Span] = []
    covered = 0
    for unit in sorted(by_unit):
        rows, word_of = unit_rows(by_unit[unit])
        first_word = int(word_of[0])
        if transitions is not None:
            tags, confidence = crf_word_tags(alignment, rows, word_of, table, transitions)
        elif constraints is not None:
            tags, confidence = constrained_word_tags(alignment, rows, word_of, table, constraints)
        else:
            tags, confidence = word_tags(alignment, rows, word_of, table)
        covered += len(tags)
        word_spans, _ = tags_to_word_spans(tags, alignment.scheme, on_invalid="repair")
        shifted = [(a + first_word, b + first_word, t) for a, b, t in word_spans]
        scores = [float(confidence[a:b].mean()) for a, b, _ in word_spans]
        for span, score in zip(word_to_char_spans(doc.words, shifted), scores):
            spans.append(replace(span, score=score))
    if covered != len(doc.words):
        raise ValueError(
            f"document {doc.id}: the features cover {covered} of its {len(doc.words)} words; "
            "pass every feature encode() returned for it"
        )
    return sorted(spans)


def word_tags(
    alignment: Alignment, rows: np.ndarray, word_of: np.ndarray, table: LabelTable
) -> tuple[list[str], np.ndarray]:
    """One tag per word of a unit from its sub-word logits (rows in unit order), and the
    probability mass of each word's chosen type."""
    probs = np.exp(rows - rows.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]])
    ends = np.r_[starts[1:], len(word_of)] - 1  # last sub-word of each word
    if alignment.decode_rule == "argmax":
        # The pipeline's rule: argmax over tags of the aggregated sub-word probabilities.
        scores, mass = aggregate(alignment, probs, starts, ends)
        best = scores.argmax(axis=1)
        confidence = mass[np.arange(len(starts)), best]
        return [table.tags[i] for i in best], confidence
    types = probs @ table.type_matrix  # (sub-words, 1 + types): probability mass per type
    scores, mass = aggregate(alignment, types, starts, ends)
    word_type = scores.argmax(axis=1)
    confidence = mass[np.arange(len(starts)), word_type]
    tags = ["O"] * len(starts)
    entity = np.flatnonzero(word_type > 0)
    if not len(entity):
        return tags, confidence
    t = word_type[entity]
    first, last = starts[entity], ends[entity]
    at = table.prefix_index  # (prefix, type) -> label id

    def p(rows_: np.ndarray, prefix: str) -> np.ndarray:
        return probs[rows_, at[prefix][t]]

    if alignment.scheme == "IOB2":
        where = last if alignment.label_strategy == "last" else first
        prefixes = np.where(p(where, "B") >= p(where, "I"), "B", "I")
    elif alignment.label_strategy == "all":
        begins = p(first, "B") + p(first, "S") >= p(first, "I") + p(first, "E")
        finishes = p(last, "E") + p(last, "S") >= p(last, "B") + p(last, "I")
        prefixes = np.select([begins & finishes, begins, finishes], ["S", "B", "E"], default="I")
    else:
        where = last if alignment.label_strategy == "last" else first
        stacked = np.stack([p(where, x) for x in "BIES"], axis=1)
        prefixes = np.array(list("BIES"))[stacked.argmax(axis=1)]
    for i, prefix, type_index in zip(entity, prefixes, t):
        tags[i] = f"{prefix}-{table.types[type_index - 1]}"
    return tags, confidence


def crf_word_tags(
    alignment: Alignment,
    rows: np.ndarray,
    word_of: np.ndarray,
    table: LabelTable,
    transitions: Transitions,
) -> tuple[list[str], np.ndarray]:
    """One tag per word of a unit: the Viterbi path over the emissions at the sub-word each
    word's label sits on (``first`` or ``last``), and the marginal probability of each tag."""
    starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]])
    at = starts if alignment.label_strategy == "first" else np.r_[starts[1:], len(word_of)] - 1
    path, confidence = transitions.decode(rows[at])
    return [table.tags[i] for i in path], confidence


def constrained_word_tags(
    alignment: Alignment,
    rows: np.ndarray,
    word_of: np.ndarray,
    table: LabelTable,
    constraints: Transitions,
) -> tuple[list[str], np.ndarray]:
    """One tag per word of a unit under the ``viterbi`` rule: each word's tag probabilities are
    aggregated over its sub-words as under ``argmax``, and the unit's tags are the sequence of
    highest summed log-probability among those the scheme allows (no ``I-X`` after ``O``); a
    word's confidence is its tag's marginal probability over the allowed sequences."""
    probs = np.exp(rows - rows.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]])
    ends = np.r_[starts[1:], len(word_of)] - 1
    _, mass = aggregate(alignment, probs, starts, ends)
    emissions = np.log(np.maximum(mass, 1e-300))  # an underflowed probability stays finite
    path, confidence = constraints.decode(emissions)
    return [table.tags[i] for i in path], confidence


def aggregate(
    alignment: Alignment, values: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per word, the ``decode`` aggregate of its sub-words' rows of ``values`` (probability
    per type or per tag): the scores to take the argmax of, and the probabilities that
    give the confidence (they differ for ``majority``, whose scores are vote counts)."""
    method = alignment.decode_method
    if method == "first":
        scores = values[starts]
    elif method == "last":
        scores = values[ends]
    elif method == "max":
        scores = np.maximum.reduceat(values, starts, axis=0)
    else:
        counts = ends - starts + 1
        mean = np.add.reduceat(values, starts, axis=0) / counts[:, None]
        if method == "majority":
            votes = np.zeros_like(values)
            votes[np.arange(len(values)), values.argmax(axis=1)] = 1.0
            # A vote is worth 1; mean mass differs by at most 1 between types, so 0.5 * mean
            # only breaks ties.
            return np.add.reduceat(votes, starts, axis=0) + 0.5 * mean, mean
        scores = mean
    return scores, scores
