"""The long explanations that `archspec explain CODE` prints under a code's line, for the codes where one line is
not enough: what the code means, a small spec that gets it, and the fix.

The codes and their lines are declared in `archspec.lang.codes` (`CODES`); this table, keyed by those constants,
only adds to them (a test checks that every code here is in `CODES`, and that each example gets its code while its
fixed form compiles). Examples are the part of a spec after `input: [3, 32, 32]`.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from archspec.lang.codes import (EMPTY_OUTPUT, GRAPH_CYCLE, IN_CHANNELS_BEFORE_INPUT, MERGE_SHAPE_MISMATCH,
                                 TOO_MUCH_EXPR_WORK, UNDEFINED_NODE, UNKNOWN_BLOCK, UNKNOWN_OP, UNUSED_NODE, WRONG_TENSOR_SHAPE)


@dataclass(frozen=True)
class Explanation:
    meaning: str   # what the code means and why archspec refuses it (prose, wrapped when printed)
    example: str   # a spec body that gets the code (YAML)
    fix: str       # how to fix it (prose)
    fixed: str     # the example fixed (YAML)


EXPLANATIONS: dict[str, Explanation] = {
    UNKNOWN_OP: Explanation(
        meaning="An item's `op:` names a primitive op that archspec does not have. The ops are the entries of the "
        "op registry; `archspec ops` lists every op with its inputs, attributes, defaults and ranges, and "
        "`archspec ops NAME` describes one. A layer that is not one of them is built from them in a block "
        "template (a `blocks:` entry, used with `use:`). The help line suggests an op only for a near miss (a "
        "typo, another case, a suffix such as `2d`); otherwise it lists the ops.",
        example="""\
network:
  - conv1: {op: conv2d, out: 16, kernel: 3, pad: 1}
  - pool: {op: global_avgpool}
