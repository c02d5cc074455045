"""The one error type of the data layer: a data file that is missing, empty or malformed."""
from __future__ import annotations

import os

__all__ = ["DataError"]


class DataError(ValueError):
    """A data file is missing, empty or malformed (or a download failed verification).

    The message names the file, what is wrong with it and the format that was expected, so
    the user can fix the file without reading a parser's stack trace.
    """

    def __init__(self, path: "str | os.PathLike[str] | None", problem: str,
                 expected: str | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        self.expected = expected
        where = f"{self.path}: " if self.path else ""
        tail = f" (expected {expected})" if expected else ""
        super().__init__(f"{where}{problem}{tail}")
