"""`diff_compiled`: what changed between two compiled specs, after expansion, and how to print it.

The package splits the job: `model` (the records), `compare` (matching and grouping), `text` (text and JSON);
this module puts them together as `Diff`.

Nodes are matched by their hierarchical name (`layer1.0.conv1`). A block instance whose ops were swapped for
others (an identity shortcut that becomes a projection, a 7x7 stem that becomes three 3x3 convs) is one
*replacement*, not a removed node and two added ones; a block present on one side only is one addition or
removal. Every other node present on both sides is compared by op, attributes, output shape, inputs and counts;
an input is named by the outermost block it is the output of, so that renaming inside a block is not reported
again as rewiring outside it. Changes are grouped by residual block (`layer2.0`, the blocks Table 1 counts) and
by stage, with params and MACs before and after at every level; runs of blocks that changed alike collapse.

Pure: it reads two `Compiled` objects and imports neither torch nor anything that does.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.analysis import Compiled, Convention
from archspec.compiler.diff.compare import compare
from archspec.compiler.diff.model import LEVELS, Change, Found, Group, Op, StageRow, relative
from archspec.compiler.diff.text import describe, diff_dict, format_diff, ops_text


class Diff(Found):
    """Two compiled specs and what differs: `equal`, `groups` (changes by block), `stages`, `format`, `to_dict`."""

    def format(self, level: str = "block") -> str:
        return format_diff(self, level)

    def to_dict(self, level: str = "block") -> dict[str, Any]:
        return diff_dict(self, level)


def diff_compiled(a: Compiled, b: Compiled, convention: Convention | None = None) -> Diff:
    """Compare two compiled specs under one counting convention (`convention`, or the one `b` is shown in):
    counts are raw, so any two compiled specs compare under any convention."""
    found = compare(a, b, convention)
    return Diff(found.a, found.b, found.groups, found.stages, found.nodes)


__all__ = ["LEVELS", "Change", "Diff", "Group", "Op", "StageRow", "describe", "diff_compiled", "diff_dict",
           "format_diff", "ops_text", "relative"]
