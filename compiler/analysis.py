"""`compile_spec`: spec -> expansion -> networkx IR -> passes, and `Compiled`, the graph with its analysis.

`Compiled` answers what a reader of the paper asks: parameters (exact, with BN buffers apart), MACs under a
stated convention, depth in weighted layers, activation memory, and the same per Table 1 stage and per node.
The analysis is raw and convention-free; a `Convention` (what a "FLOP" is, bytes per element) is chosen where
figures are shown, and `Compiled.under(convention)` shows the same analysis under another one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from archspec.compiler.expand import Block, Expansion, expand
from archspec.compiler.ir import Facts, Graph, build_graph, format_graph
from archspec.compiler.passes.context import PassContext
from archspec.compiler.passes.pipeline import run_pipeline
from archspec.compiler.passes.size import size_warnings
from archspec.lang.diagnostics import Diagnostic, Sources, SpecError
from archspec.lang.ops import fmt_shape
from archspec.lang.spec import Overrides, Spec, load_spec

COUNTS = ("conv", "all")
UNITS = ("macs", "flops")


@dataclass(frozen=True, kw_only=True)
class Convention:
    """How arithmetic and memory are shown (docs/conventions.md): `count` "conv" counts conv and linear
    multiply-adds (the paper's "FLOPs"), "all" adds BN, ReLU, add and pooling; `unit` "macs" shows multiply-adds,
    "flops" two per multiply-add; activations at `dtype_bytes` per element."""

    count: Literal["conv", "all"] = "conv"
    unit: Literal["macs", "flops"] = "macs"
    dtype_bytes: int = 4

    def __post_init__(self) -> None:
        if self.count not in COUNTS or self.unit not in UNITS:
            raise ValueError(f"count must be one of {COUNTS} and unit one of {UNITS}")

    def total(self, f: Facts) -> int:
        """One node's arithmetic in this convention."""
        everything = self.count == "all"
        if self.unit == "flops":
            return 2 * f.macs + (f.extra_flops if everything else 0)
        return f.macs + (f.extra if everything else 0)

    @property
    def unit_name(self) -> str:
        return "FLOPs" if self.unit == "flops" else "MACs"

    @property
    def text(self) -> str:
        if self.unit == "flops":
            return "2 x conv+linear multiply-adds" + (" + BN (2/element), ReLU, add, pooling"
                                                      if self.count == "all" else "")
        return "conv+linear multiply-adds" + (" + BN, ReLU, add, pooling (1 per op)" if self.count == "all"
                                              else " (the paper's \"FLOPs\")")


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
    """A compiled spec: `graph` (the IR, `ir.Graph`, with each node's `Facts`), `spec`, totals, stages and nodes,
    shown under `convention`."""

    def __init__(self, spec: Spec, expansion: Expansion, graph: Graph, convention: Convention = Convention()):
        self.spec, self.expansion, self.graph = spec, expansion, graph
        self.convention = convention
        self._stages: list[Stage] | None = None

    def under(self, convention: Convention) -> "Compiled":
        """The same analysis shown under another convention (nothing is recomputed)."""
        other = copy.copy(self)
        other.convention = convention
        return other

    @property
    def count(self) -> str:
        return self.convention.count

    @property
    def unit(self) -> str:
        return self.convention.unit

    @property
    def dtype_bytes(self) -> int:
        return self.convention.dtype_bytes

    @property
    def warnings(self) -> list[Diagnostic]:
        """Located diagnostics with severity "warning" (E600: a network no machine could hold)."""
        return size_warnings(self.graph, self.dtype_bytes)

    # -- totals --------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.spec.input_shape

    @property
    def output(self) -> str:
        return self.graph.output

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.shape(self.output)

    def facts(self, node: str) -> Facts:
        return self.graph.facts(node)

    def shape(self, node: str) -> tuple[int, ...]:
        shape = self.graph.facts(node).shape
        assert shape is not None, node  # a compiled spec has every shape
        return shape

    def summed(self, key: str, nodes: Iterable[str] | None = None) -> int:
        """The sum of one raw fact (`params`, `buffers`, `macs`, `extra`, ...) over `nodes` (all by default)."""
        g = self.graph
        return sum(getattr(g.facts(n), key) for n in (g if nodes is None else nodes))

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

    def total(self, nodes: Iterable[str] | None = None, convention: Convention | None = None) -> int:
        """The headline figure in the convention (see docs/conventions.md): MACs, or FLOPs."""
        conv, g = convention or self.convention, self.graph
        return sum(conv.total(g.facts(n)) for n in (g if nodes is None else nodes))

    @property
    def depth(self) -> int:
        return self.facts(self.output).depth

    @property
    def activation_bytes(self) -> int:
        return self.summed("activation_elements") * self.dtype_bytes

    # -- stages and nodes ----------------------------------------------------------------------------------

    def stages(self) -> list[Stage]:
        if self._stages is None:
            self._stages = self._make_stages()
        return self._stages

    def _make_stages(self) -> list[Stage]:
        g = self.graph
        members: dict[str, list[str]] = {s: [] for s in g.stages}
        for name in g.order():
            if name != "input":
                members.setdefault(g.node(name).stage, []).append(name)
        out = []
        for stage, nodes in members.items():
            if not nodes:
                continue
            counted = stage_blocks(g, stage)
            out.append(Stage(stage, nodes, self.shape(nodes[-1]), self.summed("params", nodes),
                             self.summed("buffers", nodes), self.summed("macs", nodes), self.summed("extra", nodes),
                             len(counted), counted[0].template if counted else None))
        return out

    def node_rows(self) -> list[dict[str, Any]]:
        rows = []
        for node in self.graph.nodes_in_order():
            f = self.facts(node.name)
            rows.append({"name": node.name, "op": node.op, "shape": list(self.shape(node.name)),
                         "params": f.params, "macs": f.macs, "extra": f.extra, "stage": node.stage,
                         "loc": str(node.loc) if node.loc else None})
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
            "convention": {"count": self.count, "unit": self.unit, "text": self.convention.text},
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


def stage_blocks(graph: Graph, stage: str) -> list[Block]:
    """The blocks of a stage that Table 1 counts (the "x 3" of `conv2_x`), in order.

    The candidates: in each top-level block instance of the stage, the outermost repeated instances inside it
    (`layer2.0` .. `layer2.3`; `stages.1.blocks.0` .. for a repeated top-level stage), or the instance itself
    where nothing inside it repeats. Given the graph, only the residual ones count (those holding an op whose
    OpDef is `residual`, the sum of a shortcut): a pool or a transition that opens the stage is not a block of
    it. A stage with no residual block (a plain net) counts its repeated instances."""
    blocks = graph.blocks
    top = [b for b in blocks.values() if b.parent is None and b.stage == stage]
    inner: dict[str, list[Block]] = {}
    for b in blocks.values():
        if b.copy is None or b.parent is None or b.stage != stage:
            continue
        around = graph.around(b.name)  # (outermost first: around[0] is its top-level instance)
        if not any(blocks[a].copy is not None for a in around[1:]):  # no repeated copy above it, short of the top
            inner.setdefault(around[0], []).append(b)
    candidates = [found for t in top for found in (inner.get(t.name) or [t])]
    residual = [u for b in candidates for u in _residual_units(graph, b)]
    if residual:
        return residual
    return [b for b in candidates if b.copy is not None]  # plain layers: repeated ones (plain-34's "x 3")


def _residual_units(g: Graph, b: Block) -> list[Block]:
    """`b` if a residual op sits in it directly; else its child instances that hold one, outermost first
    (a stage written as a wrapper around unrepeated blocks); [] when it holds none."""
    inside = [n for n in g.members(b.name) if g.node(n).opdef.residual]
    if not inside or any(g.node(n).block == b.name for n in inside):
        return [b] if inside else []
    children = [c for c in g.blocks.values() if c.parent == b.name]
    return [u for c in children for u in _residual_units(g, c)]


def compile_spec(ref: Any, overrides: Overrides = (), input_shape: str | None = None, *, count: str = "conv",
                 unit: str = "macs", dtype_bytes: int = 4, max_nodes: int | None = None,
                 sources: Sources | None = None, checker: Any = None) -> Compiled:
    """Load, expand and analyse a spec; raise SpecError with every problem found. `count`, `unit` and
    `dtype_bytes` choose how the result is shown (its `convention`), not what is computed."""
    from archspec.compiler.expand import MAX_NODES

    convention = Convention(count=count, unit=unit, dtype_bytes=dtype_bytes)  # type: ignore[arg-type]
    spec = load_spec(ref, overrides, input_shape, sources, checker)
    return analyse(spec, convention, max_nodes=MAX_NODES if max_nodes is None else max_nodes)


def analyse(spec: Spec, convention: Convention = Convention(), *, max_nodes: int | None = None) -> Compiled:
    """Expand and analyse an already loaded spec; raise SpecError with every problem found."""
    from archspec.compiler.expand import MAX_NODES

    expansion = expand(spec, MAX_NODES if max_nodes is None else max_nodes)
    graph = build_graph(expansion)
    ctx = run_pipeline(graph, PassContext())
    if ctx.diagnostics:
        raise SpecError(ctx.diagnostics)
    return Compiled(spec, expansion, graph, convention)
