"""Checkpoints between runs: finding one, reading what it stores, and reusing it elsewhere.

``bioner-eval`` rebuilds a run from its checkpoint (the resolved training config under
``"bioner_config"``, the fitted preprocessing in the data module's state); ``bioner-report`` reads
the same config to group runs; training resumes from ``ckpt_path=last``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf

from bioner.data.relabel import relabel_override
from bioner.data.tags import entity_types_of
from bioner.errors import ConfigError, FormatError, UserError
from bioner.evaluation.label_sets import LabelSets
from bioner.preprocess import Preprocessor
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    import lightning as L

    from bioner.models.encoders import Encoder
    from bioner.models.module import TokenClassifier

log = get_logger(__name__)


# The nodes of a checkpoint's stored config that bioner-eval instantiates, and the only module
# each may name in a `_target_` (the alignment is read as plain parameters): a checkpoint from
# elsewhere is data, and instantiate would call whatever it names.
CHECKPOINT_TARGETS = {
    "model": "bioner.models.encoders.",
    "data": "bioner.data.datamodule.",
    "dataset": "bioner.data.readers.",
}


class UntrustedCheckpointError(UserError, ValueError):
    """A checkpoint holds what only a trusted checkpoint may hold (pickled objects, targets)."""


def _check_targets(node: Any, prefix: str, where: str, path: Path) -> None:
    """Raise :class:`UntrustedCheckpointError` if any ``_target_`` under ``node`` is outside
    ``prefix``."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not (isinstance(target, str) and target.startswith(prefix)):
            raise UntrustedCheckpointError(
                f"{path}: its stored config names {where}._target_={target!r}; bioner-eval "
                f"instantiates only {prefix}* from a checkpoint. If you trust where the "
                "checkpoint came from, pass trust_checkpoint=true"
            )
        for key, value in node.items():
            _check_targets(value, prefix, f"{where}.{key}", path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_targets(value, prefix, f"{where}[{i}]", path)


def training_config(ckpt_path: str | Path, trust: bool = False) -> DictConfig:
    """The resolved training config stored in a bioner checkpoint (see :func:`read_checkpoint`
    and :func:`stored_config`)."""
    return stored_config(read_checkpoint(ckpt_path, trust), ckpt_path, trust)


def load_checkpoint_file(ckpt_path: str | Path, trust: bool = False) -> Any:
    """The content of a ``torch.save`` file, memory-mapped (tensors are read when used).

    Args:
        ckpt_path: the file.
        trust: unpickle it (``torch.load(weights_only=False)``, which runs whatever code a
            crafted file holds); without it only tensors and plain containers are read.

    Raises:
        FileNotFoundError: no such file.
        UntrustedCheckpointError: without ``trust``, the file holds pickled objects.
        FormatError: the file is not a checkpoint (not a ``torch.save`` zip file, or cut short).
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run>/checkpoints/best.ckpt"
        )
    # mmap: only the small entries are read, not the weights.
    try:
        return torch.load(path, map_location="cpu", mmap=True, weights_only=not trust)
    except pickle.UnpicklingError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UntrustedCheckpointError(
            f"{path} holds pickled objects beyond tensors and plain containers, which loading "
            f"would run as code ({first_line}). bioner-train's checkpoints hold none; if you "
            "trust where this one came from, bioner-eval reads it with trust_checkpoint=true"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        # Not a zip-format torch.save file (a text file, a legacy or truncated checkpoint).
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise FormatError(
            f"{path} is not a checkpoint that bioner can read ({first_line}); it needs a file "
            "that torch.save wrote in full, such as the .ckpt files bioner-train writes into "
            "<run>/checkpoints/"
        ) from err


def read_checkpoint(ckpt_path: str | Path, trust: bool = False) -> dict[str, Any]:
    """A checkpoint of ``bioner-train``, memory-mapped: the small entries (config, data module
    state) are read, the weights only when used.

    Args:
        ckpt_path: the checkpoint.
        trust: unpickle the checkpoint (``torch.load(weights_only=False)``, which runs whatever
            code a crafted file holds) and instantiate any ``_target_`` in its config. Without
            it the checkpoint is read with ``weights_only=True`` (tensors and plain containers,
            all that ``bioner-train`` writes) and the config may name only bioner's encoders,
            data module and readers (:func:`stored_config`).

    Raises:
        FileNotFoundError, UntrustedCheckpointError, FormatError: see
            :func:`load_checkpoint_file`.
        ConfigError: the checkpoint was not written by ``bioner-train``.
    """
    path = Path(ckpt_path)
    checkpoint = load_checkpoint_file(path, trust)
    if not isinstance(checkpoint, dict) or "bioner_config" not in checkpoint:
        raise ConfigError(
            f"{path} holds no bioner config (not written by bioner-train); evaluate it with the "
            "train entry point instead: bioner-train train=false ckpt_path=... with the model "
            "and alignment it was trained with"
        )
    return checkpoint


def stored_config(checkpoint: dict[str, Any], ckpt_path: str | Path, trust: bool) -> DictConfig:
    """The training config of a checkpoint read by :func:`read_checkpoint`.

    Raises:
        UntrustedCheckpointError: without ``trust``, its config names targets other than
            bioner's encoders, data module and readers.
    """
    config = checkpoint["bioner_config"]
    if not trust:
        for key, prefix in CHECKPOINT_TARGETS.items():
            _check_targets(config.get(key), prefix, key, Path(ckpt_path))
    return OmegaConf.create(config)


def training_preprocess(checkpoint: dict[str, Any], ckpt_path: str | Path) -> Preprocessor | None:
    """The fitted preprocessing of the run that wrote ``checkpoint`` (``None`` if it had none).

    It is read from the data module's state in the checkpoint as plain values
    (:meth:`~bioner.preprocess.Preprocessor.from_record`), so evaluation rewrites text exactly
    as training did, with the lexicon training learnt, whichever corpus is scored.
    """
    # The data module (and Lightning) load here only: bioner-report reads configs without them.
    from bioner.data.datamodule import NERDataModule

    record = checkpoint.get(NERDataModule.__qualname__, {}).get("preprocess")
    return None if record is None else Preprocessor.from_record(record, str(ckpt_path))


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself, or for a run folder its ``checkpoints/best.ckpt`` (else ``last.ckpt``).

    Raises:
        FileNotFoundError: nothing there, or a folder without a checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        folders = [path / "checkpoints", path]
        for name in ("best.ckpt", "last.ckpt"):
            for folder in folders:
                if (folder / name).is_file():
                    return folder / name
        raise FileNotFoundError(
            f"{path} is a folder without a checkpoint (looked for checkpoints/best.ckpt and "
            "last.ckpt); pass ckpt_path=<run folder> of a finished training run, or the .ckpt file"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run folder> or "
            "ckpt_path=<run>/checkpoints/best.ckpt"
        )
    return path


def rebase_data_dir(
    dataset: DictConfig, stored_root: str | None, root: str | None, default_root: str | None = None
) -> DictConfig:
    """The trained ``dataset`` config with its ``data_dir`` moved from the data folder of the
    training run (``stored_root``) to the one of this run (``root``: ``BIONER_DATA_DIR`` or
    ``paths.data_dir``).

    A checkpoint stores resolved paths, relative ones relative to where training ran; the corpus
    is the same folder under whatever data folder this machine and shell use. Only when ``root``
    is the default one (``default_root``: neither ``BIONER_DATA_DIR`` nor ``paths.data_dir`` was
    given), lacks the corpus (its folder is missing or empty) and the stored folder holds files is
    the stored one kept, with a warning.
    A ``data_dir`` outside the stored data folder (given with ``dataset.data_dir=...`` at
    training) is kept as it is.
    """
    data_dir = dataset.get("data_dir")
    if data_dir is None or stored_root is None or root is None:
        return dataset
    try:
        relative = Path(os.path.normpath(data_dir)).relative_to(os.path.normpath(stored_root))
    except ValueError:
        return dataset
    rebased = Path(root).expanduser() / relative
    if str(rebased) == str(data_dir):
        return dataset
    if root == default_root and not _holds_files(rebased) and _holds_files(Path(data_dir)):
        log.warning(
            "corpus folder %s (under the default data folder %s) does not exist; using %s, where "
            "the checkpoint's training run found it (BIONER_DATA_DIR or paths.data_dir=... set "
            "the data folder)",
            rebased,
            root,
            data_dir,
        )
        return dataset
    return OmegaConf.merge(dataset, {"data_dir": str(rebased)})


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` exists and is not empty (a failed download leaves an empty one)."""
    folder = folder.expanduser()
    return folder.is_dir() and any(folder.iterdir())


def eval_dataset(cfg: DictConfig, trained: DictConfig) -> DictConfig:
    """The dataset config to score: ``dataset=<name>`` if given, else the training one, with its
    data folder under this run's ``paths.data_dir``; ``dataset.data_dir=...`` wins over both,
    and ``dataset.relabel.map`` / ``.keep`` over the training one's."""
    given = cfg.get("dataset") or {}
    if "_target_" in given:
        dataset = given
    else:
        stored_root = OmegaConf.select(trained, "paths.data_dir")
        paths = cfg.paths

        def rebase(node: DictConfig) -> DictConfig:
            return rebase_data_dir(node, stored_root, paths.data_dir, paths.get("default_data_dir"))

        dataset = rebase(trained.dataset)
        if dataset.get("corpora"):  # dataset=multi: each member corpus has its own folder
            members = {key: rebase(node) for key, node in dataset.corpora.items()}
            dataset = OmegaConf.merge(dataset, {"corpora": members})
        relabel = relabel_override(given)
        if relabel and "corpora" in dataset:
            raise ConfigError(
                f"dataset.relabel: this model was trained on several corpora "
                f"({', '.join(dataset.corpora)}), each read with its own relabel rule; score one "
                "of them with dataset=<its dataset> dataset.relabel.map=..."
            )
        if relabel:
            dataset = OmegaConf.merge(dataset, {})  # a copy, not the stored config
            for key, value in relabel.items():  # each replaced whole, not merged (map: a dict)
                OmegaConf.update(dataset, f"relabel.{key}", value, merge=False, force_add=True)
    if given.get("data_dir") is not None:
        if "corpora" in dataset:
            raise ConfigError(
                f"dataset.data_dir={given.data_dir}: this model was trained on several corpora "
                f"({', '.join(dataset.corpora)}), each in its own folder; set "
                "paths.data_dir=<folder holding them> instead, or score one of them with "
                "dataset=<its dataset> dataset.data_dir=<its folder>"
            )
        dataset = OmegaConf.merge(dataset, {"data_dir": given.data_dir})
    return dataset


def resolve_ckpt_path(ckpt_path: str | None, trainer: L.Trainer) -> str | None:
    """``last`` -> ``last.ckpt`` in the run's checkpoint folder, which must exist; else unchanged.
    The file is checked before Lightning loads it (:func:`load_checkpoint_file`): a checkpoint
    cut short by a killed run is one message, not a traceback from inside Lightning.

    Lightning would silently start from scratch when ``last`` finds nothing; resuming the wrong
    folder deserves an error instead.
    """
    if ckpt_path != "last":
        if ckpt_path is not None:
            load_checkpoint_file(ckpt_path)
        return ckpt_path
    found = last_checkpoint(trainer)
    if found is None:
        folders = sorted({str(cb.dirpath) for cb in trainer.checkpoint_callbacks if cb.dirpath})
        where = ", ".join(folders) or "(no checkpoint callback)"
        raise FileNotFoundError(
            f"ckpt_path=last: no last.ckpt in {where}. To continue a run, pass its folder too: "
            "run_dir=<run folder> ckpt_path=last (or give ckpt_path=<path to a .ckpt>)"
        )
    load_checkpoint_file(found)
    return str(found)


def last_checkpoint(trainer: L.Trainer) -> Path | None:
    """The ``last.ckpt`` in the folders of the trainer's checkpoint callbacks (the first, in
    sorted order), or ``None`` where none was written."""
    folders = sorted({Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if cb.dirpath})
    return next((f / "last.ckpt" for f in folders if (f / "last.ckpt").is_file()), None)


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint of the first callback that monitors a metric, if any was written."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor is not None and callback.best_model_path:
            return callback.best_model_path
    return None


def match_label_sets(
    model: TokenClassifier, labels: list[str], reader: Any, ckpt_path: str | Path
) -> LabelSets:
    """The entity types of a trained model (``labels``) against those the scored corpus
    annotates; when they differ the model scores the shared types only (and counts the rest
    apart), and a warning says so.

    Raises:
        ConfigError: the two share no type: nothing to score.
    """
    label_sets = LabelSets(tuple(entity_types_of(labels)), tuple(reader.entity_types))
    if label_sets.differ:
        model.label_sets = label_sets
        log.warning(
            "the model predicts %s, %s annotates %s: scores cover the shared types %s only; "
            "predictions of %s and gold mentions of %s are counted apart (metrics.json: "
            "label_sets)",
            list(label_sets.model),
            reader.name,
            list(label_sets.corpus),
            label_sets.shared,
            label_sets.model_only or "no other type",
            label_sets.corpus_only or "no other type",
        )
        if not label_sets.shared:
            raise ConfigError(
                f"{ckpt_path} predicts {list(label_sets.model)}, {reader.name} annotates "
                f"{list(label_sets.corpus)}: no type in common, nothing to score. Where the "
                "two name one type differently, rename the corpus's to the model's as it is "
                "read: dataset.relabel.map={<corpus type>: <model type>}"
            )
    return label_sets


def checkpoint_encoder(trained: DictConfig, ckpt_path: str | Path) -> Encoder:
    """The encoder that a checkpoint's training config names, for its tokenizer and config (the
    weights come from the checkpoint).

    Where that encoder is not to be had here (a local folder moved or deleted, a hub model
    offline and not cached), the run's exported ``model/`` beside ``checkpoints/`` stands in:
    its tokenizer was saved as training used it, and its config is the training's.

    Raises:
        EncoderNotFoundError: neither is here; the message says what to restore.
    """
    from bioner.config import instantiate_node
    from bioner.models.encoders import EncoderNotFoundError, HubEncoder

    encoder = instantiate_node(trained.model, "model")
    try:
        encoder.resolve()
        return encoder
    except EncoderNotFoundError as err:
        exported = Path(ckpt_path).resolve().parent.parent / "model"
        if not (exported / "config.json").is_file():
            source = trained.model.get("name_or_path") or trained.model.get("_target_")
            raise EncoderNotFoundError(
                f"{ckpt_path}: the encoder it was trained on ({source}) is not here, and no "
                f"exported model/ lies beside its checkpoints/ folder ({err}). The checkpoint "
                "holds the weights; the tokenizer and config come from either. Fix: restore the "
                f"encoder at {source}, or the run's model/ folder"
            ) from err
        log.warning(
            "%s; using the run's exported %s instead (its tokenizer and config are training's)",
            str(err).split(". ")[0],
            exported,
        )
        return HubEncoder(str(exported), name=encoder.name, as_saved=True)
