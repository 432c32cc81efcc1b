"""bioner: biomedical named entity recognition with Hugging Face encoders, Lightning and Hydra.

The front door, for use from Python::

    import bioner

    tagger = bioner.Tagger.load("logs/train/runs/<run>")   # a run or exported model folder
    spans = tagger.predict("Naloxone reverses clonidine-induced hypotension.")
    docs = bioner.load_corpus("bc5cdr", "devel")
    scores = bioner.evaluate(docs, tagger.predict_documents(docs)).metrics()

Names are imported on first use, so that ``import bioner`` stays fast (no torch, no Hydra).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    "Tagger": "bioner.inference.tagger",
    "Document": "bioner.data.document",
    "Span": "bioner.data.document",
    "load_corpus": "bioner.corpus",
    "evaluate": "bioner.evaluation.metrics",
    "SpanEvaluation": "bioner.evaluation.metrics",
    "SpanMetric": "bioner.models.span_metric",
    "CorpusFormatError": "bioner.data.errors",
    "compose_config": "bioner.config",
}

__all__ = [
    "CorpusFormatError",
    "Document",
    "Span",
    "SpanEvaluation",
    "SpanMetric",
    "Tagger",
    "__version__",
    "compose_config",
    "evaluate",
    "load_corpus",
]

if TYPE_CHECKING:
    from bioner.config import compose_config
    from bioner.corpus import load_corpus
    from bioner.data.document import Document, Span
    from bioner.data.errors import CorpusFormatError
    from bioner.evaluation.metrics import SpanEvaluation, evaluate
    from bioner.inference.tagger import Tagger
    from bioner.models.span_metric import SpanMetric


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'bioner' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
