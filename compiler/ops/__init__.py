"""The lowering table: for each primitive op of the registry (`archspec.lang.ops.OPS`), one `Lowering` saying how
it becomes PyTorch (a module with its initialisation, or a function call in the generated `forward`, and whether
its output may be overwritten in place) and what `archspec summary` calls it. The language layer describes an op;
this is the one place that knows its torch form. Lowerings live in the family modules beside this one, named as the
registry's (`layers`, `pooling`, `elementwise`, `structure`); `SubsamplePad` and `DropPath`, the modules torch.nn
lacks, are in `modules` (imported only when a model is built).

Every op of the registry has exactly one lowering and every lowering names an op of the registry: `unmatched()`
says which do not (tests/compiler/test_registry.py checks it), and `lowering_of` names an op it has no entry for.
"""

from __future__ import annotations

from collections import Counter

from archspec.compiler.ops import channels, elementwise, filters, layers, norms, pooling, structure
from archspec.compiler.ops.base import Lowering
from archspec.lang.ops import OPS, PLUGINS
from archspec.lang.ops.plugins import LOWERING_GROUP, discover, plugin_lowerings

_ALL = [entry for family in (structure, layers, norms, filters, pooling, elementwise, channels)
        for entry in family.LOWERINGS] + plugin_lowerings(PLUGINS, discover(LOWERING_GROUP))
LOWERINGS: dict[str, Lowering] = {entry.op: entry for entry in _ALL}


class MissingLowering(LookupError):
    """An op of the registry that the lowering table does not have (a compiler bug, not the user's)."""


def lowering_of(op: str) -> Lowering:
    """The lowering of registry op `op`."""
    try:
        return LOWERINGS[op]
    except KeyError:
        raise MissingLowering(f"op `{op}` is in the registry (archspec/lang/ops/) but has no lowering: add a "
                              f"`Lowering(op=\"{op}\", ...)` to a family module of compiler/ops/") from None


def unmatched() -> list[str]:
    """Every disagreement between the registry and this table, one line each naming the op (empty: none)."""
    problems = [f"op `{op}` has {n} lowerings in compiler/ops/; it needs exactly one"
                for op, n in Counter(entry.op for entry in _ALL).items() if n > 1]
    problems += [f"op `{op}` is in the registry (archspec/lang/ops/) but has no lowering in compiler/ops/"
                 for op in OPS if op not in LOWERINGS]
    problems += [f"compiler/ops/ lowers `{op}`, which is not an op of the registry (archspec/lang/ops/)"
                 for op in LOWERINGS if op not in OPS]
    return problems


__all__ = ["LOWERINGS", "Lowering", "MissingLowering", "lowering_of", "unmatched"]
