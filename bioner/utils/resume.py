"""The wall time of a long job that was killed and continued from its last checkpoint."""

from __future__ import annotations

import json
from pathlib import Path


def kept_seconds(record: Path, started: Path, checkpoint: Path) -> list[float]:
    """The seconds of work each earlier attempt of a killed job kept, the one just ended included.

    The attempt that just ended kept the time from its start (the modification time of
    ``started``, a file it wrote when it began) to its last checkpoint (``checkpoint``'s); what
    it did after that checkpoint is done again, so it does not count. Earlier attempts are read
    from ``record`` (``{"attempts_s": [...]}``), and the list, this attempt's figure appended,
    is written back. Call it before the resumed attempt rewrites ``started``.
    """
    kept = json.loads(record.read_text())["attempts_s"] if record.is_file() else []
    kept.append(max(0.0, checkpoint.stat().st_mtime - started.stat().st_mtime))
    record.write_text(json.dumps({"attempts_s": kept}, indent=2) + "\n")
    return kept
