"""The model's labels: training label ids of sub-words from gold spans, the label table the
decoder reads, and the per-type layers of the ``multilabel`` head."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from bioner.data.document import GOLD_FREE_WORDS, Document, Span, flat_layer
from bioner.data.tags import entity_types_of, label_list, spans_to_tags, split_tag

if TYPE_CHECKING:
    from bioner.data.alignment.core import Alignment


def subword_tags(tag: str, n: int, strategy: str, scheme: str) -> list[str | None]:
    """Training tags of the ``n`` sub-words of a word tagged ``tag`` (``None`` = ignored)."""
    if strategy == "first":
        return [tag] + [None] * (n - 1)
    if strategy == "last":
        return [None] * (n - 1) + [tag]
    if n == 1 or tag == "O":
        return [tag] * n
    prefix, label = split_tag(tag)
    inside = f"I-{label}"
    if scheme == "IOB2":
        return [tag] + [inside] * (n - 1)
    first = f"B-{label}" if prefix in ("B", "S") else inside
    last = f"E-{label}" if prefix in ("E", "S") else inside
    return [first] + [inside] * (n - 2) + [last]


def learnable(alignment: Alignment, spans: list[Span]) -> list[Span]:
    """The spans of ``spans`` (sorted) that the head can hold: for ``flat`` the longest of
    each overlapping group, for ``multilabel`` that per type. The others are still gold and
    scored, but neither trained on nor predictable (``crf`` holds what ``flat`` holds)."""
    if alignment.head != "multilabel":
        return flat_layer(spans)
    types = dict.fromkeys(s.label for s in spans)
    return sorted(s for t in types for s in flat_layer([s for s in spans if s.label == t]))


def layer_label_ids(
    alignment: Alignment, doc: Document, label2id: Mapping[str, int]
) -> list[list[SubwordLabels]]:
    """Per layer (one for ``flat``, one per type of ``label2id`` for ``multilabel``), the
    word label lookups of :func:`word_label_ids` over the spans that layer learns (``crf``:
    one layer, as ``flat``)."""
    if alignment.head != "multilabel":
        return [word_label_ids(alignment, doc, flat_layer(doc.spans), label2id)]
    layers = []
    # Types mapped to O's id are ones the model lacks (bioner-eval): no layer learns them.
    types = [t for t in entity_types_of(list(label2id)) if label2id[f"B-{t}"] != label2id["O"]]
    for label in types:
        spans = flat_layer([s for s in doc.spans if s.label == label])
        layer2id = {tag: i for i, tag in enumerate(label_list([label], alignment.scheme))}
        layers.append(word_label_ids(alignment, doc, spans, layer2id))
    return layers


def word_label_ids(
    alignment: Alignment, doc: Document, spans: list[Span], label2id: Mapping[str, int]
) -> list[SubwordLabels]:
    """Per word, a lookup ``n_subwords - 1 -> label ids`` (built lazily, shared by words)."""
    # Evaluation text segmented without its gold spans: they label the words they overlap
    # (the labels only feed the evaluation loss; scores compare character spans).
    snap = bool(doc.meta.get(GOLD_FREE_WORDS))
    try:
        tags = spans_to_tags(doc.words, spans, alignment.scheme, snap=snap)
    except ValueError as err:
        raise ValueError(f"document {doc.id}: {err}; run Document.validate()") from err
    cache: dict[str, SubwordLabels] = {}
    out = []
    for tag in tags:
        if tag not in cache:
            if tag not in label2id:
                raise ValueError(
                    f"document {doc.id}: tag {tag!r} is not in label2id "
                    f"({len(label2id)} labels); the dataset's entity_types must list "
                    f"{split_tag(tag)[1]!r}"
                )
            cache[tag] = SubwordLabels(tag, alignment.label_strategy, alignment.scheme, label2id)
        out.append(cache[tag])
    return out


def layer_columns(id2label: Mapping[int, str]) -> list[tuple[list[str], list[int]]]:
    """For each entity type of ``id2label`` (in order), its layer's tags (``O``, then the type's
    tags in ``B I E S`` order) and the model outputs of those tags but ``O`` (whose logit the
    layer fixes at 0). The decoder checks the tags against the scheme."""
    label2id = {str(v): int(k) for k, v in id2label.items()}
    out = []
    for label in entity_types_of([str(v) for _, v in sorted(id2label.items())]):
        tags = [f"{p}-{label}" for p in "BIES" if f"{p}-{label}" in label2id]
        out.append((["O", *tags], [label2id[t] for t in tags]))
    return out


def layer_logits(logits: np.ndarray, columns: list[int]) -> np.ndarray:
    """One layer's logits: a 0 for ``O``, then the model's outputs at ``columns``."""
    return np.concatenate([np.zeros((len(logits), 1)), logits[:, columns]], axis=1)


class SubwordLabels:
    """Label ids of a word's sub-words for one tag, memoised by sub-word count."""

    __slots__ = ("tag", "strategy", "scheme", "label2id", "_by_count")

    def __init__(self, tag: str, strategy: str, scheme: str, label2id: Mapping[str, int]) -> None:
        self.tag, self.strategy, self.scheme, self.label2id = tag, strategy, scheme, label2id
        self._by_count: dict[int, list[int | None]] = {}

    def __getitem__(self, index: int) -> list[int | None]:
        n = index + 1
        if n not in self._by_count:
            tags = subword_tags(self.tag, n, self.strategy, self.scheme)
            try:
                self._by_count[n] = [None if t is None else self.label2id[t] for t in tags]
            except KeyError as err:
                raise ValueError(
                    f"tag {err.args[0]!r} (a sub-word label of {self.tag!r} under "
                    f"label_strategy={self.strategy!r}) is not in label2id"
                ) from None
        return self._by_count[n]


class LabelTable:
    """Label ids grouped by type and by prefix, checked against the scheme."""

    def __init__(self, id2label: Mapping[int, str], scheme: str) -> None:
        labels = {int(k): str(v) for k, v in id2label.items()}
        self.num_labels = len(labels)
        if sorted(labels) != list(range(self.num_labels)):
            raise ValueError(f"id2label must map ids 0..n-1, got ids {sorted(labels)}")
        self.tags = [labels[i] for i in range(self.num_labels)]
        allowed = "BIES" if scheme == "IOBES" else "BI"
        self.types: list[str] = []
        parsed = {}
        for i in range(self.num_labels):
            prefix, label = split_tag(labels[i])
            if prefix != "O" and prefix not in allowed:
                raise ValueError(f"label {labels[i]!r} is not a {scheme} tag")
            if label is not None and label not in self.types:
                self.types.append(label)
            parsed[i] = (prefix, label)
        if "O" not in labels.values():
            raise ValueError("id2label has no 'O' label")
        self.type_matrix = np.zeros((self.num_labels, 1 + len(self.types)))
        self.prefix_index = {x: np.zeros(1 + len(self.types), dtype=np.int64) for x in allowed}
        found = set()
        for i, (prefix, label) in parsed.items():
            col = 0 if label is None else 1 + self.types.index(label)
            self.type_matrix[i, col] = 1.0
            if label is not None:
                self.prefix_index[prefix][col] = i
                found.add((prefix, label))
        for label in self.types:
            for prefix in allowed:
                if (prefix, label) not in found:
                    raise ValueError(f"id2label lacks {prefix}-{label}, needed by scheme {scheme}")
