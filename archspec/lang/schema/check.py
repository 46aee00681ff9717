"""Checking parsed spec files against the schema, with the verdict cache and the shipped manifest.

`SchemaChecker` imports jsonschema only when a file is not already known to pass: a file whose exact text
passed this exact schema before is remembered by its SHA-256, in the cache folder or in the manifest of shipped
files (`specs/schema-verified.txt`, written by `shipped_manifest` through `python -m archspec.lang.schema`).

A verdict in the cache folder is trusted only if it proves itself: the file named by the digest holds an HMAC of
that digest under a random key of the user's own (`schema-ok.key` beside the folder: 32 bytes, mode 0600, owned by
the user, never read through a link). An empty file with the right name, a stale or damaged one, a verdict copied
from another user's cache, a link or a FIFO proves nothing: it is removed and the file is checked afresh. A key
that is not the user's own and private turns the cache off.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from archspec.lang.codes import WRONG_TYPE
from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.schema.build import build_schema
from archspec.lang.schema.translate import dedupe, kind_of, translate
from archspec.lang.yamlsrc import LocDict

VERIFIED_NAME = "schema-verified.txt"
MAX_CACHE_ENTRIES = 2000  # verdicts kept; adding one more removes the least recently used (each a 64-byte file)
KEY_NAME = "schema-ok.key"  # beside the verdict folder, so that `archspec cache clear` leaves it
_KEY_BYTES = 32
_VERDICT_BYTES = 64  # the HMAC-SHA256, in hex
_VERDICT_LABEL = b"archspec schema verdict 1\0"  # what the key signs, before the digest: a verdict, nothing else


class SchemaChecker:
    """Checks parsed files against the schema.

    jsonschema is imported only when a file is not already known to pass: a file whose exact text passed this
    exact schema before is remembered by its SHA-256 in the cache folder (`$ARCHSPEC_CACHE_DIR`, else
    `$XDG_CACHE_HOME/archspec`, else `~/.cache/archspec`; `ARCHSPEC_NO_CACHE=1` turns it off). Only passes are
    remembered, so every problem is always found afresh, and a verdict counts only if its HMAC verifies (see the
    module's docstring). At most `MAX_CACHE_ENTRIES` verdicts are kept: a hit marks its entry as used, and adding
    one beyond the bound removes the least recently used.
    """

    def __init__(self, cache: bool | None = None) -> None:
        self.schema = build_schema()
        self._validator: Any = None
        use_cache = not os.environ.get("ARCHSPEC_NO_CACHE") if cache is None else cache
        self.cache_dir = _cache_dir() / "schema-ok" if use_cache else None
        self._schema_digest = hashlib.sha256(json.dumps(self.schema, sort_keys=True).encode()).digest()
        self.verified = _shipped_verified() if use_cache else set()
        self._secret: bytes | None = None  # the cache's key, read (or made) on first use

    @property
    def validator(self) -> Any:
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self.schema)
        return self._validator

    def digest(self, text: str) -> str:
        return hashlib.sha256(self._schema_digest + text.encode()).hexdigest()

    def _key(self, text: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self.digest(text)

    def _seal(self, entry: Path) -> bytes | None:
        """What the verdict file `entry` must hold (the HMAC of its name); None when the cache has no usable key."""
        if self._secret is None:
            self._secret = _secret(self.cache_dir.parent) if self.cache_dir is not None else b""
        if not self._secret:
            return None
        return hmac.new(self._secret, _VERDICT_LABEL + entry.name.encode(), hashlib.sha256).hexdigest().encode()

    def check_text(self, doc: Any, display: str, text: str) -> list[Diagnostic]:
        """`check`, skipped when this text is known to pass; a pass is remembered."""
        if self.verified and self.digest(text) in self.verified:
            return []  # a shipped file, checked against this very schema when archspec was built
        entry = self._key(text)
        seal = self._seal(entry) if entry is not None else None
        if entry is not None and seal is not None and _holds(entry, seal):
            _touch(entry)  # recently used: the last to be evicted
            return []
        problems = self.check(doc, display)
        if not problems and entry is not None and seal is not None:
            _remember(entry, seal)
        return problems

    def check(self, doc: Any, display: str) -> list[Diagnostic]:
        if not isinstance(doc, LocDict):
            loc = getattr(doc, "loc", None) or Loc(display, 1, 1)
            return [Diagnostic(WRONG_TYPE, f"a spec file is a mapping of keys (`archspec:`, `network:`, ...), "
                               f"found {kind_of(doc)}", loc)]
        diags: list[Diagnostic] = []
        for error in self.validator.iter_errors(doc):
            diags.extend(translate(error, doc, display))
        return dedupe(diags)


def _shipped_verified() -> set[str]:
    """Keys of the shipped spec files that pass this schema (written by `python -m archspec.lang.schema`)."""
    from archspec.lang.resolve import packaged_specs_dir

    try:
        lines = (packaged_specs_dir() / VERIFIED_NAME).read_text(encoding="utf-8").splitlines()
    except OSError:
        return set()
    return {ln.split()[0] for ln in lines if ln and not ln.startswith("#")}


def shipped_manifest() -> str:
    """The manifest of shipped files that pass the schema: `<sha256 of schema + text>  <file>` per line."""
    from archspec.lang.diagnostics import Sources
    from archspec.lang.resolve import packaged_specs_dir
    from archspec.lang.yamlsrc import parse, read_text

    checker = SchemaChecker(cache=False)
    root = packaged_specs_dir()
    lines = ["# Shipped spec files known to pass the schema (regenerate: python -m archspec.lang.schema)."]
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root).as_posix()
        text = read_text(path, rel, Sources())
        if not checker.check(parse(text, rel), rel):
            lines.append(f"{checker.digest(text)}  {rel}")
    return "\n".join(lines) + "\n"


def _cache_dir() -> Path:
    if os.environ.get("ARCHSPEC_CACHE_DIR"):
        return Path(os.environ["ARCHSPEC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "archspec"


def cache_dir() -> Path:
    """The folder of the schema verdict cache (whether or not it exists yet)."""
    return _cache_dir() / "schema-ok"


def _secret(folder: Path, make: bool = True) -> bytes:
    """The cache's key (`KEY_NAME` in `folder`), made on first use; b"" when there is none that can be trusted: one
    that is a link or not a regular file, not owned by this user, readable or writable by others, or damaged."""
    path = folder / KEY_NAME
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return _new_secret(path) if make else b""
    except OSError:
        return b""
    try:
        info = os.fstat(fd)
        owner = os.geteuid() if hasattr(os, "geteuid") else info.st_uid
        if not stat.S_ISREG(info.st_mode) or info.st_uid != owner or info.st_mode & 0o077 or \
                info.st_size != _KEY_BYTES:
            return b""
        secret = os.read(fd, _KEY_BYTES + 1)
        return secret if len(secret) == _KEY_BYTES else b""
    except OSError:
        return b""
    finally:
        os.close(fd)


def _new_secret(path: Path) -> bytes:
    """A new random key at `path` (0600, written whole before it takes the name); another process's key if it won
    the race to make one; b"" if none can be made (a read-only home: no cache, no failure)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".schema-ok.", suffix=".tmp", dir=path.parent)  # mode 0600
    except OSError:
        return b""
    secret = os.urandom(_KEY_BYTES)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        try:
            os.link(tmp, path)  # fails if a key is already there: then that one is the key
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: a race then costs only verdicts checked again
            os.replace(tmp, path)
    except FileExistsError:
        return _secret(path.parent, make=False)
    except OSError:
        return b""
    finally:
        Path(tmp).unlink(missing_ok=True)
    return secret


