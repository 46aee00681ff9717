"""Counting passes: parameters and buffers, MACs, activation memory, and depth in weighted layers.

Conventions (docs/conventions.md): `params` are trainable weights, biases and BN affine parameters; BN running
statistics and batch counters are `buffers`, reported separately. `macs` are conv and linear multiply-adds;
`extra` is the other arithmetic (BN, ReLU, add, pooling), added to the total only with `count="all"`.
Activation memory is the bytes of every op's output for one sample (views such as flatten and identity are
free). Depth is the largest number of conv and linear layers on any path from input to output: 50 for ResNet-50,
6n+2 for the CIFAR nets; projection shortcuts lie on shorter paths and do not count.
"""

from __future__ import annotations

import networkx as nx

from archspec.compiler.ir import order
from archspec.lang.ops import OPS, numel
from archspec.compiler.passes.context import PassContext

def count_params(g: nx.DiGraph, ctx: PassContext) -> None:
    for name in order(g):
        _counts(g, name)


def count_macs(g: nx.DiGraph, ctx: PassContext) -> None:
    """MACs and FLOPs of each node under the chosen convention (`ctx.count`)."""
    everything = ctx.count == "all"
    for name in order(g):
        m = g.nodes[name]["meta"]
        if "counts" in m:
            m["total_macs"] = m["macs"] + (m["extra"] if everything else 0)
            m["total_flops"] = 2 * m["macs"] + (m["extra_flops"] if everything else 0)


def activation_memory(g: nx.DiGraph, ctx: PassContext) -> None:
    for name, data in g.nodes(data=True):
        m = data["meta"]
        if "shape" in m:
            m["activation_bytes"] = 0 if OPS[data["op"]].view else numel(m["shape"]) * ctx.dtype_bytes


def weighted_depth(g: nx.DiGraph, ctx: PassContext) -> None:
    for name in order(g):
        data = g.nodes[name]
        before = max((g.nodes[p]["meta"].get("depth", 0) for p in data["inputs"]), default=0)
        data["meta"]["depth"] = before + (1 if OPS[data["op"]].weighted else 0)


def _counts(g: nx.DiGraph, name: str) -> None:
    data = g.nodes[name]
    m = data["meta"]
    if "shape" not in m:
        return
    ins = [g.nodes[p]["meta"]["shape"] for p in data["inputs"]]
    c = OPS[data["op"]].counts(data["attrs"], ins, m["shape"])
    m.update(counts=c, params=c.params, buffers=c.buffers, macs=c.macs, extra=c.extra, extra_flops=c.extra_flops)
