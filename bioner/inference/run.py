"""Tag files: read an input, tag it document by document, write an output (``bioner-predict``)."""

from __future__ import annotations

import io
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bioner.errors import ConfigError
from bioner.inference.formats import (
    FOLDER_FORMATS,
    OUTPUT_FORMATS,
    BratWriter,
    SpanWriter,
    open_writer,
)
from bioner.inference.inputs import INPUT_FORMATS, read_inputs
from bioner.utils.log import get_logger

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from bioner.inference.tagger import Tagger

log = get_logger(__name__)


@contextmanager
def open_output(output: str | Path) -> Iterator[TextIO]:
    """A UTF-8 text stream on ``output`` (``-``: standard output).

    A file is written under a temporary name and renamed into place at the end, so a run that
    fails half-way never leaves a truncated file that looks finished.
    """
    if str(output) == "-":
        # Written as UTF-8 with "\n" line ends whatever the locale; detached at the end so that
        # sys.stdout itself stays usable.
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            yield stream
        finally:
            stream.flush()
            stream.detach()
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_output_folder(output: str | Path) -> None:
    """Refuse ``output`` for a format that writes a folder, before any model loads.

    Raises:
        ConfigError: ``output`` is ``-``, a file, or a folder that holds something (its files,
            corrected annotations perhaps, are never mixed with or overwritten).
    """
    path = Path(output)
    if str(output) == "-":
        what = "standard output"
    elif path.is_file():
        what = "a file"
    elif path.is_dir() and any(path.iterdir()):
        what = "a folder that is not empty"
    else:
        return
    raise ConfigError(
        f"output={output} is {what}; this format writes a folder of files: give a new or empty "
        "folder (an existing one is never mixed with or overwritten)"
    )


@contextmanager
def open_output_folder(output: str | Path) -> Iterator[Path]:
    """A new folder at ``output`` (absent or empty, :func:`check_output_folder`), filled under a
    temporary name and moved into place at the end, so a run that fails half-way leaves no
    half-filled folder."""
    check_output_folder(output)
    path = Path(output).resolve()  # output=. has a name too
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.is_dir():
            path.rmdir()  # empty, checked above
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def open_span_writer(
    output: str | Path, output_format: str, entity_types: Sequence[str] = ()
) -> Iterator[SpanWriter]:
    """The writer of ``output_format`` on ``output``: a file or ``-`` (:func:`open_output`), or a
    folder for the formats that write one (:func:`open_output_folder`), which list
    ``entity_types``."""
    if output_format in FOLDER_FORMATS:
        with open_output_folder(output) as folder, BratWriter(folder, entity_types) as writer:
            yield writer
    else:
        with open_output(output) as stream, open_writer(output_format, stream) as writer:
            yield writer


def predict_files(
    tagger: Tagger,
    source: str | Path,
    output: str | Path,
    input_format: str = "auto",
    output_format: str = "jsonl",
) -> dict[str, Any]:
    """Tag every document of ``source`` and write them to ``output``, streaming.

    Args:
        tagger: the tagger.
        source: a file, a folder of ``.txt`` files, or ``-`` (see :mod:`bioner.inference.inputs`).
        output: a file or ``-``; a new or empty folder for ``brat``.
        input_format: see :data:`bioner.inference.inputs.INPUT_FORMATS`.
        output_format: see :data:`bioner.inference.formats.OUTPUT_FORMATS`.

    Returns:
        ``documents``, ``spans``, ``characters``, ``seconds`` and ``failed_files``: input files
        that broke off and were skipped from there (PubMed XML; the errors are logged).
    """
    records = read_inputs(source, input_format)
    start = time.perf_counter()
    characters = 0
    types = tagger.entity_types if output_format in FOLDER_FORMATS else ()
    with open_span_writer(output, output_format, types) as writer:
        for doc, spans in tagger.predict_stream(records):
            writer.write(doc, spans)
            characters += len(doc.text)
    summary = {
        "documents": writer.documents,
        "spans": writer.spans,
        "characters": characters,
        "seconds": round(time.perf_counter() - start, 3),
        "failed_files": len(getattr(records, "failures", ())),
    }
    log.info(
        "tagged %d documents (%d characters): %d spans in %.1f s -> %s",
        summary["documents"],
        characters,
        summary["spans"],
        summary["seconds"],
        output,
    )
    report_failures(getattr(records, "failures", ()))
    return summary


def report_failures(failures: Sequence[Any]) -> None:
    """One warning listing the input files that broke off (each was logged where it broke)."""
    if failures:
        log.warning(
            "%d input file(s) could not be read to the end and were tagged only up to the "
            "fault: %s",
            len(failures),
            ", ".join(f"{f.path} ({f.records} records)" for f in failures),
        )


def check_formats(input_format: str, output_format: str) -> None:
    """Refuse an unknown ``input_format`` or ``format`` before any model loads.

    Raises:
        ConfigError: naming the key and the formats to choose from.
    """
    for key, value, known in (
        ("input_format", input_format, INPUT_FORMATS),
        ("format", output_format, OUTPUT_FORMATS),
    ):
        if value not in known:
            raise ConfigError(f"{key}={value!r}: choose one of {', '.join(known)}")


def build_tagger(cfg: DictConfig) -> Tagger:
    """The :class:`Tagger` of a ``bioner-predict`` config (``tagger``, ``postprocess``), as every
    runner builds it (the local process, each Ray actor)."""
    from omegaconf import OmegaConf

    from bioner.config import instantiate_node
    from bioner.inference.tagger import model_folder
    from bioner.postprocess import ScoreThreshold, build_postprocessors

    steps = build_postprocessors(cfg.get("postprocess"))
    folder = cfg.tagger.get("folder")
    folders = list(folder) if OmegaConf.is_list(folder) else [folder]
    for step in steps:
        if not isinstance(step, ScoreThreshold):
            continue
        if len(folders) > 1 and step.on_devel:
            raise ConfigError(
                "postprocess.threshold.min_score=devel with several models: the vote's scores "
                "are not any one run's; choose on devel with bioner-eval "
                "ckpt_path=[<run>,...] postprocess=threshold and give bioner-predict the number "
                "it logs"
            )
        if step.on_devel and not step.use_run_choice(model_folder(folders[0])):
            raise ConfigError(
                f"postprocess.threshold.min_score=devel takes the value that the model's run "
                f"chose on devel, but {folders[0]} has no metrics.json with "
                "devel.confidence.best.min_score (an exported folder on its own?); give the "
                "number, or score a run with bioner-eval ckpt_path=<run> to get it"
            )
    return instantiate_node(cfg.tagger, "tagger", postprocess=steps, _convert_="all")


class LocalRunner:
    """``runner=local`` (the default): tag in this process, into one output file or ``-``."""

    def run(self, cfg: DictConfig) -> dict[str, Any]:
        """Tag ``cfg.input`` into ``cfg.output`` as ``bioner-predict`` configures it."""
        check_formats(cfg.input_format, cfg.format)
        if cfg.format in FOLDER_FORMATS:
            check_output_folder(cfg.output)
        elif str(cfg.output) != "-" and Path(cfg.output).is_dir():
            suffix = {"bioc": "xml"}.get(cfg.format, cfg.format)
            raise ConfigError(
                f"output={cfg.output} is a folder; name a file in it, e.g. "
                f"output={Path(cfg.output) / f'spans.{suffix}'} (runner=ray writes a folder)"
            )
        return predict_files(build_tagger(cfg), cfg.input, cfg.output, cfg.input_format, cfg.format)
