"""Helpers for tests that write small spec files and expect diagnostics from them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from archspec.compiler.expand import expand
from archspec.lang.diagnostics import SpecError
from archspec.lang.spec import load_spec


# a library of one's own that re-imports the shipped one and edits its deep stem's first conv
STEM_LIB = """\
    archspec: 1
    imports: ["archspec:lib/resnet.yaml"]
    blocks:
      deep_stem:
        edit:
          "0": {out: 24}
    """


def write(folder: Path, name: str, text: str) -> Path:
    """`text`, dedented, as the file `name` in `folder` (its parent folders made)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def problems(ref, *overrides: str) -> list:
    """The diagnostics of expanding `ref` (with `--set` overrides), shapes checked; it must fail."""
    with pytest.raises(SpecError) as e:
        expand(load_spec(ref, list(overrides)), check_shapes=True)
    return e.value.diagnostics
