"""The files a run leaves behind, and the tables and figures it sends to dashboards.

For each evaluated split: ``predictions/<split>.jsonl`` and ``.conll``, ``confusion_<split>.png``,
``confidence_<split>.png``, ``errors_<split>.tsv`` (every wrong, missed and spurious span, by the
confusion matrix's outcomes, with its sentence) and a section of ``metrics.json`` (metrics,
per-type table, bootstrap confidence intervals, entity confusion counts, and ``confidence``: how
well the spans' scores are calibrated and what a ``min_score`` would buy,
:mod:`bioner.evaluation.confidence`, always of the model's own predictions, before any
post-processing); with ``robustness=...``, a ``robustness`` section and
``robustness_epsilon.png``.

With ``postprocess=...`` (the config group that ``bioner-predict`` applies too), every file and
section above holds the *post-processed* predictions and their scores, and ``metrics.json``
gains a ``postprocess`` section with the raw scores beside them::

    "postprocess": {
      "name": "abbreviations",  # the selected entries, joined by "+"
      "steps": ["AbbreviationResolver(drop_unsupported=False)"],
      "devel": {"f1_raw": ..., "f1": ..., "delta_f1": ..., "documents_changed": ...,
                "raw": {<every raw metric of the split>}},
      "test": {...}
    }

With ``dataset.split``, ``dataset.relabel`` or ``dataset.filter`` set,
``metrics.json["dataset_preparation"]`` says how the documents were dealt (``split``: ratios,
seed, documents per split), what became of their gold mentions' types (``relabel``: per split,
mentions, renamed and dropped per type, merged) and what each split lost (``filter``: documents
before, kept, removed per rule, gold mentions removed); ``repairs`` counts, per split and kind,
what a lenient reader option fixed or left out.

Post-processed metrics also reach the loggers as ``<stage>/postprocess/<name>`` (``val/f1`` and
``test/f1`` logged by the evaluation passes stay the raw ones). Robustness scores the raw model.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger, WandbLogger

from bioner.config import instantiate_node, named_entries
from bioner.data.document import by_corpus, flat_layer
from bioner.evaluation import bootstrap_intervals, confusion_matrix, robustness_metrics
from bioner.evaluation.confidence import SpanConfidence
from bioner.evaluation.confusion import write_errors
from bioner.inference.formats import write_conll, write_jsonl
from bioner.postprocess import PostProcessor, build_postprocessors
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from bioner.attacks.robustness import Robustness
    from bioner.data.datamodule import NERDataModule
    from bioner.models.module import StageResult, TokenClassifier

log = get_logger(__name__)

PER_TYPE_COLUMNS = ["type", "tp", "fp", "fn", "precision", "recall", "f1", "support"]


def report_split(
    result: StageResult,
    run_dir: str | Path,
    ci_samples: int = 1000,
    seed: int = 0,
    raw: StageResult | None = None,
) -> dict[str, Any]:
    """Write one split's predictions and confusion plot; return its ``metrics.json`` section.

    Args:
        result: the scored predictions (from ``TokenClassifier.results``).
        run_dir: the run folder.
        ci_samples: bootstrap samples for the 95% confidence intervals (0: none).
        seed: seed of the bootstrap.
        raw: the model's own predictions where ``result`` is post-processed: the confidence
            section describes the model's scores, so it reads these (``None``: ``result``).
    """
    run_dir = Path(run_dir)
    split, docs, preds = result.split, result.docs, result.predictions
    write_jsonl(run_dir / "predictions" / f"{split}.jsonl", docs, preds)
    # One tag per word holds one layer: nested predictions (module.head=multilabel) go to the
    # CoNLL file as the longest of each group, and the JSONL file holds them all.
    flat = [flat_layer(sorted(p)) for p in preds]
    left_out = sum(len(p) for p in preds) - sum(len(p) for p in flat)
    if left_out:
        log.warning(
            "%s: %d nested or crossing predicted spans are in %s.jsonl but not in %s.conll "
            "(one tag per word: the longest of each group)",
            split, left_out, split, split,
        )  # fmt: skip
    write_conll(run_dir / "predictions" / f"{split}.conll", docs, flat)
    confusion = confusion_matrix(docs, preds)
    confusion.plot(run_dir / f"confusion_{split}.png")
    write_errors(run_dir / f"errors_{split}.tsv", docs, preds)
    ci, defined = (
        bootstrap_intervals(result.evaluation, n=ci_samples, seed=seed) if ci_samples else ({}, {})
    )
    section = {
        "documents": len(docs),
        "metrics": result.evaluation.metrics(),
        "per_type": result.evaluation.per_type(),
        "ci95": {k: list(v) for k, v in ci.items()},
        # Scores that some resamples left undefined (a type absent from them), and how many of
        # the ci_samples resamples defined them: their intervals are over those only.
        "ci95_defined": {k: v for k, v in defined.items() if v < ci_samples},
        "confusion": confusion.to_dict(),
    }
    # How far the spans' scores can be trusted, and what a min_score would buy (choose on devel).
    scored = raw if raw is not None else result
    confidence = SpanConfidence.of(scored.docs, scored.predictions)
    if confidence is not None:
        section["confidence"] = confidence.to_dict()
        confidence.plot(run_dir / f"confidence_{split}.png", title=split)
    corpora = corpus_sections(result, ci_samples, seed, scored=scored)
    if corpora:
        section["corpora"] = corpora
    return section


def corpus_sections(
    result: StageResult, ci_samples: int = 1000, seed: int = 0, scored: StageResult | None = None
) -> dict[str, dict[str, Any]]:
    """Each member corpus's own scores, where the documents come from several (``dataset=multi``):
    ``{key: {documents, types, metrics, per_type, ci95, unscored_predictions, confidence}}``,
    over the types that corpus annotates; ``unscored_predictions`` counts per type the
    predictions its gold cannot judge, and ``confidence`` describes the span scores of
    ``scored`` (the model's own predictions where ``result`` is post-processed; ``None``:
    ``result``'s) in its documents, where they have scores. Empty for documents of one corpus."""
    scored = result if scored is None else scored
    out: dict[str, dict[str, Any]] = {}
    for key, (rows, types) in by_corpus(result.docs).items():
        evaluation = result.evaluation.subset(rows, types)
        unscored = Counter(
            s.label for i in rows for s in result.predictions[i] if s.label not in types
        )
        ci = bootstrap_intervals(evaluation, n=ci_samples, seed=seed)[0] if ci_samples else {}
        out[key] = {
            "documents": len(rows),
            "types": list(types),
            "metrics": evaluation.metrics(),
            "per_type": evaluation.per_type(),
            "ci95": {k: list(v) for k, v in ci.items()},
            "unscored_predictions": {t: unscored[t] for t in sorted(unscored)},
        }
    for key, (rows, _) in by_corpus(scored.docs).items():
        docs = [scored.docs[i] for i in rows]
        confidence = SpanConfidence.of(docs, [scored.predictions[i] for i in rows])
        if confidence is not None and key in out:
            out[key]["confidence"] = confidence.to_dict()
    return out


def log_split_report(
    loggers: list[Logger], stage: str, section: Mapping[str, Any], png: Path
) -> None:
    """Send a split's per-type table and confusion matrix to the loggers that show them."""
    rows = [[row[c] for c in PER_TYPE_COLUMNS] for row in section["per_type"]]
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            # The intervals beside the scores in the run's summary: (low, high) per metric.
            logger.experiment.summary.update(
                {f"{stage}/{k}_ci95": list(v) for k, v in section["ci95"].items()}
            )
            logger.log_table(f"{stage}/per_type", columns=PER_TYPE_COLUMNS, data=rows)
            logger.log_image(f"{stage}/confusion_matrix", images=[str(png)])
        elif isinstance(logger, TensorBoardLogger):
            import matplotlib.image

            header = "| " + " | ".join(PER_TYPE_COLUMNS) + " |\n|" + "---|" * len(PER_TYPE_COLUMNS)
            body = "\n".join("| " + " | ".join(str(v) for v in row) + " |" for row in rows)
            logger.experiment.add_text(f"{stage}/per_type", f"{header}\n{body}")
            image = matplotlib.image.imread(png)[..., :3]
            logger.experiment.add_image(f"{stage}/confusion_matrix", image, dataformats="HWC")
        # CSV and other loggers: the table and figure are in the run folder.


def write_report(
    run_dir: str | Path,
    results: Mapping[str, StageResult],
    loggers: list[Logger],
    extra: Mapping[str, Any] | None = None,
    ci_samples: int = 1000,
    seed: int = 0,
    raw: Mapping[str, StageResult] | None = None,
) -> dict[str, Any]:
    """Write every split's files and ``metrics.json``; log tables and figures.

    Call on global rank zero only.

    Args:
        run_dir: the run folder.
        results: stage (``val``, ``test``) -> scored predictions.
        loggers: the run's loggers.
        extra: run-level entries for ``metrics.json`` (run name, checkpoint, precision, ...).
        ci_samples: bootstrap samples for confidence intervals (0: none).
        seed: seed of the bootstrap.
        raw: stage -> the model's own predictions, where ``results`` are post-processed.

    Returns:
        The content of ``metrics.json``.
    """
    run_dir = Path(run_dir)
    summary: dict[str, Any] = dict(extra or {})
    for stage, result in results.items():
        before = (raw or {}).get(stage)
        section = report_split(result, run_dir, ci_samples=ci_samples, seed=seed, raw=before)
        summary[result.split] = section
        log_split_report(loggers, stage, section, run_dir / f"confusion_{result.split}.png")
        for where, part in [(result.split, section)] + [
            (f"{result.split}/{key}", sub) for key, sub in section.get("corpora", {}).items()
        ]:
            m = part["metrics"]
            log.info(
                "%s: strict P %.4f R %.4f F1 %.4f (%d documents)",
                where,
                m["precision"],
                m["recall"],
                m["f1"],
                part["documents"],
            )
        if "confidence" in section:
            c = section["confidence"]
            log_confidence(loggers, stage, c, run_dir / f"confidence_{result.split}.png")
            log.info(
                "%s: span scores%s: ECE %.4f, average precision %.4f; F1 %.4f with the spans "
                "scored at least %.2f (postprocess=threshold), %.4f with all",
                result.split,
                " (before post-processing)" if raw else "",
                c["ece"],
                c["average_precision"],
                c["best"]["f1"],
                c["best"]["min_score"],
                c["every_span"]["f1"],
            )
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def log_confidence(
    loggers: list[Logger], stage: str, confidence: Mapping[str, Any], png: Path
) -> None:
    """Send a split's calibration error and average precision of span scores to every logger
    (``<stage>/span_ece``, ``<stage>/span_average_precision``), and its plot to W&B."""
    flat = {
        f"{stage}/span_ece": confidence["ece"],
        f"{stage}/span_average_precision": confidence["average_precision"],
    }
    for logger in loggers:
        logger.log_metrics(flat)
        if isinstance(logger, WandbLogger):
            logger.log_image(f"{stage}/confidence", images=[str(png)])


def postprocess_summary(
    group: Mapping[str, Any] | None,
    steps: Sequence[PostProcessor],
    raw: Mapping[str, StageResult],
    post: Mapping[str, StageResult],
) -> dict[str, Any]:
    """The ``postprocess`` section of ``metrics.json``: raw and post-processed F1 per split.

    Args:
        group: the ``postprocess`` config node (its entry names make ``name``).
        steps: the steps built from it.
        raw: stage -> the result as decoded.
        post: stage -> the same result after ``steps``.
    """
    section: dict[str, Any] = {
        "name": "+".join(name for name, _ in named_entries(group, "postprocess")),
        "steps": [repr(step) for step in steps],
    }
    for stage, before in raw.items():
        after = post[stage]
        f1_raw, f1 = before.evaluation.metrics()["f1"], after.evaluation.metrics()["f1"]
        section[before.split] = {
            "f1_raw": f1_raw,
            "f1": f1,
            "delta_f1": f1 - f1_raw,
            "documents_changed": sum(a != b for a, b in zip(before.predictions, after.predictions)),
            "raw": before.evaluation.metrics(),
        }
        log.info(
            "%s: post-processing (%s) changed strict F1 %.4f -> %.4f (%+.4f)",
            before.split,
            section["name"],
            f1_raw,
            f1,
            f1 - f1_raw,
        )
    return section


def log_postprocess(loggers: list[Logger], post: Mapping[str, StageResult]) -> None:
    """Send the post-processed metrics to every logger as ``<stage>/postprocess/<name>``."""
    flat = {
        f"{stage}/postprocess/{name}": value
        for stage, result in post.items()
        for name, value in result.evaluation.metrics().items()
    }
    for logger in loggers:
        logger.log_metrics(flat)


def log_robustness(loggers: list[Logger], result: Mapping[str, Any], png: Path | None) -> None:
    """Send robustness scores to every logger under the keys ``bioner-report`` reads
    (:func:`bioner.evaluation.robustness_metrics`) and the F1-against-epsilon plot to W&B."""
    flat = robustness_metrics(result)
    for logger in loggers:
        logger.log_metrics(flat)
        if png is not None and isinstance(logger, WandbLogger):
            logger.log_image("robustness/f1_vs_epsilon", images=[str(png)])


@dataclass(frozen=True)
class Scoring:
    """What a run applies to its final predictions: the post-processing steps and the
    robustness suite (``None``: none)."""

    postprocess: list[PostProcessor]
    robustness: Robustness | None


def build_scoring(cfg: DictConfig) -> Scoring:
    """The :class:`Scoring` of ``cfg.postprocess`` and ``cfg.robustness``. Entry points build it
    when the run starts: a value a step refuses then stops the run before it trains, not after.

    Raises:
        ConfigError: a step or the suite refuses a value (the message names the key).
    """
    node = cfg.get("robustness")
    suite = None
    if node is not None and "_target_" in node:
        suite = instantiate_node(node, "robustness")
    return Scoring(build_postprocessors(cfg.get("postprocess")), suite)


def finish_evaluation(
    cfg: DictConfig,
    run_dir: str | Path,
    module: TokenClassifier,
    datamodule: NERDataModule,
    loggers: list[Logger],
    extra: Mapping[str, Any],
    scoring: Scoring | None = None,
) -> dict[str, Any]:
    """After the final devel/test passes: robustness (if ``cfg.robustness`` has a target),
    post-processing (``cfg.postprocess``, see the module docstring), the report files and
    ``metrics.json``. Call on global rank zero only; returns the summary.

    Args:
        scoring: the steps and suite built from ``cfg`` when the run started
            (:func:`build_scoring`); ``None``: build them now.
    """
    from bioner.attacks.robustness import plot_robustness

    scoring = build_scoring(cfg) if scoring is None else scoring

    summary = dict(extra)
    # dataset.split and dataset.filter: how the scored and trained documents were chosen.
    # (Callers that score predictions without a data module pass none.)
    reader = getattr(datamodule, "reader", None)
    preparation = reader.preparation() if hasattr(reader, "preparation") else {}
    if preparation:
        summary["dataset_preparation"] = preparation
    results = dict(module.results)
    steps = scoring.postprocess
    if steps:
        devel = module.results.get("val")
        for step in steps:  # a value chosen on the raw devel predictions (threshold=devel)
            if hasattr(step, "choose"):
                step.choose(*((devel.docs, devel.predictions) if devel else (None, None)))
        results = {stage: result.postprocessed(steps) for stage, result in results.items()}
        summary["postprocess"] = postprocess_summary(
            cfg.get("postprocess"), steps, module.results, results
        )
        log_postprocess(loggers, results)
    suite = scoring.robustness
    if suite is not None:
        result = suite.evaluate(
            module.model,
            datamodule.tokenizer,
            datamodule.encoded(suite.split),
            module.id2label,
            precision=extra.get("precision"),
            preprocess=getattr(datamodule, "preprocess", None),
            head_loss=module.head_loss,
            transitions=module.transitions(),
        )
        png = plot_robustness(result, Path(run_dir) / "robustness_epsilon.png")
        log_robustness(loggers, result, png)
        summary["robustness"] = result
    return write_report(
        run_dir,
        results,
        loggers,
        extra=summary,
        ci_samples=cfg.bootstrap_samples,
        seed=cfg.seed,
        raw=module.results if steps else None,
    )
