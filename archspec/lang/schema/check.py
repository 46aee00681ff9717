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


class SchemaChecker:
    """Checks parsed files against the schema.

    jsonschema is imported only when a file is not already known to pass: a file whose exact text passed this
    exact schema before is remembered by its SHA-256 in the cache folder (`$ARCHSPEC_CACHE_DIR`, else
    `$XDG_CACHE_HOME/archspec`, else `~/.cache/archspec`; `ARCHSPEC_NO_CACHE=1` turns it off). Only passes are
    remembered, so every problem is always found afresh.
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
            return []
        problems = self.check(doc, display)
        if not problems and key is not None:
            try:
                key.parent.mkdir(parents=True, exist_ok=True)
                key.touch()
            except OSError:
                pass  # a read-only home is no reason to fail
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
