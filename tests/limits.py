"""Test support: a time limit that fails a block instead of letting it hang (SIGALRM; the main thread only).
Importable from any test module: pyproject.toml puts tests/ on pytest's pythonpath."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def time_limit(seconds: float, what: str = "the block") -> Iterator[None]:
    """Raise TimeoutError in the block when it runs longer than `seconds`."""
    def expired(*_):
        raise TimeoutError(f"{what} took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
