"""What expansion makes (the node table: `IRNode`, `Block`, `Expansion`) and the state of one expansion while it
runs (`Build`): the nodes and blocks so far, the diagnostics, the shapes known, and the node, step and expression
work budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archspec.lang.codes import TOO_MANY_NODES, TOO_MUCH_EXPR_WORK
from archspec.lang.diagnostics import Diagnostic, Loc, SpecError
from archspec.lang.expr import Meter
from archspec.lang.spec import Spec
from archspec.lang.values import Failed

MAX_NODES = 100_000  # ResNet-1202 has 5,406 (600 of them the drop-path identities)
MAX_NESTING = 32  # blocks within blocks
# Steps of expression work (`archspec.lang.expr.work`, E501) per node of the node budget: 2,000,000 by default,
# 0.5 s of list-walking expressions, 2-3 s of the slowest per step (chains of calls). The shipped specs take at most
# 11 steps per node they make (ResNet-1202: 45,000 steps in all), so a network at the node budget has room to spare.
WORK_PER_NODE = 20


@dataclass
class IRNode:
    name: str
    op: str
    attrs: dict[str, Any]
    inputs: list[str]
    loc: Loc | None
    scope: tuple[str, ...]  # the enclosing block instances, outermost first
    stage: str
    in_locs: list[Loc | None] = field(default_factory=list)
    attr_locs: dict[str, Loc | None] = field(default_factory=dict)  # where each attribute's value was written


@dataclass
class Block:
    """One block template instance (`use:`), for reports and diagrams."""

    name: str
    template: str
    args: dict[str, Any]
    loc: Loc | None
    stage: str
    parent: str | None
    inputs: list[str] = field(default_factory=list)
    output: str = ""
    copy: tuple[int, int] | None = None  # (index, count) when made by `repeat`
    group: str | None = None  # the repeat's own name (`layer2` for `layer2.0` .. `layer2.3`) when made by one


@dataclass
class Expansion:
    spec: Spec
    nodes: dict[str, IRNode]
    blocks: dict[str, Block]
    output: str
    stages: list[str]


class Build:
    """One expansion in progress. Every piece of the expander reads and writes it; nothing else does."""

    def __init__(self, spec: Spec, max_nodes: int = MAX_NODES):
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise ValueError(f"max_nodes must be a whole number >= 1, got {max_nodes!r}")
        self.spec = spec
        self.max_nodes = max_nodes
        self.nodes: dict[str, IRNode] = {}
        self.blocks: dict[str, Block] = {}
        self.diags: list[Diagnostic] = []
        self.shapes: dict[str, Any] = {}  # shapes computed for `in_channels` / `in_shape`
        self.shape_failed: set[str] = set()  # nodes whose shape failed (reported once) or that read one
        self.size_memo: dict[str, int] = {}
        self.stages: list[str] = []
        self.silent = 0  # failures that follow from a problem already reported (not reported again)
        self.steps = 0  # items visited, made or not: `when` can skip nodes but not the work
        self.suggested = 0  # did-you-mean searches made for dangling references (bounded: frame.MAX_SUGGESTIONS)
        self.max_steps = 10 * max_nodes
        self.max_work = WORK_PER_NODE * max_nodes  # steps of all the expressions evaluated (E501)
        self.meter: Meter | None = None  # what they have spent (set while the expansion runs)

    def fail(self, e: Failed) -> None:
        if e.diagnostic is not None and e.diagnostic.code == TOO_MUCH_EXPR_WORK:  # the expressions' budget: no more
            raise SpecError(self.diags + [e.diagnostic])
        if e.diagnostic is not None:
            self.diags.append(e.diagnostic)
        else:
            self.silent += 1  # a follow-on of a problem reported elsewhere

    @property
    def problems(self) -> int:
        """Problems met so far, reported or silent: whether something failed since, not what to print."""
        return len(self.diags) + self.silent

    def over_budget(self, message: str, loc: Loc | None, hint: str) -> SpecError:
        """The error that stops expansion: what was found so far, and the budget that ran out."""
        return SpecError(self.diags + [Diagnostic(TOO_MANY_NODES, message, loc, hint=hint)])

    def add(self, node: IRNode) -> None:
        if len(self.nodes) >= self.max_nodes:
            raise self.over_budget(f"the network expands beyond the budget of {self.max_nodes:,} nodes", node.loc,
                                   "check `repeat` counts; `--max-nodes` raises the budget")
        self.nodes[node.name] = node

    def scope_path(self, block: str | None) -> tuple[str, ...]:
        """The block instances enclosing `block` (itself included), outermost first."""
        out = []
        while block is not None and block not in out:
            out.append(block)
            block = self.blocks[block].parent
        return tuple(reversed(out))


def show_value(value: Any) -> str:
    """A value as the spec would write it: `wide`, 64.5, [3, 3], true."""
    import json

    if isinstance(value, str):
        return f"`{value}`"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
