"""``dataset.filter``: drop documents that do not fit the task, and count what was dropped.

The rules run on the documents of each split after reading (and after ``dataset.split``), before
anything is tokenised, so every consumer of a reader (training, ``bioner-eval``,
``bioner-data stats`` and ``check``) sees the same documents. A document is removed for the first
rule it breaks, in this order:

* ``undecodable``: its text holds bytes that are not UTF-8 (read with
  ``dataset.filter.undecodable=drop``; the default ``error`` stops at the first such byte, naming
  file and line) or U+FFFD, the mark that an earlier tool could not decode it either;
* ``min_chars`` / ``max_chars``: its text is shorter / longer than this many characters;
* ``min_words`` / ``max_words``: the same in words (the reader's words);
* ``no_entities``: a *training* document without any gold mention (``drop_empty_train``);
  devel and test keep theirs, since a tagger must also stay silent where nothing is annotated.

Length rules apply to every split: scores on a filtered devel or test split are not those of the
published corpus, which is why each split's removals are logged and reported in ``metrics.json``
(``dataset_filter``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bioner.data.document import Document

# Plain logging, as the readers that call this: the corpus layer (which `bioner.evaluation`
# imports) stays free of torch and Lightning.
log = logging.getLogger(__name__)

UNDECODABLE = ("error", "drop")
# Lone surrogates are what Python's "surrogateescape" makes of bytes that are not UTF-8; U+FFFD is
# what other tools make of them.
_UNDECODABLE_CHARS = re.compile("[\udc80-\udcff\ufffd]")


@dataclass
class DocumentFilter:
    """The rules of ``dataset.filter`` (every rule off by default).

    Args:
        min_chars: drop documents with fewer characters; ``None``: no minimum.
        max_chars: drop documents with more characters; ``None``: no maximum.
        min_words: drop documents with fewer words; ``None``: no minimum.
        max_words: drop documents with more words; ``None``: no maximum.
        drop_empty_train: drop training documents that have no gold mention.
        undecodable: ``error`` (stop at a byte that is not UTF-8, naming file and line) or
            ``drop`` (read such bytes as lone surrogates and drop the documents holding them, or
            U+FFFD).
    """

    min_chars: int | None = None
    max_chars: int | None = None
    min_words: int | None = None
    max_words: int | None = None
    drop_empty_train: bool = False
    undecodable: str = "error"
    removed: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.undecodable not in UNDECODABLE:
            raise ValueError(
                f"dataset.filter.undecodable must be one of {', '.join(UNDECODABLE)}, not "
                f"{self.undecodable!r}"
            )
        for name in ("min_chars", "max_chars", "min_words", "max_words"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(
                    f"dataset.filter.{name} must be a non-negative integer or null, not {value!r}"
                )
        for what in ("chars", "words"):
            lo, hi = getattr(self, f"min_{what}"), getattr(self, f"max_{what}")
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(
                    f"dataset.filter.min_{what}={lo} exceeds max_{what}={hi}: every document "
                    "would be dropped"
                )

    @property
    def decode_errors(self) -> str:
        """The ``errors`` argument with which readers decode corpus files."""
        return "surrogateescape" if self.undecodable == "drop" else "strict"

    @property
    def active(self) -> bool:
        """Whether any rule can remove a document."""
        limits = (self.min_chars, self.max_chars, self.min_words, self.max_words)
        return (
            self.drop_empty_train
            or self.undecodable == "drop"
            or any(v is not None for v in limits)
        )

    def reason(self, doc: Document, split: str) -> str | None:
        """The first rule ``doc`` breaks in ``split``, or ``None`` to keep it."""
        if self.undecodable == "drop" and _UNDECODABLE_CHARS.search(doc.text):
            return "undecodable"
        checks = (
            ("min_chars", len(doc.text), self.min_chars, False),
            ("max_chars", len(doc.text), self.max_chars, True),
            ("min_words", len(doc.words), self.min_words, False),
            ("max_words", len(doc.words), self.max_words, True),
        )
        for name, size, limit, is_max in checks:
            if limit is not None and (size > limit if is_max else size < limit):
                return name
        if self.drop_empty_train and split == "train" and not doc.spans:
            return "no_entities"
        return None

    def apply(self, split: str, docs: Sequence[Document], corpus: str = "") -> list[Document]:
        """The documents of ``split`` that every rule keeps, in their order.

        What was removed is recorded in :attr:`removed` (``documents`` before, ``kept``,
        ``removed`` per rule, ``mentions_removed``) and logged.

        Raises:
            ValueError: the rules remove every document of ``split``.
        """
        reasons: Counter[str] = Counter()
        kept: list[Document] = []
        mentions = 0
        for doc in docs:
            why = self.reason(doc, split)
            if why is None:
                kept.append(doc)
            else:
                reasons[why] += 1
                mentions += len(doc.spans)
        if docs and not kept:
            raise ValueError(
                f"{corpus}/{split}: dataset.filter removes all {len(docs)} documents "
                f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}); loosen its rules"
            )
        self.removed[split] = {
            "documents": len(docs),
            "kept": len(kept),
            "removed": dict(sorted(reasons.items())),
            "mentions_removed": mentions,
        }
        if reasons:
            log.warning(
                "%s/%s: dataset.filter removed %d of %d documents (%s), with %d gold mentions",
                corpus,
                split,
                len(docs) - len(kept),
                len(docs),
                ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items())),
                mentions,
            )
        return kept
