"""Checking parsed spec files against the schema, with the verdict cache and the shipped manifest.

`SchemaChecker` imports jsonschema only when a file is not already known to pass: a file whose exact text
passed this exact schema before is remembered by its SHA-256, in the cache folder or in the manifest of shipped
files (`specs/schema-verified.txt`, written by `shipped_manifest` through `python -m archspec.lang.schema`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from archspec.lang.diagnostics import Diagnostic, Loc
from archspec.lang.schema.build import build_schema
from archspec.lang.schema.translate import dedupe, kind_of, translate
from archspec.lang.yamlsrc import LocDict

VERIFIED_NAME = "schema-verified.txt"
MAX_CACHE_ENTRIES = 2000  # verdicts kept; adding one more removes the least recently used (each is an empty file)


class SchemaChecker:
    """Checks parsed files against the schema.

    jsonschema is imported only when a file is not already known to pass: a file whose exact text passed this
    exact schema before is remembered by its SHA-256 in the cache folder (`$ARCHSPEC_CACHE_DIR`, else
    `$XDG_CACHE_HOME/archspec`, else `~/.cache/archspec`; `ARCHSPEC_NO_CACHE=1` turns it off). Only passes are
    remembered, so every problem is always found afresh. At most `MAX_CACHE_ENTRIES` verdicts are kept: a hit
    marks its entry as used, and adding one beyond the bound removes the least recently used.
    """

    def __init__(self, cache: bool | None = None) -> None:
        self.schema = build_schema()
        self._validator: Any = None
        use_cache = not os.environ.get("ARCHSPEC_NO_CACHE") if cache is None else cache
        self.cache_dir = _cache_dir() / "schema-ok" if use_cache else None
        self._schema_digest = hashlib.sha256(json.dumps(self.schema, sort_keys=True).encode()).digest()
        self.verified = _shipped_verified() if use_cache else set()

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

    def check_text(self, doc: Any, display: str, text: str) -> list[Diagnostic]:
        """`check`, skipped when this text is known to pass; a pass is remembered."""
        if self.verified and self.digest(text) in self.verified:
            return []  # a shipped file, checked against this very schema when archspec was built
        key = self._key(text)
        if key is not None and key.exists():
            _touch(key)  # recently used: the last to be evicted
            return []
        problems = self.check(doc, display)
        if not problems and key is not None:
            _remember(key)
        return problems

    def check(self, doc: Any, display: str) -> list[Diagnostic]:
        if not isinstance(doc, LocDict):
            loc = getattr(doc, "loc", None) or Loc(display, 1, 1)
            return [Diagnostic("E100", f"a spec file is a mapping of keys (`archspec:`, `network:`, ...), "
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


def _touch(key: Path) -> None:
    try:
        os.utime(key)
    except OSError:
        pass  # a read-only cache still answers


def _remember(key: Path) -> None:
    """Add a verdict, then remove the least recently used beyond `MAX_CACHE_ENTRIES`."""
    try:
        key.parent.mkdir(parents=True, exist_ok=True)
        key.touch()
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
    """(folder, number of verdicts, bytes on disk) of the schema verdict cache (each verdict is an empty file)."""
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