def _holds(entry: Path, seal: bytes) -> bool:
    """Whether the verdict file `entry` holds `seal`; one that exists and does not (empty, stale, damaged, forged,
    a link, a FIFO) is removed, so that the spec is checked afresh and a pass writes a true verdict."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(entry, flags)
    except FileNotFoundError:
        return False
    except OSError:
        _discard(entry)  # a link (ELOOP) or unreadable: not a verdict
        return False
    try:
        good = stat.S_ISREG(os.fstat(fd).st_mode) and hmac.compare_digest(os.read(fd, _VERDICT_BYTES + 1), seal)
    except OSError:
        good = False
    finally:
        os.close(fd)
    if not good:
        _discard(entry)
    return good


def _discard(entry: Path) -> None:
    try:
        entry.unlink()
    except OSError:
        pass  # a read-only cache, or a folder: it is still not believed


def _touch(key: Path) -> None:
    try:
        os.utime(key, follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass  # a read-only cache still answers


def _remember(key: Path, seal: bytes) -> None:
    """Add a verdict (written whole, then renamed into place), then remove the least recently used beyond
    `MAX_CACHE_ENTRIES`."""
    try:
        key.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".verdict.", suffix=".tmp", dir=key.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(seal)
            os.replace(tmp, key)  # replaces a link or a file there, never writes through one
        finally:
            Path(tmp).unlink(missing_ok=True)
        entries = _entries(key.parent)
        if len(entries) > MAX_CACHE_ENTRIES:
            entries.sort(key=lambda e: e.stat().st_mtime_ns)
            for old in entries[:len(entries) - MAX_CACHE_ENTRIES]:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only home, or another process evicting too, is no reason to fail


def _entries(folder: Path) -> list[Path]:
    """The verdicts in the cache folder (files named by a SHA-256); nothing else there is touched."""
    return [p for p in folder.iterdir() if len(p.name) == 64 and p.is_file()]


def cache_info() -> tuple[Path, int, int]:
    """(folder, number of verdicts, bytes on disk) of the schema verdict cache (each verdict is a 64-byte file)."""
    folder = cache_dir()
    entries = _entries(folder) if folder.is_dir() else []
    return folder, len(entries), sum(getattr(e.stat(), "st_blocks", 0) * 512 for e in entries)


def clear_cache() -> int:
    """Remove every verdict; the number removed."""
    folder = cache_dir()
    entries = _entries(folder) if folder.is_dir() else []
    for e in entries:
        e.unlink(missing_ok=True)
    return len(entries)
