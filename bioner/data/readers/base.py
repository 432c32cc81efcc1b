"""What every corpus reader shares: splits, label checks, caching, availability and file decoding.

A reader is built from a dataset config (``conf/dataset/<name>.yaml`` is ``_target_`` plus the
constructor's arguments) and does no I/O until :meth:`CorpusReader.load` or
:meth:`CorpusReader.ensure_available` is called; downloads happen only in the latter, on request.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bioner.data.document import Document, count_types
from bioner.data.download import DownloadError, fetch, is_local_url, offline_reason
from bioner.data.errors import CorpusFormatError
from bioner.data.filters import DocumentFilter
from bioner.data.relabel import Relabel
from bioner.data.splits import RatioSplit
from bioner.data.subsets import TrainSubset
from bioner.errors import ConfigError, UserError

log = logging.getLogger(__name__)

SPLITS = ("train", "devel", "test")


class CorpusNotFoundError(UserError, FileNotFoundError):
    """Corpus files are missing (and were not, or could not be, downloaded).

    Args:
        name: the dataset name.
        data_dir: the folder the reader looks in.
        missing: the missing files or folders.
        downloadable: whether ``bioner-data download <name>`` can fetch them.
        detail: an extra sentence (why a download failed, where a licensed corpus comes from).
    """

    def __init__(
        self,
        name: str,
        data_dir: Path,
        missing: Sequence[Path],
        downloadable: bool,
        detail: str = "",
    ) -> None:
        self.name = name
        self.missing = list(missing)
        shown = ", ".join(str(p) for p in self.missing[:3])
        more = f" and {len(self.missing) - 3} more" if len(self.missing) > 3 else ""
        layout = ", ".join(_relative(p, data_dir.parent) for p in self.missing[:3])
        msg = (
            f"corpus {name!r} not found: missing {shown}{more}. Set BIONER_DATA_DIR (or the "
            f"override paths.data_dir=...) to a folder holding {layout}, or point "
            f"dataset.data_dir=... at the corpus folder itself"
        )
        if downloadable:
            msg += f"; `bioner-data download {name}` fetches the public files"
        if detail:
            msg += f". {detail}"
        super().__init__(msg)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


class CorpusReader(ABC):
    """Reads one corpus into validated :class:`~bioner.data.document.Document` lists per split.

    Args:
        name: dataset name (used in run names and messages).
        data_dir: the corpus folder.
        entity_types: the entity types, or ``None`` to infer them from the training split (then a
            devel/test label that training never had is an error).
        download: public files as ``{url, path, sha256}`` mappings, ``path`` relative to
            ``data_dir``; empty for corpora that cannot be fetched.
        filter: the rules of ``dataset.filter`` (:class:`~bioner.data.filters.DocumentFilter`'s
            arguments); ``None``: keep every document.
        split: the rule of ``dataset.split`` (:class:`~bioner.data.splits.RatioSplit`'s
            arguments), or ``None`` (or ``ratios: null``) for the corpus's own splits.
        train_subset: the rule of ``dataset.train_subset``
            (:class:`~bioner.data.subsets.TrainSubset`'s arguments); ``None``: train on every
            training document.
        relabel: the rule of ``dataset.relabel`` (:class:`~bioner.data.relabel.Relabel`'s
            arguments: ``map`` renames, merges or drops types, ``keep`` lists those to keep);
            ``None``: the corpus's own types.

    Attributes:
        splits: always ``["train", "devel", "test"]``.
        sources: the splits read from the corpus files: :attr:`splits`, or ``split.source``
            when ``dataset.split`` redraws them.
        repairs: per split, the number of fix-ups a lenient option made (tag repairs, dropped
            overlaps, skipped concepts); each is also logged as a warning.
        repair_kinds: the same per split and kind (the warning's words), for ``metrics.json``.
    """

    # True where _read returns documents validated already (MultiCorpusReader: its members'
    # own loads validated them), so that they are not checked a second time.
    reads_validated = False

    def __init__(
        self,
        name: str,
        data_dir: str | Path,
        entity_types: Sequence[str] | None = None,
        download: Sequence[Mapping[str, Any]] | None = None,
        filter: Mapping[str, Any] | None = None,  # the config key dataset.filter
        split: Mapping[str, Any] | None = None,
        train_subset: Mapping[str, Any] | None = None,
        relabel: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.data_dir = Path(data_dir).expanduser()
        self.splits: list[str] = list(SPLITS)
        self._configured = None if entity_types is None else [str(t) for t in entity_types]
        self._inferred: list[str] | None = None
        self.download = [dict(entry) for entry in download or ()]
        self.repairs: dict[str, int] = {}
        self.repair_kinds: dict[str, dict[str, int]] = {}
        self.filter = DocumentFilter(**dict(filter or {}))
        split = dict(split or {})
        self.ratio_split = RatioSplit(**split) if split.get("ratios") is not None else None
        self.train_subset = TrainSubset(**dict(train_subset or {}))
        self.relabel = Relabel(**dict(relabel or {}))
        if self._configured is not None:
            self.relabel.types(self._configured, name)  # a ValueError names the wrong type now
        self.sources: list[str] = (
            list(self.ratio_split.source) if self.ratio_split is not None else list(SPLITS)
        )
        self._source_docs: dict[str, list[Document]] = {}
        self._cache: dict[str, list[Document]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, data_dir={str(self.data_dir)!r})"

    @property
    def source_types(self) -> list[str]:
        """The entity types of the corpus files: configured, or those of the training split
        (sorted) when inferred."""
        if self._configured is not None:
            return list(self._configured)
        if self._inferred is None:
            # The training file as read (before dataset.split and dataset.filter).
            self._inferred = sorted(count_types(self._read_source("train")))
        return list(self._inferred)

    @property
    def entity_types(self) -> list[str]:
        """The entity types of the documents :meth:`load` returns, those a model learns:
        :attr:`source_types` after ``dataset.relabel``."""
        if not self.relabel.active:
            return self.source_types
        try:
            return self.relabel.types(self.source_types, self.name)
        except ValueError as err:  # types inferred from the training file, only known now
            raise ConfigError(str(err)) from None

    def load(self, split: str) -> list[Document]:
        """Validated documents of ``split`` (read once, then cached).

        With ``dataset.split``, the documents of :attr:`sources` are pooled and dealt into the
        splits (:class:`~bioner.data.splits.RatioSplit`); ``dataset.relabel`` renames, merges or
        drops their types (:class:`~bioner.data.relabel.Relabel`); then ``dataset.filter`` drops
        those that break its rules (:class:`~bioner.data.filters.DocumentFilter`, counted per
        split in ``filter.removed``); last, ``dataset.train_subset`` keeps a seeded fraction of the
        training documents (:class:`~bioner.data.subsets.TrainSubset`).

        Raises:
            CorpusNotFoundError: files are missing.
            CorpusFormatError: a file cannot be read as it stands.
        """
        if split not in self.splits:
            raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(self.splits)}")
        if split not in self._cache:
            if self.ratio_split is None:
                docs = self._read_source(split)
            else:
                pooled = {s: self._read_source(s) for s in self.sources}
                docs = self.ratio_split.apply(pooled, self.name)[split]
            if self.relabel.active:
                docs = self.relabel.apply(split, docs, self.name)
            docs = self.filter.apply(split, docs, self.name)
            if split == "train":
                docs = self.train_subset.apply(docs, self.name)
            self._cache[split] = docs
        return list(self._cache[split])

    def annotation_groups(self) -> list[tuple[str, ...]]:
        """Type sets of documents that annotate only some of :attr:`entity_types` (their
        ``meta[ANNOTATED_TYPES]``), which the loss treats as partially annotated: none here,
        every document annotates every type (see :class:`~bioner.data.readers.MultiCorpusReader`).
        """
        return []

    def train_subsets(self) -> dict[str, TrainSubset]:
        """The active ``dataset.train_subset`` rules by config key (empty when none cuts)."""
        return {"dataset.train_subset": self.train_subset} if self.train_subset.active else {}

    def preparation(self) -> dict[str, Any]:
        """What ``dataset.split``, ``dataset.relabel``, ``dataset.filter`` and
        ``dataset.train_subset`` did to the splits loaded so far, and the fix-ups a lenient reader
        option made (``repairs``, per split and kind), for ``metrics.json`` and
        ``bioner-data stats`` (empty when there are none)."""
        report: dict[str, Any] = {}
        if self.ratio_split is not None and self.ratio_split.summary:
            report["split"] = dict(self.ratio_split.summary)
        if self.relabel.counts:
            report["relabel"] = {s: dict(v) for s, v in self.relabel.counts.items()}
        if self.filter.active:
            report["filter"] = {s: dict(v) for s, v in self.filter.removed.items()}
        if self.train_subset.summary:
            report["train_subset"] = dict(self.train_subset.summary)
        if self.repair_kinds:
            report["repairs"] = {split: dict(kinds) for split, kinds in self.repair_kinds.items()}
        return report

    def _read_source(self, split: str) -> list[Document]:
        """Validated documents of the corpus file(s) of ``split``, as they are (read once)."""
        if split not in self._source_docs:
            if split not in self.sources:
                raise ValueError(
                    f"{self.name}: dataset.split.source={self.sources} does not read {split!r}"
                )
            self.ensure_available(splits=[split])
            docs = self._read(split, self._allowed(split))
            if not self.reads_validated:
                for doc in docs:
                    doc.validate()
            self._source_docs[split] = docs
        return self._source_docs[split]

    def evaluation_document(self, doc: Document) -> Document:
        """``doc`` as evaluation input: words and sentences that owe nothing to its gold spans.

        The default returns ``doc``: its words are the corpus's own tokens (IOB files), input as
        given. Readers that split words or place sentences by the gold spans (PubTator) segment
        the text afresh here, so that gold spans cannot shape what the model sees at test time.
        """
        return doc

    def ensure_available(self, download: bool = False, splits: Sequence[str] | None = None) -> None:
        """Check that the files of ``splits`` (all by default) are present; fetch public files
        first when ``download``, unless the machine is offline (:func:`offline_reason`).

        Raises:
            CorpusNotFoundError: files are missing and cannot be fetched (the message says how to
                point the data directory at a local copy).
            bioner.data.download.ChecksumError: a fetched file has the wrong sha256.
        """

        if splits is not None and self.ratio_split is not None:
            splits = self.sources  # any split of a ratio split is dealt from all its sources

        def missing_files() -> list[Path]:
            wanted = (
                self.required_files()
                if splits is None
                else list(dict.fromkeys(p for s in splits for p in self.split_files(s)))
            )
            return [p for p in wanted if not p.exists()]

        missing = missing_files()
        if not missing:
            return
        detail = self.missing_hint()
        offline = offline_reason() if download and self.download else None
        if offline and any(not is_local_url(e["url"]) for e in self.download):
            detail = f"Not downloaded: offline ({offline})"
        elif download and self.download:
            try:
                fetch(self.download, self.data_dir)
            except DownloadError as err:
                raise CorpusNotFoundError(
                    self.name, self.data_dir, missing, True, f"Download failed: {err}"
                ) from err
            missing = missing_files()
            if not missing:
                return
            detail = "The download did not provide them; check the dataset's download entries"
        raise CorpusNotFoundError(self.name, self.data_dir, missing, bool(self.download), detail)

    def missing_hint(self) -> str:
        """An extra sentence for the not-found message (e.g. where a licensed corpus comes from)."""
        return ""

    def _allowed(self, split: str) -> set[str] | None:
        """Labels ``split`` may use: configured types, else train's types (anything for train)."""
        if self._configured is not None:
            return set(self._configured)
        if split == "train":
            return None
        return set(self.source_types)

    def _label_error(self, path: Path, line: int | None, label: str) -> CorpusFormatError:
        """The error for a label outside :meth:`_allowed`."""
        if self._configured is not None:
            what = f"is not one of the configured entity types {self._configured}"
            fix = "add it to dataset.entity_types, or correct the label"
        else:
            what = (
                "does not occur in the training split, from which the entity types were inferred "
                f"({self.source_types})"
            )
            fix = "correct the label, or list every type in dataset.entity_types"
        return CorpusFormatError(path, line, f"label {label!r} {what}", fix)

    def _count_repairs(self, split: str, n: int, what: str) -> None:
        """Record ``n`` fix-ups in ``split`` and say so (never silent)."""
        if n:
            self.repairs[split] = self.repairs.get(split, 0) + n
            kinds = self.repair_kinds.setdefault(split, {})
            kinds[what] = kinds.get(what, 0) + n
            log.warning("%s/%s: %d %s", self.name, split, n, what)

    @abstractmethod
    def required_files(self) -> list[Path]:
        """Every file or folder that must exist before any split can be read."""

    def split_files(self, split: str) -> list[Path]:
        """The files or folders that reading ``split`` needs (default: all of them).

        Readers override it so that scoring the test split does not demand the training file.
        """
        return self.required_files()

    @abstractmethod
    def _read(self, split: str, allowed: set[str] | None) -> list[Document]:
        """Parse ``split``; labels outside ``allowed`` (when not ``None``) are format errors."""


def check_options(options: dict[str, tuple[str, Sequence[str]]]) -> None:
    """Raise ``ValueError`` for the first ``{key: (value, choices)}`` whose value is not a
    choice."""
    for key, (value, choices) in options.items():
        if value not in choices:
            raise ValueError(f"{key} must be one of {', '.join(choices)}, not {value!r}")


def read_text(path: Path, errors: str = "strict", allow_empty: bool = False) -> str:
    """The decoded content of a UTF-8 (optionally BOM-prefixed, optionally gzipped) file.

    Args:
        path: the file.
        errors: ``strict`` (a byte that is not UTF-8 is an error) or ``surrogateescape``: such
            bytes become lone surrogates, and ``dataset.filter.undecodable=drop`` drops the
            documents holding them.
        allow_empty: return an empty (or all-whitespace) content instead of refusing it, for
            files where that means "nothing here" (a brat ``.ann`` or i2b2 ``.con`` without
            annotations, an empty brat document).

    Raises:
        CorpusFormatError: the file is empty (unless ``allow_empty``), is not valid UTF-8 or is a
            broken gzip file.
    """
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise CorpusFormatError(
                path, None, f"not a readable gzip file ({err})", "download or compress it again"
            ) from err
    try:
        text = data.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise CorpusFormatError(
            path,
            line,
            f"not valid UTF-8 ({err.reason})",
            "re-save the file as UTF-8, or drop the documents holding such bytes with "
            "dataset.filter.undecodable=drop",
        ) from err
    if not allow_empty and not text.strip():
        raise CorpusFormatError(
            path, None, "the file is empty", "restore it from the corpus release"
        )
    return text


def gzip_twin(path: Path) -> Path:
    """``path``, or its gzipped (``.gz``) or plain twin when only that one exists."""
    twin = path.with_suffix("") if path.suffix == ".gz" else path.with_name(path.name + ".gz")
    return twin if not path.exists() and twin.exists() else path


def split_lines(text: str) -> list[str]:
    """Physical lines of ``text`` without their LF or CRLF ending.

    ``str.splitlines`` is not used on purpose: it also breaks at form feeds, U+2028 and other
    characters that may occur inside a token and would shift every line number after them.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


_WHITESPACE = re.compile(r"\s")


def has_whitespace(s: str) -> bool:
    """Whether ``s`` contains any whitespace character."""
    return _WHITESPACE.search(s) is not None
