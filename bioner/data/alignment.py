"""From words to sub-word model inputs and back: training labels, windows and word-level decoding.

A document is cut into *units* (its sentences, or the whole document). Each unit's words are
tokenised together (``is_split_into_words=True``) into sub-words; a unit longer than the encoder
accepts is covered by overlapping *windows*; nothing is ever truncated.

Training labels (``label_strategy``), for a word tagged ``tag`` with ``n`` sub-words:

* ``first``: the first sub-word carries ``tag``; the others are ignored (-100).
* ``last``: the last sub-word carries ``tag``; the others are ignored.
* ``all``: every sub-word is labelled so that the sub-words of an entity form a valid tag
  sequence of the scheme on their own. IOB2: the first sub-word carries ``tag``, continuation
  sub-words ``I-X``. IOBES: the first sub-word says whether the word *starts* an entity
  (``B-X`` for ``B``/``S`` words, else ``I-X``), the last says whether it *ends* one (``E-X``
  for ``E``/``S`` words, else ``I-X``), the ones between are ``I-X``; so an ``S-X`` word of
  three sub-words is ``B-X I-X E-X`` and a one-sub-word word keeps its tag. Turning every
  continuation into ``I-X`` instead would make an ``S`` word indistinguishable from a ``B``
  word, and an ``E`` word from an ``I`` word: decoding would not be lossless.

Decoding (``decode``) turns sub-word logits into one tag per word in two steps, so that
averaging can never flip a boundary (averaging the scores of a ``B-X`` sub-word and an ``I-X``
sub-word could read as ``I-X`` and merge two adjacent entities):

1. *Type* (an entity type or ``O``): each sub-word's softmax is summed per type (``B-X``,
   ``I-X``, ... all count for ``X``), then aggregated over the word's sub-words: ``first`` /
   ``last`` take that sub-word, ``mean`` averages, ``max`` takes each type's largest value,
   ``majority`` lets every sub-word vote for its best type (ties broken by the mean).
2. *Boundary* (B/I, or B/I/E/S): read only at the sub-word position that carries the boundary
   under the label strategy: the first sub-word for ``first`` and IOB2 ``all``, the last for
   ``last``; for IOBES ``all`` the first sub-word says whether the word starts an entity and
   the last whether it ends one. Only the chosen type's labels are compared.

``decode_rule="argmax"`` replaces both steps by the rule of transformers'
``pipeline("token-classification", aggregation_strategy=...)``: the sub-words' probabilities of
every *tag* (not summed per type) are aggregated as above and the word takes the argmax tag, so
``decode="first"`` gives the spans of ``aggregation_strategy="first"`` on the same words
(``mean`` those of ``"average"``, ``max`` those of ``"max"``). It tags fewer words where the model
hesitates between ``B-X`` and ``I-X`` (neither wins alone), and it reads boundaries from the
aggregated sub-words: with ``label_strategy="all"`` only ``decode="first"`` reads the sub-word
that carries a word's ``B-`` (and under IOBES no sub-word carries a whole ``S-``), so keep the
default ``mass`` rule there.

Invalid tag sequences that predictions may produce are repaired as conlleval reads them
(:func:`bioner.data.tags.tags_to_word_spans`), which is also how the pipeline groups IOB2 tags.

``decode`` is the only place sub-words read by the decoder but ignored in training matter:
``first`` training with ``mean`` decoding reads sub-words the model was never taught, so the
configs pair ``first``/``first``, ``last``/``last`` and ``all`` with any aggregation (a
mismatched pair warns once).

Windows (units longer than ``max_length`` sub-words, special tokens included) overlap by
``stride`` sub-words (at most half a window, so that every window moves forward by at least
half its length). Windows start and end at word boundaries whenever the words allow it. Each
word is decoded from the window in which it lies whole with the most context (the smaller of
its distances to the window's cut edges; the unit's own ends are not cuts). A single word longer
than a window is split at sub-word boundaries across consecutive overlapping windows; each of its
sub-words is then read from the window where *that sub-word* has the most context, and the word
is decoded from those sub-words as usual.

Heads (``head``, set by ``module.head``). ``flat``: one tag per word over every type (a softmax
over ``O``, ``B-X``, ``I-X``, ...); of overlapping gold spans it trains on the longest of each
group (:func:`~bioner.data.document.flat_layer`) and predicts one non-overlapping layer.
``multilabel``: one tag layer per entity type, so a ``Chemical`` inside a ``Disease`` can be
predicted. The network's outputs are the same tag list; layer ``X`` is a softmax over ``O``
(a logit fixed at 0; softmax is shift-invariant, so nothing is lost) and the outputs of
``B-X``, ``I-X`` (``E-X``, ``S-X``) (:func:`layer_columns`); the ``O`` output is unused. Its
training labels are one id per layer and sub-word, and each layer is decoded on its own by the
flat rules above, windows included, so the alignment and window guarantees hold per type. Spans
of one type that overlap still need one layer each: of those, the longest is trained.

A word that the tokenizer turns into no sub-word at all (a zero-width space, a lone combining
accent, a control character) gets one ``[UNK]`` sub-word so that its label is never lost.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from bioner.data.document import GOLD_FREE_WORDS, Document, Span, flat_layer
from bioner.data.tags import (
    entity_types_of,
    label_list,
    spans_to_tags,
    split_tag,
    tags_to_word_spans,
    word_to_char_spans,
)
from bioner.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# The label of a position no loss or metric looks at (special tokens, non-first sub-words);
# -100 is the ignore_index of torch.nn.functional.cross_entropy.
IGNORE_INDEX = -100
LABEL_STRATEGIES = ("first", "all", "last")
DECODES = ("first", "last", "mean", "max", "majority")
DECODE_RULES = ("mass", "argmax")
ALIGN_SCHEMES = ("IOB2", "IOBES")
UNITS = ("sentence", "document")
HEADS = ("flat", "multilabel")
# The only _target_ an alignment record may name (what bioner-train writes into bioner.json).
ALIGNMENT_TARGET = "bioner.data.alignment.Alignment"
# transformers' "no limit" sentinel for model_max_length is 1e30; anything this large is unset.
UNSET_MAX_LENGTH = 100_000
# Context of a word at the unit's own start or end: nothing was cut there.
_FULL_CONTEXT = 1 << 30
# Special tokens per tokenizer: asking the tokenizer costs as much as encoding a sentence.
_SPECIALS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Decoders that read only the sub-word each label strategy trains.
_MATCHED = {"first": ("first",), "last": ("last",), "all": DECODES}


@dataclass(slots=True)
class Feature:
    """One model input: a window of one unit's sub-words between the tokenizer's special tokens.

    Attributes:
        input_ids: sub-word ids, special tokens included.
        labels: training label id per sub-word, ``-100`` where ignored and on special tokens
            (``head="multilabel"``: a tuple of one id per layer); ``None`` when encoded without
            labels.
        word_ids: index into ``doc.words`` of each sub-word, ``None`` on special tokens.
        unit: index of the unit (sentence index, or 0 for ``unit="document"``).
        window: index of the window within its unit.
        offset: position of the window's first sub-word in its unit's sub-word sequence.
    """

    input_ids: list[int]
    labels: list[int] | None
    word_ids: list[int | None]
    unit: int
    window: int
    offset: int = 0


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


def plan_windows(
    word_starts: Sequence[int], n: int, size: int, stride: int
) -> list[tuple[int, int]]:
    """Cover ``n`` sub-words with windows of at most ``size`` sub-words.

    Args:
        word_starts: sub-word position where each word starts (sorted, first is 0).
        n: number of sub-words.
        size: the most sub-words one window holds (special tokens excluded).
        stride: wanted overlap between consecutive windows, capped at ``size // 2``.

    Returns:
        Half-open ``(start, end)`` sub-word ranges, in order, covering ``0 .. n``.
    """
    if size < 1:
        raise ValueError(f"a window must hold at least one sub-word, not {size}")
    if n <= size:
        return [(0, n)]
    overlap = min(stride, size // 2)
    bounds = list(word_starts) + [n]
    windows = []
    start = 0
    while start + size < n:
        limit = start + size
        end = bounds[bisect_right(bounds, limit) - 1]
        if end <= start:  # the word at `start` is longer than a window: split it
            end = limit
        windows.append((start, end))
        # The next window must reach past `end` (else it would hold nothing new), unless the
        # word after `end` is longer than a window anyway; it must not leave a gap either.
        after = bounds[bisect_right(bounds, end)]
        lower = max(start + 1, min(after - size, end))
        target = max(end - overlap, lower)
        # The latest word start in [lower, target] gives at least `overlap` sub-words overlap;
        # failing that the first word start after `target`; failing that (inside a word longer
        # than a window) `target` itself.
        i = bisect_right(word_starts, target) - 1
        if i >= 0 and word_starts[i] >= lower:
            start = word_starts[i]
        else:
            i = bisect_right(word_starts, target)
            start = word_starts[i] if i < len(word_starts) and word_starts[i] <= end else target
    windows.append((start, n))
    return windows


class Alignment:
    """Sub-word labels, windows and word-level decoding (see the module docstring for the rules).

    Args:
        label_strategy: which sub-words carry a word's training label: ``first``, ``all``,
            ``last``.
        decode: how a word's sub-word predictions become its type: ``first``, ``last``,
            ``mean``, ``max``, ``majority``.
        decode_rule: ``mass``: a word's type is the type of most probability mass (``B-X`` and
            ``I-X`` summed), then its boundary is read; ``argmax``: a word's tag is the argmax
            tag, as in transformers' token-classification pipeline (module docstring).
        scheme: tagging scheme of the model's labels: ``IOB2`` or ``IOBES``.
        max_length: longest model input in sub-words, special tokens included; ``None`` uses
            the tokenizer's ``model_max_length`` (which :class:`bioner.models.encoders.Encoder`
            sets to the encoder's limit).
        stride: overlap in sub-words between consecutive windows of a long unit.
        unit: ``sentence`` encodes each sentence on its own; ``document`` the whole document.
        head: ``flat`` (one tag per word) or ``multilabel`` (one tag layer per entity type;
            module docstring); ``module.head`` in the configs.
    """

    def __init__(
        self,
        label_strategy: str = "first",
        decode: str = "first",
        scheme: str = "IOB2",
        max_length: int | None = None,
        stride: int = 128,
        unit: str = "sentence",
        decode_rule: str = "mass",
        head: str = "flat",
    ) -> None:
        for value, allowed, what in (
            (head, HEADS, "head"),
            (label_strategy, LABEL_STRATEGIES, "label_strategy"),
            (decode, DECODES, "decode"),
            (decode_rule, DECODE_RULES, "decode_rule"),
            (scheme, ALIGN_SCHEMES, "scheme"),
            (unit, UNITS, "unit"),
        ):
            if value not in allowed:
                raise ValueError(f"alignment {what}={value!r}: choose one of {', '.join(allowed)}")
        if stride < 0:
            raise ValueError(f"alignment stride must be >= 0, not {stride}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"alignment max_length must be positive or null, not {max_length}")
        if decode not in _MATCHED[label_strategy]:
            warnings.warn(
                f"alignment decode={decode!r} reads sub-words that label_strategy="
                f"{label_strategy!r} never trains; use decode={label_strategy!r} or "
                "label_strategy='all'",
                stacklevel=2,
            )
        self.label_strategy = label_strategy
        self.decode_method = decode
        self.decode_rule = decode_rule
        self.scheme = scheme
        self.max_length = max_length
        self.stride = stride
        self.unit = unit
        self.head = head

    def __repr__(self) -> str:
        return (
            f"Alignment(label_strategy={self.label_strategy!r}, decode={self.decode_method!r}, "
            f"scheme={self.scheme!r}, max_length={self.max_length}, stride={self.stride}, "
            f"unit={self.unit!r}, decode_rule={self.decode_rule!r}, head={self.head!r})"
        )

    @classmethod
    def from_record(cls, node: Mapping[str, Any], source: str) -> Alignment:
        """The alignment described by ``node``, a record in a file someone else may have written.

        ``node`` holds the constructor's plain parameters, optionally with the ``_target_`` that
        ``bioner-train`` writes (``bioner.data.alignment.Alignment``). Nothing named in it is
        imported or called: a model folder or checkpoint from elsewhere is data, and Hydra's
        ``instantiate`` would call any ``_target_`` (``torch.load`` of a crafted pickle runs a
        shell command).

        Args:
            node: the record (``bioner.json``'s ``alignment``, a checkpoint's ``alignment``).
            source: where it comes from, for messages.

        Raises:
            ConfigError: another ``_target_``, an unknown parameter or a value of the wrong type.
        """
        if not isinstance(node, Mapping):
            raise ConfigError(f"{source}: 'alignment' must be a mapping, not {type(node).__name__}")
        params = dict(node)
        target = params.pop("_target_", ALIGNMENT_TARGET)
        if target != ALIGNMENT_TARGET:
            raise ConfigError(
                f"{source}: refusing alignment _target_={target!r}; a bioner record names only "
                f"{ALIGNMENT_TARGET} (nothing named in a model folder or checkpoint is run)"
            )
        allowed = {
            "label_strategy": (str,),
            "decode": (str,),
            "scheme": (str,),
            "max_length": (int, type(None)),
            "stride": (int,),
            "unit": (str,),
            "decode_rule": (str,),
            "head": (str,),
        }
        for key, value in params.items():
            if key not in allowed:
                raise ConfigError(
                    f"{source}: unknown alignment parameter {key!r}; allowed: {sorted(allowed)}"
                )
            if isinstance(value, bool) or not isinstance(value, allowed[key]):
                raise ConfigError(
                    f"{source}: alignment {key}={value!r} is a {type(value).__name__}, not "
                    f"{' or '.join(t.__name__ for t in allowed[key])}"
                )
        return cls(**params)

    def replace(self, **changes: Any) -> Alignment:
        """A copy with some arguments changed (checked as by the constructor), e.g.
        ``alignment.replace(decode_rule="argmax")``."""
        params = {
            "label_strategy": self.label_strategy,
            "decode": self.decode_method,
            "scheme": self.scheme,
            "max_length": self.max_length,
            "stride": self.stride,
            "unit": self.unit,
            "decode_rule": self.decode_rule,
            "head": self.head,
        }
        unknown = set(changes) - set(params)
        if unknown:
            raise TypeError(
                f"Alignment has no argument(s) {sorted(unknown)}; it has {sorted(params)}"
            )
        return Alignment(**{**params, **changes})

    def labels(self, entity_types: Sequence[str]) -> list[str]:
        """The model's tag list over ``entity_types``; the index is the label id, ``O`` is 0."""
        return label_list(list(entity_types), self.scheme)

    # ------------------------------------------------------------------ encoding

    def units(self, doc: Document) -> list[tuple[int, int, int]]:
        """Non-empty units of ``doc`` as ``(unit index, first word, end word)``."""
        if not doc.words:
            return []
        if self.unit == "document":
            return [(0, 0, len(doc.words))]
        if not doc.sentences:
            raise ValueError(
                f"document {doc.id} has words but no sentences; give it sentences or use "
                "alignment.unit=document"
            )
        ranges = doc.sentence_word_ranges()
        if sum(hi - lo for lo, hi in ranges) != len(doc.words):
            raise ValueError(
                f"document {doc.id}: some words lie outside every sentence, so unit=sentence "
                "would drop them; run Document.validate() to find them"
            )
        return [(i, lo, hi) for i, (lo, hi) in enumerate(ranges) if hi > lo]

    def window_size(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """Sub-words per window, special tokens excluded."""
        prefix, suffix = _special_tokens(tokenizer)
        return self._resolve_max_length(tokenizer) - len(prefix) - len(suffix)

    def _resolve_max_length(self, tokenizer: PreTrainedTokenizerBase) -> int:
        max_length = self.max_length or tokenizer.model_max_length
        if not max_length or max_length >= UNSET_MAX_LENGTH:
            raise ValueError(
                "the tokenizer does not say how long an input may be; set alignment.max_length "
                "(e.g. 512 for BERT models) or load the tokenizer through an Encoder"
            )
        return int(max_length)

    def encode(
        self,
        doc: Document,
        tokenizer: PreTrainedTokenizerBase,
        label2id: Mapping[str, int] | None = None,
    ) -> list[Feature]:
        """Model inputs for every unit of ``doc``: one or more windows each, never truncated.

        Args:
            doc: the document; its ``words`` and ``sentences`` define the units.
            tokenizer: a fast tokenizer (needs ``word_ids()``).
            label2id: tag -> label id; ``None`` encodes without labels (inference). With
                ``head="multilabel"`` its types are the layers.

        Returns:
            Features in unit order, windows in order within each unit.
        """
        return self.encode_many([doc], tokenizer, label2id)[0]

    def encode_many(
        self,
        docs: Sequence[Document],
        tokenizer: PreTrainedTokenizerBase,
        label2id: Mapping[str, int] | None = None,
    ) -> list[list[Feature]]:
        """:meth:`encode` of each document, with one tokenizer call for all their units.

        The tokenizer's Python wrapper costs more per call than tokenizing a sentence does, so
        corpora of sentence-long documents (the IOB corpora, texts given to ``bioner-predict``)
        encode several times faster together than one by one.
        """
        units_of = [self.units(doc) for doc in docs]
        sequences = [
            [doc.text[s:e] for s, e in doc.words[lo:hi]]
            for doc, units in zip(docs, units_of)
            for _, lo, hi in units
        ]
        if not sequences:
            return [[] for _ in docs]
        prefix, suffix = _special_tokens(tokenizer)
        size = self._resolve_max_length(tokenizer) - len(prefix) - len(suffix)
        if size < 1:
            raise ValueError(
                f"alignment max_length {self._resolve_max_length(tokenizer)} leaves no room "
                f"for sub-words next to the tokenizer's {len(prefix) + len(suffix)} special tokens"
            )
        unk = tokenizer.unk_token_id
        batch = tokenizer(
            sequences,
            is_split_into_words=True,
            add_special_tokens=False,
            return_attention_mask=False,
            return_token_type_ids=False,
            split_special_tokens=True,  # a literal "[SEP]" in the text is text
            verbose=False,  # long units are windowed below, not truncated
        )
        out: list[list[Feature]] = []
        k = 0  # the tokenizer's row of the next unit
        for doc, units in zip(docs, units_of):
            tag_ids: list[list[_SubwordLabels]] | None = None
            ignored: int | tuple[int, ...] = IGNORE_INDEX  # the label of a special token
            if label2id is not None and units:
                tag_ids = self._layer_label_ids(doc, label2id)
                if self.head == "multilabel":
                    ignored = (IGNORE_INDEX,) * len(tag_ids)
            features: list[Feature] = []
            for unit, lo, hi in units:
                ids, counts = _group_subwords(
                    batch["input_ids"][k], batch.word_ids(k), hi - lo, unk, doc.id
                )
                k += 1
                word_of = [lo + w for w, c in enumerate(counts) for _ in range(c)]
                labels = None
                if tag_ids is not None:
                    if self.head == "flat":
                        labels = [
                            IGNORE_INDEX if t is None else t
                            for w in range(lo, hi)
                            for t in tag_ids[0][w][counts[w - lo] - 1]
                        ]
                    else:  # one id per layer and sub-word
                        labels = [
                            tuple(IGNORE_INDEX if t is None else t for t in ts)
                            for w in range(lo, hi)
                            for ts in zip(*(layer[w][counts[w - lo] - 1] for layer in tag_ids))
                        ]
                starts = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
                for j, (s, e) in enumerate(plan_windows(starts, len(ids), size, self.stride)):
                    features.append(
                        Feature(
                            input_ids=prefix + ids[s:e] + suffix,
                            labels=None
                            if labels is None
                            else [ignored] * len(prefix) + labels[s:e] + [ignored] * len(suffix),
                            word_ids=[None] * len(prefix) + word_of[s:e] + [None] * len(suffix),
                            unit=unit,
                            window=j,
                            offset=s,
                        )
                    )
            out.append(features)
        return out

    def learnable(self, spans: list[Span]) -> list[Span]:
        """The spans of ``spans`` (sorted) that the head can hold: for ``flat`` the longest of
        each overlapping group, for ``multilabel`` that per type. The others are still gold and
        scored, but neither trained on nor predictable."""
        if self.head == "flat":
            return flat_layer(spans)
        types = dict.fromkeys(s.label for s in spans)
        return sorted(s for t in types for s in flat_layer([s for s in spans if s.label == t]))

    def _layer_label_ids(
        self, doc: Document, label2id: Mapping[str, int]
    ) -> list[list[_SubwordLabels]]:
        """Per layer (one for ``flat``, one per type of ``label2id`` for ``multilabel``), the
        word label lookups of :meth:`_word_label_ids` over the spans that layer learns."""
        if self.head == "flat":
            return [self._word_label_ids(doc, flat_layer(doc.spans), label2id)]
        layers = []
        # Types mapped to O's id are ones the model lacks (bioner-eval): no layer learns them.
        types = [t for t in entity_types_of(list(label2id)) if label2id[f"B-{t}"] != label2id["O"]]
        for label in types:
            spans = flat_layer([s for s in doc.spans if s.label == label])
            layer2id = {tag: i for i, tag in enumerate(label_list([label], self.scheme))}
            layers.append(self._word_label_ids(doc, spans, layer2id))
        return layers

    def _word_label_ids(
        self, doc: Document, spans: list[Span], label2id: Mapping[str, int]
    ) -> list[_SubwordLabels]:
        """Per word, a lookup ``n_subwords - 1 -> label ids`` (built lazily, shared by words)."""
        # Evaluation text segmented without its gold spans: they label the words they overlap
        # (the labels only feed the evaluation loss; scores compare character spans).
        snap = bool(doc.meta.get(GOLD_FREE_WORDS))
        try:
            tags = spans_to_tags(doc.words, spans, self.scheme, snap=snap)
        except ValueError as err:
            raise ValueError(f"document {doc.id}: {err}; run Document.validate()") from err
        cache: dict[str, _SubwordLabels] = {}
        out = []
        for tag in tags:
            if tag not in cache:
                if tag not in label2id:
                    raise ValueError(
                        f"document {doc.id}: tag {tag!r} is not in label2id "
                        f"({len(label2id)} labels); the dataset's entity_types must list "
                        f"{split_tag(tag)[1]!r}"
                    )
                cache[tag] = _SubwordLabels(tag, self.label_strategy, self.scheme, label2id)
            out.append(cache[tag])
        return out

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        doc: Document,
        features: Sequence[Feature],
        logits: Sequence[np.ndarray],
        id2label: Mapping[int, str],
    ) -> list[Span]:
        """Predicted character spans of ``doc`` from the logits of its features.

        Args:
            doc: the document the features were encoded from.
            features: every feature :meth:`encode` returned for ``doc``.
            logits: per feature, an array ``(len(input_ids), num_labels)``; extra trailing rows
                (right padding of a batch) are ignored.
            id2label: label id -> tag, in this alignment's scheme.

        Each span's ``score`` is the model's confidence: a word's is the probability mass of its
        chosen type (``argmax`` rule: the probability of its tag), aggregated over its sub-words
        as the type was (``majority`` uses the mean); a span's is the mean over its words.

        Returns:
            Sorted spans with scores, each inside one unit; non-overlapping for the ``flat``
            head (the ``multilabel`` head's layers may overlap one another).
        """
        if len(features) != len(logits):
            raise ValueError(f"{len(features)} features but {len(logits)} logit arrays")
        if self.head == "multilabel":
            flat = self.replace(head="flat")
            out: list[Span] = []
            for layer2id, columns in layer_columns(id2label):
                layer = [_layer_logits(np.asarray(raw), columns) for raw in logits]
                out += flat.decode(doc, features, layer, dict(enumerate(layer2id)))
            return sorted(out)
        table = _LabelTable(id2label, self.scheme)
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
            rows, word_of = _unit_rows(by_unit[unit])
            first_word = int(word_of[0])
            tags, confidence = self._word_tags(rows, word_of, table)
            covered += len(tags)
            word_spans, _ = tags_to_word_spans(tags, self.scheme, on_invalid="repair")
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

    def _word_tags(
        self, rows: np.ndarray, word_of: np.ndarray, table: _LabelTable
    ) -> tuple[list[str], np.ndarray]:
        """One tag per word of a unit from its sub-word logits (rows in unit order), and the
        probability mass of each word's chosen type."""
        probs = np.exp(rows - rows.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        starts = np.flatnonzero(np.r_[True, word_of[1:] != word_of[:-1]])
        ends = np.r_[starts[1:], len(word_of)] - 1  # last sub-word of each word
        if self.decode_rule == "argmax":
            # The pipeline's rule: argmax over tags of the aggregated sub-word probabilities.
            scores, mass = self._aggregate(probs, starts, ends)
            best = scores.argmax(axis=1)
            confidence = mass[np.arange(len(starts)), best]
            return [table.tags[i] for i in best], confidence
        types = probs @ table.type_matrix  # (sub-words, 1 + types): probability mass per type
        scores, mass = self._aggregate(types, starts, ends)
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

        if self.scheme == "IOB2":
            where = last if self.label_strategy == "last" else first
            prefixes = np.where(p(where, "B") >= p(where, "I"), "B", "I")
        elif self.label_strategy == "all":
            begins = p(first, "B") + p(first, "S") >= p(first, "I") + p(first, "E")
            finishes = p(last, "E") + p(last, "S") >= p(last, "B") + p(last, "I")
            prefixes = np.select(
                [begins & finishes, begins, finishes], ["S", "B", "E"], default="I"
            )
        else:
            where = last if self.label_strategy == "last" else first
            stacked = np.stack([p(where, x) for x in "BIES"], axis=1)
            prefixes = np.array(list("BIES"))[stacked.argmax(axis=1)]
        for i, prefix, type_index in zip(entity, prefixes, t):
            tags[i] = f"{prefix}-{table.types[type_index - 1]}"
        return tags, confidence

    def _aggregate(
        self, values: np.ndarray, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per word, the ``decode`` aggregate of its sub-words' rows of ``values`` (probability
        per type or per tag): the scores to take the argmax of, and the probabilities that
        give the confidence (they differ for ``majority``, whose scores are vote counts)."""
        method = self.decode_method
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


def _layer_logits(logits: np.ndarray, columns: list[int]) -> np.ndarray:
    """One layer's logits: a 0 for ``O``, then the model's outputs at ``columns``."""
    return np.concatenate([np.zeros((len(logits), 1)), logits[:, columns]], axis=1)


class _SubwordLabels:
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


class _LabelTable:
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


def _special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special-token ids the tokenizer puts before and after a single sequence."""
    try:
        return list(_SPECIALS[tokenizer][0]), list(_SPECIALS[tokenizer][1])
    except (KeyError, TypeError):
        pass
    enc = tokenizer(["x"], is_split_into_words=True, add_special_tokens=True)
    word_ids = enc.word_ids()
    ids = list(enc["input_ids"])
    first = word_ids.index(0)
    last = len(word_ids) - 1 - word_ids[::-1].index(0)
    found = (tuple(ids[:first]), tuple(ids[last + 1 :]))
    with contextlib.suppress(TypeError):  # an unhashable tokenizer is simply not cached
        _SPECIALS[tokenizer] = found
    return list(found[0]), list(found[1])


def _group_subwords(
    ids: Sequence[int], word_ids: Sequence[int | None], n_words: int, unk: int | None, doc_id: str
) -> tuple[list[int], list[int]]:
    """Sub-word ids in word order and the count per word, with ``[UNK]`` for empty words."""
    out: list[int] = []
    counts = [0] * n_words
    j, total = 0, len(ids)
    for w in range(n_words):
        before = len(out)
        while j < total and word_ids[j] == w:
            out.append(ids[j])
            j += 1
        if len(out) == before:
            if unk is None:
                raise ValueError(
                    f"document {doc_id}: word {w} of a unit has no sub-words and the tokenizer "
                    "has no unknown token to stand in for it"
                )
            out.append(unk)
        counts[w] = len(out) - before
    if j != total:
        raise ValueError(
            f"document {doc_id}: the tokenizer returned sub-words out of word order; bioner needs "
            "a tokenizer whose word_ids() increase along the sequence"
        )
    return out, counts


def _unit_rows(items: list[tuple[Feature, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Logit rows of one unit's sub-words in order, each from its best window, and their words."""
    windows = []
    for feature, array in items:
        content = np.array([k for k, w in enumerate(feature.word_ids) if w is not None])
        words = np.array([feature.word_ids[k] for k in content], dtype=np.int64)
        windows.append((feature.offset, words, array[content]))
    if len(windows) == 1 and windows[0][0] == 0:
        _, words, rows = windows[0]
        return rows, words
    n = max(offset + len(words) for offset, words, _ in windows)
    word_of = np.full(n, -1, dtype=np.int64)
    for offset, words, _ in windows:
        seen = word_of[offset : offset + len(words)]
        if np.any((seen >= 0) & (seen != words)):
            raise ValueError("features of one unit disagree on which word a sub-word belongs to")
        word_of[offset : offset + len(words)] = words
    if np.any(word_of < 0):
        raise ValueError("the features of a unit leave some of its sub-words uncovered")
    first_word = int(word_of[0])
    local = word_of - first_word
    total = np.bincount(local)
    best_ctx = np.full(len(total), -1, dtype=np.int64)
    best_win = np.full(len(total), -1, dtype=np.int64)
    for j, (offset, words, _) in enumerate(windows):
        end = offset + len(words)
        lw = words - first_word
        ids, first_pos, count = np.unique(lw, return_index=True, return_counts=True)
        whole = count == total[ids]
        last_pos = first_pos + count - 1
        left = first_pos if offset > 0 else np.full(len(ids), _FULL_CONTEXT)
        right = len(words) - 1 - last_pos if end < n else np.full(len(ids), _FULL_CONTEXT)
        ctx = np.where(whole, np.minimum(left, right), -1)
        better = ctx > best_ctx[ids]  # strict: ties go to the earlier window
        best_ctx[ids[better]] = ctx[better]
        best_win[ids[better]] = j
    rows = np.zeros((n, windows[0][2].shape[1]))
    split = best_win[local] < 0  # sub-words of words no window holds whole
    pos_ctx = np.full(n, -1, dtype=np.int64)
    for j, (offset, words, array) in enumerate(windows):
        end = offset + len(words)
        pos = np.arange(offset, end)
        take = best_win[words - first_word] == j
        rows[pos[take]] = array[take]
        k = np.arange(len(words))
        left = k if offset > 0 else np.full(len(k), _FULL_CONTEXT)
        right = len(words) - 1 - k if end < n else np.full(len(k), _FULL_CONTEXT)
        ctx = np.minimum(left, right)
        take = split[pos] & (ctx > pos_ctx[pos])
        rows[pos[take]] = array[take]
        pos_ctx[pos[take]] = ctx[take]
    return rows, word_of
