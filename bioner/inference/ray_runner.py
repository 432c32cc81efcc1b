"""``bioner-predict runner=ray``: tag many files on Ray, one output file per input file.

The pipeline, in Ray Data's public API:

1. The input files not yet done (:func:`plan_shards`) become a dataset of file names.
2. Read tasks (``map_batches`` over the names, one file per task, ``TaskPoolStrategy``) read each
   file with bioner's own readers (:func:`bioner.inference.inputs.read_inputs`, so PubMed XML,
   JSONL, PubTator, ...) and stream its documents as rows, then one end row per file that
   carries the file's read failures.
3. A pool of ``num_actors`` tagger actors (``map_batches`` with a callable class,
   ``ActorPoolStrategy``; ``num_gpus_per_actor`` GPUs and ``num_cpus_per_actor`` CPU slots each)
   loads the model once per actor and tags ``batch_size`` documents at a time. A file's
   documents travel in blocks of about 1 MiB, spread over all actors, so one large file uses the
   whole pool too.
4. The driver takes the rows back in input order (``preserve_order``) and writes each file's
   output with the same writers as ``runner=local``; a file's output is written under a
   temporary name and renamed when its last document is in. A run killed half-way and started
   again skips the outputs that exist (only complete ones do) and redoes the rest.

Spans equal those of ``runner=local`` on every document: each actor runs the same
:class:`~bioner.inference.tagger.Tagger` from the same config, and its batching does not change
predictions.

``ray.init()`` starts a Ray instance on this machine for the run (``address: null``), or joins a
running cluster (``runner.address=auto`` or ``ray://head:10001``); there, every node needs bioner
installed and the model folder and input files at the same paths (a shared file system), and
the output folder is written by the driver. A Ray instance already running in this process (a
test's, a notebook's) is used as it is and left running.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bioner.data.document import Document, Span
from bioner.errors import ConfigError, UserError
from bioner.inference.formats import FOLDER_FORMATS, open_writer
from bioner.inference.inputs import (
    PUBMED_SUFFIXES,
    TextRecord,
    detect_format,
    read_inputs,
)
from bioner.inference.pubmed import Failure
from bioner.inference.run import build_tagger, check_formats, open_output, report_failures
from bioner.utils.files import visible_files
from bioner.utils.log import get_logger

log = get_logger(__name__)

_INSTALL = "runner=ray needs Ray: pip install 'bioner[ray]'"
#: Input names in a folder that runner=ray reads (others, such as the baseline's .md5 files, are
#: left alone).
_INPUT_SUFFIXES = (*PUBMED_SUFFIXES, ".jsonl", ".json", ".pubtator", ".txt")
_OUTPUT_SUFFIX = {"jsonl": ".jsonl", "pubtator": ".pubtator", "bioc": ".xml", "conll": ".conll"}


@dataclass(frozen=True)
class Shard:
    """One input file and the output file it becomes."""

    input: Path
    output: Path
    input_format: str


def _stem(path: Path) -> str:
    name = path.name
    for suffix in sorted(_INPUT_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def plan_shards(
    source: str | Path, output: str | Path, input_format: str, output_format: str
) -> list[Shard]:
    """Every input file of ``source`` with its output file in the folder ``output``.

    ``source`` is a file, or a folder whose ``.xml``, ``.xml.gz``, ``.jsonl``, ``.json``,
    ``.pubtator`` and ``.txt`` files (recursively, sorted; hidden ones skipped) are read. The
    output of ``a/b.xml.gz`` is ``output/a/b.<format>`` (``.xml`` for ``bioc``).

    Raises:
        ConfigError: ``-`` or a missing input, an output that is a file, an input format that
            reads a folder as one corpus, or two inputs with one output name.
    """
    check_formats(input_format, output_format)
    if output_format in FOLDER_FORMATS:
        raise ConfigError(
            f"format={output_format} writes one folder of documents; it needs runner=local"
        )
    if str(source) == "-" or str(output) == "-":
        raise ConfigError(
            "runner=ray reads files and writes a folder: give input=<file or folder> and "
            "output=<folder> (standard input and output need runner=local)"
        )
    src, out = Path(source), Path(output)
    if not src.exists():
        raise ConfigError(f"input {src} does not exist; give a file or a folder of files")
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"output={out} is a file; runner=ray writes one output file per input file into a "
            f"folder: give output={out.with_suffix('')}/ (or runner=local for one file)"
        )
    if input_format == "folder":
        raise ConfigError(
            "runner=ray tags files, one output file per input file; input_format=folder (a "
            "folder of one-document .txt files) needs runner=local, or give input_format=text"
        )
    if src.is_dir():
        files = [p for p in visible_files(src) if p.name.lower().endswith(_INPUT_SUFFIXES)]
        if not files:
            raise ConfigError(
                f"{src} holds no input files (.xml, .xml.gz, .jsonl, .json, .pubtator, .txt)"
            )
        relative = [p.relative_to(src) for p in files]
    else:
        files, relative = [src], [Path(src.name)]
    shards, seen = [], {}
    suffix = _OUTPUT_SUFFIX[output_format]
    for path, rel in zip(files, relative):
        target = out / rel.parent / f"{_stem(rel)}{suffix}"
        if target in seen:
            raise ConfigError(
                f"{seen[target]} and {path} would both be written to {target}; keep one of them "
                "in the input folder"
            )
        if target.resolve() == path.resolve():
            raise ConfigError(f"output {target} would overwrite its input; choose another folder")
        seen[target] = path
        fmt = detect_format(path) if input_format == "auto" else input_format
        shards.append(Shard(path, target, fmt))
    return shards


# ---------------------------------------------------------------------- Ray workers


def read_files(batch: Any, batch_size: int) -> Iterator[Any]:
    """Read task: the documents of each file in ``batch`` as rows, then the file's end row."""
    import pyarrow as pa

    def table(rows: list[dict[str, Any]]) -> Any:
        return pa.Table.from_pylist(rows)

    for item in batch.to_pylist():
        records = read_inputs(item["path"], item["format"])
        rows: list[dict[str, Any]] = []
        count = 0
        for record in records:
            rows.append(
                {
                    "shard": item["shard"],
                    "id": record.id,
                    "text": record.text,
                    "meta": json.dumps(record.meta),
                    "forced": json.dumps(record.forced),
                    "end": False,
                    "failures": "[]",
                }
            )
            count += 1
            if len(rows) >= batch_size:
                yield table(rows)
                rows = []
        failures = [asdict(f) for f in getattr(records, "failures", ())]
        rows.append(
            {
                "shard": item["shard"],
                "id": "",
                "text": "",
                "meta": json.dumps({"documents": count}),
                "forced": "[]",
                "end": True,
                "failures": json.dumps(failures),
            }
        )
        yield table(rows)


