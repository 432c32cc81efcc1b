"""The layer contract of pyproject.toml ([tool.importlinter]) holds: imports point down.

``lint-imports`` runs with the interpreter of the tests on this checkout, so the README's test
command (and CI, which runs it) fails when a module imports a layer above its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_imports_follow_the_layers() -> None:
    # This checkout's bioner, whatever the environment installed.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    # The `lint-imports` console script, run by this interpreter (no PATH lookup).
    code = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    result = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout
