"""What an op's lowering is (`Lowering`): how one primitive op of the registry (`archspec.lang.ops`) becomes
PyTorch, and the helpers the families share. The lowerings themselves are in the family modules beside this one
(`layers`, `pooling`, `elementwise`, `structure`, mirroring the registry's); `archspec.compiler.ops` collects them
into `LOWERINGS`.

A lowering runs only when a model is built: its `module`, `function` and `init` import torch inside their bodies,
so that reading the table (`archspec summary`, which shows `torch_name`) never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

Shape = tuple[int, ...]
ModuleFactory = Callable[[dict, Shape], Any]  # (attrs, input shape) -> nn.Module
FxFunction = Callable[[Any, dict, list, bool], Any]  # (fx graph, attrs, args, in_place) -> fx node
Init = Callable[[Any, dict], None]  # (module, attrs): initialises the module's parameters


@dataclass(frozen=True, kw_only=True)
class Lowering:
    """How one op becomes PyTorch: a module (an op with state or train/eval behaviour, optionally initialised by
    `init`) or a function call in the generated `forward`, never both."""

    op: str  # the registry key (`archspec.lang.ops.OPS`) this lowers
    torch_name: str = ""  # what `archspec summary` shows as its type (the module class or the function)
    module: ModuleFactory | None = None
    function: FxFunction | None = None
    init: Init | None = None
    overwritable: bool = False  # a sole reader may overwrite its output in place (it is not kept for backward)

    def __post_init__(self) -> None:
        if (self.module is None) == (self.function is None):
            raise ValueError(f"the lowering of op `{self.op}` needs exactly one of `module` and `function`")
        if self.init is not None and self.module is None:
            raise ValueError(f"the lowering of op `{self.op}` has an `init` but no `module` to initialise")


def torch_pair(v: Any) -> Any:
    """A size attribute as PyTorch takes it: an int, or a tuple for [h, w]."""
    return tuple(v) if isinstance(v, list) else v
