"""The one exception type that corpus readers raise."""

from __future__ import annotations

from pathlib import Path

from bioner.errors import UserError


class CorpusFormatError(UserError, ValueError):
    """A corpus file cannot be read as it stands.

    The message always names the file, the 1-based line (when there is one) and what to do.

    Args:
        path: the offending file.
        line: 1-based line number, or ``None`` for whole-file problems.
        problem: what is wrong.
        fix: what the user can do about it.
    """

    def __init__(self, path: str | Path, line: int | None, problem: str, fix: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}. Fix: {fix}")

    def __reduce__(self) -> tuple:
        # Picklable with its four arguments, so that it crosses process boundaries intact (a Ray
        # read task's error reaches bioner-predict as this error, not as an unpicklable one).
        return (self.__class__, (self.path, self.line, self.problem, self.fix))
