"""Text-space robustness: how much strict F1 a tagger loses when the text is perturbed.

It lives with the transforms it applies, above :mod:`bioner.evaluation` that scores it, so that
importing the metrics does not pull in the augmentations.

Each perturbation kind is a label-preserving transform from :mod:`bioner.augment`: it rewrites the
documents and remaps the gold spans, so the perturbed documents are scored against exact gold.
For every kind :func:`text_robustness` reports (keys of its per-kind dict):

- ``f1_clean``, ``precision_clean``, ``recall_clean``: strict scores on the original documents
  (:func:`bioner.evaluation.evaluate`); ``f1``, ``precision``, ``recall``: on the perturbed ones.
- ``drop = f1_clean - f1``.
- ``flip_rate``: among gold entities found on the clean text (a prediction with the same start,
  end and type), the share whose corresponding gold entity in the perturbed document is not
  found; ``n_found_clean`` and ``n_flipped`` are its denominator and numerator, 0 when nothing
  was found. ``n_gained`` counts the opposite: missed on clean text, found when perturbed.
- ``flip_rate_changed`` / ``flip_rate_unchanged``: the same over entities whose own text the
  perturbation changed / did not change (a typo outside entities flips only unchanged ones:
  context sensitivity), with ``n_found_clean_changed``.
- ``n_documents``, ``n_entities``, ``n_entities_changed``, ``n_documents_changed``, ``n_edits``,
  and ``transform``, the transform's ``repr``.

The correspondence between clean and perturbed gold entities is positional
(:class:`bioner.augment.EditResult`). Everything is seeded: kind ``k`` perturbs document ``i``
with ``numpy.random.default_rng([seed, crc32(k), i])`` (see :func:`bioner.augment.perturb`), so a
kind's perturbations do not depend on which other kinds are evaluated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.augment.base import Transform, perturb
from bioner.augment.character import Case, Typos
from bioner.augment.replacement import Abbreviate, MentionReplacement, Synonym
from bioner.data.document import Document, Span
from bioner.data.lexicon import Lexicon
from bioner.evaluation.metrics import evaluate

Predictor = Callable[[list[Document]], Sequence[Sequence[Span]]]


TEXT_KINDS = (
    "typos_inside",
    "typos_outside",
    "case",
    "synonym",
    "mention_replacement",
    "abbreviation",
)
"""The kinds of :func:`default_perturbations`, in the order it builds and reports them."""


def default_perturbations(
    docs: Sequence[Document],
    rate: float = 0.1,
    synonyms: Lexicon | str | Path | None = None,
    abbreviations: Sequence[Document] | None = None,
    kinds: Sequence[str] = TEXT_KINDS,
) -> dict[str, Transform]:
    """The default text perturbations of the robustness evaluation, all at ``rate`` but one.

    ``typos_inside`` (a typo in a word of an entity), ``typos_outside`` (in a word outside
    entities), ``case`` (lower / upper / title case of a word), ``synonym`` (a context word
    replaced from ``synonyms``, default the shipped general-English lexicon),
    ``mention_replacement`` (a mention replaced by another mention of the same type from ``docs``,
    never by the identical surface) and ``abbreviation`` (every mention whose long form is
    defined somewhere in ``abbreviations`` written as its short form, :class:`~bioner.augment.
    Abbreviate`; at rate 1: abbreviable mentions are few, about 8% of BC5CDR's test entities).

    Args:
        docs: the evaluated documents (the mention pool).
        rate: per word, or per mention for ``mention_replacement``, or per lexicon match for
            ``synonym``.
        synonyms: the context-word lexicon.
        abbreviations: the documents whose definitions make the abbreviation table (default
            ``docs``; the robustness evaluation passes the whole split when it scores a part).
        kinds: which of :data:`TEXT_KINDS` to build (only those: the lexicon, mention pool and
            abbreviation table cost a pass over the documents each), in the order given.
    """
    build: dict[str, Callable[[], Transform]] = {
        "typos_inside": lambda: Typos(rate, inside_rate=rate, outside_rate=0.0),
        "typos_outside": lambda: Typos(rate, inside_rate=0.0, outside_rate=rate),
        "case": lambda: Case(rate),
        "synonym": lambda: Synonym(rate, synonyms),
        "mention_replacement": lambda: MentionReplacement.from_documents(docs, rate),
        "abbreviation": lambda: Abbreviate.from_documents(
            docs if abbreviations is None else abbreviations
        ),
    }
    unknown = [k for k in kinds if k not in build]
    if unknown:
        raise ValueError(f"unknown text perturbation kinds {unknown}; use {list(TEXT_KINDS)}")
    return {k: build[k]() for k in kinds}


def _scores(docs: Sequence[Document], pred: Sequence[Sequence[Span]]) -> dict[str, float]:
    m = evaluate(docs, pred).metrics()
    return {k: m[k] for k in ("precision", "recall", "f1")}


def _found(doc: Document, pred: Sequence[Span]) -> list[bool]:
    """For each gold span of ``doc``, whether a prediction has its start, end and type."""
    predicted = set(pred)
    return [span in predicted for span in doc.spans]


def _ratio(num: int, den: int) -> float:
    return num / den if den else 0.0


def text_robustness(
    docs: Sequence[Document],
    predict: Predictor,
    perturbations: Mapping[str, Transform] | None = None,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """Clean and perturbed strict F1, the drop and the entity flip rate per perturbation kind.

    Args:
        docs: gold documents (not modified).
        predict: any callable mapping a list of documents to the predicted spans of each (its
            ``i``-th list holds character spans into the ``i``-th document's text).
        perturbations: kind name -> transform; default :func:`default_perturbations` of ``docs``.
        seed: non-negative seed of every perturbation.

    Returns:
        ``{kind: {f1_clean, f1, drop, flip_rate, n_entities, ...}}`` (keys in the module
        docstring), plain ints, floats and strings, ready for ``json.dumps``.
    """
    docs = list(docs)
    if perturbations is None:
        perturbations = default_perturbations(docs)
    clean_pred = predict(docs)
    clean = _scores(docs, clean_pred)
    found_clean = [_found(d, p) for d, p in zip(docs, clean_pred)]
    out: dict[str, dict[str, Any]] = {}
    for kind, transform in perturbations.items():
        results = perturb(docs, transform, [seed, zlib.crc32(kind.encode())])
        perturbed = [r.document for r in results]
        pred = predict(perturbed)
        scores = _scores(perturbed, pred)
        counts = dict.fromkeys(
            ("found_clean", "flipped", "gained", "found_clean_changed", "flipped_changed"), 0
        )
        n_changed = 0
        for result, before, p in zip(results, found_clean, pred):
            after = _found(result.document, p)
            for was, now, changed in zip(before, after, result.changed_spans()):
                n_changed += changed
                counts["found_clean"] += was
                counts["flipped"] += was and not now
                counts["gained"] += now and not was
                counts["found_clean_changed"] += was and changed
                counts["flipped_changed"] += was and not now and changed
        found_unchanged = counts["found_clean"] - counts["found_clean_changed"]
        flipped_unchanged = counts["flipped"] - counts["flipped_changed"]
        out[kind] = {
            "f1_clean": clean["f1"],
            "precision_clean": clean["precision"],
            "recall_clean": clean["recall"],
            **scores,
            "drop": clean["f1"] - scores["f1"],
            "flip_rate": _ratio(counts["flipped"], counts["found_clean"]),
            "flip_rate_changed": _ratio(counts["flipped_changed"], counts["found_clean_changed"]),
            "flip_rate_unchanged": _ratio(flipped_unchanged, found_unchanged),
            "n_found_clean": counts["found_clean"],
            "n_found_clean_changed": counts["found_clean_changed"],
            "n_flipped": counts["flipped"],
            "n_gained": counts["gained"],
            "n_documents": len(docs),
            "n_documents_changed": sum(r.n_edits > 0 for r in results),
            "n_entities": sum(len(d.spans) for d in docs),
            "n_entities_changed": n_changed,
            "n_edits": sum(r.n_edits for r in results),
            "transform": repr(transform),
        }
    return out
