"""Score a checkpoint: ``bioner-eval ckpt_path=<run folder or .ckpt> [dataset=...]``, or a file
of predicted spans: ``bioner-eval predictions=<file> dataset=<corpus>``.

Examples::

    bioner-eval ckpt_path=logs/train/runs/<run>                 # its best.ckpt, devel and test
    bioner-eval ckpt_path=<run> 'splits=[test]' paths.data_dir=/data/corpora
    bioner-eval ckpt_path=<run> dataset=ncbi_disease robustness=default
    bioner-eval ckpt_path=<run> postprocess=abbreviations run_dir=evals/abbrev
    bioner-eval predictions=tagged.pubtator dataset=bc5cdr_pubtator 'splits=[test]'

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

``predictions=<file>`` scores spans that were predicted elsewhere (``bioner-predict``, a run's
``predictions/``, another tool) against the gold of ``dataset=...``, with the same report: a
``jsonl``, PubTator, BioC or CoNLL file, or a brat folder (``predictions_format=auto`` tells
them apart by name). Documents are matched by id and must hold the corpus's text; a scored
document the file lacks is an error. ``splits`` may include ``train`` (how good a teacher's
silver is, say); see :mod:`bioner.inference.scored_files`.

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from bioner.cli.errors import hydra_entry_point
from bioner.config import instantiate_node
from bioner.data.alignment import Alignment
from bioner.data.tags import entity_types_of
from bioner.errors import ConfigError
from bioner.evaluation import evaluate
from bioner.evaluation.ensemble import MAJORITY, vote, votes_needed
from bioner.evaluation.label_sets import LabelSets
from bioner.inference.scored_files import resolve_format, scored_predictions
from bioner.models.module import StageResult, TokenClassifier
from bioner.reporting.runs import CHECKPOINT_CONFIG
from bioner.runtime import (
    Scoring,
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
from bioner.utils.log import get_logger

log = get_logger(__name__)


@dataclass
class _Scored:
    """One checkpoint, scored on ``cfg.splits``: its module holds the results."""

    model: TokenClassifier
    datamodule: Any
    trainer: Any
    precision: str
    reader: Any
    alignment: Alignment
    label_sets: Any
    trained: DictConfig


def _score_checkpoint(cfg: DictConfig, run: Any, ckpt_path: Any, loggers: list) -> _Scored:
    """Build ``ckpt_path``'s model, corpus and trainer and run its devel and test passes."""
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
    trainer, precision = build_trainer(cfg, run, loggers)
    with exit_on_signal("eval", trainer, lambda signal: "while scoring: nothing was written"):
        if "devel" in cfg.splits:
            trainer.validate(model, datamodule=datamodule, verbose=False)
        if "test" in cfg.splits:
            trainer.test(model, datamodule=datamodule, verbose=False)
    return _Scored(
        model, datamodule, trainer, str(precision), reader, alignment, label_sets, trained
    )


def _checkpoints(value: Any) -> list[Any]:
    """``ckpt_path`` as a list of checkpoints: one, or the members of an ensemble."""
    if isinstance(value, str) or not isinstance(value, Sequence | ListConfig):
        return [resolve_checkpoint(value)]
    if not value:
        raise ConfigError("ckpt_path=[]: give a run folder or .ckpt, or several for an ensemble")
    return [resolve_checkpoint(v) for v in value]


def _check_members(paths: list[Any], trust: bool) -> None:
    """Refuse an ensemble whose members tag different types, before any is scored.

    Raises:
        ConfigError: naming the member that differs from the first.
    """
    types = []
    for path in paths:
        checkpoint = read_checkpoint(path, trust=trust)
        labels = (checkpoint.get("hyper_parameters") or {}).get("id2label") or {}
        types.append(entity_types_of(sorted(str(v) for v in labels.values())))
        # Memory-mapped (read_checkpoint): only the small entries were read, not the weights.
    for path, own in zip(paths[1:], types[1:]):
        if own != types[0]:
            raise ConfigError(
                f"ckpt_path: {path} predicts {own}, {paths[0]} {types[0]}: the members of an "
                "ensemble tag the same types"
            )


