"""Score a checkpoint: ``bioner-eval ckpt_path=<run>/checkpoints/best.ckpt [dataset=...]``.

The encoder and alignment are rebuilt from the training config stored in the checkpoint, so the
checkpoint is all that is needed; the dataset is the training one unless ``dataset=...`` names
another (with the same entity types). Writes ``metrics.json``, predictions and confusion plots
into its own run folder, exactly as a training run does.

``postprocess=abbreviations`` (any option or list of the ``postprocess`` group, as in
``bioner-predict``) post-processes each document's predicted spans before scoring and writing:
the ``devel`` and ``test`` sections of ``metrics.json``, the prediction files and the confusion
plots are then the **post-processed** ones, and ``metrics.json["postprocess"]`` keeps the raw
scores beside them (``f1_raw``, ``f1``, ``delta_f1`` and every raw metric per split; see
:mod:`bioner.utils.report`). Without it (``postprocess: none``) nothing changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bioner.config import CONFIG_DIR
from bioner.models.module import TokenClassifier
from bioner.utils import (
    finish_loggers,
    instantiate_loggers,
    log_config,
    prepare_run_dir,
    resolve_precision,
)
from bioner.utils.log import get_logger
from bioner.utils.report import finish_evaluation

log = get_logger(__name__)


def training_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved training config stored in a bioner checkpoint.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the checkpoint was not written by ``bioner-train``.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass ckpt_path=<run>/checkpoints/best.ckpt"
        )
    # mmap: only the small config is read, not the weights. weights_only=False because a
    # Lightning checkpoint holds more than tensors; load only checkpoints you trust.
    checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    if "bioner_config" not in checkpoint:
        raise ValueError(
            f"{path} holds no bioner config (not written by bioner-train); evaluate it with the "
            "train entry point instead: bioner-train train=false ckpt_path=... with the model "
            "and alignment it was trained with"
        )
    return OmegaConf.create(checkpoint["bioner_config"])


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.splits``; return the content of ``metrics.json``."""
    unknown = set(cfg.splits) - {"devel", "test"}
    if unknown:
        raise ValueError(f"splits may be devel and test, not {sorted(unknown)}")
    run_dir, resolved = prepare_run_dir(cfg)
    L.seed_everything(cfg.seed, workers=True)
    trained = training_config(cfg.ckpt_path)
    dataset_cfg = cfg.dataset if cfg.get("dataset") is not None else trained.dataset

    reader = instantiate(dataset_cfg)
    alignment = instantiate(trained.alignment)
    encoder = instantiate(trained.model)
    # The training run's data settings keep padding and batching, hence the scores, identical.
    changes = {k: v for k, v in (cfg.get("data") or {}).items() if v is not None}
    datamodule = instantiate(
        OmegaConf.merge(trained.data, changes),
        reader=reader,
        alignment=alignment,
        tokenizer=encoder.load_tokenizer(),
    )
    datamodule.prepare_data()
    model = TokenClassifier.load_from_checkpoint(cfg.ckpt_path, map_location="cpu", encoder=encoder)
    if set(model.id2label.values()) != set(datamodule.labels):
        log.warning(
            "the checkpoint's labels %s differ from %s's %s: types the model never learnt count "
            "as missed",
            sorted(model.id2label.values()),
            reader.name,
            datamodule.labels,
        )

    loggers = instantiate_loggers(cfg.get("logger"))
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, precision=precision)
    log_config(loggers, resolved)
    if "devel" in cfg.splits:
        trainer.validate(model, datamodule=datamodule, verbose=False)
    if "test" in cfg.splits:
        trainer.test(model, datamodule=datamodule, verbose=False)

    summary: dict[str, Any] = {
        "run_name": cfg.run_name,
        "run_dir": str(run_dir),
        "checkpoint": str(cfg.ckpt_path),
        "dataset": reader.name,
        "precision": str(precision),
    }
    if trainer.is_global_zero:
        summary = finish_evaluation(cfg, run_dir, model, datamodule, loggers, summary)
        log.info("Run folder: %s", Path(run_dir).resolve())
    finish_loggers(loggers)
    return summary


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="eval")
def main(cfg: DictConfig) -> None:
    """Console entry point."""
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    main()
