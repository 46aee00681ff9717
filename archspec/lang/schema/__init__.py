"""The JSON Schema (draft 2020-12) of spec files, and schema errors turned into located diagnostics.

The schema is built from the op registry (so an op's attributes are declared once, in `archspec.lang.ops`) and
shipped as `specs/archspec.schema.json` for editors (`# yaml-language-server: $schema=...`); a test keeps the file
equal to what this package builds. `archspec schema` prints it. Each file is checked on its own, before `extends`
and `imports` are merged, so that an editor and archspec agree on every file.

The package's parts, and what each owns:
  build      the schema from the op registry (`build_schema`, `schema_json`) and its constants
  check      `SchemaChecker`: checking files, with the verdict cache and the manifest of shipped files
  translate  jsonschema errors worded as diagnostics, one small function per validator kind
  __main__   `python -m archspec.lang.schema` regenerates the shipped schema and manifest
This module re-exports the names the rest of archspec uses.
"""

from __future__ import annotations

from archspec.lang.schema.build import (
    AUGMENT_OPS,
    FORMAT_VERSION,
    IDENT_PATTERN,
    ITEM_KEYS,
    NAME_PATTERN,
    PARAM_TYPES,
    RESERVED_NAMES,
    build_schema,
    schema_json,
)
from archspec.lang.schema.check import (
    MAX_CACHE_ENTRIES,
    VERIFIED_NAME,
    SchemaChecker,
    cache_dir,
    cache_info,
    clear_cache,
    shipped_manifest,
)

__all__ = [
    "AUGMENT_OPS", "FORMAT_VERSION", "IDENT_PATTERN", "ITEM_KEYS", "NAME_PATTERN", "PARAM_TYPES", "RESERVED_NAMES",
    "MAX_CACHE_ENTRIES", "VERIFIED_NAME", "SchemaChecker", "build_schema", "cache_dir", "cache_info", "clear_cache",
    "schema_json", "shipped_manifest",
]