def _ensemble(
    members: list[_Scored], paths: list[Any], min_votes: int
) -> tuple[dict[str, StageResult], dict[str, Any]]:
    """The vote of the scored ``members``, and the ``ensemble`` section of ``metrics.json``:
    the members, their seeds and folds (a report pairs the vote with each member's own run),
    ``min_votes`` and, per split, each member's F1 beside the vote's.

    Raises:
        ConfigError: a member scored other documents than the first.
    """
    results = [member.model.results for member in members]
    first = results[0]
    for path, own in zip(paths[1:], results[1:]):
        for stage, result in first.items():
            if [d.id for d in own[stage].docs] != [d.id for d in result.docs]:
                raise ConfigError(
                    f"ckpt_path: {path} scored other {result.split} documents than {paths[0]} "
                    "(another corpus or data settings); the members of an ensemble are scored "
                    "on one corpus: name it with dataset=..."
                )
    section: dict[str, Any] = {
        "members": [str(p) for p in paths],
        "member_seeds": [member.trained.get("seed") for member in members],
        "member_folds": [(member.trained.get("cv") or {}).get("fold") for member in members],
        "min_votes": min_votes,
    }
    voted = {}
    for stage, result in first.items():
        own = [member[stage] for member in results]
        preds = [vote(spans, min_votes) for spans in zip(*(r.predictions for r in own))]
        voted[stage] = StageResult(result.split, result.docs, preds, evaluate(result.docs, preds))
        f1 = [r.evaluation.metrics()["f1"] for r in own]
        section[result.split] = {"member_f1": f1, "f1": voted[stage].evaluation.metrics()["f1"]}
        log.info(
            "%s: ensemble of %d (spans of at least %d): strict F1 %.4f; members %s",
            result.split,
            len(own),
            min_votes,
            section[result.split]["f1"],
            ", ".join(f"{x:.4f}" for x in f1),
        )
    return voted, section


