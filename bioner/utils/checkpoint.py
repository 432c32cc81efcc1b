"""Checkpoint writing that does not hold a second copy of the checkpoint in memory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


class StreamedCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, but local files are written straight to disk.

    Lightning serialises a checkpoint into an in-memory buffer before writing it, which for a
    fine-tuning run holds the weights and the optimiser's moments a second time: the peak memory
    of a MiniLM run on the CPU was while saving (+255 MiB). Here a local checkpoint is written to
    a temporary file beside the target and renamed over it, which is just as atomic (a reader
    never sees half a file). Remote paths (``s3://`` and other fsspec URLs) keep Lightning's way.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        try:
            torch.save(checkpoint, partial)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