class TaggerActor:
    """A tagger actor: builds the :class:`Tagger` of ``cfg`` once, then tags batches of rows.

    Args:
        cfg: the ``bioner-predict`` config as plain containers (``tagger``, ``postprocess``).
        words: also return each document's words and sentences (``format=conll`` needs them).
    """

    def __init__(self, cfg: dict[str, Any], words: bool) -> None:
        self.tagger = build_tagger(OmegaConf.create(cfg))
        self.words = words

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows = batch.to_pylist()
        records = [
            TextRecord(r["id"], r["text"], json.loads(r["meta"]), json.loads(r["forced"]))
            for r in rows
            if not r["end"]
        ]
        tagged = iter(self.tagger.predict_stream(records))
        for row in rows:
            row["spans"] = row["words"] = row["sentences"] = "[]"
            if row["end"]:
                continue
            doc, spans = next(tagged)
            row["spans"] = json.dumps([[s.start, s.end, s.label, s.score, s.id] for s in spans])
            if self.words:
                row["words"] = json.dumps(doc.words)
                row["sentences"] = json.dumps(doc.sentences)
        return pa.Table.from_pylist(rows)


# ---------------------------------------------------------------------- the runner


class RayRunner:
    """``runner=ray`` (see the module docstring and ``conf/runner/ray.yaml``).

    Args:
        address: ``None`` starts Ray on this machine for the run; else the cluster to join
            (``auto``, ``ray://<head>:10001``).
        num_actors: tagger actors (one per GPU, or per CPU slot).
        num_gpus_per_actor: GPUs each actor reserves (0: CPU actors).
        num_cpus_per_actor: CPU slots each actor reserves (Ray sets its torch threads to it).
        batch_size: documents per batch handed to an actor.
        progress: show a progress bar on standard error.
    """

    def __init__(
        self,
        address: str | None = None,
        num_actors: int = 1,
        num_gpus_per_actor: float = 0,
        num_cpus_per_actor: float = 1,
        batch_size: int = 256,
        progress: bool = True,
    ) -> None:
        if num_actors < 1 or batch_size < 1:
            raise ConfigError(
                f"runner.num_actors={num_actors}, runner.batch_size={batch_size}: both must be "
                "at least 1"
            )
        if num_gpus_per_actor < 0 or num_cpus_per_actor < 0:
            raise ConfigError("runner.num_gpus_per_actor and num_cpus_per_actor cannot be negative")
        self.address = address
        self.num_actors = num_actors
        self.num_gpus_per_actor = num_gpus_per_actor
        self.num_cpus_per_actor = num_cpus_per_actor
        self.batch_size = batch_size
        self.progress = progress

    def run(self, cfg: DictConfig) -> dict[str, Any]:
        """Tag ``cfg.input`` (a file or folder) into the folder ``cfg.output``; the counts."""
        try:
            import ray
        except ImportError as err:
            raise UserError(_INSTALL) from err
        shards = plan_shards(cfg.input, cfg.output, cfg.input_format, cfg.format)
        todo = [s for s in shards if not s.output.exists()]
        if len(todo) < len(shards):
            log.info(
                "%d of %d output files exist already (a resumed run): skipped",
                len(shards) - len(todo),
                len(shards),
            )
        summary: dict[str, Any] = {
            "documents": 0,
            "spans": 0,
            "characters": 0,
            "seconds": 0.0,
            "failed_files": 0,
            "files_written": 0,
            "files_skipped": len(shards) - len(todo),
        }
        if not todo:
            return summary
        plain = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(plain, dict)
        node = {"tagger": plain["tagger"], "postprocess": plain.get("postprocess")}
        started = not ray.is_initialized()
        if started:
            if self.address is None:  # a Ray instance for this run alone: no dashboard to serve
                ray.init(include_dashboard=False)
            else:
                ray.init(address=self.address)
        try:
            self._run(ray, node, todo, cfg.format, summary)
        except Exception as err:
            cause = _user_error(err)
            if cause is not None:
                raise cause from err
            raise
        finally:
            if started:
                ray.shutdown()
        log.info(
            "tagged %d documents (%d characters): %d spans in %.1f s (%.1f documents/s; the "
            "first document back after %.1f s) -> %d files in %s",
            summary["documents"],
            summary["characters"],
            summary["spans"],
            summary["seconds"],
            summary["documents"] / max(summary["seconds"], 1e-9),
            summary.get("first_document_s", 0.0),
            summary["files_written"],
            cfg.output,
        )
        return summary

    def _run(
        self,
        ray: Any,
        node: dict[str, Any],
        todo: list[Shard],
        output_format: str,
        summary: dict[str, Any],
    ) -> None:
        context = ray.data.DataContext.get_current()
        # Rows come back in input order, so that each file's output is written in one pass, in
        # the order of its input, like runner=local's.
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False  # bioner's own bar counts documents
        # Blocks of about 1 MiB (a few hundred abstracts) instead of Ray's 128 MiB: a block is what
        # an actor task takes and gives back at once, so small ones spread a large file over all
        # actors and return documents (and move the progress bar) as they are tagged.
        context.target_max_block_size = 1 << 20
        words = output_format == "conll"
        files = ray.data.from_items(
            [
                {"shard": i, "path": str(s.input), "format": s.input_format}
                for i, s in enumerate(todo)
            ],
            override_num_blocks=len(todo),
        )
        rows = files.map_batches(
            read_files,
            batch_size=1,
            batch_format="pyarrow",
            fn_kwargs={"batch_size": self.batch_size},
            # Reading is cheap next to tagging, and the actors may hold every CPU slot (one actor
            # per core): read tasks reserve none, or they would never be scheduled; at most one
            # per actor runs at a time.
            num_cpus=0,
            compute=ray.data.TaskPoolStrategy(size=self.num_actors),
        )
        tagged = rows.map_batches(
            TaggerActor,
            batch_size=self.batch_size,
            batch_format="pyarrow",
            fn_constructor_kwargs={"cfg": node, "words": words},
            compute=ray.data.ActorPoolStrategy(size=self.num_actors),
            num_gpus=self.num_gpus_per_actor,
            num_cpus=self.num_cpus_per_actor,
        )
        start = time.perf_counter()
        failures: list[Any] = []
        with _Progress(len(todo), self.progress) as bar, ExitStack() as stack:
            writer = None
            for row in tagged.iter_rows():
                shard = todo[row["shard"]]
                if writer is None:
                    stream = stack.enter_context(open_output(shard.output))
                    writer = stack.enter_context(open_writer(output_format, stream))
                if row["end"]:
                    stack.close()  # footer, then the rename that marks the file done
                    writer = None
                    failures += [Failure(**f) for f in json.loads(row["failures"])]
                    summary["files_written"] += 1
                    bar.file_done()
                    continue
                if "first_document_s" not in summary:
                    # Not the start-up time: rows come back in order, in bursts of blocks.
                    summary["first_document_s"] = round(time.perf_counter() - start, 3)
                doc, spans = row_document(row)
                writer.write(doc, spans)
                summary["documents"] += 1
                summary["spans"] += len(spans)
                summary["characters"] += len(doc.text)
                bar.document()
        summary["seconds"] = round(time.perf_counter() - start, 3)
        summary["failed_files"] = len(failures)
        report_failures(failures)


