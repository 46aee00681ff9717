"""The IR: a networkx DiGraph (`Graph`) with one typed `Node` per primitive op and one `Facts` record of what the
analyses found about it.

A `Node` is made once, by `build_graph`, and never changes: `op` (a registry key, `opdef` its definition), `attrs`
(a read-only mapping), `inputs` (the producers, in order), `loc` (file:line:col of the YAML that made it), `scope`
(the enclosing block instances, outermost first: the block hierarchy), `stage` (the Table 1 row). Passes write
into the node's `Facts` (shape, raw counts, activation elements, depth), never into new attributes. Each edge
carries the input `ports` it feeds. The graph answers structural questions itself: `order()`, `users(name)`,
`members(block)`, and `name`, `output`, `stages`, `blocks`, `spec` of the network.

Counts are raw (MACs and the other ops' arithmetic, both as MACs and as FLOPs): the counting convention is chosen
where numbers are shown (`archspec.compiler.analysis.Convention`), so any two compiled specs compare.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, NamedTuple

import networkx as nx

from archspec.lang.diagnostics import Loc
from archspec.lang.ops import OPS, Counts, OpDef, fmt_shape

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.expand import Block, Expansion
    from archspec.lang.spec import Spec


class FrozenAttrs(dict):
    """A node's attributes: a dict that refuses changes (analyses write into `Facts` instead), yet pickles."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("node attributes are read-only; passes write into the node's Facts (graph.facts(name))")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (FrozenAttrs, (dict(self),))


class Node(NamedTuple):
    """One primitive op of the network, as the spec made it (immutable: a named tuple, the cheapest record Python
    makes, as ResNet-1202 has 5,406 of them)."""

    name: str
    op: str
    attrs: Mapping[str, Any]
    inputs: tuple[str, ...]
    loc: Loc | None
    scope: tuple[str, ...]  # the enclosing block instances, outermost first
    stage: str
    in_locs: tuple[Loc | None, ...] = ()  # where each input was named (`in:`), for diagnostics

    @property
    def opdef(self) -> OpDef:
        return OPS[self.op]

    @property
    def block(self) -> str | None:
        """The innermost block instance around the node (None at the network's top level)."""
        return self.scope[-1] if self.scope else None

    @property
    def path(self) -> tuple[str, ...]:
        """The node's qualified name in the lowered module, as its parts (`layer1`, `0`, `conv1`): the module
        tree that `lower()` builds and `archspec summary` shows. The block hierarchy is `scope`."""
        return tuple(self.name.split("."))

    def within(self, block: str) -> bool:
        """Is the node inside the block instance `block` (at any depth)?"""
        return block in self.scope


@dataclass(slots=True)
class Facts:
    """What the analyses found about one node. All counts are raw; conventions apply where they are shown."""

    shape: tuple[int, ...] | None = None
    params: int = 0  # trainable parameters
    buffers: int = 0  # non-trainable state (BN running statistics and batch counter)
    macs: int = 0  # conv and linear multiply-adds
    extra: int = 0  # the other ops' arithmetic, one per op (MAC-equivalents)
    extra_flops: int = 0  # the same in FLOPs
    activation_elements: int = 0  # elements of the output that are stored (0 for views)
    depth: int = 0  # weighted layers on the longest path from the input, this node included
    counted: bool = False

    def count(self, c: Counts) -> None:
        self.params, self.buffers, self.macs, self.extra, self.extra_flops = (
            c.params, c.buffers, c.macs, c.extra, c.extra_flops)
        self.counted = True


