"""Train a tagger: ``bioner-train [overrides]`` or ``python -m bioner.train [overrides]``.

Composes ``conf/train.yaml``, instantiates every piece from its config group and wires them
together; the pieces hold the logic. Examples::

    bioner-train experiment=quickstart
    bioner-train dataset=ncbi_disease model=biobert trainer=gpu trainer.precision=bf16-mixed
    bioner-train -m dataset=bc5cdr,ncbi_disease alignment=first,all seed=1,2,3
    bioner-train ckpt_path=last run_dir=<folder of a killed run>   # continue it

Each run writes into its run folder (printed at the start): ``config.yaml`` (resolved),
``checkpoints/{best,last}.ckpt``, ``metrics.json``, ``predictions/{devel,test}.{jsonl,conll}``,
``confusion_{devel,test}.png`` and ``model/``, a Hugging Face folder for
``transformers.pipeline("token-classification", model=...)``.
"""

from __future__ import annotations

import time
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
from bioner.inference.export import export_pretrained
from bioner.preprocess import build_preprocessor
from bioner.utils import (
    finish_loggers,
    instantiate_callbacks,
    instantiate_loggers,
    log_config,
    prepare_run_dir,
    resolve_precision,
)
from bioner.utils.callbacks import ConfigInCheckpoint, Throughput
from bioner.utils.checkpoint import StreamedCheckpointIO
from bioner.utils.log import get_logger
from bioner.utils.report import finish_evaluation
from bioner.utils.run import (
    log_outcome,
    training_outcome,
    warn_early_stopping_with_max_steps,
    write_run_readme,
)

log = get_logger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, trainer: L.Trainer) -> str | None:
    """``last`` -> ``last.ckpt`` in the run's checkpoint folder, which must exist; else unchanged.

    Lightning would silently start from scratch when ``last`` finds nothing; resuming the wrong
    folder deserves an error instead.
    """
    if ckpt_path != "last":
        return ckpt_path
    folders = {Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if cb.dirpath}
    found = [folder / "last.ckpt" for folder in sorted(folders) if (folder / "last.ckpt").is_file()]
    if not found:
        where = ", ".join(str(f) for f in sorted(folders)) or "(no checkpoint callback)"
        raise FileNotFoundError(
            f"ckpt_path=last: no last.ckpt in {where}. To continue a run, pass its folder too: "
            "run_dir=<run folder> ckpt_path=last (or give ckpt_path=<path to a .ckpt>)"
        )
    return str(found[0])


def best_checkpoint(trainer: L.Trainer) -> str | None:
    """The best checkpoint of the first callback that monitors a metric, if any was written."""
    for callback in trainer.checkpoint_callbacks:
        if callback.monitor is not None and callback.best_model_path:
            return callback.best_model_path
    return None


