"""Element-wise ops: the activations `relu`, `sigmoid`, `silu`, `hardsigmoid` and `softmax`, `dropout` and
`drop_path` (stochastic depth), the residual `add` and the gating `mul` (squeeze-and-excitation).

Counted with `--count all` as one op per element (add: one per element per extra operand; mul and drop_path: one
per output element). `add` and `mul` are structural (where a network sums or gates is part of what trained
weights fit); `add` is the residual sum. Their lowering is in `archspec.compiler.ops.elementwise`.
"""

from __future__ import annotations

from archspec.lang.codes import MERGE_SHAPE_MISMATCH
from archspec.lang.ops.base import Attr, Counts, OpDef, Shape, ShapeError, fmt_shape, numel, per_element, same_shape


def _add_shape(a: dict, ins: list[Shape]) -> Shape:
    first = ins[0]
    for i, s in enumerate(ins[1:], 1):
        if s != first:
            raise ShapeError(MERGE_SHAPE_MISMATCH,
                             f"the inputs of add disagree: input 1 is {fmt_shape(first)} but input {i + 1} "
                             f"is {fmt_shape(s)}", "the inputs of an add must have equal shapes")
    return first


def _add_advice(ins: list[Shape], node: str, producers: list[str], outside_block: list[bool]) -> str | None:
    """Help for unequal inputs. A residual add reads the block's own input (the identity shortcut, from outside
    the block): say how to shape the shortcut. Any other add: name the inputs that disagree."""
    outside = [i for i, out in enumerate(outside_block) if out]
    if len(ins) == 2 and len(outside) == 1 and all(len(s) == 3 for s in ins):
        skip, body = ins[outside[0]], ins[1 - outside[0]]
        return _shortcut_hint(skip, body)
    first = ins[0]
    i = next(k for k, s in enumerate(ins) if s != first)
    return (f"`{producers[0]}` gives {fmt_shape(first)} and `{producers[i]}` {fmt_shape(ins[i])}: change the width "
            f"(`out`) or the stride of one of them so that they agree")


def _shortcut_hint(skip: Shape, body: Shape) -> str:
    if skip[0] != body[0] and skip[1:] != body[1:]:
        return (f"the skip path must match the body: project it with a strided 1x1 conv (option B) or subsample "
                f"and zero-pad it (option A) to {fmt_shape(body)}")
    if skip[0] != body[0]:
        return (f"the skip path carries {skip[0]} channels and the body {body[0]}: use a projection shortcut "
                f"(option B) or zero-padding (option A)")
    return (f"the skip path is {skip[1]}x{skip[2]} and the body {body[1]}x{body[2]}: give the shortcut the block's "
            "stride")


def _add_counts(a: dict, ins: list[Shape], out: Shape) -> Counts:
    n = numel(out) * (len(ins) - 1)
    return Counts(extra=n, extra_flops=n)


def _mul_shape(a: dict, ins: list[Shape]) -> Shape:
    """Equal shapes, or the smaller input broadcast over the larger as PyTorch does it, each of its sizes equal
    or 1: a C x 1 x 1 gate per channel, 1 x 1 x 1, 1 x H x W. Either input may be the smaller."""
    x, y = ins
    big, small = (x, y) if numel(x) >= numel(y) else (y, x)
    if len(x) == len(y) and all(s in (b, 1) for b, s in zip(big, small)):
        return big
    raise ShapeError(MERGE_SHAPE_MISMATCH,
                     f"the inputs of mul do not broadcast: input 1 is {fmt_shape(x)} and input 2 is "
                     f"{fmt_shape(y)}", "multiply by an equal shape or by a C x 1 x 1 or 1 x 1 x 1 gate")


def _mul_advice(ins: list[Shape], node: str, producers: list[str], outside: list[bool]) -> str | None:
    """Help naming the producers: which one to change, and how (a gate from a vector, a gate of the wrong width)."""
    x, y = ins
    if len(x) != len(y):
        vec, fmap = (0, 1) if len(x) == 1 else (1, 0)
        return (f"`{producers[vec]}` gives a vector of {fmt_shape(ins[vec])} and `{producers[fmap]}` a "
                f"{fmt_shape(ins[fmap])} feature map: keep the gate C x 1 x 1 (global_avgpool without `flatten`, "
                f"then 1x1 convs instead of `linear`)")
    g, m = (1, 0) if numel(y) <= numel(x) else (0, 1)
    gate, fmap = ins[g], ins[m]
    if len(gate) == 3 and gate[1:] == (1, 1) and gate[0] != fmap[0]:
        return (f"`{producers[g]}` gives a gate of {gate[0]} channels but `{producers[m]}` has {fmap[0]}: the last "
                f"conv of the gate needs `out: {fmap[0]}`")
    return (f"`{producers[0]}` gives {fmt_shape(x)} and `{producers[1]}` {fmt_shape(y)}: mul takes equal shapes or "
            f"a C x 1 x 1 (or 1 x 1 x 1) gate over a C x H x W map")


OPS = [
    OpDef(name="relu", doc="rectified linear unit", kind="act", attrs={}, inputs=(1, 1), shape=same_shape,
          counts=per_element, label=lambda a: "ReLU", fold=True),
    OpDef(name="sigmoid", doc="logistic sigmoid 1 / (1 + exp(-x)), one op per element when counted", kind="act",
          attrs={}, inputs=(1, 1), shape=same_shape, counts=per_element),
    OpDef(name="silu", doc="sigmoid-weighted linear unit x * sigmoid(x) (swish), one op per element when counted",
          kind="act", attrs={}, inputs=(1, 1), shape=same_shape, counts=per_element, label=lambda a: "SiLU",
          fold=True),
    OpDef(name="hardsigmoid",
          doc="piecewise-linear sigmoid relu6(x + 3) / 6 (PyTorch's), one op per element when counted",
          kind="act", attrs={}, inputs=(1, 1), shape=same_shape, counts=per_element),
    OpDef(name="softmax", doc="softmax over channels", kind="act", attrs={}, inputs=(1, 1), shape=same_shape,
          counts=per_element, table=lambda a: "softmax"),
    OpDef(name="dropout", doc="zeroes elements with probability p during training", kind="other",
          attrs={"p": Attr(type="float", default=0.5, min=0, max=1)}, inputs=(1, 1), shape=same_shape),
    OpDef(name="drop_path", doc="stochastic depth: in training zeroes whole samples with probability p and scales "
          "the rest by 1/(1-p); identity in eval; one op per element when counted", kind="other",
          attrs={"p": Attr(type="float", min=0, max=1, max_open=True, doc="the probability of dropping a sample")},
          inputs=(1, 1), shape=same_shape, counts=per_element, label=lambda a: f"drop path {a['p']:g}"),
    OpDef(name="add", doc="element-wise sum of equally shaped inputs", kind="merge", attrs={}, inputs=(2, None),
          shape=_add_shape, counts=_add_counts, advise=_add_advice, structural=True, residual=True),
    OpDef(name="mul", doc="element-wise product of 2 inputs; a C x 1 x 1 or 1 x 1 x 1 input broadcasts over "
          "C x H x W (a squeeze-and-excitation gate)", kind="merge", attrs={}, inputs=(2, 2), shape=_mul_shape,
          counts=per_element, advise=_mul_advice, structural=True),
]
