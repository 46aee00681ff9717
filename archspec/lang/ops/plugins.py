"""Ops a user adds without forking archspec: installed packages that register op families.

A plugin is an installed Python package that declares entry points in two groups, mirroring archspec's own split
between the language (which never imports torch) and the compiler (which knows torch):

```toml
# the plugin's pyproject.toml
[project.entry-points."archspec.ops"]
layer_scale = "archspec_layer_scale.ops"        # a module with OPS: a list of OpDef
[project.entry-points."archspec.lowerings"]
layer_scale = "archspec_layer_scale.lowering"   # a module with LOWERINGS: a list of Lowering
```

`OPS` are `archspec.lang.ops.base.OpDef` records (attributes, shape rule, counts, how diagrams and Table 1 show
it), written like archspec's own families (`archspec/lang/ops/layers.py`); that module imports only
`archspec.lang`. `LOWERINGS` are `archspec.compiler.ops.base.Lowering` records (the torch module or function,
initialisation), like `archspec/compiler/ops/layers.py`, importing torch inside their functions. Everything else
follows from the registry: the schema specs are checked against (`archspec schema`), `archspec ops`, expansion,
shapes, counts, diagrams, lowering and export.

Spec text still never runs code: a spec names an op; only packages the user installed define one. A plugin is
loaded when archspec's registry is first imported; `ARCHSPEC_NO_PLUGINS=1` loads none. A plugin that cannot be
imported, that defines an op archspec or another plugin already has, or whose entries are not `OpDef`/`Lowering`
records is an error naming the plugin and the fix (never a half-registered op).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from archspec.lang.errors import UserError

GROUP = "archspec.ops"
LOWERING_GROUP = "archspec.lowerings"
DISABLE = "ARCHSPEC_NO_PLUGINS"


class PluginError(UserError):
    """An installed op plugin that cannot be used (the message names it and the fix)."""


@dataclass(frozen=True)
class Plugin:
    name: str  # the entry point's name
    target: str  # what it points at (`module` or `module:attribute`)
    distribution: str  # the installed package that declares it
    module: Any  # the family: a module (or object) with OPS and LOWERINGS


def _fix(name: str) -> str:
    return f"fix or uninstall the package that provides it, or set {DISABLE}=1 to run without plugins"


def discover(group: str = GROUP) -> list[Plugin]:
    """The installed plugins of `group` (ops, or their lowerings), imported, in a stable order (by name)."""
    if os.environ.get(DISABLE):
        return []
    from importlib.metadata import entry_points

    found = []
    for ep in sorted(entry_points(group=group), key=lambda e: (e.name, e.value)):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        try:
            module = ep.load()
        except Exception as e:  # noqa: BLE001 - any failure of third-party code is reported as the plugin's
            raise PluginError(f"{'op' if group == GROUP else 'lowering'} plugin `{ep.name}` ({ep.value}, from "
                              f"{dist}) failed to import: "
                              f"{type(e).__name__}: {e}; {_fix(ep.name)}") from None
        found.append(Plugin(ep.name, ep.value, dist, module))
    return found


def plugin_ops(plugins: list[Plugin], builtin: dict[str, Any]) -> dict[str, Any]:
    """The op definitions of `plugins`, checked: each an OpDef with an identifier for a name that no built-in op
    and no other plugin has."""
    from archspec.lang.ops.base import OpDef

    out: dict[str, Any] = {}
    owner: dict[str, str] = {}
    for p in plugins:
        entries = getattr(p.module, "OPS", None)
        if not isinstance(entries, (list, tuple)) or not entries:
            raise PluginError(f"op plugin `{p.name}` ({p.target}) has no OPS list of op definitions; "
                              f"{_fix(p.name)}")
        for op in entries:
            if not isinstance(op, OpDef):
                raise PluginError(f"op plugin `{p.name}` lists {type(op).__name__} in OPS, not an OpDef "
                                  f"(archspec.lang.ops.base.OpDef); {_fix(p.name)}")
            if not op.name.isidentifier() or op.name == "input":
                raise PluginError(f"op plugin `{p.name}` defines an op named `{op.name}`: an op's name must be "
                                  f"an identifier other than `input`; {_fix(p.name)}")
            if op.name in builtin:
                raise PluginError(f"op plugin `{p.name}` defines `{op.name}`, which is one of archspec's own ops; "
                                  f"rename it in the plugin; {_fix(p.name)}")
            if op.name in out:
                raise PluginError(f"op plugins `{owner[op.name]}` and `{p.name}` both define `{op.name}`; "
                                  f"uninstall one of them, or set {DISABLE}=1")
            out[op.name] = op
            owner[op.name] = p.name
    return out


def plugin_lowerings(ops: list[Plugin], lowerings: list[Plugin]) -> list[Any]:
    """The lowerings the `archspec.lowerings` plugins declare, each op of an `archspec.ops` plugin lowered once."""
    out = []
    for p in lowerings:
        entries = getattr(p.module, "LOWERINGS", None)
        if not isinstance(entries, (list, tuple)):
            raise PluginError(f"lowering plugin `{p.name}` ({p.target}) has no LOWERINGS list; {_fix(p.name)}")
        out.extend(entries)
    lowered = {getattr(e, "op", None) for e in out}
    for p in ops:
        missing = [op.name for op in p.module.OPS if op.name not in lowered]
        if missing:
            raise PluginError(f"op plugin `{p.name}` defines {', '.join(f'`{m}`' for m in missing)}, which no "
                              f"`{LOWERING_GROUP}` entry point lowers to torch; {_fix(p.name)}")
    return out


def describe(plugins: list[Plugin]) -> list[str]:
    """One line per plugin for `archspec ops`: its name, package and ops."""
    return [f"{p.name} (from {p.distribution}): " + ", ".join(op.name for op in p.module.OPS) for p in plugins]


__all__ = ["DISABLE", "GROUP", "LOWERING_GROUP", "Plugin", "PluginError", "discover", "describe", "plugin_lowerings", "plugin_ops"]
