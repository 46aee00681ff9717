"""The pass pipeline, top to bottom. Each `Pass` names the facts it needs and those it provides (the order is
checked against them at import); a pass that finds problems stops the ones after it that need its results
(counting a graph with shape errors would only repeat them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from archspec.compiler.ir import Graph
from archspec.compiler.passes.context import PassContext
from archspec.compiler.passes.counts import activation_memory, count_ops, weighted_depth
from archspec.compiler.passes.lint import check_structure
from archspec.compiler.passes.shapes import infer_shapes


@dataclass(frozen=True, kw_only=True)
class Pass:
    name: str
    run: Callable[[Graph, PassContext], None]
    needs: frozenset[str] = frozenset()  # facts (fields of ir.Facts, or "structure") it reads
    provides: frozenset[str] = frozenset()  # facts it writes


def _pass(run: Callable[[Graph, PassContext], None], needs: str = "", provides: str = "") -> Pass:
    return Pass(name=run.__name__, run=run, needs=frozenset(needs.split()), provides=frozenset(provides.split()))


PIPELINE: list[Pass] = [
    _pass(check_structure, provides="structure"),
    _pass(infer_shapes, needs="structure", provides="shape"),
    _pass(count_ops, needs="shape", provides="params buffers macs extra extra_flops"),
    _pass(activation_memory, needs="shape", provides="activation_elements"),
    _pass(weighted_depth, needs="structure", provides="depth"),
]


def check_order(passes: list[Pass]) -> None:
    """Every pass comes after the passes that provide what it needs."""
    have: set[str] = set()
    for p in passes:
        missing = p.needs - have
        if missing:
            raise ValueError(f"pass {p.name} needs {sorted(missing)}, which no pass before it provides")
        have |= p.provides


check_order(PIPELINE)


def run_pipeline(g: Graph, ctx: PassContext, passes: list[Pass] | None = None) -> PassContext:
    for p in passes or PIPELINE:
        p.run(g, ctx)
        if ctx.diagnostics:
            break
    return ctx
