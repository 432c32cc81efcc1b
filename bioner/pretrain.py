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

    bioner-train model=hub model.name_or_path=<run folder>/encoder model.name=minilm_dapt

(``model=hub`` takes any hub id or local folder, with the folder's own tokenizer settings).
The validation MLM loss on held-out training documents before and after training is logged and
written to ``encoder/bioner_pretrain.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from bioner.cli.errors import hydra_entry_point
from bioner.config import instantiate_node
from bioner.runtime import (
    build_callbacks,
    build_datamodule,
    build_trainer,
    closing,
    exit_on_signal,
    fit_or_exit,
    instantiate_loggers,
    resolve_ckpt_path,
    resume_command,
    start_run,
)
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
    run = start_run(cfg)
    encoder = instantiate_node(cfg.model, "model")
    tokenizer = encoder.load_tokenizer()
    reader = instantiate_node(cfg.dataset, "dataset") if cfg.get("dataset") is not None else None
    # A missing text or corpus fails before any weights are loaded.
    datamodule = build_datamodule(cfg.data, reader=reader, tokenizer=tokenizer)
    model = instantiate_node(cfg.module, "module", encoder=encoder)
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer, precision = build_trainer(cfg, run, loggers, build_callbacks(cfg))
    with closing(loggers):
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), trainer)
        before = None
        if ckpt_path is None:  # a resumed run's "before" would be a partly trained model
            with exit_on_signal("pretrain", trainer, lambda signal: "before training began"):
                before = _val_loss(trainer.validate(model, datamodule=datamodule, verbose=False))
        fit_or_exit(cfg, run, trainer, {}, model, datamodule, ckpt_path)

        def then(signal: str) -> str:
            command = resume_command(run.dir, "pretrain")
            return f"after training, before the encoder was saved; this saves it:\n  {command}"

        with exit_on_signal("pretrain", trainer, then):
            after = _val_loss(trainer.validate(model, datamodule=datamodule, verbose=False))
        summary: dict[str, Any] = {
            "text": datamodule.source,
            "val_loss_before": before,
            "val_loss_after": after,
            "precision": str(precision),
            "run_dir": str(run.dir),
        }
        if trainer.is_global_zero:
            folder = model.save_encoder(cfg.output_dir, tokenizer, summary)
            log.info(
                "MLM loss on held-out text: %s before, %s after %d steps. Encoder folder: %s\n"
                "Fine-tune it with: bioner-train model=hub model.name_or_path=%s "
                "model.name=%s_dapt",
                "n/a" if before is None else f"{before:.4f}",
                "n/a" if after is None else f"{after:.4f}",
                model.global_step,
                Path(folder).resolve(),
                Path(folder).resolve(),
                encoder.name,
            )
        summary["steps"] = model.global_step
        summary["encoder_dir"] = str(cfg.output_dir)
    return summary


@hydra_entry_point("bioner-pretrain", config="pretrain")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns the final validation MLM loss (for sweeps)."""
    return pretrain(cfg)["val_loss_after"]


if __name__ == "__main__":
    main()
