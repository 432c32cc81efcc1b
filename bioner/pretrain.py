"""Domain-adaptive pretraining: ``bioner-pretrain [overrides]`` or ``python -m bioner.pretrain``.

Continues masked-language-model training (whole-word masking, see :mod:`bioner.data.mlm`) of any
encoder of ``conf/model`` on raw text, and saves an encoder folder (model and tokenizer) that
fine-tunes like any other checkpoint. Examples::

    bioner-pretrain model=minilm dataset=bc5cdr trainer.max_steps=300   # BC5CDR train text
    bioner-pretrain model=biobert text_file=abstracts.txt trainer=gpu    # your own text

Only the corpus's training split is read by default (``splits=[train]``): tuning the encoder on
devel or test text would let it see the sentences it is later scored on, a leak.

The run folder (printed at the start) holds ``config.yaml``, ``checkpoints/last.ckpt`` and
``encoder/`` (``output_dir``); fine-tune from it with::

    bioner-train model=biobert model.name_or_path=<run folder>/encoder model.name=minilm_dapt \\
        model.tokenizer_kwargs=null

(``model=biobert`` is the hub/local-folder encoder type; ``model.tokenizer_kwargs=null`` drops
BioBERT's tokenizer options so that the folder's own tokenizer settings apply). The validation
MLM loss on held-out training documents before and after training is logged and written to
``encoder/bioner_pretrain.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from bioner.cli.app import check_config
from bioner.cli.errors import cli_main
from bioner.config import CONFIG_DIR
from bioner.train import resolve_ckpt_path
from bioner.utils import (
    finish_loggers,
    instantiate_callbacks,
    instantiate_loggers,
    log_config,
    prepare_run_dir,
    resolve_precision,
)
from bioner.utils.checkpoint import StreamedCheckpointIO
from bioner.utils.log import get_logger

log = get_logger(__name__)


def _val_loss(results: list[dict[str, float]]) -> float | None:
    return float(results[0]["val/loss"]) if results and "val/loss" in results[0] else None


def pretrain(cfg: DictConfig) -> dict[str, Any]:
    """Pretrain as ``cfg`` says and save the encoder folder; return its metadata.

    Args:
        cfg: a composed ``pretrain`` config (``compose_config("pretrain", overrides)`` outside
            a Hydra app, with ``run_dir=<folder>`` among the overrides).
    """
    run_dir, resolved = prepare_run_dir(cfg)
    check_config(cfg, resolved)  # before any weights load
    if torch.cuda.is_available():
        torch.set_float32_matmul_precision("high")
    L.seed_everything(cfg.seed, workers=True)

    encoder = instantiate(cfg.model)
    tokenizer = encoder.load_tokenizer()
    reader = instantiate(cfg.dataset) if cfg.get("dataset") is not None else None
    datamodule = instantiate(cfg.data, reader=reader, tokenizer=tokenizer)
    datamodule.prepare_data()  # a missing text or corpus fails before any weights are loaded
    model = instantiate(cfg.module, encoder=encoder)

    callbacks = instantiate_callbacks(cfg.callbacks)
    loggers = instantiate_loggers(cfg.get("logger"))
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        precision=precision,
        plugins=[StreamedCheckpointIO()],
    )
    log_config(loggers, resolved)
    try:
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), trainer)
        before = None
        if ckpt_path is None:  # a resumed run's "before" would be a partly trained model
            before = _val_loss(trainer.validate(model, datamodule=datamodule, verbose=False))
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        after = _val_loss(trainer.validate(model, datamodule=datamodule, verbose=False))
        summary: dict[str, Any] = {
            "text": datamodule.source,
            "val_loss_before": before,
            "val_loss_after": after,
            "precision": str(precision),
            "run_dir": str(run_dir),
        }
        if trainer.is_global_zero:
            folder = model.save_encoder(cfg.output_dir, tokenizer, summary)
            log.info(
                "MLM loss on held-out text: %s before, %s after %d steps. Encoder folder: %s\n"
                "Fine-tune it with: bioner-train model=biobert model.name_or_path=%s "
                "model.name=%s_dapt model.tokenizer_kwargs=null",
                "n/a" if before is None else f"{before:.4f}",
                "n/a" if after is None else f"{after:.4f}",
                model.global_step,
                Path(folder).resolve(),
                Path(folder).resolve(),
                encoder.name,
            )
        summary["steps"] = model.global_step
        summary["encoder_dir"] = str(cfg.output_dir)
    finally:
        finish_loggers(loggers)
    return summary


@cli_main("bioner-pretrain", config="pretrain")
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="pretrain")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns the final validation MLM loss (for sweeps)."""
    return pretrain(cfg)["val_loss_after"]


if __name__ == "__main__":
    main()
