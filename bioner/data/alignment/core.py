"""The :class:`Alignment`: its settings, checked once, and the encode and decode steps it hands
to :mod:`~bioner.data.alignment.encoding` and :mod:`~bioner.data.alignment.decoding`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bioner.data.alignment import decoding, encoding, labels
from bioner.data.alignment.crf import Transitions, check_crf_alignment
from bioner.data.alignment.feature import Feature
from bioner.data.document import Document, Span
from bioner.data.tags import label_list
from bioner.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

LABEL_STRATEGIES = ("first", "all", "last")
DECODES = ("first", "last", "mean", "max", "majority")
DECODE_RULES = ("mass", "argmax", "viterbi")
ALIGN_SCHEMES = ("IOB2", "IOBES")
UNITS = ("sentence", "document")
HEADS = ("flat", "multilabel", "crf")
# The only _target_ an alignment record may name (what bioner-train writes into bioner.json).
ALIGNMENT_TARGET = "bioner.data.alignment.Alignment"
# Decoders that read only the sub-word each label strategy trains.
_MATCHED = {"first": ("first",), "last": ("last",), "all": DECODES}


class Alignment:
    """Sub-word labels, windows and word-level decoding (see the module docstring for the rules).

    Args:
        label_strategy: which sub-words carry a word's training label: ``first``, ``all``,
            ``last``.
        decode: how a word's sub-word predictions become its type: ``first``, ``last``,
            ``mean``, ``max``, ``majority``.
        decode_rule: ``mass``: a word's type is the type of most probability mass (``B-X`` and
            ``I-X`` summed), then its boundary is read; ``argmax``: a word's tag is the argmax
            tag, as in transformers' token-classification pipeline; ``viterbi``: the unit's best
            tag sequence that the scheme allows, from each word's tag probabilities (module
            docstring).
        scheme: tagging scheme of the model's labels: ``IOB2`` or ``IOBES``.
        max_length: longest model input in sub-words, special tokens included; ``None`` uses
            the tokenizer's ``model_max_length`` (which :class:`bioner.models.encoders.Encoder`
            sets to the encoder's limit).
        stride: overlap in sub-words between consecutive windows of a long unit.
        unit: ``sentence`` encodes each sentence on its own; ``document`` the whole document.
        context: with ``unit="sentence"``, sub-words of the neighbouring sentences of the same
            document that each sentence's input carries on either side, up to this many per
            side and as far as the window allows (FLERT's document-level features; Schweter and
            Akbik 2020). They are read, never labelled or predicted. ``0``: none.
        head: ``flat`` (one tag per word), ``multilabel`` (one tag layer per entity type;
            module docstring) or ``crf`` (one tag per word, decoded as a linear-chain CRF:
            :mod:`~bioner.data.alignment.crf`); ``module.head`` in the configs.
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
        context: int = 0,
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
                raise ValueError(f"alignment.{what}={value!r}: choose one of {', '.join(allowed)}")
        if stride < 0:
            raise ValueError(f"alignment.stride={stride}: must be 0 or more")
        if context < 0:
            raise ValueError(f"alignment.context={context}: must be 0 or more")
        if context and unit != "sentence":
            raise ValueError(
                f"alignment.context={context} adds neighbouring sentences to each sentence's "
                f"input; with unit={unit!r} the whole document is one input: give "
                "alignment.context=0, or unit=sentence"
            )
        if max_length is not None and max_length < 1:
            raise ValueError(f"alignment.max_length={max_length}: must be positive or null")
        if head == "crf":
            check_crf_alignment(label_strategy, decode)
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
        self.context = context

    def __repr__(self) -> str:
        return (
            f"Alignment(label_strategy={self.label_strategy!r}, decode={self.decode_method!r}, "
            f"scheme={self.scheme!r}, max_length={self.max_length}, stride={self.stride}, "
            f"unit={self.unit!r}, decode_rule={self.decode_rule!r}, head={self.head!r}, "
            f"context={self.context})"
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
            "context": (int,),
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
            "context": self.context,
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
        return encoding.document_units(self, doc)

    def window_size(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """Sub-words per window, special tokens excluded."""
        return encoding.window_size(self, tokenizer)

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
        """:meth:`encode` of each document, with one tokenizer call for all their units
        (:func:`bioner.data.alignment.encoding.encode_many`)."""
        return encoding.encode_many(self, docs, tokenizer, label2id)

    def learnable(self, spans: list[Span]) -> list[Span]:
        """The spans the head can hold (:func:`bioner.data.alignment.labels.learnable`)."""
        return labels.learnable(self, spans)

    # ------------------------------------------------------------------ decoding

    def decode(
        self,
        doc: Document,
        features: Sequence[Feature],
        logits: Sequence[np.ndarray],
        id2label: Mapping[int, str],
        transitions: Transitions | None = None,
    ) -> list[Span]:
        """Predicted character spans of ``doc`` from the logits of its features, with scores
        (:func:`bioner.data.alignment.decoding.decode`; ``transitions``: the ``crf`` head's)."""
        return decoding.decode(self, doc, features, logits, id2label, transitions)