class Graph(nx.DiGraph):
    """The IR graph: networkx's DiGraph, whose nodes hold a `Node` (`node`) and its `Facts` (`facts`)."""

    def node(self, name: str) -> Node:
        return self._node[name]["node"]

    def facts(self, name: str) -> Facts:
        return self._node[name]["facts"]

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self._node[name]["facts"].shape

    def nodes_in_order(self) -> Iterator[Node]:
        for name in self.order():
            yield self._node[name]["node"]

    # -- the network ---------------------------------------------------------------------------------------

    @property
    def output(self) -> str:
        return self.graph["output"]

    @property
    def stages(self) -> list[str]:
        return self.graph["stages"]

    @property
    def blocks(self) -> dict[str, Block]:
        return self.graph["blocks"]

    @property
    def spec(self) -> Spec:
        return self.graph["spec"]

    # -- structure -----------------------------------------------------------------------------------------

    def order(self) -> list[str]:
        """Nodes in a topological order that keeps the spec's own order where it can (stable, readable)."""
        cached = self.graph.get("_order")
        if cached is not None and len(cached) == self.number_of_nodes():
            return cached
        position = {n: i for i, n in enumerate(self._node)}
        if all(position[p] < i for i, d in enumerate(self._node.values()) for p in d["node"].inputs):
            result = list(self._node)  # the spec's order is already one (unless an `in:` names a later item)
        else:
            # networkx's own sort, keyed by the spec's order: for each step, the earliest node whose inputs are
            # done (what the line above finds when no item reads a later one; dag.topological_order is the
            # networkx-free copy that `archspec validate` runs: importing networkx would add 0.12 s to its 0.28 s)
            result = list(nx.lexicographical_topological_sort(self, key=position.__getitem__))
        self.graph["_order"] = result
        return result

    def users(self, name: str) -> list[str]:
        """The nodes that read `name`, in order (a node reading it twice is listed twice)."""
        users = self.graph.get("_users")
        if users is None or len(users) != self.number_of_nodes():
            users = {n: [] for n in self._node}
            for consumer in self.order():
                for p in self._node[consumer]["node"].inputs:
                    users[p].append(consumer)
            self.graph["_users"] = users
        return users[name]

    def members(self, block: str) -> list[str]:
        """The nodes inside the block instance `block` (at any depth), in order."""
        index = self.graph.get("_members")
        if index is None:
            index = {}
            for name in self.order():
                for b in self._node[name]["node"].scope:
                    index.setdefault(b, []).append(name)
            self.graph["_members"] = index
        return index.get(block, [])

    def around(self, block: str) -> tuple[str, ...]:
        """The block instances around the block instance `block`, outermost first (a node's `scope`, for a
        block): the one walk up the block hierarchy that reports, diagrams and diffs share."""
        chain: list[str] = []
        parent = self.blocks[block].parent
        while parent is not None:
            chain.append(parent)
            parent = self.blocks[parent].parent
        return tuple(reversed(chain))

    def table(self) -> dict[str, tuple[str, ...]]:
        """The node table (`name -> its inputs`) that the networkx-free algorithms of `compiler.dag` take."""
        return {n: d["node"].inputs for n, d in self._node.items()}


def build_graph(expansion: Expansion) -> Graph:
    """The expansion's node table as a Graph, in creation order (which is a topological order of the spec)."""
    spec = expansion.spec
    g = Graph(name=spec.name, output=expansion.output, stages=list(expansion.stages), blocks=expansion.blocks,
              spec=spec)
    make = Node._make  # (the fields in order; a named tuple made without keyword handling: 5,406 of them in
    # ResNet-1202, where the graph is built in a few milliseconds)
    g.add_nodes_from((n.name, {"node": make((n.name, n.op, FrozenAttrs(n.attrs), tuple(n.inputs), n.loc,
                                             tuple(n.scope), n.stage, tuple(n.in_locs))), "facts": Facts()})
                     for n in expansion.nodes.values())
    ports: dict[tuple[str, str], list[int]] = {}
    for n in expansion.nodes.values():
        for port, producer in enumerate(n.inputs):
            ports.setdefault((producer, n.name), []).append(port)
    g.add_edges_from((u, v, {"ports": p}) for (u, v), p in ports.items())
    return g


def describe_attrs(op: str, attrs: Mapping[str, Any]) -> str:
    """The attributes that differ from the op's defaults, as `k=v` (for printing)."""
    spec = OPS[op]
    parts = []
    for k, v in attrs.items():
        a = spec.attrs.get(k)
        if a is not None and not a.required and v == a.default:
            continue
        if isinstance(v, list):
            v = "x".join(map(str, v)) if k != "shape" else fmt_shape(tuple(v))
        parts.append(f"{k}={v}")
    return ", ".join(parts)


def format_graph(g: Graph, *, locations: bool = True) -> str:
    """The graph as readable text, one line per node, like torch.fx's graph printout:

        %layer1.0.conv1 = conv[out=64, kernel=3, pad=1](%maxpool)  : 64x56x56   # specs/lib/resnet.yaml:62:9
    """
    lines = [f"graph {g.name} -> %{g.output}"]
    for node in g.nodes_in_order():
        args = ", ".join(f"%{p}" for p in node.inputs)
        attrs = describe_attrs(node.op, node.attrs)
        text = f"  %{node.name} = {node.op}" + (f"[{attrs}]" if attrs else "") + f"({args})"
        shape = g.shape(node.name)
        if shape is not None:
            text += f"  : {fmt_shape(shape)}"
        if locations and node.loc is not None and node.loc.line:
            text += f"   # {node.loc}"
        lines.append(text)
    return "\n".join(lines)
