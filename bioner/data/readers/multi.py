"""Several corpora read as one (``dataset=multi``): one model for the types of all of them.

BioNER corpora annotate few types each (BC5CDR chemicals and diseases, NCBI-disease diseases,
BC2GM genes), and a tagger for all of them is trained on their union (Crichton et al. 2017;
Greenberg et al. 2018; HunFlair). Each member corpus is configured as on its own, with its
``dataset.filter``, ``dataset.split`` and ``dataset.train_subset``; its documents get ids prefixed
by the member's key (``ncbi/train-12``) and two :class:`~bioner.data.document.Document` meta
entries: the member's key (:data:`~bioner.data.document.CORPUS`) and the types it annotates
(:data:`~bioner.data.document.ANNOTATED_TYPES`).

The types a member does not annotate are *unknown* in its documents, not absent: a chemical in an
NCBI-disease abstract is tagged ``O`` there because nobody looked for chemicals. So:

* **Scoring** (every split, always): a document's predictions of types its corpus does not
  annotate are not scored (:func:`~bioner.data.document.judged`); the devel and test scores are
  over the union of the members' documents, and ``metrics.json`` adds each member's own.
* **Training** (``partial_annotation=true``, the default): where such a document says ``O``, the
  loss accepts ``O`` or any tag of the types its corpus does not annotate (it marginalises over
  them, as Greenberg et al. 2018 do for a CRF), so no corpus teaches that another's types are
  ``O``. The datamodule marks these documents (:meth:`MultiCorpusReader.annotation_groups`) and
  every head's loss reads the mark (:mod:`bioner.models.partial`). ``false`` reads every ``O``
  as ``O`` (the naive union, for comparison).
* **Sampling** (``sampling_temperature``): corpora of very different sizes (a small corpus of
  one's own beside a large public one) are seen in proportion to their sizes at ``1``, the
  default. A temperature ``T > 1`` repeats the smaller corpora's training sequences in every
  epoch, so that corpus ``k``'s share approaches ``n_k ** (1 / T)`` (the temperature sampling of
  multilingual training, Arivazhagan et al. 2019), relative to the largest, which is seen once:
  see :func:`corpus_repeats`.
* **Training only** (``train_only``): members whose training documents are trained on and whose
  devel and test splits are neither read nor scored. For corpora that are not a gold standard:
  another model's predictions on unannotated text (self-training: ``bioner-predict
  format=pubtator|conll`` writes them), a silver-standard corpus, distant supervision. Devel and
  test are the other members'.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import ANNOTATED_TYPES, CORPUS, Document
from bioner.data.readers.base import CorpusReader
from bioner.data.subsets import TrainSubset
from bioner.errors import ConfigError, UserError


def member_setting(key: str, setting: str) -> str:
    """A member corpus's setting as it is named here: member ``key``'s
    ``dataset.on_invalid`` is ``dataset.corpora.<key>.on_invalid``."""
    return f"dataset.corpora.{key}.{setting.removeprefix('dataset.')}"


@contextlib.contextmanager
def member_settings(key: str) -> Iterator[None]:
    """Re-raise a member corpus's user error with its settings named as they are here
    (:func:`member_setting`): a member's message says ``dataset.on_invalid=repair``, which is
    ``dataset.corpora.<key>.on_invalid=repair``."""
    try:
        yield
    except UserError as err:
        if err.args and isinstance(err.args[0], str):
            message = re.sub(
                r"\bdataset\.(?!corpora\.)", lambda m: member_setting(key, m.group()), err.args[0]
            )
            err.args = (message, *err.args[1:])
        raise


class MultiCorpusReader(CorpusReader):
    """The union of several corpora, each read by its own reader.

    Args:
        corpora: member key -> its reader (each a ``conf/dataset`` config, composed with
            ``+dataset@dataset.corpora.<key>=<dataset>``). At least two.
        name: the dataset name in run names and messages.
        partial_annotation: train on each document's ``O`` as "none of its corpus's types" (the
            loss marginalises over the others' tags); ``False``: as ``O`` for every type.
        sampling_temperature: ``1``: each corpus's training sequences once per epoch; ``T > 1``
            (``inf`` included): smaller corpora repeated towards shares ``n ** (1 / T)`` of an
            epoch (:func:`corpus_repeats`).
        train_only: keys of members that are trained on only: their devel and test splits are
            not read (their files need not exist) and nothing of theirs is scored.
    """

    reads_validated = True

    def __init__(
        self,
        corpora: Mapping[str, CorpusReader],
        name: str = "multi",
        partial_annotation: bool = True,
        sampling_temperature: float = 1.0,
        train_only: Sequence[str] | None = None,
    ) -> None:
        members = dict(corpora or {})
        if len(members) < 2:
            have = ", ".join(members) or "none"
            raise ConfigError(
                f"dataset=multi reads at least two corpora, not {len(members)} ({have}); add each "
                "with +dataset@dataset.corpora.<key>=<dataset>, e.g. "
                "+dataset@dataset.corpora.bc5cdr=bc5cdr +dataset@dataset.corpora.ncbi=ncbi_disease"
            )
        for key, reader in members.items():
            if not isinstance(reader, CorpusReader):
                raise ConfigError(
                    f"dataset.corpora.{key} is a {type(reader).__name__}, not a corpus reader: "
                    f"compose it from a dataset config (+dataset@dataset.corpora.{key}=<dataset>)"
                )
            if "/" in key:
                raise ConfigError(f"dataset.corpora.{key}: a member key cannot hold '/'")
        if not isinstance(partial_annotation, bool):
            raise ConfigError(
                f"dataset.partial_annotation must be true or false, not {partial_annotation!r}"
            )
        temperature = sampling_temperature
        if isinstance(temperature, bool) or not (
            isinstance(temperature, int | float) and temperature >= 1
        ):
            raise ConfigError(
                f"dataset.sampling_temperature must be a number of at least 1, not "
                f"{temperature!r}: 1 sees each corpus in proportion to its size, larger values "
                "repeat the smaller corpora (2: the square roots of their sizes; inf makes "
                "them equal)"
            )
        self.train_only = self._check_train_only(members, train_only)
        self.members = members
        self.partial_annotation = partial_annotation
        self.sampling_temperature = float(temperature)
        roots = [os.path.abspath(r.data_dir) for r in members.values()]
        super().__init__(name, Path(os.path.commonpath(roots)))

    @staticmethod
    def _check_train_only(
        members: Mapping[str, CorpusReader], train_only: Sequence[str] | None
    ) -> tuple[str, ...]:
        if isinstance(train_only, str):
            train_only = [train_only]
        keys = tuple(dict.fromkeys(str(k) for k in train_only or ()))
        unknown = [k for k in keys if k not in members]
        if unknown:
            raise ConfigError(
                f"dataset.train_only={list(keys)}: {', '.join(unknown)} is not a member corpus "
                f"(the members: {', '.join(members)}); list keys of dataset.corpora"
            )
        if len(keys) == len(members):
            raise ConfigError(
                f"dataset.train_only={list(keys)} names every member corpus, so nothing would be "
                "scored; leave out at least one, whose devel and test splits choose the "
                "checkpoint and give the scores"
            )
        for key in keys:
            if members[key].ratio_split is not None:
                raise ConfigError(
                    f"{member_setting(key, 'dataset.split')} deals its documents into train, "
                    f"devel and test, but dataset.train_only lists {key}, whose devel and test "
                    f"are not read: its dealt devel and test documents would be lost. Set "
                    f"{member_setting(key, 'dataset.split')}=none to train on its training file"
                )
        return keys

    def scored_members(self) -> list[str]:
        """The keys of the members whose devel and test splits are read and scored."""
        return [key for key in self.members if key not in self.train_only]

    def member_splits(self, key: str, splits: Sequence[str] | None = None) -> list[str] | None:
        """Of ``splits``, those that member ``key`` reads (``None`` for all of them: all)."""
        if key not in self.train_only:
            return None if splits is None else list(splits)
        return [s for s in (self.splits if splits is None else splits) if s == "train"]

    def __repr__(self) -> str:
        return f"MultiCorpusReader(name={self.name!r}, corpora={list(self.members)})"

    @property
    def entity_types(self) -> list[str]:
        """The members' types, in their order (read when first asked: a member may infer its
        own from its training file)."""
        return list(dict.fromkeys(t for types in self.member_types().values() for t in types))

    def member_types(self) -> dict[str, tuple[str, ...]]:
        """Each member's key -> the entity types it annotates (after its ``relabel``)."""
        types = {}
        for key, reader in self.members.items():
            with member_settings(key):  # an inferred type that its relabel rule misnames
                types[key] = tuple(reader.entity_types)
        return types

    def annotation_groups(self) -> list[tuple[str, ...]]:
        """The type sets of members that annotate only some of :attr:`entity_types`, whose
        documents the loss treats as partially annotated; empty with
        ``partial_annotation=false``."""
        if not self.partial_annotation:
            return []
        union = set(self.entity_types)
        groups = [t for t in self.member_types().values() if set(t) != union]
        return list(dict.fromkeys(groups))

    def train_repeats(self, sizes: Mapping[str, int]) -> dict[str, int]:
        """How often each member's training sequences appear in an epoch, from their numbers
        (``sizes``) and :attr:`sampling_temperature` (:func:`corpus_repeats`)."""
        return corpus_repeats(sizes, self.sampling_temperature)

    def train_subsets(self) -> dict[str, TrainSubset]:
        return {
            member_setting(key, k): rule
            for key, r in self.members.items()
            for k, rule in r.train_subsets().items()
        }

    @staticmethod
    def _tag(doc: Document, key: str, types: tuple[str, ...], id: str | None = None) -> Document:
        """``doc`` as a document of member ``key`` annotating ``types``: id prefixed, corpus and
        types in meta."""
        meta = {**doc.meta, CORPUS: key, ANNOTATED_TYPES: types}
        # The constructor, not dataclasses.replace: several times faster, per document.
        new_id = id or f"{key}/{doc.id}"
        return Document(new_id, doc.text, doc.spans, doc.sentences, doc.words, meta)

    def _allowed(self, split: str) -> set[str] | None:
        # Each member checks its own labels as it reads; the union's would read every member's
        # training file to score a test split.
        return None

    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        # Each member applies its own split, filter and subset; they validated their documents.
        docs = []
        for key, types in self.member_types().items():
            if not self.member_splits(key, [split]):
                continue
            with member_settings(key):
                docs += [self._tag(doc, key, types) for doc in self.members[key].load(split)]
        return docs

    def evaluation_document(self, doc: Document) -> Document:
        key = doc.meta.get(CORPUS)
        if key not in self.members:
            return doc
        view = self.members[key].evaluation_document(doc)
        return self._tag(view, key, doc.meta[ANNOTATED_TYPES], id=doc.id)

    def ensure_available(self, download: bool = False, splits: Sequence[str] | None = None) -> None:
        for key, reader in self.members.items():
            wanted = self.member_splits(key, splits)
            if wanted == []:
                continue
            with member_settings(key):
                reader.ensure_available(download=download, splits=wanted)

    def required_files(self) -> list[Path]:
        return [
            p
            for key, r in self.members.items()
            for p in (r.split_files("train") if key in self.train_only else r.required_files())
        ]

    def split_files(self, split: str) -> list[Path]:
        return [
            p
            for key, r in self.members.items()
            if self.member_splits(key, [split])
            for p in r.split_files(split)
        ]

    def preparation(self) -> dict[str, Any]:
        """Each member's :meth:`~CorpusReader.preparation`, under ``corpora`` (empty when none
        has anything to say)."""
        members = {key: r.preparation() for key, r in self.members.items()}
        members = {key: p for key, p in members.items() if p}
        return {"corpora": members} if members else {}


def corpus_repeats(sizes: Mapping[str, int], temperature: float) -> dict[str, int]:
    """Each corpus's number of copies per epoch under temperature ``temperature``.

    Temperature sampling draws corpus ``k`` with probability proportional to ``n_k ** (1 / T)``
    (``n_k``: its training sequences). Here no sequence is left out: the largest corpus is seen
    once per epoch and corpus ``k`` ``round((n_max / n_k) ** (1 - 1 / T))`` times (at least
    once), so the shares approach those probabilities. ``T = 1`` repeats nothing; ``T = inf``
    makes every corpus about as large as the largest.

    >>> corpus_repeats({"small": 456, "large": 5432}, 2.0)
    {'small': 3, 'large': 1}
    """
    largest = max(sizes.values(), default=0)
    exponent = 1 - 1 / temperature
    return {
        key: max(1, math.floor((largest / n) ** exponent + 0.5)) if n else 1
        for key, n in sizes.items()
    }
