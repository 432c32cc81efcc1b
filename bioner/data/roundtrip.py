"""The round-trip check: gold spans -> sub-word labels -> word tags -> spans must lose nothing.

Gold spans are encoded exactly as for training, then decoded with the gold labels standing in for
a model's predictions. Simulated logits are a (scaled) one-hot of each sub-word's training label;
where the label strategy ignores a sub-word (``first``: continuations, ``last``: all but the last
sub-word) the one-hot is of the label a perfectly consistent model would give it, the ``all``
strategy's label (``I-X`` inside an entity, ``O`` outside). Every entity the round trip loses is
one the pipeline could never predict, whatever the model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bioner.data.alignment import IGNORE_INDEX, Alignment, layer_columns
from bioner.data.document import Document, Span

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from bioner.preprocess import Preprocessor

# Logit of the simulated label: large enough that its softmax is one-hot to float precision,
# so the per-type sums of the decoder cannot favour a type with many labels.
_CONFIDENT = 100.0


def simulated_logits(
    labels: Sequence[Any],
    consistent: Sequence[Any],
    num_labels: int,
    layers: Sequence[Sequence[int]] | None = None,
) -> np.ndarray:
    """One-hot logits of ``labels``, using ``consistent`` where ``labels`` is ignored (-100).

    Positions ignored in both (special tokens) get ``O`` (id 0); the decoder never reads them.
    ``layers``: the multi-label head's output columns per layer
    (:func:`~bioner.data.alignment.layer_columns`); ``labels`` then hold one id per layer, and
    every output but the chosen ones is ``-_CONFIDENT``, so that each layer's fixed ``O`` logit
    (0) wins where the layer's label is ``O``.
    """
    labels = np.asarray(labels)
    chosen = np.where(labels == IGNORE_INDEX, np.asarray(consistent), labels)
    chosen = np.where(chosen == IGNORE_INDEX, 0, chosen)
    if layers is None:
        logits = np.zeros((len(chosen), num_labels))
        logits[np.arange(len(chosen)), chosen] = _CONFIDENT
        return logits
    logits = np.full((len(chosen), num_labels), -_CONFIDENT)
    for k, columns in enumerate(layers):
        rows = np.flatnonzero(chosen[:, k] > 0)
        logits[rows, np.asarray(columns)[chosen[rows, k] - 1]] = _CONFIDENT
    return logits


def roundtrip_check(
    docs: Sequence[Document],
    tokenizer: PreTrainedTokenizerBase,
    alignment: Alignment,
    entity_types: Sequence[str],
    max_examples: int = 10,
    preprocess: Preprocessor | None = None,
    protect: bool = True,
) -> dict[str, Any]:
    """Encode every document's gold spans and decode them back with simulated logits.

    With ``preprocess`` (fitted), each document is normalised first, as training
    (``protect=True``: words inside gold spans are never rewritten) or evaluation
    (``protect=False``) normalises it, and the decoded spans are mapped back onto the original
    text before they are compared with the original gold spans.

    Args:
        docs: validated documents.
        tokenizer: the fast tokenizer of the encoder.
        alignment: label strategy, decoding, scheme and windows under test.
        entity_types: the dataset's entity types.
        max_examples: how many lost gold spans to describe in ``examples``.
        preprocess: text normalisation to run the documents through, or ``None``.
        protect: keep words inside gold spans as they are (training's rule).

    Returns:
        ``gold`` (gold entities the head can hold), ``beyond_head`` (gold spans it cannot: nested
        in or crossing a longer one, see :meth:`Alignment.learnable`; not counted in ``gold``),
        ``lost`` (of ``gold``, spans not predicted exactly), ``changed`` (lost
        gold spans that some predicted span overlaps, i.e. predicted wrongly rather than not at
        all), ``spurious`` (predicted spans that are not gold), ``documents``, ``units``
        (non-empty units), ``windows`` (features), ``long_units`` (units that needed more than
        one window), ``max_subwords`` (sub-words of the longest unit, special tokens excluded),
        ``seconds``, ``examples`` (the first lost spans: document id, text, label) and
        ``rewrites`` (the edits ``preprocess`` made; 0 without it).
    """
    start = time.perf_counter()
    if alignment.head == "crf":
        # Its tags and labels are the flat head's. Learned transitions only weigh one tag
        # sequence against another, and the simulated logits here leave a single one.
        alignment = alignment.replace(head="flat")
    labels = alignment.labels(entity_types)
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    # The `all` strategy labels every sub-word: the consistent stand-in for ignored ones.
    consistent = Alignment(
        label_strategy="all",
        decode="mean",
        scheme=alignment.scheme,
        max_length=alignment.max_length,
        stride=alignment.stride,
        unit=alignment.unit,
        head=alignment.head,
        context=alignment.context,
    )
    layers = None
    if alignment.head == "multilabel":
        layers = [columns for _, columns in layer_columns(id2label)]
    counts = dict.fromkeys(
        (
            "gold",
            "beyond_head",
            "lost",
            "changed",
            "spurious",
            "units",
            "windows",
            "long_units",
            "max_subwords",
            "rewrites",
        ),
        0,
    )
    examples: list[dict[str, Any]] = []
    for doc in docs:
        seen, mapping = doc, None
        if preprocess is not None:
            seen, mapping = preprocess.normalise(doc, doc.spans if protect else ())
            counts["rewrites"] += len(mapping)
        features = alignment.encode(seen, tokenizer, label2id)
        reference = consistent.encode(seen, tokenizer, label2id)
        logits = [
            simulated_logits(f.labels or [], r.labels or [], len(labels), layers)
            for f, r in zip(features, reference)
        ]
        predicted = alignment.decode(seen, features, logits, id2label)
        if mapping is not None:
            predicted = [mapping.span_to_original(span) for span in predicted]
        gold = set(alignment.learnable(doc.spans))
        counts["beyond_head"] += len(doc.spans) - len(gold)
        pred = set(predicted)
        lost = sorted(gold - pred)
        counts["gold"] += len(gold)
        counts["lost"] += len(lost)
        counts["spurious"] += len(pred - gold)
        counts["changed"] += sum(1 for span in lost if _overlaps_any(span, predicted))
        subwords: dict[int, int] = {}
        windows: dict[int, int] = {}
        for f in features:
            windows[f.unit] = windows.get(f.unit, 0) + 1
            content = sum(w is not None for w in f.word_ids)
            subwords[f.unit] = max(subwords.get(f.unit, 0), f.offset + content)
        counts["units"] += len(windows)
        counts["windows"] += len(features)
        counts["long_units"] += sum(1 for n in windows.values() if n > 1)
        counts["max_subwords"] = max([counts["max_subwords"], *subwords.values()])
        for span in lost[: max(0, max_examples - len(examples))]:
            examples.append({"document": doc.id, "text": span.text(doc.text), "label": span.label})
    return {
        **counts,
        "documents": len(docs),
        "seconds": round(time.perf_counter() - start, 3),
        "examples": examples,
    }


def _overlaps_any(span: Span, spans: Sequence[Span]) -> bool:
    return any(s.start < span.end and span.start < s.end for s in spans)
