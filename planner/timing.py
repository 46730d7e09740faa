"""Timing the stages of a run and reporting them as they finish."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Called with a stage's name and its duration in seconds when it finishes.
Progress = Callable[[str, float], None]


class Stopwatch:
    """Times named stages; reports each to ``progress`` when it ends.

    >>> clock = Stopwatch()
    >>> with clock.stage("load"):
    ...     pass
    >>> list(clock.timings)
    ['load']
    """

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name``."""
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 4)
        if self.progress is not None:
            self.progress(name, self.timings[name])

    def run(self, name: str, function: Callable, *args, **kwargs):
        """Call ``function(*args, **kwargs)`` as stage ``name``; return its value."""
        with self.stage(name):
            return function(*args, **kwargs)
