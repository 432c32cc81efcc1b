"""``dataset.relabel``: rename, merge or drop entity types as a corpus is read.

Corpora name one thing differently and cut it differently, and BioNER work keeps meeting both:

* **Renaming** puts one corpus's types under another's names: a model trained on BC2GM
  (``GENE``) scored on a corpus that says ``Gene`` (``bioner-eval`` scores the types the two
  share), or several corpora read as one (``dataset=multi`` matches types by name):
  ``dataset.relabel.map={GENE: Gene}``.
* **Merging** maps several types to one name (JNLPBA's ``DNA``, ``RNA`` and ``protein`` to
  ``Gene``). Two mentions of one extent that now have one type become one mention, counted as
  ``merged``.
* **Dropping** maps a type to ``null`` (``{test: null}``) or keeps a list of types
  (``dataset.relabel.keep=[problem]``: i2b2 2010's problems alone; a few of MedMentions' semantic
  types). ``keep`` names types as ``map`` leaves them.

The rule runs on every split, after ``dataset.split`` and before ``dataset.filter`` (so
``drop_empty_train`` sees the mentions that are left), and applies to gold mentions only: the
text, words and sentences stay as read. Scores on a split whose types were dropped or merged are
not those of the published corpus, so every change is counted per split and type
(:attr:`Relabel.counts`: logged, shown by ``bioner-data stats`` and written to ``metrics.json``
under ``dataset_preparation.relabel``).

The brat and BioC readers' ``ignore_types`` is another thing: it leaves out annotations that are
not entity mentions at all (event triggers) while the file is read, before overlaps are checked.
"""

from __future__ import annotations

import difflib
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bioner.data.document import Document, Span

log = logging.getLogger(__name__)


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_name(name: Any, what: str) -> str:
    """``name`` as an entity type name, or ``ValueError``: a non-empty string without whitespace
    (the tag columns of CoNLL files cannot hold a space)."""
    if not isinstance(name, str) or not name or any(c.isspace() for c in name):
        raise ValueError(f"{what}: {name!r} is not a type name (a word without spaces)")
    return name


@dataclass
class Relabel:
    """The rule of ``dataset.relabel`` (off by default).

    Args:
        map: old type -> new name (several old types to one name merge them), or ``None`` to
            drop the type's mentions. Types not named keep their names.
        keep: the types to keep, by their names after ``map``; ``None``: every type.
    """

    map: Mapping[str, str | None] = field(default_factory=dict)
    keep: Sequence[str] | None = None
    counts: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.map is None:
            self.map = {}
        if not isinstance(self.map, Mapping):
            raise ValueError(
                f"dataset.relabel.map must be a mapping old type -> new name (or null to drop), "
                f"e.g. dataset.relabel.map={{GENE: Gene}}, not {self.map!r}"
            )
        self.map = {
            _check_name(old, "dataset.relabel.map"): (
                None if new is None else _check_name(new, f"dataset.relabel.map.{old}")
            )
            for old, new in self.map.items()
        }
        if self.keep is not None:
            if isinstance(self.keep, str) or not isinstance(self.keep, Sequence):
                raise ValueError(
                    f"dataset.relabel.keep must be a list of types, e.g. [problem], not "
                    f"{self.keep!r}"
                )
            if not self.keep:
                raise ValueError("dataset.relabel.keep=[] keeps no type; list the types to keep")
            self.keep = [_check_name(t, "dataset.relabel.keep") for t in self.keep]

    @property
    def active(self) -> bool:
        """Whether the rule changes anything."""
        return bool(self.map) or self.keep is not None

    def types(self, source: Sequence[str], corpus: str) -> list[str]:
        """The entity types after the rule, in the order of ``source`` (the corpus's own).

        Raises:
            ValueError: ``map`` or ``keep`` names a type the corpus does not have, or the rule
                leaves no type.
        """
        have = f"its types: {', '.join(source) or 'none'}"
        for old in self.map:
            if old not in source:
                raise ValueError(
                    f"dataset.relabel.map: {old!r} is not an entity type of {corpus} "
                    f"({have}){_did_you_mean(old, source)}"
                )
        mapped = list(dict.fromkeys(t for t in (self.map.get(s, s) for s in source) if t))
        if self.keep is not None:
            for name in self.keep:
                if name not in mapped:
                    where = f"after dataset.relabel.map: {', '.join(mapped)}" if self.map else have
                    raise ValueError(
                        f"dataset.relabel.keep: {name!r} is not an entity type of {corpus} "
                        f"({where}){_did_you_mean(name, mapped)}"
                    )
            mapped = [t for t in mapped if t in self.keep]
        if not mapped:
            raise ValueError(
                f"dataset.relabel drops every entity type of {corpus} ({have}); keep at least one"
            )
        return mapped

    def label(self, label: str) -> str | None:
        """The new name of type ``label``, or ``None`` where its mentions are dropped."""
        new = self.map.get(label, label)
        if new is None or (self.keep is not None and new not in self.keep):
            return None
        return new

    def apply(self, split: str, docs: Sequence[Document], corpus: str = "") -> list[Document]:
        """``docs`` with their gold mentions relabelled (unchanged documents are returned as
        they are). What changed is recorded in :attr:`counts` under ``split`` (``mentions``
        before, ``renamed`` and ``dropped`` per old type, ``merged``) and logged.
        """
        renamed: Counter[str] = Counter()
        dropped: Counter[str] = Counter()
        merged = mentions = 0
        out: list[Document] = []
        for doc in docs:
            spans: list[Span] = []
            for span in doc.spans:
                new = self.label(span.label)
                if new is None:
                    dropped[span.label] += 1
                elif new == span.label:
                    spans.append(span)
                else:
                    renamed[span.label] += 1
                    spans.append(Span(span.start, span.end, new, span.score, span.id))
            mentions += len(doc.spans)
            if len(spans) == len(doc.spans) and all(a is b for a, b in zip(spans, doc.spans)):
                out.append(doc)
                continue
            # Two mentions of one extent whose types are merged are one mention now (the first
            # is kept, with its normalisation id).
            unique = sorted(dict.fromkeys(spans))
            merged += len(spans) - len(unique)
            out.append(Document(doc.id, doc.text, unique, doc.sentences, doc.words, dict(doc.meta)))
        self.counts[split] = {
            "mentions": mentions,
            "renamed": dict(sorted(renamed.items())),
            "dropped": dict(sorted(dropped.items())),
            "merged": merged,
        }
        if renamed:
            log.info(
                "%s/%s: dataset.relabel renamed %d mentions (%s)",
                corpus,
                split,
                sum(renamed.values()),
                ", ".join(f"{t} -> {self.label(t)}: {n}" for t, n in sorted(renamed.items())),
            )
        if dropped or merged:
            log.warning(
                "%s/%s: dataset.relabel dropped %d of %d gold mentions (%s) and merged %d",
                corpus,
                split,
                sum(dropped.values()),
                mentions,
                ", ".join(f"{t}: {n}" for t, n in sorted(dropped.items())) or "none",
                merged,
            )
        return out


def relabel_override(given: Mapping[str, Any]) -> dict[str, Any]:
    """The ``dataset.relabel`` keys a ``bioner-eval`` config sets without naming a dataset
    (``map``, ``keep``): each replaces the training run's; unset (null) ones stay as trained."""
    return {k: v for k, v in (given.get("relabel") or {}).items() if v is not None}
