"""`archspec validate`: everything that can be known about a spec without counting: files, schema, params,
constraints, templates, references, cycles, unused nodes and every shape. Never imports torch or networkx.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archspec.lang.spec import Overrides

from archspec.lang.diagnostics import Diagnostic, Sources, SpecError


@dataclass(repr=False)
class Result:
    ref: str
    file: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    expansion: Any = None  # compiler.expand.Expansion when valid

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    def __repr__(self) -> str:  # short: the expansion of ResNet-1202 alone would print megabytes
        errors = sum(d.severity == "error" for d in self.diagnostics)
        nodes = f", nodes={len(self.expansion.nodes) - 1}" if self.expansion is not None else ""
        return (f"Result(spec={self.ref!r}, ok={self.ok}, errors={errors}, "
                f"warnings={len(self.diagnostics) - errors}{nodes})")

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"spec": self.ref, "file": self.file, "valid": self.ok,
                               "diagnostics": [d.as_dict() for d in self.diagnostics]}
        if self.expansion is not None:
            out["name"] = self.expansion.spec.name
            out["nodes"] = len(self.expansion.nodes) - 1
        return out


def validate(ref: str | Path, overrides: "Overrides" = (), input_shape: str | None = None,
             sources: Sources | None = None, checker: Any = None, max_nodes: int | None = None) -> Result:
    """Check one spec; problems come back as diagnostics, never as exceptions (a `max_nodes` below 1 is a
    ValueError: it is the caller's mistake, not the spec's)."""
    if max_nodes is not None and (isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1):
        raise ValueError(f"max_nodes must be a whole number >= 1, got {max_nodes!r}")
    from archspec.compiler.expand import MAX_NODES, expand
    from archspec.lang.spec import load_spec

    from archspec.lang.resolve import locate
    from archspec.lang.yamlsrc import display_path

    sources = sources if sources is not None else Sources()
    result = Result(str(ref), str(ref))
    try:
        result.file = display_path(locate(ref))
    except SpecError:
        pass  # reported again, with the rest, below
    try:
        spec = load_spec(ref, overrides, input_shape, sources, checker)
        result.file = spec.display
        result.expansion = expand(spec, max_nodes or MAX_NODES, check_shapes=True)
    except SpecError as e:
        result.diagnostics = e.diagnostics
    return result