def release_training_state(trainer: L.Trainer, model: L.LightningModule) -> None:
    """Free the optimiser's moments and the gradients once fitting is over.

    They take three times the weights' memory and nothing after fitting reads them, while scoring
    the best checkpoint loads that file (weights and moments) beside them: freeing them first
    keeps the run's peak memory at the training peak.
    """
    for optimizer in trainer.optimizers:
        optimizer.state.clear()
    model.zero_grad(set_to_none=True)


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> dict[str, Any]:
    """Train and evaluate as ``cfg`` says; return the content of ``metrics.json``.

    Args:
        cfg: a composed ``train`` config (``bioner.config.compose_config("train", overrides)``
            outside a Hydra app, with ``run_dir=<folder>`` among the overrides).
        extra_callbacks: callbacks added by a calling program (benchmarks, notebooks) on top of
            the configured ones.
    """
    started = time.perf_counter()
    run_dir, resolved = prepare_run_dir(cfg)
    check_config(cfg, resolved)  # before any weights load
    if torch.cuda.is_available():
        # TF32 matmuls on Ampere and later: much faster, accuracy unaffected for fine-tuning.
        torch.set_float32_matmul_precision("high")
    L.seed_everything(cfg.seed, workers=True)

    reader = instantiate(cfg.dataset)
    alignment = instantiate(cfg.alignment)
    encoder = instantiate(cfg.model)
    datamodule = instantiate(
        cfg.data,
        reader=reader,
        alignment=alignment,
        tokenizer=encoder.load_tokenizer(),
        preprocess=build_preprocessor(cfg.get("preprocess")),
    )
    # Stop before loading any weights when the corpus is missing; downloads happen only here.
    datamodule.prepare_data()
    model = instantiate(cfg.module, encoder=encoder, id2label=datamodule.id2label)

    callbacks = instantiate_callbacks(cfg.callbacks, cfg.get("attack"), cfg.get("augmentation"))
    callbacks.append(ConfigInCheckpoint(resolved))
    callbacks.extend(extra_callbacks or [])
    loggers = instantiate_loggers(cfg.get("logger"))
    precision = resolve_precision(cfg.trainer.get("precision"), cfg.trainer.get("accelerator"))
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        precision=precision,
        plugins=[StreamedCheckpointIO()],
    )
    # Loggers see the precision chosen, not `auto` (config.yaml and the checkpoint keep `auto`:
    # the run's settings, which bioner-report groups by).
    chosen = {**resolved["trainer"], "precision": str(precision)}
    log_config(loggers, {**resolved, "trainer": chosen})
    if trainer.is_global_zero:
        write_run_readme(run_dir, cfg, {"run_name": cfg.run_name})  # completed at the end
    try:
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), trainer)
        summary: dict[str, Any] = {
            "run_name": cfg.run_name,
            "run_dir": str(run_dir),
            "precision": str(precision),
        }
        if cfg.train:
            warn_early_stopping_with_max_steps(cfg)
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
            release_training_state(trainer, model)
            outcome = training_outcome(trainer)
            summary["training"] = outcome
            best = outcome["best_epoch"]
            log.info(
                "training stopped: %s, after %d steps in %d epochs; best checkpoint from epoch %s",
                outcome["stop_reason"],
                outcome["steps"],
                outcome["epochs"],
                "(none)" if best is None else best,
            )
            if trainer.is_global_zero:
                log_outcome(loggers, outcome)
                write_run_readme(run_dir, cfg, summary)
        if cfg.cv.folds is not None:
            summary["cv"] = {"folds": cfg.cv.folds, "fold": cfg.cv.fold}
        speeds = [rate for cb in callbacks if isinstance(cb, Throughput) for rate in cb.history]
        if speeds:
            summary["train_sequences_per_s"] = speeds
        if cfg.test:
            checkpoint = best_checkpoint(trainer) if cfg.train else ckpt_path
            if checkpoint is None:
                log.warning("no checkpoint to evaluate: scoring the weights as they are")
            summary["checkpoint"] = checkpoint
            # Final scores of the best checkpoint on devel and test (with their predictions).
            trainer.validate(model, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
            trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint, verbose=False)
            if trainer.is_global_zero:
                summary["wall_time_s"] = time.perf_counter() - started
                summary = finish_evaluation(cfg, run_dir, model, datamodule, loggers, summary)
                metadata = {
                    "alignment": resolved["alignment"],
                    "entity_types": reader.entity_types,
                    "dataset": cfg.dataset.name,
                    "encoder": encoder.name,
                }
                if datamodule.preprocess is not None:
                    # bioner-predict rewrites raw text as training did (fitted state included).
                    metadata["preprocess"] = datamodule.preprocess.record()
                export_pretrained(model.model, datamodule.tokenizer, run_dir / "model", metadata)
                write_run_readme(run_dir, cfg, summary)
                log.info("Run folder: %s", Path(run_dir).resolve())
    finally:
        finish_loggers(loggers)
    return summary


@cli_main("bioner-train", config="train")
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns devel strict F1 for hyper-parameter sweeps."""
    summary = train(cfg)
    devel = summary.get("devel")
    return devel["metrics"]["f1"] if devel else None


if __name__ == "__main__":
    main()
