"""The one exception type the CLI turns into a one-line message."""

from __future__ import annotations

from pathlib import Path


class PlannerError(Exception):
    """A problem with the user's input, reported without a traceback.

    Parameters
    ----------
    message
        What is wrong, in one line.
    path
        The file concerned, named first in the message when given.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
