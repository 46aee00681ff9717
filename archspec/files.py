"""Writing files whole or not at all, and the error for a user's file that cannot be used. No heavy imports.

`atomic_path(dest)` gives a temporary path beside `dest` and renames it over `dest` only when the block finishes,
so an interrupted or failed write never leaves a half-written file where the real one should be; the file gets
the user's usual permissions (mkstemp would leave 0600).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


class BadFile(Exception):
    """A file given by the user cannot be used: the message is one line naming the file and the fix."""


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `dest`; renamed to `dest` if the block succeeds, removed otherwise."""
    dest = Path(dest)
    if dest.parent and not dest.parent.exists():
        raise BadFile(f"cannot write {dest}: folder {dest.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the user's usual mode
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