""",
        fix="use the registry's name (`conv`, not `conv2d`; `bn`, not `batchnorm`), or write the layer as a block "
        "template made of ops.",
        fixed="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - pool: {op: global_avgpool}
""",
    ),
    UNDEFINED_NODE: Explanation(
        meaning="An item reads (`in:`) a name that is not defined where it is read. Names are local: the "
        "network's items can read the network's items and `input`; the items of a block template read the "
        "template's own items and its inputs (`input`, or the names its `inputs:` declares), never the items of "
        "the network around an instance. The same code is given when the item read is excluded by `when:`, "
        "when a block's input is defined below the block, and when the first item of a body has no input.",
        example="""\
blocks:
  residual:
    body:
      - conv: {op: conv, out: 16, kernel: 3, pad: 1}
      - add: {op: add, in: [conv, stem]}
network:
  - stem: {op: conv, out: 16, kernel: 3, pad: 1}
  - block: {use: residual}
  - pool: {op: global_avgpool}
""",
        fix="inside the template, read the block's input (`input`: here the instance reads `stem`), or declare "
        "more inputs with `inputs:` and pass them with the instance's `in:`.",
        fixed="""\
blocks:
  residual:
    body:
      - conv: {op: conv, out: 16, kernel: 3, pad: 1}
      - add: {op: add, in: [conv, input]}
network:
  - stem: {op: conv, out: 16, kernel: 3, pad: 1}
  - block: {use: residual}
  - pool: {op: global_avgpool}
""",
    ),
    UNKNOWN_BLOCK: Explanation(
        meaning="A block template is named that the merged spec does not have: an item's `use:` (or a template "
        "param's value) names no `blocks:` entry, or a file's `blocks:` entry only edits (`edit:`, "
        "`insert_before:`, `insert_after:`) a block that no file merged before it defines. The blocks a spec has "
        "are those of its own file, of every file it extends and of every library any of them imports; files "
        "merge in order (extends first, then the imports, then the file itself), so an edit applies to a block "
        "that some earlier file brought, whoever brought it. The help line suggests a near miss.",
        example="""\
blocks:
  unit:
    body:
      - conv: {op: conv, out: 16, kernel: 3, pad: 1}
      - relu: {op: relu}
network:
  - stem: {op: conv, out: 16, kernel: 3, pad: 1}
  - block: {use: unti}
  - pool: {op: global_avgpool}
""",
        fix="name a block the spec has (`archspec explain --origin SPEC` lists where each block came from); for an "
        "edit, import or extend the file that defines the block before the file that edits it, or define the "
        "block with a `body:` instead of editing it.",
        fixed="""\
blocks:
  unit:
    body:
      - conv: {op: conv, out: 16, kernel: 3, pad: 1}
      - relu: {op: relu}
network:
  - stem: {op: conv, out: 16, kernel: 3, pad: 1}
  - block: {use: unit}
  - pool: {op: global_avgpool}
""",
    ),
    GRAPH_CYCLE: Explanation(
        meaning="The items read each other in a loop: an item reads (directly or through others) an item that "
        "reads its own output, so there is no order in which to compute them. The message names the loop.",
        example="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1, in: relu}
  - relu: {op: relu}
  - pool: {op: global_avgpool, in: input}
""",
        fix="point the `in:` that closes the loop at an item computed before it (often `input`, or the item "
        "above).",
        fixed="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1, in: input}
  - relu: {op: relu}
  - pool: {op: global_avgpool}
""",
    ),
    UNUSED_NODE: Explanation(
        meaning="Every item's output must be read by another item or be the output of its body (the last item, "
        "or the one `output:` names). An output that nobody reads is almost always a wiring mistake, such as a "
        "shortcut that is never added or an `in:` that skips a layer, and would leave that layer silently out "
        "of the network.",
        example="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - shortcut: {op: conv, out: 32, kernel: 1, stride: 2}
  - conv2: {op: conv, out: 32, kernel: 3, stride: 2, pad: 1, in: conv1}
  - pool: {op: global_avgpool}
""",
        fix="read the output where it was meant to go (here, add the shortcut to conv2's output), or delete the "
        "item.",
        fixed="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - shortcut: {op: conv, out: 32, kernel: 1, stride: 2}
  - conv2: {op: conv, out: 32, kernel: 3, stride: 2, pad: 1, in: conv1}
  - add: {op: add, in: [conv2, shortcut]}
  - pool: {op: global_avgpool}
""",
    ),
    IN_CHANNELS_BEFORE_INPUT: Explanation(
        meaning="A block template may size its layers from its input: in an expression, `in_channels` is the "
        "number of channels of the tensor the block receives (`in_shape` its whole shape). The network is "
        "expanded top to bottom, so when a block that reads `in_channels` is reached, its input and everything "
        "that input is computed from must already be known: they must be items written above the block. E312 "
        "means that an item on that path reads (`in:`) an item written further down, whose width is not known "
        "yet. The message names the item whose input comes later; the note shows where `in_channels` is read.",
        example="""\
blocks:
  widen:
    body:
      - conv: {op: conv, out: =2 * in_channels, kernel: 1}
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1, in: stem}
  - wide: {use: widen}
  - stem: {op: conv, out: 8, kernel: 3, pad: 1, in: input}
  - pool: {op: global_avgpool, in: wide}
""",
        fix="write the items in the order they compute: move the item that is read (`stem`) above the items that "
        "read it. Or state the width instead of reading it (`out: 32`, or a block parameter: `out: =2 * width`).",
        fixed="""\
blocks:
  widen:
    body:
      - conv: {op: conv, out: =2 * in_channels, kernel: 1}
network:
  - stem: {op: conv, out: 8, kernel: 3, pad: 1}
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1, in: stem}
  - wide: {use: widen}
  - pool: {op: global_avgpool}
""",
    ),
    MERGE_SHAPE_MISMATCH: Explanation(
        meaning="The inputs of a merge do not fit together: `add` needs inputs of one shape, `concat` inputs of "
        "the same height and width. In a residual block this is the shortcut: where the block changes the width "
        "or the stride, the identity no longer matches the block's output and needs a projection (a 1x1 conv "
        "with the block's stride, the paper's option B) or a subsample padded with zeros (`subsample_pad`, "
        "option A).",
        example="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - conv2: {op: conv, out: 32, kernel: 3, stride: 2, pad: 1}
  - add: {op: add, in: [conv2, conv1]}
  - pool: {op: global_avgpool}
""",
        fix="bring the inputs to one shape: project the shortcut (or change `out`/`stride` of one side).",
        fixed="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - conv2: {op: conv, out: 32, kernel: 3, stride: 2, pad: 1}
  - shortcut: {op: conv, out: 32, kernel: 1, stride: 2, in: conv1}
  - add: {op: add, in: [conv2, shortcut]}
  - pool: {op: global_avgpool}
""",
    ),
    WRONG_TENSOR_SHAPE: Explanation(
        meaning="An op receives a tensor it cannot take: the width differs from the one the item states "
        "(`in_channels` on a conv, `in_features` on a linear, `channels` on a bn), or the tensor has another "
        "rank (a `linear` needs a vector: a feature map must be pooled and flattened first). Widths are "
        "inferred from the input, so stating them is a check, not a requirement.",
        example="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - conv2: {op: conv, in_channels: 32, out: 32, kernel: 3, pad: 1}
  - pool: {op: global_avgpool}
""",
        fix="state the width that arrives (or leave it out), or change the width of the producer.",
        fixed="""\
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - conv2: {op: conv, in_channels: 16, out: 32, kernel: 3, pad: 1}
  - pool: {op: global_avgpool}
""",
    ),
    EMPTY_OUTPUT: Explanation(
        meaning="A layer would leave nothing of its input: with its kernel, stride and padding the output "
        "height or width falls below 1. Each stride divides the size, so a stack of downsampling layers needs "
        "an input large enough for all of them (an ImageNet ResNet divides it by 32).",
        example="""\
network:
  - conv1: {op: conv, out: 16, kernel: 7, stride: 32}
  - pool: {op: maxpool, kernel: 3, stride: 2}
  - gap: {op: global_avgpool}
""",
        fix="give a larger input (`input:` in the spec, or `--input` on the command line), or remove or soften "
        "a downsampling layer.",
        fixed="""\
network:
  - conv1: {op: conv, out: 16, kernel: 7, stride: 2, pad: 3}
  - pool: {op: maxpool, kernel: 3, stride: 2}
  - gap: {op: global_avgpool}
""",
    ),
    TOO_MUCH_EXPR_WORK: Explanation(
        meaning="Expressions are bounded one by one (length, nesting, the size of each value), but an expression "
        "is computed again for every copy of a `repeat` and every use of a block, so their work adds up: one "
        "1,000-character `when:` that builds and walks lists of 10,000 items costs a tenth of a second, and "
        "a thousand copies of it minutes. So the work of all the expressions of one network is counted, in steps "
        "(one per operation, and one per item an operation builds, compares, searches or walks), and expansion "
        "stops once they pass the budget: 20 steps per node of the node budget, 2,000,000 by default (ResNet-1202 "
        "takes about 45,000). The error points at the expression computing when the budget ran out, with what it "
        "costs each time and how often it was computed.",
        example="""\
params:
  n: 3
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - units: {repeat: 200, when: "sum([n] * 10000) > 0", op: relu}
  - pool: {op: global_avgpool}
""",
        fix="compute the costly part once, as a param (params are computed once, not per copy), and read the "
        "param in the `repeat`; or make the expression cheaper. `--max-nodes` raises the budget with the node "
        "budget.",
        fixed="""\
params:
  n: 3
  positive: =sum([n] * 10000) > 0
network:
  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}
  - units: {repeat: 200, when: positive, op: relu}
  - pool: {op: global_avgpool}
""",
    ),
}


def explain(code: str, line: str, width: int = 88) -> str:
    """`CODE: line`, and for a code of the table its meaning, example and fix."""
    head = f"{code}: {line}"
    entry = EXPLANATIONS.get(code)
    if entry is None:
        return head
    return "\n".join([head, "", _wrap(entry.meaning, width), "",
                      "For example (after `archspec: 1` and `input: [3, 32, 32]`):", "",
                      textwrap.indent(entry.example.rstrip(), "    "), "", _wrap("To fix it, " + entry.fix, width), "",
                      textwrap.indent(entry.fixed.rstrip(), "    ")])


def _wrap(text: str, width: int) -> str:
    """`text` in lines of at most `width`, never breaking inside `code`."""
    glue = "\0"
    kept = re.sub(r"`[^`]*`", lambda m: m.group(0).replace(" ", glue), text)
    return textwrap.fill(kept, width, break_long_words=False, break_on_hyphens=False).replace(glue, " ")
