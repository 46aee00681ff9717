"""What an op registry entry is (`OpDef`), its attributes (`Attr`), its counts (`Counts`), and the shape helpers
the entries share. The entries themselves are in the family modules beside this one (`layers`, `pooling`,
`elementwise`, `structure`); `archspec.lang.ops` collects them into `OPS`.

Shapes exclude the batch dimension: `(C, H, W)` for feature maps, `(F,)` for vectors. Shape rules raise
`ShapeError` with a message that names what was expected and what arrived, and a hint; the callers turn it into
a diagnostic at the node's YAML line.

An entry is language only: how an op becomes PyTorch (its module or function, initialisation, in-place safety and
the type `archspec summary` shows) is its lowering, in `archspec.compiler.ops`. This layer imports no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable
from archspec.lang.codes import EMPTY_OUTPUT, INVALID_OP_ATTR, WRONG_TENSOR_SHAPE

Shape = tuple[int, ...]

REQUIRED = object()


class ShapeError(Exception):
    """A shape rule's verdict on one node (internal: the caller reports it as a located diagnostic)."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


@dataclass(frozen=True, kw_only=True)
class Attr:
    type: str  # int | size (int or [h, w]) | bool | float | str | list
    default: Any = REQUIRED
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    doc: str = ""
    max_open: bool = False  # `max` itself is excluded (a probability p < 1); checked by `check_attr`

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Counts:
    params: int = 0  # trainable parameters
    buffers: int = 0  # non-trainable state (BN running statistics and batch counter)
    macs: int = 0
    extra: int = 0  # other ops in MAC-equivalents (1 each)
    extra_flops: int = 0  # the same in FLOPs (a multiply-add is 2)


ShapeRule = Callable[[dict, list[Shape]], Shape]
CountRule = Callable[[dict, list[Shape], Shape], Counts]


def no_counts(attrs: dict, ins: list[Shape], out: Shape) -> Counts:
    return Counts()


@dataclass(frozen=True, kw_only=True)
class OpDef:
    """Everything the language knows about one primitive op. Adding an op is one of these (in a family module),
    its lowering (`archspec.compiler.ops`) and its tests."""

    name: str
    doc: str
    kind: str  # for colours and the legend: input | conv | norm | act | pool | merge | linear | reshape | other
    attrs: dict[str, Attr]
    inputs: tuple[int, int | None]  # min, max (None: any number)
    shape: ShapeRule
    counts: CountRule = no_counts
    weighted: bool = False  # counts towards depth (conv and linear layers)
    expects: str | None = None  # the optional attribute that states the input width (checked by the shape pass)
    # a better help line for a shape problem, knowing the node's name, its producers' and which of them lie
    # outside the node's block instance (None: keep the rule's)
    advise: Callable[[list[Shape], str, list[str], list[bool]], str | None] | None = None
    # its attributes define what trained weights fit: named weights go only into a network whose structural ops
    # are those of the spec they were trained with (`archspec.runtime.weights`)
    structural: bool = False
    # sums its inputs, the 2nd and later being shortcut paths: a block with one is a residual block (the diagrams
    # draw those paths as skip edges, Table 1 shows such a block as a repeated unit, not op by op)
    residual: bool = False
    # -- reports and diagrams
    label: Callable[[dict], str] | None = None  # its text in a diagram box (default: the op's name)
    table: Callable[[dict], str] | None = None  # its line in a Table 1 stage cell (None: not listed)
    fold: bool = False  # drawn inside the box of the op before it (BN and ReLU after a conv)
    view: bool = False  # its output is (a view of) its input: no activation memory of its own
    hidden: bool = False  # not drawn: its readers are joined to its producer (an identity)

    def text(self, attrs: dict) -> str:
        return self.label(attrs) if self.label is not None else self.name


# -- shape helpers shared by the families ------------------------------------------------------------------------

def pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def numel(shape: Shape) -> int:
    return math.prod(shape)


def fmt_shape(shape: Shape) -> str:
    return "x".join(str(s) for s in shape)


def feature_map(op: str, s: Shape) -> tuple[int, int, int]:
    if len(s) != 3:
        raise ShapeError(WRONG_TENSOR_SHAPE, f"{op} expects a C x H x W feature map, got a vector of {fmt_shape(s)}",
                         "it must come before `flatten`")
    return s  # type: ignore[return-value]


def _window(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # PyTorch: the last window must start inside the input
        out -= 1
    return out


def spatial(op: str, a: dict, shape: Shape, stride_default: Any = 1) -> tuple[int, int]:
    """Output height and width of a sliding window (conv or pool), as PyTorch computes them."""
    c, h, w = feature_map(op, shape)
    kh, kw = pair(a["kernel"])
    stride = a.get("stride")
    sh, sw = pair(stride if stride is not None else (a["kernel"] if stride_default == "kernel" else 1))
    ph, pw = pair(a.get("pad", 0))
    dh, dw = pair(a.get("dilation", 1))
    if op != "conv" and (2 * ph > kh or 2 * pw > kw):
        raise ShapeError(INVALID_OP_ATTR, f"{op} padding {fmt_shape((ph, pw))} is more than half its kernel "
                         f"{fmt_shape((kh, kw))}", "use pad <= kernel // 2")
    ho = _window(h, kh, sh, ph, dh, a.get("ceil_mode", False))
    wo = _window(w, kw, sw, pw, dw, a.get("ceil_mode", False))
    if ho < 1 or wo < 1:
        raise ShapeError(EMPTY_OUTPUT, f"{op} with kernel {fmt_shape((kh, kw))}, stride {fmt_shape((sh, sw))} and pad "
                         f"{fmt_shape((ph, pw))} leaves nothing of a {h}x{w} input (output {ho}x{wo})",
                         "use a larger input (--input) or remove a downsampling layer")
    return ho, wo


def same_shape(a: dict, ins: list[Shape]) -> Shape:
    return ins[0]


def per_element(a: dict, ins: list[Shape], out: Shape) -> Counts:
    """One op per output element (activations)."""
    return Counts(extra=numel(out), extra_flops=numel(out))

