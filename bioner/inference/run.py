"""Tag files: read an input, tag it document by document, write an output (``bioner-predict``)."""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bioner.errors import ConfigError
from bioner.inference.formats import OUTPUT_FORMATS, open_writer
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
        output: a file or ``-``.
        input_format: see :data:`bioner.inference.inputs.INPUT_FORMATS`.
        output_format: see :data:`bioner.inference.formats.OUTPUT_FORMATS`.

    Returns:
        ``documents``, ``spans``, ``characters``, ``seconds`` and ``failed_files``: input files
        that broke off and were skipped from there (PubMed XML; the errors are logged).
    """
    records = read_inputs(source, input_format)
    start = time.perf_counter()
    characters = 0
    with open_output(output) as stream, open_writer(output_format, stream) as writer:
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
    from bioner.config import instantiate_node
    from bioner.postprocess import build_postprocessors

    steps = build_postprocessors(cfg.get("postprocess"))
    return instantiate_node(cfg.tagger, "tagger", postprocess=steps, _convert_="all")


class LocalRunner:
    """``runner=local`` (the default): tag in this process, into one output file or ``-``."""

    def run(self, cfg: DictConfig) -> dict[str, Any]:
        """Tag ``cfg.input`` into ``cfg.output`` as ``bioner-predict`` configures it."""
        check_formats(cfg.input_format, cfg.format)
        if str(cfg.output) != "-" and Path(cfg.output).is_dir():
            suffix = {"bioc": "xml"}.get(cfg.format, cfg.format)
            raise ConfigError(
                f"output={cfg.output} is a folder; name a file in it, e.g. "
                f"output={Path(cfg.output) / f'spans.{suffix}'} (runner=ray writes a folder)"
            )
        return predict_files(build_tagger(cfg), cfg.input, cfg.output, cfg.input_format, cfg.format)
