"""Corpus loading for Python users: a dataset config's reader, composed and run in one call."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bioner.config import compose_config, instantiate_node
from bioner.data.document import Document


def load_corpus(
    dataset: str,
    split: str = "train",
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    overrides: Sequence[str] = (),
) -> list[Document]:
    """The documents of one split of a corpus, read as ``bioner-train dataset=<dataset>`` reads it.

    Args:
        dataset: a config of the ``dataset`` group (``bc5cdr``, ``ncbi_disease``, ``iob``, ...).
        split: ``train``, ``devel`` or ``test``.
        data_dir: the folder holding one folder per corpus; ``None``: ``paths.data_dir``
            (``$BIONER_DATA_DIR``, else ``~/.cache/bioner/data``).
        download: fetch a missing public corpus first (checksummed).
        overrides: more Hydra overrides, e.g. ``["dataset.data_dir=/my/iob"]`` for ``iob``.

    Raises:
        CorpusNotFoundError: the files are missing (the message says where they were looked for).
        CorpusFormatError: a file is malformed (the message names the file, line and fix).
    """
    extra = [] if data_dir is None else [f"paths.data_dir={Path(data_dir).expanduser()}"]
    cfg = compose_config("data", [f"dataset={dataset}", *extra, *overrides])
    reader = instantiate_node(cfg.dataset, "dataset")
    reader.ensure_available(download=download)
    return reader.load(split)
