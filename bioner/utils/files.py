"""Finding a user's files in a folder."""

from __future__ import annotations

from pathlib import Path


def visible_files(folder: str | Path, pattern: str = "*") -> list[Path]:
    """The files below ``folder`` (at any depth) whose names match ``pattern``, sorted; hidden
    files and files in hidden folders (``.ipynb_checkpoints``, ``.git``, a ``.partial`` output)
    are left out: they are copies and tools' state, not the user's documents."""
    root = Path(folder)
    return sorted(
        p
        for p in root.rglob(pattern)
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
