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

from typing import Any

import lightning as L
from omegaconf import DictConfig

from bioner.cli.errors import hydra_entry_point
from bioner.config import instantiate_node
from bioner.preprocess import build_preprocessor
from bioner.runtime import (
    build_callbacks,
    build_datamodule,
    build_scoring,
    build_trainer,
    check_monitors,
    closing,
    export_metadata,
    fit,
    instantiate_loggers,
    resolve_ckpt_path,
    score_and_export,
    scored_checkpoint,
    start_run,
    training_records,
    write_run_readme,
)


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> dict[str, Any]:
    """Train and evaluate as ``cfg`` says; return the content of ``metrics.json``.

    Args:
        cfg: a composed ``train`` config (``bioner.config.compose_config("train", overrides)``
            outside a Hydra app, with ``run_dir=<folder>`` among the overrides).
        extra_callbacks: callbacks added by a calling program (benchmarks, notebooks) on top of
            the configured ones.
    """
    run = start_run(cfg)
    # The cheap pieces first: a value that one of them refuses stops the run before the corpus
    # is read and the weights load, and before training rather than after it.
    callbacks = build_callbacks(cfg, store_config=run.resolved, extra=extra_callbacks)
    scoring = build_scoring(cfg)
    reader, encoder = instantiate_node(cfg.dataset, "dataset"), instantiate_node(cfg.model, "model")
    if cfg.train:
        check_monitors(cfg.get("callbacks"), reader)
    datamodule = build_datamodule(
        cfg.data,
        reader=reader,
        alignment=instantiate_node(cfg.alignment, "alignment"),
        tokenizer=encoder.load_tokenizer(),
        preprocess=build_preprocessor(cfg.get("preprocess")),
    )
    model = instantiate_node(cfg.module, "module", encoder=encoder, id2label=datamodule.id2label)
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer, precision = build_trainer(cfg, run, loggers, callbacks)
    summary: dict[str, Any] = {"run_name": cfg.run_name, "run_dir": str(run.dir)}
    summary["precision"] = str(precision)
    if trainer.is_global_zero:
        write_run_readme(run.dir, cfg, {"run_name": cfg.run_name})  # completed at the end
    with closing(loggers):
        ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), trainer)
        if cfg.train:
            summary["training"] = fit(cfg, run, trainer, model, datamodule, ckpt_path, summary)
        summary.update(training_records(cfg, callbacks))
        if cfg.test:
            checkpoint = scored_checkpoint(cfg, trainer, ckpt_path)
            metadata = export_metadata(cfg, run, reader, encoder, trainer.precision)
            summary = score_and_export(
                cfg, run, trainer, model, datamodule, checkpoint, summary, metadata, scoring
            )
    return summary


@hydra_entry_point("bioner-train", config="train")
def main(cfg: DictConfig) -> float | None:
    """Console entry point; returns devel strict F1 for hyper-parameter sweeps."""
    summary = train(cfg)
    devel = summary.get("devel")
    return devel["metrics"]["f1"] if devel else None


if __name__ == "__main__":
    main()
