"""Back-translation: a sentence translated out to a pivot language and back, entities kept.

:class:`BackTranslation` replaces every entity mention of a chosen sentence by a placeholder
(``ENT0``, ``ENT1``, ...), translates the masked sentence ``source -> pivot -> source`` and puts the
mentions back where their placeholders came back. Only the text *between* mentions is rewritten
(as :class:`~bioner.augment.edits.Edit` s handed to :func:`~bioner.augment.edits.apply_edits`), so
every mention keeps its exact text and label. A round trip that loses, duplicates or reorders a
placeholder is discarded (the sentence stays as it was), never guessed at.

The translator is pluggable (:class:`Translator`): :class:`MarianTranslator` runs MarianMT models
(``Helsinki-NLP/opus-mt-en-de`` and back) through transformers; :class:`LexiconTranslator` is a
word-for-word toy for tests and offline demos.

Hydra (an option of ``conf/augmentation/``, around the training callback)::

    transform:
      _target_: bioner.augment.BackTranslation
      rate: 0.2            # share of the sentences of an augmented document
      pivot: de
      translator:
        _target_: bioner.augment.MarianTranslator
        model: Helsinki-NLP/opus-mt-{source}-{target}   # or /models/opus-mt-{source}-{target}
        device: cuda
        batch_size: 32
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bioner.augment.base import Transform, check_rate, match_case
from bioner.augment.edits import Edit, EditError, EditResult, apply_edits
from bioner.data.document import Document, Range, Span
from bioner.data.tokenize import word_ranges
from bioner.errors import UserError

# Plain logging: bioner.augment does not import Lightning (augment sits below models).
log = logging.getLogger(__name__)

# A letter or digit: two of them side by side would glue a placeholder to its neighbour.
_WORD_CHAR = re.compile(r"[^\W_]")
# Discard reasons, in the order they are checked; ``stats`` counts ``discarded_<reason>``.
REASONS = ("empty", "collision", "spurious", "missing", "duplicated", "reordered", "edit_error")


class Translator(Protocol):
    """Anything that translates a batch of texts from one language to another.

    Languages are the codes the translator understands (``en``, ``de``). The result has one text
    per input, in order; an empty string means "no translation" (the input was too long, the
    output was cut off), which :class:`BackTranslation` discards.
    """

    def __call__(self, texts: list[str], source: str, target: str) -> list[str]: ...


class TranslationModelNotFoundError(UserError, FileNotFoundError):
    """A translation model cannot be loaded; the message says how to make it available."""


Loader = Callable[[str, str], tuple[Any, Any]]


def load_seq2seq(name_or_path: str, device: str) -> tuple[Any, Any]:
    """Tokenizer and sequence-to-sequence model (MarianMT and kin) on ``device``, in eval mode."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from bioner.models.encoders import folder_as_data

    with folder_as_data(name_or_path):  # nothing of a model folder runs
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
        model = AutoModelForSeq2SeqLM.from_pretrained(name_or_path, trust_remote_code=False)
    model = model.to(device).eval()
    return tokenizer, model


