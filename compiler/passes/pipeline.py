"""The pass pipeline, top to bottom. Each entry is (name, pass); a pass that finds problems stops the ones
after it that need its results (counting a graph with shape errors would only repeat them)."""

from __future__ import annotations

from typing import Callable

import networkx as nx

from archspec.compiler.passes.context import PassContext
from archspec.compiler.passes.counts import activation_memory, count_macs, count_params, weighted_depth
from archspec.compiler.passes.lint import check_structure
from archspec.compiler.passes.shapes import infer_shapes
from archspec.compiler.passes.size import check_size

Pass = Callable[[nx.DiGraph, PassContext], None]

PIPELINE: list[tuple[str, Pass]] = [
    ("check_structure", check_structure),
    ("infer_shapes", infer_shapes),
    ("count_params", count_params),
    ("count_macs", count_macs),
    ("activation_memory", activation_memory),
    ("weighted_depth", weighted_depth),
    ("check_size", check_size),
]


def run_pipeline(g: nx.DiGraph, ctx: PassContext, passes: list[tuple[str, Pass]] | None = None) -> PassContext:
    for _name, fn in passes or PIPELINE:
        fn(g, ctx)
        if ctx.diagnostics:
            break
    return ctx
