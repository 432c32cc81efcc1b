"""Score a checkpoint: ``bioner-eval ckpt_path=<run folder or .ckpt> [dataset=...]``.

Examples::

    bioner-eval ckpt_path=logs/train/runs/<run>                 # its best.ckpt, devel and test
    bioner-eval ckpt_path=<run> 'splits=[test]' paths.data_dir=/data/corpora
    bioner-eval ckpt_path=<run> dataset=ncbi_disease robustness=default
    bioner-eval ckpt_path=<run> postprocess=abbreviations run_dir=evals/abbrev

The corpus is looked for under this run's data folder (``BIONER_DATA_DIR`` or
``paths.data_dir=...``), in the sub-folder it had at training; ``dataset.data_dir=<folder>``
points at it directly. Only the files of the scored ``splits`` are read.

The encoder and alignment are rebuilt from the training config stored in the checkpoint; the
encoder's tokenizer and config come from where training found them or, where that is not here
(a folder moved, the hub offline), from the run's exported ``model/``. The dataset is the
training one unless ``dataset=...`` names another. Labels are matched by name; when the corpus's
entity types are not the model's, the scores cover the types both share, and
``metrics.json["label_sets"]`` counts per split the predictions of types the corpus does not
annotate and the gold mentions of types the model cannot predict
(:mod:`bioner.evaluation.label_sets`). Writes ``metrics.json``, predictions and
confusion plots into its own run folder, exactly as a training run does.

Text normalisation (``preprocess=...`` in training) is applied as the training run applied it,
with what it learnt from the training text (kept in the checkpoint); spans are scored on the
original text.

``postprocess=abbreviations`` (any option or list of the ``postprocess`` group, as in
``bioner-predict``) post-processes each document's predicted spans before scoring and writing:
the ``devel`` and ``test`` sections of ``metrics.json``, the prediction files and the confusion
plots are then the **post-processed** ones, and ``metrics.json["postprocess"]`` keeps the raw
scores beside them (``f1_raw``, ``f1``, ``delta_f1`` and every raw metric per split; see
:mod:`bioner.runtime.finish`). Without it (``postprocess: none``) nothing changes.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from bioner.cli.errors import hydra_entry_point
from bioner.config import instantiate_node
from bioner.data.alignment import Alignment
from bioner.errors import ConfigError
from bioner.models.module import TokenClassifier
from bioner.runtime import (
    build_datamodule,
    build_scoring,
    build_trainer,
    closing,
    exit_on_signal,
    finish_evaluation,
    finish_run,
    instantiate_loggers,
    read_checkpoint,
    resolve_checkpoint,
    start_run,
    stored_config,
)
from bioner.runtime.checkpoints import (
    checkpoint_encoder,
    eval_dataset,
    match_label_sets,
    training_preprocess,
)


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.splits``; return the content of ``metrics.json``."""
    unknown = set(cfg.splits) - {"devel", "test"}
    if unknown:
        raise ConfigError(f"splits may be devel and test, not {sorted(unknown)}")
    ckpt_path = resolve_checkpoint(cfg.ckpt_path)
    run = start_run(cfg, tf32=False)
    scoring = build_scoring(cfg)  # a value it refuses stops the run before the model loads
    trust = bool(cfg.get("trust_checkpoint", False))
    checkpoint = read_checkpoint(ckpt_path, trust=trust)  # once: config and preprocessing
    trained = stored_config(checkpoint, ckpt_path, trust)

    reader = instantiate_node(eval_dataset(cfg, trained), "dataset")
    alignment = Alignment.from_record(
        OmegaConf.to_container(trained.alignment), f"{ckpt_path} (alignment)"
    )
    if cfg.get("decode_rule") is not None:
        alignment = alignment.replace(decode_rule=cfg.decode_rule)
    encoder = checkpoint_encoder(trained, ckpt_path)
    tokenizer = encoder.load_tokenizer()  # first: the model reads the input limit it derives
    model = TokenClassifier.load_from_checkpoint(
        ckpt_path, map_location="cpu", encoder=encoder, weights_only=not trust
    )
    # Labels are matched by name: gold tags get the model's ids whatever the corpus's order.
    labels = [model.id2label[i] for i in range(len(model.id2label))]
    # The training run's data settings keep padding and batching, hence the scores, identical.
    changes = {k: v for k, v in (cfg.get("data") or {}).items() if v is not None}
    datamodule = build_datamodule(
        OmegaConf.merge(trained.data, changes),
        reader=reader,
        alignment=alignment,
        tokenizer=tokenizer,
        labels=labels,
        preprocess=training_preprocess(checkpoint, ckpt_path),
        splits=list(cfg.splits),
    )
    label_sets = match_label_sets(model, labels, reader, ckpt_path)

    loggers = instantiate_loggers(cfg.get("logger"))
    trainer, precision = build_trainer(cfg, run, loggers)
    with closing(loggers):
        with exit_on_signal("eval", trainer, lambda signal: "while scoring: nothing was written"):
            if "devel" in cfg.splits:
                trainer.validate(model, datamodule=datamodule, verbose=False)
            if "test" in cfg.splits:
                trainer.test(model, datamodule=datamodule, verbose=False)
        summary: dict[str, Any] = {
            "run_name": cfg.run_name,
            "run_dir": str(run.dir),
            "checkpoint": str(ckpt_path),
            "dataset": reader.name,
            "precision": str(precision),
        }
        if cfg.get("decode_rule") is not None:
            summary["decode_rule"] = alignment.decode_rule
        if label_sets.differ:
            set_aside = {model.results[k].split: v for k, v in model.set_aside.items()}
            summary["label_sets"] = {**label_sets.describe(), **set_aside}
        if trainer.is_global_zero:
            summary = finish_evaluation(cfg, run.dir, model, datamodule, loggers, summary, scoring)
            finish_run(cfg, run, summary)
    return summary


@hydra_entry_point("bioner-eval", config="eval")
def main(cfg: DictConfig) -> None:
    """Console entry point."""
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    main()
