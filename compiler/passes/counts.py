"""Counting passes: parameters and buffers, MACs and the other ops' arithmetic, activation elements, and depth
in weighted layers. Every figure is raw; `analysis.Convention` chooses what is shown.

Conventions (docs/conventions.md): `params` are trainable weights, biases and BN affine parameters; BN running
statistics and batch counters are `buffers`, reported separately. `macs` are conv and linear multiply-adds;
`extra` (and `extra_flops`) is the other arithmetic (BN, ReLU, add, pooling), added to the total only under the
"all" convention. Activation memory is the elements of every op's output for one sample (views such as flatten
and identity are free), times the bytes per element where it is shown. Depth is the largest number of conv and
linear layers on any path from input to output: 50 for ResNet-50, 6n+2 for the CIFAR nets; projection
shortcuts lie on shorter paths and do not count.
"""

from __future__ import annotations

from archspec.compiler.ir import Graph
from archspec.compiler.passes.context import PassContext
from archspec.lang.ops import numel


def count_ops(g: Graph, ctx: PassContext) -> None:
    """Each node's parameters, buffers, MACs and other arithmetic, by its op's count rule."""
    for name in g.order():
        node, facts = g.node(name), g.facts(name)
        if facts.shape is None:
            continue
        ins = [g.shape(p) for p in node.inputs]
        facts.count(node.opdef.counts(node.attrs, ins, facts.shape))


def activation_memory(g: Graph, ctx: PassContext) -> None:
    for name in g.order():
        facts = g.facts(name)
        if facts.shape is not None:
            facts.activation_elements = 0 if g.node(name).opdef.view else numel(facts.shape)


def weighted_depth(g: Graph, ctx: PassContext) -> None:
    for name in g.order():
        node = g.node(name)
        before = max((g.facts(p).depth for p in node.inputs), default=0)
        g.facts(name).depth = before + (1 if node.opdef.weighted else 0)