def _check_scoring(cfg: DictConfig, scoring: Scoring) -> None:
    """Refuse a post-processing value chosen on devel when devel is not scored."""
    if "devel" not in cfg.splits and any(
        getattr(s, "on_devel", False) for s in scoring.postprocess
    ):
        raise ConfigError(
            f"postprocess.threshold.min_score=devel is chosen on the devel split, which "
            f"splits={list(cfg.splits)} leaves out: add it (splits=[devel,test]) or give the number"
        )


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.splits``; return the content of ``metrics.json``.

    With several checkpoints (``ckpt_path=[<run>,<run>,<run>]``) each is scored in turn, and the
    report is that of their vote (:mod:`bioner.evaluation.ensemble`, ``min_votes``), with each
    member's F1 beside it in ``metrics.json["ensemble"]``. With ``predictions=<file>`` in place
    of ``ckpt_path``, the file's spans are scored (:func:`score_predictions`).
    """
    if cfg.get("predictions") is not None:
        return score_predictions(cfg)
    if cfg.get("ckpt_path") is None:
        raise ConfigError(
            "ckpt_path needs a value: give it, as in ckpt_path=<run folder or .ckpt file>, or "
            "score a file of predicted spans with predictions=<file> dataset=<its corpus>"
        )
    unknown = set(cfg.splits) - {"devel", "test"}
    if unknown:
        raise ConfigError(
            f"splits may be devel and test, not {sorted(unknown)} (a file of predicted spans, "
            "predictions=<file>, may also be scored on train)"
        )
    paths = _checkpoints(cfg.ckpt_path)
    run = start_run(cfg, tf32=False)
    scoring = build_scoring(cfg)  # a value it refuses stops the run before the model loads
    _check_scoring(cfg, scoring)
    min_votes = None
    if len(paths) > 1:
        try:
            min_votes = votes_needed(cfg.get("min_votes", MAJORITY), len(paths))
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if scoring.robustness is not None:
            raise ConfigError(
                "robustness attacks one model; score the members of the ensemble one at a time"
            )
        _check_members(paths, bool(cfg.get("trust_checkpoint", False)))
    loggers = instantiate_loggers(cfg.get("logger"))
    with closing(loggers):
        # An ensemble's members log nothing of their own: the loggers get the vote's report.
        first = _score_checkpoint(cfg, run, paths[0], loggers if min_votes is None else [])
        summary: dict[str, Any] = {
            "run_name": cfg.run_name,
            "run_dir": str(run.dir),
            "checkpoint": str(paths[0]) if min_votes is None else [str(p) for p in paths],
            "dataset": first.reader.name,
            "precision": first.precision,
        }
        if cfg.get("decode_rule") is not None:
            summary["decode_rule"] = first.alignment.decode_rule
        if first.label_sets.differ:
            set_aside = {first.model.results[k].split: v for k, v in first.model.set_aside.items()}
            summary["label_sets"] = {**first.label_sets.describe(), **set_aside}
        if min_votes is not None:
            members = [first] + [_score_checkpoint(cfg, run, p, []) for p in paths[1:]]
            voted, summary["ensemble"] = _ensemble(members, paths, min_votes)
            del members  # each model is let go once the vote has its results
            first.model.results = voted
        if first.trainer.is_global_zero:
            # What a report reads of the model: kept here, it needs no checkpoint to be read.
            (run.dir / CHECKPOINT_CONFIG).write_text(OmegaConf.to_yaml(first.trained))
            summary = finish_evaluation(
                cfg, run.dir, first.model, first.datamodule, loggers, summary, scoring
            )
            finish_run(cfg, run, summary)
    return summary


#: The stage under which a module keeps each split's results (Lightning's names).
_STAGES = {"train": "train", "devel": "val", "test": "test"}


@dataclass
class _FileScores:
    """What :func:`finish_evaluation` reads of a model and of a data module, where a file's
    spans are scored and neither exists: the results per stage and the corpus reader."""

    results: dict[str, StageResult]
    reader: Any


def score_predictions(cfg: DictConfig) -> dict[str, Any]:
    """Score the spans of the file ``cfg.predictions`` against the gold of ``cfg.dataset`` on
    ``cfg.splits`` (``train`` allowed: how good a teacher's silver is, say), with the report of
    a checkpoint's: ``metrics.json`` (intervals, per type, post-processing), predictions,
    confusion plots and errors (:mod:`bioner.inference.scored_files` reads and matches it).

    Predicted types the corpus does not annotate are counted apart, as for a model of other
    types (``metrics.json["label_sets"]``); every gold type is scored, so a type the file never
    predicts counts as missed.

    Raises:
        ConfigError: no ``dataset``, a checkpoint too, robustness (it attacks a model),
            post-processing of spans without scores, or no type in common; and see
            :func:`~bioner.inference.scored_files.scored_predictions`.
    """
    path = cfg.predictions
    if cfg.get("ckpt_path") is not None:
        raise ConfigError(
            f"ckpt_path={cfg.ckpt_path} and predictions={path}: score a model or a file of its "
            "predictions, one of them"
        )
    if "_target_" not in (cfg.get("dataset") or {}):
        raise ConfigError(
            f"predictions={path}: name the corpus its spans are scored against, dataset=<name> "
            "(dataset=iob dataset.data_dir=<folder> for your own)"
        )
    unknown = set(cfg.splits) - set(_STAGES)
    if unknown or not cfg.splits:
        raise ConfigError(f"splits may be train, devel and test, not {list(cfg.splits)}")
    fmt = resolve_format(path, str(cfg.get("predictions_format") or "auto"))
    run = start_run(cfg, tf32=False)
    scoring = build_scoring(cfg)
    _check_scoring(cfg, scoring)
    if scoring.robustness is not None:
        raise ConfigError(
            "robustness attacks a model; a file of predictions has none: score the checkpoint "
            "(ckpt_path=...) for robustness"
        )
    reader = instantiate_node(eval_dataset(cfg, OmegaConf.create({})), "dataset")
    gold = {s: [reader.evaluation_document(d) for d in reader.load(s)] for s in cfg.splits}
    scheme = str(cfg.get("predictions_scheme") or "IOB2")
    predicted = scored_predictions(path, fmt, gold, reader.name, scheme)
    if scoring.postprocess and any(
        s.score is None for spans in predicted.values() for doc in spans for s in doc
    ):
        raise ConfigError(
            f"postprocess: its steps need each span's score, and the spans of {path} ({fmt}) "
            "have none; score it without postprocess, or tag to jsonl (bioner-predict "
            "format=jsonl keeps each span's score)"
        )
    corpus_types = list(reader.entity_types)
    found = sorted({s.label for spans in predicted.values() for doc in spans for s in doc})
    label_sets = LabelSets(
        tuple(corpus_types + [t for t in found if t not in corpus_types]), tuple(corpus_types)
    )
    if found and not set(found) & set(corpus_types):
        raise ConfigError(
            f"predictions={path} predicts {found}, {reader.name} annotates {corpus_types}: no "
            "type in common, nothing to score. Where the two name one type differently, rename "
            "the corpus's as it is read: dataset.relabel.map={<corpus type>: <predicted type>}"
        )
    summary: dict[str, Any] = {
        "run_name": cfg.run_name,
        "run_dir": str(run.dir),
        "predictions": str(path),
        "predictions_format": fmt,
        "dataset": reader.name,
    }
    results = {}
    for split in cfg.splits:
        docs, preds = gold[split], predicted[split]
        if label_sets.differ:
            docs, preds, set_aside = label_sets.restrict(docs, preds)
            summary.setdefault("label_sets", label_sets.describe())[split] = set_aside
        results[_STAGES[split]] = StageResult(split, docs, preds, evaluate(docs, preds))
    if label_sets.differ:
        log.warning(
            "predictions=%s also predicts %s, which %s does not annotate: counted apart "
            "(metrics.json: label_sets), not scored",
            path, label_sets.model_only, reader.name,
        )  # fmt: skip
    loggers = instantiate_loggers(cfg.get("logger"))
    with closing(loggers):
        scored = _FileScores(results, reader)
        summary = finish_evaluation(cfg, run.dir, scored, scored, loggers, summary, scoring)
        finish_run(cfg, run, summary)
    return summary


@hydra_entry_point("bioner-eval", config="eval")
def main(cfg: DictConfig) -> None:
    """Console entry point."""
    evaluate_checkpoint(cfg)


if __name__ == "__main__":
    main()
