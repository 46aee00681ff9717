"""Writing files whole or not at all, and one-line messages for files that cannot be used. No heavy imports.

`atomic_path(dest)` gives a temporary path beside `dest` (named `.<name>.<random>.tmp`); when the block finishes
the temporary file is flushed to disk (fsync), given the user's usual permissions, renamed over `dest`, and the
folder itself is flushed, so that a crash, a SIGKILL or a power cut leaves either the old file or the new one,
never a torn or empty one. A temporary left behind by a kill is removed by `remove_stale_temporaries` the next
time the folder's owner starts (a run folder, say).

Filesystem failures (no permission, a read-only mount, a full disk, a file where a folder should be) are
`OSError`s; `os_problem` turns one into the one line the command line prints, naming the file and the fix.

Files that anyone may have written or replaced (a run folder's run.json and metrics.jsonl) are read with
`read_regular` (never waiting on a named pipe or a device put in a file's place) and parsed with `load_json`,
whose only failure is a ValueError: text that is not UTF-8 or not JSON, nested too deeply (no RecursionError), or
holding an integer too long for Python to convert.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator


from archspec.lang.errors import UserError


class BadFile(UserError):
    """A file given by the user cannot be used: the message is one line naming the file and the fix."""


_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")

# errno -> what the user can do about it
_FIXES = {
    errno.EACCES: "no permission: choose a place you can write to, or fix its permissions",
    errno.EPERM: "not permitted: choose a place you can write to, or fix its permissions",
    errno.EROFS: "a read-only file system: choose a writable place",
    errno.ENOSPC: "the disk is full: free some space or choose another place",
    errno.EDQUOT: "the disk quota is exhausted: free some space or choose another place",
    errno.ENOTDIR: "a file stands where a folder should be: choose another path",
    errno.EISDIR: "it is a folder, not a file: name a file",
    errno.EEXIST: "something of that name is in the way: choose another path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
    errno.EIO: "an input/output error from the disk: check the device",
    errno.EMLINK: "too many links: choose another place",
    errno.ELOOP: "a loop of symbolic links: fix the links",
}
FILESYSTEM_ERRNOS = frozenset(_FIXES)


def os_problem(e: OSError, path: str | os.PathLike | None = None) -> str:
    """One line for a filesystem failure: `cannot write runs/x/last.pt: No space left on device (the disk is
    full: free some space or choose another place)`."""
    where = path if path is not None else (e.filename if e.filename is not None else "a file")
    why = e.strerror or str(e)
    fix = _FIXES.get(e.errno or 0)
    return f"cannot write {where}: {why}" + (f" ({fix})" if fix else "")


def is_filesystem_error(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in FILESYSTEM_ERRNOS


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `dest`; flushed, renamed to `dest` and the folder flushed if the block succeeds,
    removed otherwise. A filesystem failure is re-raised naming `dest` (not the temporary)."""
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    if not parent.exists():
        raise BadFile(f"cannot write {dest}: folder {parent} does not exist")
    if dest.is_dir():
        raise BadFile(f"cannot write {dest}: it is a folder; name a file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(dest)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the user's usual mode
            os.replace(tmp_path, dest)
        except OSError as e:
            if e.filename is None or str(e.filename) == str(tmp_path):
                raise OSError(e.errno, e.strerror, str(dest)) from None
            raise
        fsync_folder(parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def open_append(path: str | os.PathLike, newline: str | None = None):
    """A text file opened for appending, never through a symbolic link (`O_NOFOLLOW`): a link planted where
    archspec appends (a run's log.txt) cannot make it write into another file. Text that is not UTF-8 (a folder
    name of other bytes, which Python holds as surrogates) is written escaped, never an error."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace", newline=newline)


def remove_stale_temporaries(folder: str | os.PathLike, names: Iterator[str] | list[str] | None = None) -> list[str]:
    """Remove the temporaries that `atomic_path` left in `folder` when a write was killed; call it only where no
    other process can be writing (e.g. under the run folder's lock). `names` limits it to temporaries of these
    files. Returns the names removed."""
    removed = []
    wanted = set(names) if names is not None else None
    for p in Path(folder).iterdir():
        if not _TEMPORARY.match(p.name) or not p.is_file():
            continue
        if wanted is not None and not any(p.name.startswith(f".{n}.") for n in wanted):
            continue
        try:
            p.unlink()
            removed.append(p.name)
        except FileNotFoundError:
            pass
    return removed


def read_regular(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file; an OSError for anything else in its place (a named pipe, a device, a folder),
    which is never waited on (`O_NONBLOCK`)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def load_json(data: bytes | str, max_depth: int = 100) -> Any:
    """JSON that anyone may have written: the value, or a ValueError (never a RecursionError) for text that is not
    UTF-8, not JSON, nested deeper than `max_depth` or holding an integer too long to convert. A value that passes
    may be walked by recursive code. (Strings may hold lone surrogates, `"\\udcff"`: archspec writes them itself
    for paths that are not UTF-8.)"""
    try:
        value = json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    problem = tree_problem(value, max_depth - 1)  # (the top value is level 1)
    if problem is not None:
        raise ValueError(problem)
    return value


def tree_problem(value: Any, max_depth: int, max_values: int | None = None) -> str | None:
    """Why a tree of dicts, lists and tuples read from a file is too big to walk, or None: nested more than
    `max_depth` levels below the top, more than `max_values` values in all (a container shared by several others
    counted at every place, as a walk would meet it: pickles can share), or a container inside itself. Without
    recursion, and in time linear in the distinct containers (each one's size is computed once)."""
    sizes: dict[int, int] = {}      # id of a container -> values in it, shared parts counted at every place
    open_: set[int] = set()         # containers whose parts are being counted (one met again: a cycle)
    stack: list[tuple[Any, int, bool]] = [(value, 0, False)]
    while stack:
        node, depth, done = stack.pop()
        if not isinstance(node, (dict, list, tuple)):
            continue
        key = id(node)
        parts = list(node.values()) if isinstance(node, dict) else node
        if done:
            sizes[key] = 1 + (len(node) if isinstance(node, dict) else 0) + sum(
                sizes[id(p)] if isinstance(p, (dict, list, tuple)) else 1 for p in parts)
            open_.discard(key)
            if max_values is not None and sizes[key] > max_values:
                return f"more than {max_values:,} values"
            continue
        if key in sizes:
            continue
        if key in open_:
            return "a container inside itself"
        if depth > max_depth:
            return f"more than {max_depth} levels deep"
        open_.add(key)
        stack.append((node, depth, True))
        stack.extend((p, depth + 1, False) for p in parts if isinstance(p, (dict, list, tuple)) and id(p) not in sizes)
    return None


# what stands in a file's place when it is not a regular file, by stat's file type
FILE_KINDS = {stat.S_IFDIR: "a folder", stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFSOCK: "a socket",
              stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def file_kind(mode: int) -> str:
    """`a folder`, `a named pipe (FIFO)`, ...: what a path of stat mode `mode` is, for messages."""
    return "a regular file" if stat.S_ISREG(mode) else FILE_KINDS.get(stat.S_IFMT(mode), "something else")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
