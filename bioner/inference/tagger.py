"""Raw text to entity spans with a trained bioner model: :class:`Tagger`.

``Tagger.load(folder).predict(["text", ...])`` returns, per text (``predict("text")``: for that
one text), :class:`Span`\\ s
whose offsets index that text exactly. Texts become documents with the project's own sentence
splitter and offset-keeping word tokenizer (:func:`bioner.data.sentences.split_sentences`,
:func:`bioner.data.tokenize.word_ranges`), are encoded with the alignment the model was trained
with (recorded in ``bioner.json`` by ``bioner-train``; long sentences become overlapping
windows, nothing is truncated), run through the model in batches of similar length, decoded
back to character spans by the same alignment, and post-processed.

Inputs are consumed in chunks of about ``chunk_chars`` characters (:meth:`Tagger.predict_stream`),
so a stream of any length is tagged in bounded memory, and results come back in input order.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import torch

from bioner.data.alignment import Alignment, Feature, Transitions
from bioner.data.batching import Collator
from bioner.data.document import Document, Span
from bioner.data.encoded import EncodedSplit, predict_split
from bioner.data.sentences import split_sentences
from bioner.data.tags import entity_types_of, split_tag
from bioner.data.tokenize import word_ranges
from bioner.errors import ConfigError
from bioner.evaluation.ensemble import MAJORITY, vote, votes_needed
from bioner.inference.export import METADATA_FILE
from bioner.inference.inputs import TextRecord
from bioner.postprocess.base import PostProcessor, apply_steps
from bioner.preprocess import Preprocessor
from bioner.utils.log import get_logger
from bioner.utils.precision import tagging_precision

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = get_logger(__name__)

PRECISIONS = ("auto", "32", "bf16")


def model_folder(folder: str | Path) -> Path:
    """The exported model folder of ``folder``: a run folder's ``model/``, or ``folder`` itself.

    Raises:
        FileNotFoundError: ``folder`` is neither (the message says what was expected).
    """
    path = Path(folder).expanduser()
    if (path / "model" / "config.json").is_file():
        return path / "model"
    if (path / "config.json").is_file():
        return path
    hint = ""
    if (path / "checkpoints").is_dir():
        hint = (
            " It has checkpoints but no model/: the run stopped before exporting; finish it "
            "(bioner-train ckpt_path=last run_dir=...) or score it with bioner-eval."
        )
    raise FileNotFoundError(
        f"{path} is neither a bioner run folder (with model/config.json) nor an exported model "
        f"folder (with config.json).{hint}"
    )


def make_document(
    text: str, doc_id: str = "0", forced: Sequence[int] = (), split: bool = True
) -> Document:
    """A document of raw ``text``: sentences and words computed, offsets into ``text``.

    Args:
        text: the text, unchanged.
        doc_id: the document id.
        forced: offsets where a sentence must end (a title's end).
        split: split sentences by :func:`bioner.data.sentences.split_sentences`; ``False``: the
            text is one sentence already (apart from ``forced`` boundaries).
    """
    if split:
        sentences = split_sentences(text, forced=forced)
    else:
        # Only the forced cuts, each piece trimmed of whitespace as the splitter trims.
        cuts = [0, *sorted(forced), len(text)]
        sentences = []
        for lo, hi in zip(cuts, cuts[1:]):
            piece = text[lo:hi]
            if piece.strip():
                start = lo + len(piece) - len(piece.lstrip())
                sentences.append((start, lo + len(piece.rstrip())))
    return Document(doc_id, text, [], sentences, word_ranges(text), meta={})


# tagger.min_votes: the vote of models of the same types, the pool of different ones.
AUTO = "auto"


@dataclass
class _Member:
    """One model of a tagger with everything needed to encode and decode for it."""

    folder: Path
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    alignment: Alignment
    id2label: dict[int, str]
    collator: Collator
    preprocess: Preprocessor | None = None
    precision: str = "32"
    transitions: Transitions | None = None


class Tagger:
    """Tag raw text or documents with one or more trained models.

    With several models (a chemical and a disease model, say) every model tags every document
    and their spans are pooled before post-processing; add an
    :class:`~bioner.postprocess.OverlapResolver` step when they may claim the same words. Models
    of the same types (seeds, encoders) are an ensemble: a span is kept where ``min_votes`` of
    them predict it (:mod:`bioner.evaluation.ensemble`), by default more than half.

    Args:
        models: per model, ``(model, tokenizer, alignment)``; the model's ``config.id2label``
            must be the alignment's tags.
        postprocess: steps applied in order to each document's spans.
        batch_size: most sequences per forward pass.
        max_tokens: most padded sub-words per forward pass (bounds activation memory on long
            windows); ``None``: no cap.
        chunk_chars: documents are gathered into chunks of about this many characters, sorted
            by length inside a chunk and batched; larger chunks pad less, hold more in memory.
        split_sentences: split texts into sentences; ``False`` when each text is one sentence
            already (one sentence per line), so that the splitter cannot cut it further.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``, ...
        precision: ``auto`` (each model in the precision it trained and was scored in, where
            the device runs it natively: bf16 for a ``bf16-mixed`` run on a GPU or a CPU with
            native bf16, else fp32; see :func:`bioner.utils.precision.tagging_precision`),
            ``32`` (fp32 everywhere) or ``bf16`` (autocast; emulated, and slower than fp32, on
            hardware without native bf16).
        folders: where each model came from (for messages).
        decode_rule: replaces every model's alignment ``decode_rule``: ``argmax`` gives the
            spans of transformers' ``pipeline(..., aggregation_strategy="first")`` for a model
            decoded from its first sub-word; ``None`` keeps the rule each model was trained
            with (see :class:`~bioner.data.alignment.Alignment`).
        preprocess: per model, the fitted preprocessing it trained with (``None``: none).
        trained_precisions: per model, the Lightning precision it trained in (``bf16-mixed``,
            ``32-true``, ...; ``None``: not known), for ``precision=auto``.
        transitions: per model, the learned transitions of a ``crf`` head
            (:class:`~bioner.data.alignment.Transitions`; ``None`` for other heads).
        min_votes: ``auto``: ``majority`` where the models tag the same types, else ``None``;
            ``None``: pool every model's spans (refused for models of the same types, whose
            pool would list each span they agree on once per model);
            ``majority`` (more than half of the models) or a number: keep the spans that many
            of them predict, scored by their voters' scores summed over the number of models.
    """

    def __init__(
        self,
        models: Sequence[tuple[PreTrainedModel, PreTrainedTokenizerBase, Alignment]],
        postprocess: Sequence[PostProcessor] = (),
        batch_size: int = 64,
        max_tokens: int | None = 16384,
        chunk_chars: int = 1_000_000,
        split_sentences: bool = True,
        device: str = "auto",
        precision: str | int = "auto",
        folders: Sequence[str | Path] | None = None,
        decode_rule: str | None = None,
        preprocess: Sequence[Preprocessor | None] | None = None,
        trained_precisions: Sequence[str | None] | None = None,
        transitions: Sequence[Transitions | None] | None = None,
        min_votes: int | str | None = AUTO,
    ) -> None:
        if not models:
            raise ValueError("a Tagger needs at least one model")
        for key, value in (("batch_size", batch_size), ("chunk_chars", chunk_chars)):
            if not (isinstance(value, int) and value >= 1):
                raise ConfigError(f"tagger.{key}={value}: must be a positive integer")
        if max_tokens is not None and not (isinstance(max_tokens, int) and max_tokens >= 1):
            raise ConfigError(f"tagger.max_tokens={max_tokens}: must be a positive integer or null")
        precision = str(precision)  # `tagger.precision=32` on the command line is an int
        if precision not in PRECISIONS:
            raise ConfigError(
                f"tagger.precision={precision!r}: choose one of {', '.join(PRECISIONS)}"
            )
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.device = torch.device(device)
        except RuntimeError:
            raise ConfigError(
                f"tagger.device={device!r}: choose auto, cpu, cuda or cuda:<index>"
            ) from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(
                f"tagger.device={device}: no CUDA device is visible to this PyTorch "
                f"({torch.__version__}); use tagger.device=auto or cpu"
            )
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.chunk_chars = chunk_chars
        self.split_sentences = split_sentences
        self.postprocess = list(postprocess)
        names = list(folders) if folders is not None else [f"model {i}" for i in range(len(models))]
        preprocess = list(preprocess) if preprocess is not None else [None] * len(models)
        trained = list(trained_precisions or [None] * len(models))
        crfs = list(transitions or [None] * len(models))
        self.members: list[_Member] = []
        for (model, tokenizer, alignment), name, pre, was, crf in zip(
            models, names, preprocess, trained, crfs, strict=True
        ):
            id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
            if tokenizer.pad_token_id is None:
                raise ValueError(f"{name}: the tokenizer has no padding token")
            model.eval().to(self.device)
            if decode_rule is not None:
                alignment = alignment.replace(decode_rule=decode_rule)
            if alignment.head == "crf" and alignment.decode_rule != "argmax" and crf is None:
                raise ConfigError(
                    f"{name}: a crf head decodes with its learned transitions; pass them "
                    "(Tagger(..., transitions=[...]); Tagger.load reads them from bioner.json)"
                )
            chosen, why = tagging_precision(precision, was, self.device)
            log.info("tagger model %s: %s on %s (%s)", name, chosen, self.device, why)
            self.members.append(
                _Member(
                    Path(name),
                    model,
                    tokenizer,
                    alignment,
                    id2label,
                    # Fewer distinct batch shapes on a GPU (see NERDataModule.pad_to_multiple_of).
                    Collator(tokenizer.pad_token_id, 8 if self.device.type == "cuda" else None),
                    pre,
                    chosen,
                    crf,
                )
            )
        self.min_votes = self._votes_needed(min_votes)

    def _votes_needed(self, min_votes: int | str | None) -> int | None:
        """The votes a span needs (``None``: pool every model's spans), checked against the
        types the models tag."""
        models = len(self.members)
        needed = None
        if min_votes not in (None, AUTO):
            try:
                needed = votes_needed(min_votes, models)
            except ValueError as err:
                also = "" if isinstance(min_votes, int) else f", or {AUTO}, or null"
                raise ConfigError(f"tagger.{err}{also}") from None
        kinds = {tuple(entity_types_of(list(m.id2label.values()))) for m in self.members}
        if models == 1 or (min_votes == AUTO and len(kinds) > 1):
            return None
        if min_votes == AUTO:
            return votes_needed(MAJORITY, models)
        if min_votes is None and len(kinds) == 1:
            raise ConfigError(
                f"tagger.min_votes=null: the {models} models tag the same types "
                f"({', '.join(kinds.pop())}), and pooling them would list every span they agree "
                "on once per model; use tagger.min_votes=auto or majority (their vote) or 1 "
                "(each span that any of them predicts, once)"
            )
        if min_votes is not None and len(kinds) > 1:
            raise ConfigError(
                f"tagger.min_votes: the models tag different types ({sorted(kinds)}); the "
                "models of an ensemble tag the same ones (min_votes=null pools different ones)"
            )
        return needed

    @property
    def entity_types(self) -> list[str]:
        """The entity types the models tag, sorted."""
        return sorted({t for m in self.members for t in entity_types_of(list(m.id2label.values()))})

    def __repr__(self) -> str:
        folders = ", ".join(str(m.folder) for m in self.members)
        return f"Tagger([{folders}], device={self.device}, postprocess={self.postprocess})"

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        folder: str | Path | Sequence[str | Path],
        postprocess: Sequence[PostProcessor] = (),
        **kwargs: Any,
    ) -> Tagger:
        """A tagger from a run folder or an exported model folder (or a list of them).

        The alignment, the preprocessing and the training precision come from the folder's
        ``bioner.json``; a Hugging Face folder without it (not written by bioner) is decoded
        with :class:`~bioner.data.alignment.Alignment`'s defaults in the scheme its labels use,
        with a warning, and tagged in fp32 under ``precision=auto``.

        Args:
            folder: a run folder (holding ``model/``), an exported folder, or a list of either.
            postprocess: post-processing steps.
            **kwargs: the other arguments of :class:`Tagger`.
        """
        from transformers import AutoModelForTokenClassification

        from bioner.models.encoders import (
            HubEncoder,
            folder_as_data,
            fp32_weights,
            quiet_transformers,
        )

        folders = [folder] if isinstance(folder, (str, Path)) else list(folder)
        models, names, preprocess, trained, crfs = [], [], [], [], []
        for item in folders:
            path = model_folder(item)
            meta = _load_metadata(path)
            # The encoder class turns truncation off and derives the input limit, as in training;
            # the tokenizer was saved as training used it.
            tokenizer = HubEncoder(str(path), name=path.name, as_saved=True).load_tokenizer()
            # No progress bars on stderr for every load; nothing of the folder runs.
            with quiet_transformers(), folder_as_data(path):
                model = AutoModelForTokenClassification.from_pretrained(
                    path, trust_remote_code=False, **fp32_weights()
                )
            alignment = _load_alignment(path, meta, model.config.id2label)
            models.append((model, tokenizer, alignment))
            names.append(path)
            preprocess.append(_load_preprocess(path, meta))
            trained.append(_trained_precision(path, meta))
            crfs.append(_load_transitions(path, meta, alignment, model.config.id2label))
            log.info("tagger model %s: %s (preprocess: %s)", path, alignment, preprocess[-1])
        return cls(
            models,
            postprocess=postprocess,
            folders=names,
            preprocess=preprocess,
            trained_precisions=trained,
            transitions=crfs,
            **kwargs,
        )

    # ------------------------------------------------------------------ prediction

    @overload
    def predict(self, texts: str) -> list[Span]: ...

    @overload
    def predict(self, texts: Iterable[str]) -> list[list[Span]]: ...

    def predict(self, texts: str | Iterable[str]) -> list[Span] | list[list[Span]]:
        """The spans of one text, or of each text of a list, offsets into that text.

        ``predict("text")`` returns that text's spans; ``predict(["text", ...])`` one list of
        spans per text, in input order.
        """
        if isinstance(texts, str):
            return self.predict([texts])[0]
        records = (TextRecord(str(i), text) for i, text in enumerate(texts))
        return [spans for _, spans in self.predict_stream(records)]

    def predict_stream(
        self, records: Iterable[TextRecord | str]
    ) -> Iterator[tuple[Document, list[Span]]]:
        """Tag a stream of texts lazily, chunk by chunk, in input order.

        Yields:
            Per input, the document built from it (``meta`` carries the record's ``meta``) and
            its post-processed spans.
        """

        def documents() -> Iterator[Document]:
            for i, record in enumerate(records):
                if isinstance(record, str):
                    record = TextRecord(str(i), record)
                doc = make_document(record.text, record.id, record.forced, self.split_sentences)
                doc.meta.update(record.meta)
                yield doc

        for chunk in self._chunks(documents()):
            yield from zip(chunk, self._tag(chunk))

    def predict_documents(self, docs: Sequence[Document]) -> list[list[Span]]:
        """Predicted spans of existing documents (their own words and sentences are used).

        A document without words (text only) gets words and sentences as raw text does.

        Returns:
            ``result[i]`` are the post-processed spans of ``docs[i]``.
        """
        prepared = (
            make_document(d.text, d.id, split=self.split_sentences)
            if not d.words and d.text.strip()
            else d
            for d in docs
        )
        return [spans for chunk in self._chunks(prepared) for spans in self._tag(chunk)]

    def _chunks(self, docs: Iterable[Document]) -> Iterator[list[Document]]:
        """Consecutive documents of about ``chunk_chars`` characters (at least one each)."""
        chunk: list[Document] = []
        size = 0
        for doc in docs:
            chunk.append(doc)
            size += len(doc.text)
            if size >= self.chunk_chars:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def _tag(self, docs: list[Document]) -> list[list[Span]]:
        """Post-processed spans of each document of one chunk."""
        each = [self._run(member, docs) for member in self.members]
        if self.min_votes is None:
            pooled = [[s for spans in per_doc for s in spans] for per_doc in zip(*each)]
        else:
            pooled = [vote(per_doc, self.min_votes) for per_doc in zip(*each)]
        return [apply_steps(self.postprocess, doc.text, spans) for doc, spans in zip(docs, pooled)]

    def _run(self, member: _Member, docs: list[Document]) -> list[list[Span]]:
        """One model's spans for each document: encode, then :func:`predict_split` (batch by
        length, forward, decode).

        With the model's preprocessing, the model sees the rewritten documents and the spans are
        mapped back onto the original text.
        """
        originals, maps = None, None
        if member.preprocess is not None:
            pairs = [member.preprocess.normalise(doc) for doc in docs]
            originals, maps = docs, [p[1] for p in pairs]
            docs = [p[0] for p in pairs]
        features: list[Feature] = []
        owner: list[int] = []
        for d, encoded in enumerate(member.alignment.encode_many(docs, member.tokenizer)):
            features += encoded
            owner += [d] * len(encoded)
        split = EncodedSplit("predict", docs, features, owner, member.alignment, originals, maps)
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if member.precision == "bf16"
            else nullcontext()
        )
        pin = self.device.type == "cuda"

        def forward(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            if pin:
                # Copies from pinned memory do not wait for the GPU's queued work.
                batch = {k: v.pin_memory() for k, v in batch.items()}
            return member.model(
                input_ids=batch["input_ids"].to(self.device, non_blocking=pin),
                attention_mask=batch["attention_mask"].to(self.device, non_blocking=pin),
            ).logits

        with torch.inference_mode(), autocast:
            _, spans = predict_split(
                split,
                forward,
                member.collator,
                member.id2label,
                self.batch_size,
                self.max_tokens,
                member.transitions,
            )
        return spans


def _load_metadata(path: Path) -> dict[str, Any] | None:
    """``path/bioner.json`` read as plain JSON values, ``None`` when the folder has none.

    Raises:
        ConfigError: the file is not a JSON object (the message names it).
    """
    meta_file = path / METADATA_FILE
    if not meta_file.is_file():
        return None
    fix = (
        "it must be a JSON object holding 'alignment' and 'entity_types', as bioner-train writes it"
    )
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{meta_file} is not a bioner export record ({err}); {fix}") from err
    if not isinstance(meta, dict):
        raise ConfigError(f"{meta_file} is not a bioner export record (not an object); {fix}")
    return meta


def _load_preprocess(path: Path, meta: dict[str, Any] | None) -> Preprocessor | None:
    """The preprocessing recorded in ``bioner.json`` (``meta``), if any."""
    record = (meta or {}).get("preprocess")
    return None if not record else Preprocessor.from_record(record, str(path / METADATA_FILE))


def _trained_precision(path: Path, meta: dict[str, Any] | None) -> str | None:
    """The precision recorded in ``bioner.json`` (``meta``); ``None`` in folders exported before
    it was recorded, or not by bioner-train.

    Raises:
        ConfigError: the record is not a string.
    """
    value = (meta or {}).get("precision")
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"{path / METADATA_FILE}: 'precision' is {value!r}; it must be the Lightning precision "
            "the model trained in (bf16-mixed, 32-true, ...) or absent"
        )
    return value


def _load_transitions(
    path: Path, meta: dict[str, Any] | None, alignment: Alignment, id2label: dict
) -> Transitions | None:
    """The ``crf`` head's transitions recorded in ``bioner.json`` (``meta``): numbers only.

    Raises:
        ConfigError: a ``crf`` alignment without its record, or a record that is not one.
    """
    if alignment.head != "crf":
        return None
    record = (meta or {}).get("crf")
    source = str(path / METADATA_FILE)
    if record is None:
        raise ConfigError(
            f"{source}: the model has a crf head but no 'crf' record with its learned "
            "transitions; use the model/ folder that bioner-train exported, as it wrote it"
        )
    labels = {int(k): str(v) for k, v in id2label.items()}
    return Transitions.from_record(record, source, labels)


def _check_tags(path: Path, labels: set[str]) -> None:
    """Refuse a foreign model whose labels are not IOB2/IOBES tags (``LABEL_0``, ``B_Chemical``,
    bare types): entity boundaries cannot be read from them."""
    bad = []
    for label in sorted(labels):
        try:
            split_tag(label)
        except ValueError:
            bad.append(label)
    if bad:
        shown = ", ".join(map(repr, bad[:4])) + (" ..." if len(bad) > 4 else "")
        raise ConfigError(
            f"{path}: the labels of its config.json ({shown}) are not tags bioner can read "
            "entities from; it reads 'O', and 'B-', 'I-' (IOB2) or also 'E-', 'S-' (IOBES) + a "
            "type. Fix: name the labels so in config.json's id2label and label2id"
        )


def _load_alignment(path: Path, meta: dict[str, Any] | None, id2label: dict) -> Alignment:
    """The alignment recorded in ``bioner.json`` (``meta``), checked against the model's labels.

    The record is read as plain parameters (:meth:`Alignment.from_record`): a downloaded folder
    is data, and nothing it names is imported or called.
    """
    labels = {str(v) for v in id2label.values()}
    meta_file = path / METADATA_FILE
    if meta is None:
        _check_tags(path, labels)
        scheme = "IOBES" if any(label[:2] in ("E-", "S-") for label in labels) else "IOB2"
        warnings.warn(
            f"{path} has no {METADATA_FILE} (not exported by bioner-train): decoding with "
            f"Alignment(scheme={scheme!r}) defaults (first sub-word); if the model was trained "
            "otherwise, its predictions will be off",
            stacklevel=3,
        )
        return Alignment(scheme=scheme)
    try:
        node = meta["alignment"]
        types = [str(t) for t in meta["entity_types"]]
    except (KeyError, TypeError) as err:
        raise ConfigError(
            f"{meta_file} is not a bioner export record ({err}); it must hold 'alignment' (the "
            "alignment's parameters) and 'entity_types', as bioner-train writes it"
        ) from err
    alignment = Alignment.from_record(node, str(meta_file))
    expected = set(alignment.labels(types))
    if labels != expected:
        raise ConfigError(
            f"{path}: the model's labels {sorted(labels)} are not those of {METADATA_FILE} "
            f"({sorted(expected)}); the folder mixes files of different runs"
        )
    return alignment
