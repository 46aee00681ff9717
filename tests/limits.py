"""Test support: a time limit that fails a block instead of letting it hang (SIGALRM; the main thread only), and a
memory limit (RLIMIT_AS) that turns a runaway allocation into a MemoryError.
Importable from any test module: pyproject.toml puts tests/ on pytest's pythonpath."""

from __future__ import annotations

import os
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


@contextmanager
def memory_limit(extra_mb: int, what: str = "the block") -> Iterator[None]:
    """Let the block grow this process's address space by at most `extra_mb` (RLIMIT_AS, restored after): an
    allocation beyond it raises MemoryError in the block instead of exhausting the machine."""
    import resource

    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * page
    old = resource.getrlimit(resource.RLIMIT_AS)
    cap = used + extra_mb * 2**20
    if old[1] != resource.RLIM_INFINITY:
        cap = min(cap, old[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)
