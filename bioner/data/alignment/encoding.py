"""Encoding: documents to units, sub-words and windowed model inputs (:class:`Feature`), with
training labels when given; nothing is truncated."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from bioner.data.alignment.feature import IGNORE_INDEX, UNSET_MAX_LENGTH, Feature
from bioner.data.alignment.labels import SubwordLabels, layer_label_ids
from bioner.data.alignment.windows import plan_windows
from bioner.data.document import Document
from bioner.errors import ConfigError, FormatError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from bioner.data.alignment.core import Alignment

# Special tokens per tokenizer: asking the tokenizer costs as much as encoding a sentence.
_SPECIALS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def document_units(alignment: Alignment, doc: Document) -> list[tuple[int, int, int]]:
    """Non-empty units of ``doc`` as ``(unit index, first word, end word)``."""
    if not doc.words:
        return []
    if alignment.unit == "document":
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


def window_size(alignment: Alignment, tokenizer: PreTrainedTokenizerBase) -> int:
    """Sub-words per window, special tokens excluded.

    Raises:
        ConfigError: the window holds no sub-word (see also :func:`resolve_max_length`).
    """
    prefix, suffix = special_tokens(tokenizer)
    max_length = resolve_max_length(alignment, tokenizer)
    size = max_length - len(prefix) - len(suffix)
    if size < 1:
        specials = len(prefix) + len(suffix)
        raise ConfigError(
            f"alignment.max_length={max_length} leaves no room for sub-words next to the "
            f"tokenizer's {specials} special tokens; give more than {specials}, or null for the "
            "encoder's own limit"
        )
    return size


def resolve_max_length(alignment: Alignment, tokenizer: PreTrainedTokenizerBase) -> int:
    """Sub-words per model input, special tokens included: ``alignment.max_length``, else the
    encoder's limit (the tokenizer's ``model_max_length``, which an Encoder sets).

    Raises:
        ConfigError: ``alignment.max_length`` is longer than the encoder takes (its position
            embeddings end there: the run failed when the first long unit came), or neither
            says how long an input may be.
    """
    limit = tokenizer.model_max_length
    limit = int(limit) if limit and limit < UNSET_MAX_LENGTH else None
    if alignment.max_length is None:
        if limit is None:
            raise ConfigError(
                "the tokenizer does not say how long an input may be; set alignment.max_length "
                "(e.g. 512 for BERT models) or load the tokenizer through an Encoder"
            )
        return limit
    if limit is not None and alignment.max_length > limit:
        raise ConfigError(
            f"alignment.max_length={alignment.max_length} is longer than the encoder takes "
            f"({limit} sub-words, special tokens included): give {limit} or less (null: the "
            "limit), or raise the limit with model.max_length=<n> if the encoder's position "
            "embeddings reach that far"
        )
    return int(alignment.max_length)


def encode_many(
    alignment: Alignment,
    docs: Sequence[Document],
    tokenizer: PreTrainedTokenizerBase,
    label2id: Mapping[str, int] | None = None,
) -> list[list[Feature]]:
    """:meth:`Alignment.encode` of each document, with one tokenizer call for all their units.

    The tokenizer's Python wrapper costs more per call than tokenizing a sentence does, so
    corpora of sentence-long documents (the IOB corpora, texts given to ``bioner-predict``)
    encode several times faster together than one by one.
    """
    units_of = [document_units(alignment, doc) for doc in docs]
    sequences = [
        [doc.text[s:e] for s, e in doc.words[lo:hi]]
        for doc, units in zip(docs, units_of)
        for _, lo, hi in units
    ]
    if not sequences:
        return [[] for _ in docs]
    prefix, suffix = special_tokens(tokenizer)
    size = window_size(alignment, tokenizer)
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
        tag_ids: list[list[SubwordLabels]] | None = None
        ignored: int | tuple[int, ...] = IGNORE_INDEX  # the label of a special token
        if label2id is not None and units:
            tag_ids = layer_label_ids(alignment, doc, label2id)
            if alignment.head == "multilabel":
                ignored = (IGNORE_INDEX,) * len(tag_ids)
        encoded: list[tuple[int, list[int], list[int], list | None, list[int]]] = []
        for unit, lo, hi in units:
            ids, counts = _group_subwords(
                batch["input_ids"][k], batch.word_ids(k), hi - lo, unk, doc.id
            )
            k += 1
            word_of = [lo + w for w, c in enumerate(counts) for _ in range(c)]
            labels = None
            if tag_ids is not None:
                if alignment.head != "multilabel":  # flat, crf: one id per sub-word
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
            encoded.append((unit, ids, word_of, labels, counts))
        features: list[Feature] = []
        units_ids = [e[1] for e in encoded]
        for position, (unit, ids, word_of, labels, counts) in enumerate(encoded):
            starts = np.concatenate(([0], np.cumsum(counts)[:-1])).tolist()
            windows = plan_windows(starts, len(ids), size, alignment.stride)
            left: list[int] = []
            right: list[int] = []
            if alignment.context and len(windows) == 1:
                left, right = unit_context(units_ids, position, alignment.context, size - len(ids))
            before, after = prefix + left, right + suffix
            for j, (s, e) in enumerate(windows):
                features.append(
                    Feature(
                        input_ids=before + ids[s:e] + after,
                        labels=None
                        if labels is None
                        else [ignored] * len(before) + labels[s:e] + [ignored] * len(after),
                        word_ids=[None] * len(before) + word_of[s:e] + [None] * len(after),
                        unit=unit,
                        window=j,
                        offset=s,
                    )
                )
        out.append(features)
    return out


def unit_context(
    units: Sequence[Sequence[int]], position: int, context: int, room: int
) -> tuple[list[int], list[int]]:
    """The sub-words of the units around ``units[position]`` that its input carries as context:
    up to ``context`` on each side, the last ones of the units before and the first ones of the
    units after, and together at most ``room``. Where both sides want more than ``room``, each
    gets half; where one side has less, the other takes the rest."""
    n_left = _available(reversed(units[:position]), context)
    n_right = _available(units[position + 1 :], context)
    room = max(room, 0)
    if n_left + n_right > room:
        half = room // 2
        if n_left <= half:
            n_right = room - n_left
        elif n_right <= room - half:
            n_left = room - n_right
        else:
            n_left, n_right = half, room - half
    left: list[int] = []
    for unit in reversed(units[:position]):
        if len(left) >= n_left:
            break
        left = list(unit[max(len(unit) - (n_left - len(left)), 0) :]) + left
    right: list[int] = []
    for unit in units[position + 1 :]:
        if len(right) >= n_right:
            break
        right += unit[: n_right - len(right)]
    return left, right


def _available(units: Iterable[Sequence[int]], wanted: int) -> int:
    """How many of ``wanted`` sub-words ``units`` hold, read only as far as needed (a note of
    hundreds of lines costs each sentence its context, not the whole document)."""
    have = 0
    for unit in units:
        have += len(unit)
        if have >= wanted:
            return wanted
    return have


# Words whose sub-words show where a single sequence's special tokens go.
_PROBE_WORDS = ("x", "a", "the", "1")


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special-token ids the tokenizer puts before and after a single sequence."""
    try:
        return list(_SPECIALS[tokenizer][0]), list(_SPECIALS[tokenizer][1])
    except (KeyError, TypeError):
        pass
    for word in _PROBE_WORDS:
        enc = tokenizer([word], is_split_into_words=True, add_special_tokens=True)
        word_ids = enc.word_ids()
        if 0 in word_ids:
            break
    else:
        raise FormatError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', '') or 'the encoder'} turns "
            f"each of the words {', '.join(map(repr, _PROBE_WORDS))} into no sub-words at all "
            f"(only {tokenizer.convert_ids_to_tokens(enc['input_ids'])}), so no tag could be "
            "read from it. Fix: check its tokenizer.json (vocabulary, merges, pre-tokenizer), or "
            "point model.name_or_path at the folder the encoder was pretrained with"
        )
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