class MarianTranslator:
    """MarianMT (or any transformers sequence-to-sequence model) as a :class:`Translator`.

    Models are loaded on the first call for each direction, never in the constructor, so a config
    that names one costs nothing until text is translated. Texts are translated in batches of
    ``batch_size`` with greedy (``num_beams=1``) or beam decoding; the output is deterministic, so
    an in-memory cache of ``(source, target, text) -> translation`` spares re-translating the same
    sentences every epoch. A text longer than the model's input limit, or whose translation fills
    all ``max_new_tokens`` (Marian forces an end-of-sentence token there, so a cut translation
    cannot be told from one that just fits), is answered with ``""`` (no translation) rather than
    a truncated one. Marian tokenizers need sentencepiece: ``pip install 'bioner[translation]'``.

    Args:
        model: hub id or local folder; ``{source}`` and ``{target}`` are filled per direction
            (``/models/opus-mt-{source}-{target}`` for copies saved with ``save_pretrained``).
        device: torch device for the models (``cpu``, ``cuda``, ``cuda:1``).
        batch_size: texts per ``generate`` call.
        max_new_tokens: longest translation, in sub-words.
        num_beams: 1 for greedy decoding, more for beam search.
        cache: keep every translation in memory (one entry per distinct text and direction).
        loader: ``loader(name_or_path, device) -> (tokenizer, model)``; default
            :func:`load_seq2seq`. Tests inject a fake here.
    """

    def __init__(
        self,
        model: str = "Helsinki-NLP/opus-mt-{source}-{target}",
        device: str = "cpu",
        batch_size: int = 16,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        cache: bool = True,
        loader: Loader | None = None,
    ) -> None:
        for name, value in (
            ("batch_size", batch_size),
            ("max_new_tokens", max_new_tokens),
            ("num_beams", num_beams),
        ):
            if int(value) < 1:
                raise ValueError(f"MarianTranslator: {name} must be at least 1, not {value}")
        self.model = str(model)
        self.device = str(device)
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        self.num_beams = int(num_beams)
        self.cache = bool(cache)
        self._loader = loader or load_seq2seq
        self._loaded: dict[str, tuple[Any, Any]] = {}
        self._cache: dict[tuple[str, str, str], str] = {}

    def __repr__(self) -> str:
        return (
            f"MarianTranslator(model={self.model!r}, device={self.device!r}, "
            f"batch_size={self.batch_size}, max_new_tokens={self.max_new_tokens}, "
            f"num_beams={self.num_beams}, cache={self.cache})"
        )

    def model_name(self, source: str, target: str) -> str:
        """The hub id or folder used for ``source -> target``."""
        return self.model.replace("{source}", source).replace("{target}", target)

    def clear_cache(self) -> None:
        """Forget every cached translation (the loaded models stay)."""
        self._cache.clear()

    def __call__(self, texts: list[str], source: str, target: str) -> list[str]:
        out: list[str | None] = [None] * len(texts)
        todo: dict[str, list[int]] = {}  # distinct uncached texts -> their positions
        for i, text in enumerate(texts):
            if not text.strip():
                out[i] = ""
            elif self.cache and (source, target, text) in self._cache:
                out[i] = self._cache[(source, target, text)]
            else:
                todo.setdefault(text, []).append(i)
        if todo:
            pending = list(todo)
            tokenizer, model = self._load(source, target)
            for b in range(0, len(pending), self.batch_size):
                batch = pending[b : b + self.batch_size]
                for text, translation in zip(batch, self._generate(tokenizer, model, batch)):
                    if self.cache:
                        self._cache[(source, target, text)] = translation
                    for i in todo[text]:
                        out[i] = translation
        return [t or "" for t in out]

    def _load(self, source: str, target: str) -> tuple[Any, Any]:
        name = self.model_name(source, target)
        if name not in self._loaded:
            try:
                self._loaded[name] = self._loader(name, self.device)
            except ImportError as err:
                raise ImportError(
                    f"MarianTranslator: loading {name!r} needs a library that is not installed "
                    f"({err}). MarianMT tokenizers need sentencepiece: "
                    "`pip install 'bioner[translation]'`"
                ) from err
            except (OSError, ValueError) as err:
                raise TranslationModelNotFoundError(
                    self._not_found(name, source, target, err)
                ) from err
            log.info("MarianTranslator: loaded %s on %s", name, self.device)
        return self._loaded[name]

    def _not_found(self, name: str, source: str, target: str, err: Exception) -> str:
        from huggingface_hub import constants

        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        reason = f"{type(err).__name__}: {reason}"
        folder = Path(name).expanduser()
        if name.startswith(("/", ".", "~")) and not folder.is_dir():
            reason = f"there is no folder {folder}"  # transformers would call it a bad repo id
        offline = (
            " HF_HUB_OFFLINE is set, so nothing is downloaded." if constants.HF_HUB_OFFLINE else ""
        )
        return (
            f"MarianTranslator: cannot load the {source}->{target} model {name!r} "
            f"({reason}).{offline} Make it available either online (run "
            "once with network access and HF_HUB_OFFLINE unset, so that transformers caches it) "
            "or as a local folder: save the model and its tokenizer with `save_pretrained` "
            "(one folder per direction) and pass `model=/path/to/opus-mt-{source}-{target}`; "
            "`{source}` and `{target}` are filled in for each direction."
        )

    def _generate(self, tokenizer: Any, model: Any, batch: list[str]) -> list[str]:
        import torch

        limit = getattr(tokenizer, "model_max_length", None)
        lengths = [len(ids) for ids in tokenizer(batch)["input_ids"]]
        # Too long for the model: truncating would silently drop the end of the sentence.
        fits = [limit is None or n <= limit for n in lengths]
        inputs = [t for t, ok in zip(batch, fits) if ok]
        if not inputs:
            return [""] * len(batch)
        enc = tokenizer(inputs, return_tensors="pt", padding=True)
        # Only what every seq2seq model takes (a BERT-style tokenizer adds token_type_ids).
        enc = {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask") if k in enc}
        with torch.inference_mode():
            generated = model.generate(
                **enc,
                max_new_tokens=self.max_new_tokens,
                num_beams=self.num_beams,
                do_sample=False,
            )
        decoded = tokenizer.batch_decode(generated, skip_special_tokens=True)
        done = [_finished(row, tokenizer.eos_token_id, self.max_new_tokens) for row in generated]
        results = iter(t.strip() if ok else "" for t, ok in zip(decoded, done))
        return [next(results) if ok else "" for ok in fits]


def _finished(row: Any, eos: int | None, max_new_tokens: int) -> bool:
    """Whether a generated row (decoder start token first) ended before ``max_new_tokens``.

    An end-of-sentence token in the last allowed position does not count: Marian configs force
    one there (``forced_eos_token_id``), so a cut-off translation ends with it too.
    """
    if eos is None:
        return True
    hits = (row[1:] == eos).nonzero()
    return len(hits) > 0 and int(hits[0]) < max_new_tokens - 1


class LexiconTranslator:
    """A toy, deterministic word-for-word :class:`Translator` for tests and offline demos.

    Each word (:func:`~bioner.data.tokenize.word_ranges`) found in the direction's table, as it is
    or lower-cased, is replaced by its entry in the word's capitalisation; everything else
    (unknown words, punctuation, whitespace, placeholders such as ``ENT0``) stays as it is. No
    grammar, no reordering: it only exercises the machinery, it does not paraphrase well.

    Args:
        pairs: per direction, a table ``word -> translation``. Directions are ``(source,
            target)`` tuples or ``"source-target"`` strings (the form YAML can write), e.g.
            ``{"en-de": {"caused": "verursachte"}, "de-en": {"verursachte": "induced"}}``.

    Raises:
        ValueError: a direction is not two language codes, or a key is not a single word.
    """

    def __init__(self, pairs: Mapping[Any, Mapping[str, str]]) -> None:
        self.pairs: dict[tuple[str, str], dict[str, str]] = {}
        for key, table in pairs.items():
            direction = tuple(key.split("-")) if isinstance(key, str) else tuple(key)
            if len(direction) != 2 or not all(direction):
                raise ValueError(
                    f"LexiconTranslator: direction {key!r} is not a pair of language codes; "
                    "write ('en', 'de') or 'en-de'"
                )
            for word in table:
                if len(word_ranges(word)) != 1 or word_ranges(word)[0] != (0, len(word)):
                    raise ValueError(
                        f"LexiconTranslator: key {word!r} of direction {key!r} is not one word; "
                        "the translator works word by word"
                    )
            self.pairs[(str(direction[0]), str(direction[1]))] = {
                str(k): str(v) for k, v in table.items()
            }

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}-{t}: {len(m)}" for (s, t), m in self.pairs.items())
        return f"LexiconTranslator(<{sizes}>)"

    def __call__(self, texts: list[str], source: str, target: str) -> list[str]:
        table = self.pairs.get((source, target))
        if table is None:
            known = ", ".join(f"{s}-{t}" for s, t in self.pairs) or "none"
            raise ValueError(
                f"LexiconTranslator has no table for {source}-{target} (it has: {known}); "
                f"add pairs['{source}-{target}']"
            )
        return [self._translate(text, table) for text in texts]

    @staticmethod
    def _translate(text: str, table: Mapping[str, str]) -> str:
        pieces, prev = [], 0
        for s, e in word_ranges(text):
            word = text[s:e]
            new = table.get(word)
            if new is None and word.lower() in table:
                new = match_case(word, table[word.lower()])
            if new is not None:
                pieces += [text[prev:s], new]
                prev = e
        pieces.append(text[prev:])
        return "".join(pieces)


