"""Finished run folders: finding them, reading them, and the gold behind their predictions.

A run folder is what ``bioner-train`` or ``bioner-eval`` leaves behind: ``config.yaml`` (the
resolved config), ``metrics.json`` and ``predictions/<split>.jsonl`` (text-free ``.jsonl.gz`` in
a run kept by :func:`archive_run`). A multirun folder holds run folders at any depth; a run is
found by its ``metrics.json``, which is written last, so a run still in progress (a
``config.yaml`` without ``metrics.json``) is reported as unfinished, never read.

Gold spans for the paired test come from the corpus itself, re-read through the run's own
``dataset`` config and looked up by document id (the predictions file names the documents that
were scored, so ``data.limit_documents`` and cross-validation folds need no re-computing). When
the corpus cannot be found, the ``gold`` spans that ``write_jsonl`` stores next to the predictions
stand in, with a warning; when both exist they must agree.

:func:`archive_run` keeps what a report reads of a run and nothing of the corpus (the predictions
text-free, checked against the corpus by SHA-256 when read back), so that the runs behind a table
can be kept, committed or shared without their checkpoints or the corpus text.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bioner.data.document import CORPUS, Document, Span, judged
from bioner.data.readers.base import SPLITS, CorpusNotFoundError
from bioner.data.relabel import relabel_override
from bioner.errors import UserError
from bioner.inference.formats import (
    TEXT_FREE_SUFFIX,
    predictions_file,
    read_jsonl,
    record_document,
    text_matches_hash,
    write_text_free_jsonl,
)

log = logging.getLogger(__name__)

# Hydra's job log line: "[2026-11-25 16:01:24,643][module][INFO] - message".
_LOG_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


class ReportError(UserError, ValueError):
    """Input that a report cannot be built from; the message names the folder and the fix."""


#: Config groups whose options are named steps (``preprocess=[shorthand,spelling]``,
#: ``postprocess=[abbreviations,threshold]``): a run's ``flat[group]`` names its steps in order
#: (``shorthand+spelling``, ``none`` for no step), so that reports show and select them as one
#: value (``--baseline postprocess=none``); the steps' own parameters stay keys of their own
#: (``preprocess.spelling.min_length``).
STEP_GROUPS = ("preprocess", "postprocess")

#: The file of a ``bioner-eval`` run folder that holds the training config stored in the
#: checkpoint it scored (an ensemble's: its first member's), so that a report reads the run's
#: model, attack and seed without the checkpoint (an archived run, a deleted training run).
CHECKPOINT_CONFIG = "checkpoint_config.yaml"


@dataclass
class Run:
    """One finished run folder.

    Attributes:
        path: the run folder.
        config: the resolved config (``config.yaml``) as nested plain containers.
        metrics: the content of ``metrics.json``.
    """

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    flat: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.flat = flatten(self.config)
        for group in STEP_GROUPS:
            steps = self.config.get(group)
            if isinstance(steps, Mapping):
                # One key names the steps in order: preprocess=shorthand+spelling, or none.
                self.flat[group] = "+".join(steps) if steps else "none"
        # One key names the vote: "majority of 3", "2 of 3", or none for one model.
        vote = self.config.get("ensemble")
        for key in [k for k in self.flat if k.startswith("ensemble.")]:
            del self.flat[key]
        self.flat["ensemble"] = (
            f"{vote.get('min_votes')} of {vote.get('members')}"
            if isinstance(vote, Mapping)
            else "none"
        )

    @property
    def seed(self) -> Any:
        return self.config.get("seed")

    @property
    def fold(self) -> Any:
        return (self.config.get("cv") or {}).get("fold")

    @property
    def folds(self) -> Any:
        return (self.config.get("cv") or {}).get("folds")

    @property
    def models(self) -> list[tuple[Any, Any]]:
        """The ``(seed, fold)`` of each model behind the run's predictions: the run's own, or
        each member's for an ensemble (``metrics.json["ensemble"]``). A paired test pairs two
        runs that share one (:func:`~bioner.reporting.aggregate.paired_test`)."""
        vote = self.metrics.get("ensemble") or {}
        seeds = vote.get("member_seeds")
        if seeds is None:
            return [(self.seed, self.fold)]
        return list(zip(seeds, vote.get("member_folds") or [None] * len(seeds)))

    def section(self, split: str, corpus: str | None = None) -> dict[str, Any]:
        """The ``metrics.json`` section of ``split`` (``metrics``, ``per_type``, ``ci95`` ...);
        with ``corpus``, that member corpus's own section where the run read several
        (``dataset=multi``: ``corpora.<corpus>``), the whole split where it read one."""
        if split not in self.metrics:
            present = [s for s in SPLITS if s in self.metrics] or ["none"]
            raise ReportError(
                f"{self.path / 'metrics.json'} has no {split!r} section (it has: "
                f"{', '.join(present)}); choose another split with --split, or leave this run out"
            )
        section = self.metrics[split]
        members = section.get("corpora") or {}
        if corpus is None or not members:
            return section
        if corpus not in members:
            raise ReportError(
                f"{self.path / 'metrics.json'}: no corpus {corpus!r} among the run's corpora "
                f"({', '.join(members)}); choose one with --corpus"
            )
        return members[corpus]

    def train_sequences_per_s(self) -> float | None:
        """The run's training speed: the mean of its per-epoch rates
        (``metrics.json["train_sequences_per_s"]``, validation excluded; a resumed run keeps
        the rates of its earlier attempts), or ``None`` when it recorded none."""
        rates = self.metrics.get("train_sequences_per_s") or []
        return float(sum(rates) / len(rates)) if rates else None

    def wall_time_s(self) -> float | None:
        """Wall time of the run in seconds, or ``None`` when nothing records it.

        ``metrics.json["wall_time_s"]`` when the run wrote one; otherwise the span between the
        first and the last timestamp of Hydra's job logs in the folder (``train.log``,
        ``eval.log``: from the run folder's creation to its final "Run folder" line; a resumed
        run in the same folder includes the pause).
        """
        if "wall_time_s" in self.metrics:
            return float(self.metrics["wall_time_s"])
        stamps = sorted(
            datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
            for logfile in self.path.glob("*.log")
            for line in logfile.read_text(encoding="utf-8", errors="replace").splitlines()
            if (m := _LOG_TIME.match(line))
        )
        return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are values. An empty mapping stays a key."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


#: The files of a run folder that :func:`archive_run` copies as they are (the job logs date a
#: run whose ``metrics.json`` records no wall time).
ARCHIVED_FILES = (
    "config.yaml",
    CHECKPOINT_CONFIG,
    "metrics.json",
    "runner.json",
    "train.log",
    "eval.log",
)


def archive_run(folder: str | Path, dest: str | Path, splits: Sequence[str] = ("test",)) -> Path:
    """Copy what a report reads of the finished run ``folder`` to ``dest``: ``config.yaml``,
    ``metrics.json`` (and ``runner.json`` and the job logs when there are) and
    the predictions of each of ``splits``, text-free and gzipped as
    ``predictions/<split>.jsonl.gz`` (:func:`bioner.inference.formats.write_text_free_jsonl`).
    ``dest`` then reads as a run folder (:func:`load_run`), whose paired test needs the corpus.

    Raises:
        ReportError: ``folder`` is not a finished run, or lacks the predictions of a split.
    """
    folder, dest = Path(folder), Path(dest)
    if not (folder / "metrics.json").is_file():
        raise ReportError(f"{folder} has no metrics.json: not a finished run (or not a run)")
    load_run(folder)  # a finished, readable run, or a ReportError naming what is missing
    missing = [s for s in splits if not predictions_file(folder, s).is_file()]
    if missing:
        raise ReportError(
            f"{folder} has no predictions on {', '.join(missing)}; archive the splits it scored"
        )
    dest.mkdir(parents=True, exist_ok=True)
    for name in ARCHIVED_FILES:
        if (folder / name).is_file():
            (dest / name).write_bytes((folder / name).read_bytes())
    for split in splits:
        source = predictions_file(folder, split)
        write_text_free_jsonl(source, dest / "predictions" / f"{split}{TEXT_FREE_SUFFIX}")
    return dest


def load_run(folder: str | Path) -> Run:
    """Read one run folder.

    Raises:
        ReportError: ``metrics.json`` or ``config.yaml`` is missing or unreadable.
    """
    folder = Path(folder)
    metrics_file, config_file = folder / "metrics.json", folder / "config.yaml"
    if not config_file.is_file():
        raise ReportError(
            f"{folder} has metrics.json but no config.yaml: a report groups runs by their "
            "resolved config, which bioner-train and bioner-eval write there"
        )
    try:
        metrics = json.loads(metrics_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ReportError(f"{metrics_file}: not valid JSON ({err}); re-run or remove it") from err
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ReportError(f"{config_file}: not valid YAML ({err})") from err
    if not isinstance(metrics, dict) or not isinstance(config, dict):
        raise ReportError(f"{folder}: metrics.json and config.yaml must each hold a mapping")
    if "model" not in config and config.get("ckpt_path"):
        config = _evaluated_config(folder, config, metrics)
    return Run(folder, config, metrics)


def _kept_config(kept: Path) -> dict[str, Any]:
    """The training config that ``bioner-eval`` kept in its run folder
    (:data:`CHECKPOINT_CONFIG`)."""
    try:
        trained = yaml.safe_load(kept.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ReportError(f"{kept}: not valid YAML ({err})") from err
    if not isinstance(trained, dict):
        raise ReportError(f"{kept} must hold a mapping (a training config)")
    return trained


def _checkpoint_config(folder: Path, ckpt_path: Any) -> dict[str, Any]:
    """The training config stored in the checkpoint that the ``bioner-eval`` run ``folder``
    scored, for a run written before bioner-eval kept it (:data:`CHECKPOINT_CONFIG`)."""
    from omegaconf import OmegaConf

    # Only older bioner-eval runs need it, and it loads torch.
    from bioner.runtime.checkpoints import resolve_checkpoint, training_config

    try:
        trained = OmegaConf.to_container(training_config(resolve_checkpoint(ckpt_path)))
    except (FileNotFoundError, ValueError) as err:
        raise ReportError(
            f"{folder} is a bioner-eval run without {CHECKPOINT_CONFIG}; its model, attack and "
            f"seed are read from the checkpoint it scored, which failed: {err}. Score the "
            "checkpoint again with this bioner-eval, which keeps them in the run folder"
        ) from err
    assert isinstance(trained, dict)
    return trained


def _evaluated_config(
    folder: Path, config: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Any]:
    """The effective config of a ``bioner-eval`` run: the training config of the checkpoint it
    scored (model, alignment, attack, seed ...; :func:`_checkpoint_config`), with the dataset
    (or its relabel rule), robustness settings, post-processing and decode rule that the
    evaluation chose. An ensemble (``ckpt_path=[...]``) reads its first member's, with
    ``ensemble`` (members, min_votes); its members' seeds and folds, which older runs did not
    record, are read from their checkpoints into ``metrics["ensemble"]``."""
    members = config["ckpt_path"]
    ensemble = isinstance(members, list)  # bioner-eval ckpt_path=[...]: its first member's
    kept = folder / CHECKPOINT_CONFIG
    first = members[0] if ensemble else members
    trained = _kept_config(kept) if kept.is_file() else _checkpoint_config(folder, first)
    vote = metrics.get("ensemble")
    if ensemble and isinstance(vote, dict) and "member_seeds" not in vote:
        configs = [trained] + [_checkpoint_config(folder, m) for m in members[1:]]
        vote["member_seeds"] = [c.get("seed") for c in configs]
        vote["member_folds"] = [(c.get("cv") or {}).get("fold") for c in configs]
    dataset = config.get("dataset") or {}
    if "_target_" in dataset:  # dataset=<name>; else the training one (perhaps moved: data_dir)
        trained["dataset"] = dataset
    else:  # bioner-eval dataset.relabel.map=... replaces the training run's rule
        relabel = relabel_override(dataset)
        if relabel and isinstance(trained.get("dataset"), dict):
            trained["dataset"]["relabel"] = {**(trained["dataset"].get("relabel") or {}), **relabel}
    trained["robustness"] = config.get("robustness")
    trained["postprocess"] = (
        config.get("postprocess") or {}
    )  # the evaluation's steps, not training's
    if config.get("decode_rule") is not None:  # bioner-eval decode_rule=...
        trained.setdefault("alignment", {})["decode_rule"] = config["decode_rule"]
    if ensemble:  # a setting of its own, paired with runs of its members' seeds
        trained["ensemble"] = {"members": len(members), "min_votes": config.get("min_votes")}
    trained["evaluated_checkpoint"] = True
    return trained


def find_runs(paths: Sequence[str | Path]) -> list[Run]:
    """Every finished run under ``paths`` (run folders or multirun folders, at any depth).

    Unfinished runs (``config.yaml`` without ``metrics.json``) are counted and logged as a
    warning. A run reached through two of the paths is read once.

    Raises:
        ReportError: a path does not exist, or holds no ``metrics.json`` at all.
    """
    if not paths:
        raise ReportError("no run folders given: pass run folders or multirun folders")
    seen: dict[Path, Run] = {}
    for path in map(Path, paths):
        if not path.exists():
            raise ReportError(f"{path} does not exist; pass run folders or multirun folders")
        found = sorted(p.parent for p in path.rglob("metrics.json"))
        if not found:
            raise ReportError(
                f"no metrics.json found under {path}: a run writes it when it finishes "
                "(bioner-train with test=true, or bioner-eval); is the run still going?"
            )
        unfinished = sorted(
            p.parent for p in path.rglob("config.yaml") if not (p.parent / "metrics.json").exists()
        )
        # .hydra/config.yaml is Hydra's unresolved copy, not a run of its own.
        unfinished = [p for p in unfinished if p.name != ".hydra"]
        if unfinished:
            log.warning(
                "%s: %d unfinished run(s) without metrics.json left out: %s",
                path,
                len(unfinished),
                ", ".join(str(p) for p in unfinished[:5]) + (" ..." if len(unfinished) > 5 else ""),
            )
        for folder in found:
            if folder.resolve() not in seen:
                seen[folder.resolve()] = load_run(folder)
    return list(seen.values())


@dataclass
class ScoredSplit:
    """The documents a run scored on one split, with gold and predicted spans.

    Attributes:
        ids: document ids in file order.
        gold: the gold documents (``gold[i].id == ids[i]``).
        predictions: ``predictions[i]`` are the spans the run predicted for ``gold[i]``.
        gold_source: ``"corpus"`` or ``"predictions file"``.
    """

    ids: list[str]
    gold: list[Document]
    predictions: list[list[Span]]
    gold_source: str

    def by_id(self) -> dict[str, tuple[Document, list[Span]]]:
        return {doc.id: (doc, pred) for doc, pred in zip(self.gold, self.predictions)}

    def member(self, corpus: str, path: Path) -> ScoredSplit:
        """The documents of member ``corpus`` where they come from several corpora, under their
        own ids and with the predictions their gold judges; unchanged for one corpus."""
        if not any(CORPUS in doc.meta for doc in self.gold):
            return self
        keep = [i for i, doc in enumerate(self.gold) if doc.meta.get(CORPUS) == corpus]
        if not keep:
            found = sorted({str(doc.meta.get(CORPUS)) for doc in self.gold})
            raise ReportError(
                f"{path}: no document of corpus {corpus!r} (it has {', '.join(found)}); choose "
                "one with --corpus"
            )
        prefix = f"{corpus}/"
        gold = [
            dataclasses.replace(self.gold[i], id=self.gold[i].id.removeprefix(prefix)) for i in keep
        ]
        preds = [judged(self.gold[i], self.predictions[i]) for i in keep]
        return ScoredSplit([doc.id for doc in gold], gold, preds, self.gold_source)


def _nested_targets(node: Any, where: str) -> list[tuple[str, Any]]:
    """``(key, target)`` of every ``_target_`` inside ``node`` (mappings and lists, any depth)."""
    if isinstance(node, Mapping):
        found = [(where, node["_target_"])] if "_target_" in node else []
        for key, value in node.items():
            found += _nested_targets(value, f"{where}.{key}")
        return found
    if isinstance(node, list):
        return [
            hit for i, value in enumerate(node) for hit in _nested_targets(value, f"{where}[{i}]")
        ]
    return []


class GoldSource:
    """Loads a run's predictions on a split together with their gold documents.

    Corpora are read once per distinct dataset config and kept.

    Args:
        data_dir: where the corpora are, replacing the runs' own ``paths.data_dir`` (a run
            trained with a relative ``BIONER_DATA_DIR`` resolves it from the folder it ran in).
            ``None``: as the runs' configs say.
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = None if data_dir is None else Path(data_dir)
        self._readers: dict[str, Any] = {}
        self._missing: dict[str, str] = {}

    def _dataset_config(self, run: Run) -> dict[str, Any]:
        dataset = run.config.get("dataset") or {}
        if "_target_" not in dataset:
            raise ReportError(f"{run.path / 'config.yaml'} has no dataset config with a _target_")
        run_root = str((run.config.get("paths") or {}).get("data_dir", ""))
        return self._reader_config(dict(dataset), "dataset", run.path / "config.yaml", run_root)

    def _reader_config(
        self, dataset: dict[str, Any], key: str, source: Path, run_root: str
    ) -> dict[str, Any]:
        """The reader config at ``key`` checked (a bioner reader, nothing else built from it) and
        moved to :attr:`data_dir`; the member corpora of ``dataset=multi`` (``corpora``) alike."""
        # A run folder may come from elsewhere: its config is data, and only a bioner reader is
        # built from it (instantiate would call whatever it names).
        target = dataset.get("_target_")
        if not str(target).startswith("bioner.data.readers."):
            raise ReportError(
                f"{source}: refusing {key}._target_={target!r}; a report builds only "
                "bioner.data.readers.* from a run's config"
            )
        members = dataset.get("corpora") if isinstance(dataset.get("corpora"), Mapping) else {}
        # instantiate builds nested `_target_` nodes too, and a reader's options (filter, split,
        # train_subset) are plain values: a nested target can only be planted. The readers of
        # dataset=multi's corpora are the one exception, each checked as a reader itself.
        rest = {k: v for k, v in dataset.items() if k not in ("_target_", "corpora")}
        nested = _nested_targets(rest, key)
        if nested:
            where, found = nested[0]
            raise ReportError(
                f"{source}: refusing {where}._target_={found!r}; a report builds only the reader "
                "itself from a run's config, nothing nested in it"
            )
        if members:
            dataset["corpora"] = {
                name: self._reader_config(dict(node), f"{key}.corpora.{name}", source, run_root)
                for name, node in members.items()
            }
        own = str(dataset.get("data_dir", ""))
        if self.data_dir is not None and run_root and own.startswith(run_root):
            dataset["data_dir"] = str(self.data_dir) + own[len(run_root) :]
        return dataset

    def _reader(self, run: Run) -> Any:
        from hydra.utils import instantiate
        from omegaconf import OmegaConf

        dataset = self._dataset_config(run)
        key = json.dumps(dataset, sort_keys=True, default=str)
        if key not in self._readers:
            self._readers[key] = instantiate(OmegaConf.create(dataset))
        return self._readers[key]

    def _corpus_documents(self, run: Run, ids: Iterable[str], split: str) -> dict[str, Document]:
        """Corpus documents by id, reading the run's split first, then the others (a
        cross-validation fold holds train and devel documents) until every id is found."""
        reader = self._reader(run)
        wanted, found = set(ids), {}
        for name in [split, *[s for s in SPLITS if s != split]]:
            if wanted <= found.keys():
                break
            for doc in reader.load(name):
                if doc.id in wanted and doc.id not in found:
                    found[doc.id] = doc
        return found

    def load(self, run: Run, split: str, member: str | None = None) -> ScoredSplit:
        """The run's predictions on ``split`` (``predictions/<split>.jsonl``, or the kept
        ``.jsonl.gz``) with the gold documents behind it; with ``member``, for a run of several
        corpora (``dataset=multi``), those of that member only, under the ids it has alone
        (without the ``<corpus>/`` prefix) and with the predictions its gold judges, so that they
        pair with a run of that corpus alone.

        Raises:
            ReportError: the predictions file is missing, a document is neither in the corpus nor
                carries gold spans, or corpus and stored gold disagree.
        """
        path = predictions_file(run.path, split)
        if not path.is_file():
            raise ReportError(
                f"{path} is missing: the paired test needs each run's predictions on {split!r}"
            )
        records = read_jsonl(path)
        ids = [r["id"] for r in records]
        name = str((run.config.get("dataset") or {}).get("name", "?"))
        corpus: dict[str, Document] | None = None
        try:
            corpus = self._corpus_documents(run, ids, split)
        except CorpusNotFoundError as err:
            if name not in self._missing:
                self._missing[name] = str(err)
                log.warning(
                    "corpus %s not readable (%s); using the gold spans stored in the predictions "
                    "files instead (pass --data-dir to read the corpus)",
                    name,
                    err,
                )
        gold: list[Document] = []
        for number, record in enumerate(records, start=1):
            doc = None if corpus is None else corpus.get(record["id"])
            where = f"{path}:{number} (document {record['id']})"
            if corpus is None and record["text"] is None:
                raise ReportError(
                    f"{where}: a text-free record (text_sha256 in place of the text) needs the "
                    f"corpus, and corpus {name} was not found; pass --data-dir <folder holding it>"
                )
            if doc is not None and record["text"] is None:
                if not text_matches_hash(doc.text, record["text_sha256"]):
                    raise ReportError(
                        f"{where}: the SHA-256 of corpus {name}'s document of that id is not the "
                        "one recorded; the corpus changed since the run, or --data-dir points at "
                        "another corpus"
                    )
            elif doc is not None and doc.text != record["text"]:
                raise ReportError(
                    f"{where}: the text differs from corpus {name}'s document of that id; the "
                    "corpus changed since the run, or --data-dir points at another corpus"
                )
            if doc is not None and "gold" in record and sorted(record["gold"]) != sorted(doc.spans):
                raise ReportError(
                    f"{where}: the gold spans stored with the predictions differ from corpus "
                    f"{name}'s; the corpus changed since the run, or --data-dir points at another"
                )
            if doc is None and corpus is not None:
                raise ReportError(
                    f"{where}: no document of that id in corpus {name} "
                    f"({self._reader(run).data_dir}); --data-dir points at another corpus?"
                )
            if doc is None:
                if "gold" not in record:
                    raise ReportError(
                        f"{where}: corpus {name} not found and no gold spans stored with the "
                        "predictions; pass --data-dir <folder holding the corpus the run used>"
                    )
                doc = record_document(record)
            gold.append(doc)
        source = "predictions file" if corpus is None else "corpus"
        scored = ScoredSplit(ids, gold, [list(r["spans"]) for r in records], source)
        return scored if member is None else scored.member(member, path)
