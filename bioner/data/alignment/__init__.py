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

``decode_rule="viterbi"`` (constrained decoding) aggregates each word's tag probabilities as
``argmax`` does, then chooses the unit's whole tag sequence: the one of highest summed
log-probability among the sequences the scheme allows (no ``I-X`` after ``O`` or after ``B-Y``),
by Viterbi with transitions that only forbid (:meth:`Transitions.constraints`). It needs no
training and applies to any flat model (``bioner-eval decode_rule=viterbi``); the ``crf`` head
decodes the same way with the transition scores it learned.

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

Context (``context``, with ``unit="sentence"``): each sentence's input also carries up to
``context`` sub-words of the sentences before and after it in the same document, the nearest
ones, as room in the window allows (half each where both sides want more; the rest to the other
side where one has less). Context sub-words have no word (``word_ids`` ``None``) and no label,
so no loss reads them and no span is decoded from them: a sentence is still labelled and
predicted once, from its own input (FLERT's document-level features, Schweter and Akbik 2020).
A sentence that needs several windows gets none.

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
``crf``: the flat head's tags and training labels, with a linear-chain CRF over the words of a
unit (:mod:`~bioner.data.alignment.crf`): the outputs at each word's labelled sub-word are its
emission scores, and a unit decodes as the best allowed tag sequence (Viterbi), so no ``I-X``
follows ``O``. It needs ``label_strategy`` ``first`` or ``last`` decoded from that sub-word, and
the model's learned transitions; ``decode_rule="argmax"`` ignores them and reads the emissions
as transformers' pipeline does.

A word that the tokenizer turns into no sub-word at all (a zero-width space, a lone combining
accent, a control character) gets one ``[UNK]`` sub-word so that its label is never lost.

The package's modules, one step each: :mod:`~bioner.data.alignment.core` (the :class:`Alignment`
and its settings), :mod:`~bioner.data.alignment.encoding` (words to sub-words and features),
:mod:`~bioner.data.alignment.labels` (training labels, label tables, multilabel layers),
:mod:`~bioner.data.alignment.windows` (planning windows, merging their logits) and
:mod:`~bioner.data.alignment.decoding` (logits to word tags to character spans).
"""

# Hydra configs, bioner.json records and checkpoints name bioner.data.alignment.Alignment.
from bioner.data.alignment.core import (
    ALIGN_SCHEMES,
    ALIGNMENT_TARGET,
    DECODE_RULES,
    DECODES,
    HEADS,
    LABEL_STRATEGIES,
    UNITS,
    Alignment,
)
from bioner.data.alignment.crf import Transitions
from bioner.data.alignment.feature import IGNORE_INDEX, UNSET_MAX_LENGTH, Feature
from bioner.data.alignment.labels import layer_columns, subword_tags
from bioner.data.alignment.windows import plan_windows

# Configs, records and Hydra's messages name the class by its public path, not by its module.
Alignment.__module__ = __name__

__all__ = [
    "ALIGNMENT_TARGET",
    "ALIGN_SCHEMES",
    "DECODES",
    "DECODE_RULES",
    "HEADS",
    "IGNORE_INDEX",
    "LABEL_STRATEGIES",
    "UNITS",
    "UNSET_MAX_LENGTH",
    "Alignment",
    "Feature",
    "Transitions",
    "layer_columns",
    "plan_windows",
    "subword_tags",
]