class BackTranslation(Transform):
    """Round-trip translation of whole sentences with entity mentions kept intact.

    Each sentence is chosen with probability ``rate`` (one uniform draw per sentence, always, so
    later draws do not shift with the outcome). In a chosen sentence the ``i``-th mention becomes
    ``placeholder`` with ``{i}`` filled in (a space is added where it would touch a letter or
    digit), all chosen sentences of the document go ``source -> pivot`` in one translator call
    and back ``pivot -> source`` in another. The round trip is kept only if every placeholder
    comes back exactly once and in the original order; the translated text between placeholders
    then replaces the text between mentions (the first piece without leading and the last without
    trailing whitespace; next to a mention, whitespace is removed where the original had none,
    so ``DA1`` stays ``DA1``). Mentions keep their text and label, words and sentences are
    remapped by :func:`~bioner.augment.edits.apply_edits`.

    Otherwise the sentence stays as it was and the reason is counted: ``empty`` (no translation),
    ``collision`` (the sentence already contains placeholder-like text), ``spurious`` (a
    placeholder the sentence did not have), ``missing``, ``duplicated``, ``reordered``, or
    ``edit_error`` (the edits break a rule of :mod:`bioner.augment.edits`).

    Counters accumulate on the instance in :attr:`stats` for a training callback to log (and
    :meth:`reset_stats` between epochs): ``sentences`` (seen), ``kept`` (not chosen),
    ``translated`` (rewritten; ``unchanged`` of them came back identical), ``discarded`` and
    ``discarded_<reason>`` (:data:`REASONS`). Only counts that happened are present (a Counter
    reads 0 for the others). They count calls in this process: DataLoader workers keep their own.

    Args:
        translator: a :class:`Translator` (:class:`MarianTranslator`, :class:`LexiconTranslator`).
        rate: probability that a sentence is back-translated.
        pivot: the intermediate language.
        source: the language of the documents.
        placeholder: stand-in for a mention, with ``{i}`` for its index in the sentence; choose
            one the translation model copies unchanged.

    Raises:
        ValueError: bad rate, ``pivot == source``, or a placeholder without exactly one ``{i}``.
    """

    def __init__(
        self,
        translator: Translator,
        rate: float = 0.1,
        pivot: str = "de",
        source: str = "en",
        placeholder: str = "ENT{i}",
    ) -> None:
        if not callable(translator):
            raise TypeError(f"BackTranslation: translator {translator!r} is not callable")
        if pivot == source:
            raise ValueError(f"BackTranslation: pivot and source are both {source!r}")
        prefix, sep, suffix = placeholder.partition("{i}")
        if not sep or "{i}" in suffix or not prefix + suffix:
            raise ValueError(
                f"BackTranslation: placeholder {placeholder!r} must hold '{{i}}' exactly once "
                "and some fixed text, e.g. 'ENT{i}'"
            )
        self.translator = translator
        self.rate = check_rate("rate", rate)
        self.pivot = pivot
        self.source = source
        self.placeholder = placeholder
        core = re.escape(prefix) + r"(\d+)" + re.escape(suffix)
        # Where the placeholder starts or ends with a letter or digit, one glued to a neighbour
        # ("xENT0", "ENT0s") is not a placeholder: its boundary would be a guess.
        before = r"(?<![^\W_])" if _WORD_CHAR.match(placeholder[0]) else ""
        after = r"(?![^\W_])" if suffix == "" or _WORD_CHAR.match(placeholder[-1]) else ""
        self._find = re.compile(before + core + after)
        self._collides = re.compile(core)
        self._stats: Counter[str] = Counter()

    @property
    def stats(self) -> Counter[str]:
        """Sentence counters since construction or :meth:`reset_stats` (see the class doc)."""
        return self._stats

    def reset_stats(self) -> None:
        """Set every counter to zero."""
        self._stats = Counter()

    def __call__(self, doc: Document, rng: np.random.Generator) -> EditResult:
        draws = rng.random(len(doc.sentences))
        by_sentence = _spans_by_sentence(doc)
        self._stats["sentences"] += len(doc.sentences)
        jobs: list[tuple[int, list[Range], str]] = []  # sentence, gaps, masked text
        for j, (sentence, u) in enumerate(zip(doc.sentences, draws)):
            if u >= self.rate:
                self._stats["kept"] += 1
                continue
            if self._collides.search(doc.text[sentence[0] : sentence[1]]):
                self._discard("collision")
                continue
            gaps = _gaps(sentence, by_sentence[j])
            jobs.append((j, gaps, self._mask(doc.text, gaps)))
        if not jobs:
            return apply_edits(doc, [])

        pivots = self._translate([m for _, _, m in jobs], self.source, self.pivot)
        survivors = []
        for job, text in zip(jobs, pivots):
            reason, _ = self._parse(text, len(job[1]) - 1)
            if reason:
                self._discard(reason)  # lost on the way out: not worth translating back
            else:
                survivors.append((job, text))
        backs = self._translate([t for _, t in survivors], self.pivot, self.source)

        sentence_edits = []
        for ((_, gaps, _), _), text in zip(survivors, backs):
            reason, found = self._parse(text, len(gaps) - 1)
            if reason:
                self._discard(reason)
                continue
            bounds = [0, *[b for m in found for b in m], len(text)]
            new = [text[bounds[2 * k] : bounds[2 * k + 1]] for k in range(len(gaps))]
            sentence_edits.append(_gap_edits(doc.text, gaps, new))
        return self._apply(doc, sentence_edits)

    def _translate(self, texts: list[str], source: str, target: str) -> list[str]:
        if not texts:
            return []
        out = list(self.translator(texts, source, target))
        if len(out) != len(texts):
            raise ValueError(
                f"BackTranslation: translator {self.translator!r} returned {len(out)} texts for "
                f"{len(texts)} ({source}->{target}); a Translator returns one text per input"
            )
        return out

    def _mask(self, text: str, gaps: list[Range]) -> str:
        """The sentence with mention ``k`` replaced by placeholder ``k``."""
        pieces = [text[gaps[0][0] : gaps[0][1]]]
        for k, (s, e) in enumerate(gaps[1:]):
            pieces += [self.placeholder.replace("{i}", str(k)), text[s:e]]
        out = ""
        for piece in pieces:
            if out and piece and _WORD_CHAR.match(out[-1]) and _WORD_CHAR.match(piece[0]):
                out += " "  # keep a placeholder apart from a neighbouring word (DA1 -> ENT0 1)
            out += piece
        return out

    def _parse(self, text: str, n: int) -> tuple[str | None, list[Range]]:
        """Why ``text`` is unusable for ``n`` mentions (``None``: usable), and the placeholders."""
        if not text.strip():
            return "empty", []
        matches = list(self._find.finditer(text))
        indices = [int(m.group(1)) for m in matches]
        # "ENT01" is not placeholder 1: only the digits the mask wrote count.
        if any(str(i) != m.group(1) or i >= n for i, m in zip(indices, matches)):
            return "spurious", []
        if len(set(indices)) < n:
            return "missing", []
        if len(indices) > n:
            return "duplicated", []
        if indices != list(range(n)):
            return "reordered", []
        return None, [m.span() for m in matches]

    def _discard(self, reason: str) -> None:
        self._stats["discarded"] += 1
        self._stats[f"discarded_{reason}"] += 1

    def _apply(self, doc: Document, sentence_edits: list[list[Edit]]) -> EditResult:
        """Apply the edits of every sentence; a sentence whose edits fail is left out."""
        try:
            result = apply_edits(doc, [e for edits in sentence_edits for e in edits])
            accepted = sentence_edits
        except EditError:
            # Rare: find the offending sentences one by one, keeping those that apply together.
            accepted, result = [], apply_edits(doc, [])
            for edits in sentence_edits:
                try:
                    result = apply_edits(doc, [e for ok in [*accepted, edits] for e in ok])
                    accepted.append(edits)
                except EditError as err:
                    log.debug("BackTranslation: sentence left unchanged: %s", err)
                    self._discard("edit_error")
        # Only non-zero counts, so that stats holds what happened (a Counter reads 0 elsewhere).
        for key, n in (("translated", len(accepted)), ("unchanged", sum(not e for e in accepted))):
            if n:
                self._stats[key] += n
        return result