def row_document(row: dict[str, Any]) -> tuple[Document, list[Span]]:
    """The document and spans of a tagged row, as the writers take them (the driver's work per
    document)."""
    doc = Document(
        row["id"],
        row["text"],
        [],
        [tuple(s) for s in json.loads(row["sentences"])],
        [tuple(w) for w in json.loads(row["words"])],
        meta=json.loads(row["meta"]),
    )
    spans = [
        Span(a, b, label, score=score, id=span_id)
        for a, b, label, score, span_id in json.loads(row["spans"])
    ]
    return doc, spans


def _user_error(err: BaseException) -> UserError | None:
    """The :class:`UserError` a Ray worker raised, found in the chain of errors Ray wraps it in
    (``RayTaskError.cause``, ``__cause__``), or ``None``."""
    found, seen = None, set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UserError):
            found = current  # the innermost one is the worker's own, without Ray's wrapping
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    if found is not None and type(found).__module__.startswith("ray"):
        return None
    return found


class _Progress:
    """Documents, documents/s and files done on standard error (rich), or nothing."""

    def __init__(self, files: int, enabled: bool) -> None:
        self.enabled = enabled
        self.files = files
        self.documents = 0
        self.start = time.perf_counter()

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("files"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[documents]:,} documents, {task.fields[rate]:.1f} docs/s"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("tag", total=self.files, documents=0, rate=0.0)
        return self

    def document(self) -> None:
        self.documents += 1
        if self.enabled:
            rate = self.documents / max(time.perf_counter() - self.start, 1e-9)
            self.bar.update(self.task, documents=self.documents, rate=rate)

    def file_done(self) -> None:
        if self.enabled:
            self.bar.advance(self.task)

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.__exit__(*exc)
