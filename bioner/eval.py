"""Score a checkpoint: ``bioner-eval ckpt_path=<run folder or .ckpt> [dataset=...]``.

Examples::

    bioner-eval ckpt_path=logs/train/runs/<run>                 # its best.ckpt, devel and test
    bioner-eval ckpt_path=<run> 'splits=[test]' paths.data_dir=/data/corpora
    bioner-eval ckpt_path=<run> dataset=ncbi_disease robustness=default
    bioner-eval ckpt_path=<run> postprocess=abbreviations run_dir=evals/abbrev

The corpus is looked for under this run's data folder (``BIONER_DATA_DIR`` or
``paths.data_dir=...``), in the sub-folder it had at training; ``dataset.data_dir=<folder>``
points at it directly. Only the files of the scored ``splits`` are read.

The encoder and alignment are rebuilt from the training config stored in the checkpoint, so the
checkpoint is all that is needed; the dataset is the training one unless ``dataset=...`` names
another. Labels are matched by name; when the corpus's entity types are not the model's, the
scores cover the types both share, and ``metrics.json["label_sets"]`` counts per split the
predictions of types the corpus does not annotate and the gold mentions of types the model cannot
predict (:mod:`bioner.evaluation.label_sets`). Writes ``metrics.json``, predictions and
confusion plots into its own run folder, exactly as a training run does.

Text normalisation (``preprocess=...`` in training) is applied as the training run applied it,
with what it learnt from the training text (kept in the checkpoint); spans are scored on the
original text.

``postprocess=abbreviations`` (any option or list of the ``postprocess`` group, as in
``bioner-predict``) post-processes each document's predicted spans before scoring and writing:
the ``devel`` and ``test`` sections of ``metrics.json``, the prediction files and the confusion
plots are then the **post-processed** ones, and ``metrics.json["postprocess"]`` keeps the raw
scores beside them (``f1_raw``, ``f1``, ``delta_f1`` and every raw metric per split; see
:mod:`bioner.utils.report`). Without it (``postprocess: none``) nothing changes.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bioner.cli.app import check_config
from bioner.cli.errors import cli_main
from bioner.config import CONFIG_DIR
from bioner.data.alignment import Alignment
from bioner.data.datamodule import NERDataModule
from bioner.data.tags import entity_types_of
from bioner.errors import ConfigError, UserError
from bioner.evaluation.label_sets import LabelSets
from bioner.models.module import TokenClassifier
from bioner.preprocess import Preprocessor
from bioner.utils import (
    finish_loggers,
    instantiate_loggers,
    log_config,
    prepare_run_dir,
    resolve_precision,
)
from bioner.utils.log import get_logger
from bioner.utils.report import finish_evaluation
from bioner.utils.run import write_run_readme

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
        FileNotFoundError: no such file.
        UntrustedCheckpointError: without ``trust``, the file holds pickled objects.
        ConfigError: the checkpoint was not written by ``bioner-train``.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run>/checkpoints/best.ckpt"
        )
    # mmap: only the small config is read, not the weights.
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=not trust)
    except pickle.UnpicklingError as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UntrustedCheckpointError(
            f"{path} holds pickled objects beyond tensors and plain containers, which loading "
            f"would run as code ({first_line}). bioner-train's checkpoints hold none; if you "
            "trust where this one came from, pass trust_checkpoint=true"
        ) from err
    if "bioner_config" not in checkpoint:
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
    data folder under this run's ``paths.data_dir``; ``dataset.data_dir=...`` wins over both."""
    given = cfg.get("dataset") or {}
    if "_target_" in given:
        dataset = given
    else:
        stored_root = OmegaConf.select(trained, "paths.data_dir")
        paths = cfg.paths
        dataset = rebase_data_dir(
            trained.dataset, stored_root, paths.data_dir, paths.get("default_data_dir")
        )
    if given.get("data_dir") is not None:
        dataset = OmegaConf.merge(dataset, {"data_dir": given.data_dir})
    return dataset


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.splits``; return the content of ``metrics.json``."""
    unknown = set(cfg.splits) - {"devel", "test"}
    if unknown:
        raise ConfigError(f"splits may be devel and test, not {sorted(unknown)}")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path)
    run_dir, resolved = prepare_run_dir(cfg)
    check_config(cfg, resolved)  # before any weights load
    L.seed_everything(cfg.seed, workers=True)
    trust = bool(cfg.get("trust_checkpoint", False))
    checkpoint = read_checkpoint(ckpt_path, trust=trust)  # once: config and preprocessing
    trained = stored_config(checkpoint, ckpt_path, trust)

    reader = instantiate(eval_dataset(cfg, trained))
    alignment = Alignment.from_record(
        OmegaConf.to_container(trained.alignment), f"{ckpt_path} (alignment)"
    )
    encoder = instantiate(trained.model)
    model = TokenClassifier.load_from_checkpoint(
        ckpt_path, map_location="cpu", encoder=encoder, weights_only=not trust
    )
    # Labels are matched by name: gold tags get the model's ids whatever the corpus's order.
    labels = [model.id2label[i] for i in range(len(model.id2label))]
    # The training run's data settings keep padding and batching, hence the scores, identical.
    changes = {k: v for k, v in (cfg.get("data") or {}).items() if v is not None}
    datamodule = instantiate(
        OmegaConf.merge(trained.data, changes),
        reader=reader,
        alignment=alignment,
        tokenizer=encoder.load_tokenizer(),
        labels=labels,
        preprocess=training_preprocess(checkpoint, ckpt_path),
        splits=list(cfg.splits),
    )
    datamodule.prepare_data()
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
                f"{list(label_sets.corpus)}: no type in common, nothing to score"
            )

    loggers = instantiate_loggers(cfg.get("logger"))
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, precision=precision)
    # Loggers see the precision chosen, not `auto` (config.yaml and the checkpoint keep `auto`:
    # the run's settings, which bioner-report groups by).
    chosen = {**resolved["trainer"], "precision": str(precision)}
    log_config(loggers, {**resolved, "trainer": chosen})
    if "devel" in cfg.splits:
        trainer.validate(model, datamodule=datamodule, verbose=False)
    if "test" in cfg.splits:
        trainer.test(model, datamodule=datamodule, verbose=False)

    summary: dict[str, Any] = {
        "run_name": cfg.run_name,
        "run_dir": str(run_dir),
        "checkpoint": str(ckpt_path),
        "dataset": reader.name,
        "precision": str(precision),
    }
    if label_sets.differ:
        set_aside = {model.results[k].split: v for k, v in model.set_aside.items()}
        summary["label_sets"] = {**label_sets.describe(), **set_aside}
    if trainer.is_global_zero:
        summary = finish_evaluation(cfg, run_dir, model, datamodule, loggers, summary)
        write_run_readme(run_dir, cfg, summary)
        log.info("Run folder: %s", Path(run_dir).resolve())
    finish_loggers(loggers)
    return summary


@cli_main("bioner-eval", config="eval")
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    """Console entry point."""
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    main()
