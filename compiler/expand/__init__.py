"""Expansion: a resolved spec becomes a table of primitive nodes (the IR before it is a graph).

Each body item is a primitive (`op:`), a block template instance (`use:`), or a choice (`cases:`); `when:`
drops an item, `repeat:` chains copies of it (`index` and `count` are defined in its expressions). An item's
input is the previous included item unless `in:` names others. Inside a block, `input` is the block's input and
`in_channels` its channel count. Names are hierarchical (`layer2.0.conv1`); a body with a single unnamed item
makes that item the block itself, and an unnamed `repeat` names its copies 0, 1, ...

Expansion checks what needs the whole structure: unknown ops, blocks and references, template arguments,
recursion, duplicate names, cycles, unused nodes, and the node budget (checked before a `repeat` runs).
Problems inside a block used many times are reported once, at the block's YAML line.
"""

from archspec.compiler.expand.expander import Expander, expand
from archspec.compiler.expand.model import MAX_NESTING, MAX_NODES, Block, Expansion, IRNode
from archspec.lang.ops import fmt_shape

__all__ = ["Block", "Expander", "Expansion", "IRNode", "MAX_NESTING", "MAX_NODES", "expand", "fmt_shape"]