def _spans_by_sentence(doc: Document) -> list[list[Span]]:
    """The spans of each sentence, in order; a span outside every sentence is an error."""
    starts = [s for s, _ in doc.sentences]
    out: list[list[Span]] = [[] for _ in doc.sentences]
    for span in doc.spans:
        j = bisect_right(starts, span.start) - 1
        if j < 0 or span.end > doc.sentences[j][1]:
            raise ValueError(
                f"document {doc.id}: span {span} ({span.text(doc.text)!r}) does not lie inside "
                "one sentence; fix the corpus (Document.validate reports every such span)"
            )
        out[j].append(span)
    return out


def _gaps(sentence: Range, spans: Sequence[Span]) -> list[Range]:
    """The text before the first mention, between mentions and after the last (maybe empty)."""
    bounds = [sentence[0], *[b for s in spans for b in (s.start, s.end)], sentence[1]]
    return [(bounds[2 * k], bounds[2 * k + 1]) for k in range(len(spans) + 1)]


def _gap_edits(text: str, gaps: list[Range], new: list[str]) -> list[Edit]:
    """Edits replacing each gap by its translation, trimmed at the sentence edges and mentions."""
    edits = []
    last = len(gaps) - 1
    for k, ((s, e), piece) in enumerate(zip(gaps, new)):
        old = text[s:e]
        # A mention that touched its neighbour (DA1, cocaine-induced) keeps touching it.
        if k == 0 or (old and not old[0].isspace()):
            piece = piece.lstrip()
        if k == last or (old and not old[-1].isspace()):
            piece = piece.rstrip()
        if not old and not piece.strip():
            piece = ""  # two mentions that touched stay touching
        if piece != old:
            edits.append(Edit(s, e, piece))
    return edits
