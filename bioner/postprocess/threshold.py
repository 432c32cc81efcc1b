"""A score threshold: predicted spans scored below ``min_score`` are dropped.

It trades recall for precision, for uses that want few wrong spans (curating a database) more
than every span. ``min_score`` is chosen on devel, never on test:

* ``min_score=devel`` (``bioner-train``, ``bioner-eval``): the value of a grid of 0.01 steps with
  the best F1 on the run's raw devel predictions
  (:meth:`~bioner.evaluation.confidence.SpanConfidence.best`), then applied to devel and test.
  The devel score after it is optimistic (chosen there); the test score is not.
* a number: to apply a value chosen before. A run's ``metrics.json`` holds, per split, the value
  of best F1 (``devel.confidence.best.min_score``) and the curve.
* ``min_score=devel`` in ``bioner-predict``, which scores no devel split: the value that the
  model's run chose on its devel split, read from its ``metrics.json``
  (:meth:`ScoreThreshold.use_run_choice`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from bioner.data.document import Document, Span
from bioner.errors import ConfigError

log = logging.getLogger(__name__)

DEVEL = "devel"


class ScoreThreshold:
    """Keep the spans whose score is at least ``min_score``.

    Args:
        min_score: a probability in ``[0, 1]`` (0 keeps every span), or ``"devel"``: chosen on
            the raw devel predictions by :meth:`choose` before any span is thresholded.
    """

    def __init__(self, min_score: float | str = 0.5) -> None:
        self.on_devel = min_score == DEVEL
        if not self.on_devel:
            if isinstance(min_score, bool) or not isinstance(min_score, int | float):
                raise ValueError(f"min_score={min_score!r}: a number in [0, 1], or devel")
            if not 0 <= min_score <= 1:
                raise ValueError(f"min_score={min_score}: a number in [0, 1], or devel")
        self.min_score: float | None = None if self.on_devel else float(min_score)

    def __repr__(self) -> str:
        if self.min_score is None:
            return "ScoreThreshold(min_score='devel')"
        chosen = ", chosen on devel" if self.on_devel else ""
        return f"ScoreThreshold(min_score={self.min_score:g}{chosen})"

    def choose(
        self, docs: Sequence[Document] | None, predictions: Sequence[Sequence[Span]] | None
    ) -> None:
        """Set ``min_score`` from the raw devel predictions of the devel ``docs``, where it is
        ``devel``.

        Raises:
            ConfigError: the devel split was not scored (``docs`` is ``None``).
        """
        if not self.on_devel:
            return
        from bioner.evaluation.confidence import SpanConfidence

        scored = docs is not None and predictions is not None
        confidence = SpanConfidence.of(docs, predictions) if scored else None
        if confidence is None:
            raise ConfigError(
                "postprocess.threshold.min_score=devel is chosen on the scored devel split; "
                "score it too (splits=[devel,test]) or give the number"
            )
        best = confidence.best()
        self.min_score = float(best["min_score"])
        log.info(
            "postprocess.threshold: min_score=%.2f, chosen on devel (F1 %.4f there, %.4f without)",
            self.min_score,
            best["f1"],
            confidence.at(0.0)["f1"],
        )

    def use_run_choice(self, model: Path) -> bool:
        """Where ``min_score`` is ``devel``, take the value that the run of the exported
        ``model`` folder (a run's ``model/``, :func:`bioner.inference.tagger.model_folder`) chose
        on its devel split: ``devel.confidence.best.min_score`` of the run's ``metrics.json``,
        the value ``bioner-eval`` would choose on the same raw devel predictions. ``False``
        where that file or value is missing (an exported folder on its own, a run that never
        scored devel).
        """
        if not self.on_devel or self.min_score is not None:
            return True
        path = model.parent / "metrics.json"
        if model.name != "model" or not path.is_file():
            return False
        try:  # data, read as JSON
            best = json.loads(path.read_text(encoding="utf-8"))["devel"]["confidence"]["best"]
            value = float(best["min_score"])
        except (ValueError, KeyError, TypeError):
            return False
        if not 0 <= value <= 1:
            return False
        self.min_score = value
        log.info(
            "postprocess.threshold: min_score=%.2f, chosen on devel by the run (%s: F1 %.4f there)",
            value,
            path,
            float(best.get("f1", float("nan"))),
        )
        return True

    def __call__(self, text: str, spans: Sequence[Span]) -> list[Span]:
        if self.min_score is None:
            raise ConfigError(
                "ScoreThreshold(min_score='devel') thresholds nothing before choose(devel) has "
                "set the value; give a number instead"
            )
        for span in spans:
            if span.score is None:
                raise ValueError(
                    f"span {span} has no score to compare with min_score; only spans a model "
                    "decoded (Tagger, TokenClassifier) carry one"
                )
        return [s for s in spans if s.score >= self.min_score]
