"""`compile_spec`: spec -> expansion -> networkx IR -> passes, and `Compiled`, the graph with its analysis.

`Compiled` answers what a reader of the paper asks: parameters (exact, with BN buffers apart), MACs under a
stated convention, depth in weighted layers, activation memory, and the same per Table 1 stage and per node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import networkx as nx

from archspec.compiler.expand import Expansion, expand
from archspec.compiler.ir import build_graph, format_graph, order
from archspec.lang.ops import fmt_shape
from archspec.compiler.passes.context import PassContext
from archspec.compiler.passes.pipeline import run_pipeline
from archspec.lang.diagnostics import Sources, SpecError
from archspec.lang.spec import Overrides, Spec, load_spec


@dataclass
class Stage:
    name: str
    nodes: list[str]
    output: tuple[int, ...]
    params: int
    buffers: int
    macs: int
    extra: int
    blocks: int  # residual blocks (the "x3" of Table 1), 0 for stages of plain layers
    block: str | None  # their template


class Compiled:
    """A compiled spec: `graph` (networkx.DiGraph with per-node `meta`), `spec`, totals, stages and nodes."""

    def __init__(self, spec: Spec, expansion: Expansion, graph: nx.DiGraph, ctx: PassContext, unit: str = "macs"):
        self.spec, self.expansion, self.graph = spec, expansion, graph
        self.count, self.unit = ctx.count, unit
        self.dtype_bytes = ctx.dtype_bytes
        self.warnings = list(ctx.warnings)  # located diagnostics with severity "warning" (e.g. E600: too big)
        self._stages: list[Stage] | None = None

    # -- totals --------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.spec.input_shape

    @property
    def output(self) -> str:
        return self.graph.graph["output"]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.meta(self.output)["shape"]

    def meta(self, node: str) -> dict[str, Any]:
        return self.graph.nodes[node]["meta"]

    def summed(self, key: str, nodes: Iterable[str] | None = None) -> int:
        return sum(self.meta(n).get(key, 0) for n in (self.graph.nodes if nodes is None else nodes))

    @property
    def params(self) -> int:
        return self.summed("params")

    @property
    def buffers(self) -> int:
        return self.summed("buffers")

    @property
    def macs(self) -> int:
        """Conv and linear multiply-adds (the paper's and torchvision's "FLOPs")."""
        return self.summed("macs")

    @property
    def extra(self) -> int:
        """BN, ReLU, add and pooling arithmetic (counted in `total` when count == "all")."""
        return self.summed("extra")

    def total(self, nodes: Iterable[str] | None = None) -> int:
        """The headline figure in the chosen convention (see docs/conventions.md): MACs, or FLOPs."""
        return self.summed("total_flops" if self.unit == "flops" else "total_macs", nodes)

    @property
    def depth(self) -> int:
        return self.meta(self.output)["depth"]

    @property
    def activation_bytes(self) -> int:
        return self.summed("activation_bytes")

    @property
    def convention(self) -> str:
        if self.unit == "flops":
            return "2 x conv+linear multiply-adds" + (" + BN (2/element), ReLU, add, pooling" if self.count == "all"
                                                      else "")
        return "conv+linear multiply-adds" + (" + BN, ReLU, add, pooling (1 per op)" if self.count == "all"
                                              else " (the paper's \"FLOPs\")")

    # -- stages and nodes ----------------------------------------------------------------------------------

    def stages(self) -> list[Stage]:
        if self._stages is None:
            self._stages = self._make_stages()
        return self._stages

    def _make_stages(self) -> list[Stage]:
        members: dict[str, list[str]] = {s: [] for s in self.graph.graph["stages"]}
        for name in order(self.graph):
            stage = self.graph.nodes[name]["stage"]
            if name != "input":
                members.setdefault(stage, []).append(name)
        blocks = self.expansion.blocks
        out = []
        for stage, nodes in members.items():
            if not nodes:
                continue
            counted = stage_blocks(blocks, stage)
            out.append(Stage(stage, nodes, self.meta(nodes[-1])["shape"], self.summed("params", nodes),
                             self.summed("buffers", nodes), self.summed("macs", nodes), self.summed("extra", nodes),
                             len(counted), counted[0].template if counted else None))
        return out

    def node_rows(self) -> list[dict[str, Any]]:
        rows = []
        for name in order(self.graph):
            data = self.graph.nodes[name]
            m = data["meta"]
            rows.append({"name": name, "op": data["op"], "shape": list(m["shape"]), "params": m.get("params", 0),
                         "macs": m.get("macs", 0), "extra": m.get("extra", 0), "stage": data["stage"],
                         "loc": str(data["loc"]) if data["loc"] else None})
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec.display,
            "input": list(self.input_shape),
            "output": list(self.output_shape),
            "params": self.params,
            "buffers": self.buffers,
            "macs": self.macs,
            "extra_ops": self.extra,
            "total": self.total(),
            "convention": {"count": self.count, "unit": self.unit, "text": self.convention},
            "layers": self.depth,
            "activation_bytes": self.activation_bytes,
            "stages": [{"name": s.name, "output": list(s.output), "params": s.params, "macs": s.macs,
                        "extra": s.extra, "blocks": s.blocks, "block": s.block} for s in self.stages()],
            "nodes": self.node_rows(),
        }

    def __deepcopy__(self, memo: dict) -> "Compiled":
        return self  # an analysis result is never changed after compiling: copies of a model share it

    def format(self, locations: bool = True) -> str:
        """The IR as text (one line per node with its shape and YAML location)."""
        return format_graph(self.graph, locations=locations)

    def __repr__(self) -> str:
        return (f"<Compiled {self.name}: {fmt_shape(self.input_shape)} -> {fmt_shape(self.output_shape)}, "
                f"{self.params:,} params, {self.macs:,} MACs>")


def stage_blocks(blocks: dict[str, Any], stage: str) -> list[Any]:
    """The residual blocks of a stage: in each top-level block instance of the stage, the outermost repeated
    instances inside it (`layer2.0` .. `layer2.3`; `stages.1.blocks.0` .. for a repeated top-level stage), or
    the instance itself where nothing inside it repeats."""
    top = [b for b in blocks.values() if b.parent is None and b.stage == stage]
    inner: dict[str, list[Any]] = {}
    for b in blocks.values():
        if b.copy is not None and b.parent is not None and b.stage == stage and _outermost_inner_repeat(blocks, b):
            inner.setdefault(_root(blocks, b).name, []).append(b)
    return [found for t in top for found in (inner.get(t.name) or [t])]


def _root(blocks: dict[str, Any], b: Any) -> Any:
    while b.parent is not None:
        b = blocks[b.parent]
    return b


def _outermost_inner_repeat(blocks: dict[str, Any], b: Any) -> bool:
    """Is `b` a repeated copy with no repeated copy above it, short of its top-level instance?"""
    up = blocks.get(b.parent) if b.parent else None
    while up is not None and up.parent is not None:
        if up.copy is not None:
            return False
        up = blocks.get(up.parent) if up.parent else None
    return True


def compile_spec(ref: Any, overrides: Overrides = (), input_shape: str | None = None, *, count: str = "conv",
                 unit: str = "macs", dtype_bytes: int = 4, max_nodes: int | None = None,
                 sources: Sources | None = None, checker: Any = None) -> Compiled:
    """Load, expand and analyse a spec; raise SpecError with every problem found."""
    from archspec.compiler.expand import MAX_NODES

    spec = load_spec(ref, overrides, input_shape, sources, checker)
    return analyse(spec, count=count, unit=unit, dtype_bytes=dtype_bytes,
                   max_nodes=MAX_NODES if max_nodes is None else max_nodes)


def analyse(spec: Spec, *, count: str = "conv", unit: str = "macs", dtype_bytes: int = 4,
            max_nodes: int | None = None) -> Compiled:
    """Expand and analyse an already loaded spec; raise SpecError with every problem found."""
    from archspec.compiler.expand import MAX_NODES

    expansion = expand(spec, MAX_NODES if max_nodes is None else max_nodes)
    graph = build_graph(expansion)
    ctx = run_pipeline(graph, PassContext(count=count, dtype_bytes=dtype_bytes))
    if ctx.diagnostics:
        raise SpecError(ctx.diagnostics)
    return Compiled(spec, expansion, graph, ctx, unit)
