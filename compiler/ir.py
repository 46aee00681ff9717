"""The IR: a networkx DiGraph with one node per primitive op.

Node attributes (set once, by `build_graph`): `op` (a registry key), `attrs` (read-only mapping), `inputs` (the
producers, in order), `loc` (file:line:col of the YAML that made it), `scope` (the enclosing block instances),
`stage` (the Table 1 row). Analyses write into the node's `meta` dict (`shape`, `params`, `buffers`, `macs`,
`extra`, `activation_bytes`), never into new attributes. Each edge carries the input `ports` it feeds.
Graph attributes: `name`, `output`, `stages` (row order), `blocks` (block instances), `spec`.
"""

from __future__ import annotations

from typing import Any, Iterator

import networkx as nx

from archspec.lang.ops import OPS, fmt_shape


class FrozenAttrs(dict):
    """A node's attributes: a dict that refuses changes (analyses write into `meta` instead), yet pickles."""

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("node attributes are read-only; passes write into node['meta']")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (FrozenAttrs, (dict(self),))


def build_graph(expansion: Any) -> nx.DiGraph:
    """The expansion's node table as a DiGraph, in creation order (which is a topological order of the spec)."""
    spec = expansion.spec
    g = nx.DiGraph(name=spec.name, output=expansion.output, stages=list(expansion.stages),
                   blocks=expansion.blocks, spec=spec)
    for node in expansion.nodes.values():
        g.add_node(node.name, op=node.op, attrs=FrozenAttrs(node.attrs), inputs=tuple(node.inputs),
                   loc=node.loc, scope=node.scope, stage=node.stage, meta={})
    for node in expansion.nodes.values():
        for port, producer in enumerate(node.inputs):
            if g.has_edge(producer, node.name):
                g.edges[producer, node.name]["ports"].append(port)
            else:
                g.add_edge(producer, node.name, ports=[port])
    return g


def order(g: nx.DiGraph) -> list[str]:
    """Nodes in a topological order that keeps the spec's own order where it can (stable, readable)."""
    cached = g.graph.get("_order")
    if cached is not None and len(cached) == g.number_of_nodes():
        return cached
    position = {n: i for i, n in enumerate(g.nodes)}
    # networkx's own sort, keyed by the spec's order (dag.topological_order is the networkx-free copy that
    # `archspec validate` runs: importing networkx would add 0.12 s to its 0.28 s)
    result = list(nx.lexicographical_topological_sort(g, key=position.__getitem__))
    g.graph["_order"] = result
    return result


def meta(g: nx.DiGraph, name: str) -> dict[str, Any]:
    return g.nodes[name]["meta"]


def weighted(g: nx.DiGraph, name: str) -> bool:
    return OPS[g.nodes[name]["op"]].weighted


def describe_attrs(op: str, attrs: Any) -> str:
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


def format_graph(g: nx.DiGraph, *, locations: bool = True) -> str:
    """The graph as readable text, one line per node, like torch.fx's graph printout:

        %layer1.0.conv1 = conv[out=64, kernel=3, pad=1](%maxpool)  : 64x56x56   # specs/lib/resnet.yaml:62:9
    """
    lines = [f"graph {g.graph['name']} -> %{g.graph['output']}"]
    for name in order(g):
        data = g.nodes[name]
        args = ", ".join(f"%{p}" for p in data["inputs"])
        attrs = describe_attrs(data["op"], data["attrs"])
        text = f"  %{name} = {data['op']}" + (f"[{attrs}]" if attrs else "") + f"({args})"
        shape = data["meta"].get("shape")
        if shape is not None:
            text += f"  : {fmt_shape(shape)}"
        if locations and data["loc"] is not None and data["loc"].line:
            text += f"   # {data['loc']}"
        lines.append(text)
    return "\n".join(lines)


def producers(g: nx.DiGraph, name: str) -> Iterator[str]:
    yield from g.nodes[name]["inputs"]
