"""Lowering: a compiled spec becomes a `torch.fx.GraphModule` (the one module of archspec that imports torch).

- The module hierarchy follows the spec's names: parameters are `layer1.0.conv1.weight`, and each block instance
  is a container module named after its template, so `print(model)` reads like the spec and torchvision's weight
  files load as they are.
- Ops with state or a train/eval difference (conv, bn, linear, pooling, dropout, subsample_pad) are modules;
  the rest (relu, add, flatten, concat, softmax) are function calls in the generated `forward`, which
  `print(model.code)` shows.
- Like hand-written ResNets, ReLU and the residual add run in place when autograd allows it: the tensor they
  overwrite has no other reader and its producer (conv, bn, linear, add) does not keep it for backward.
- Initialisation as in the paper (He): kaiming-normal convs (fan_out, ReLU), BN weight 1 and bias 0, or
  weight 0 where the spec says `zero_init` (the last BN of each residual branch, `zero_init_residual: true`).
- The compiled spec stays reachable (a `Compiled`: the networkx graph with shapes, params and MACs per node):
  `model.archspec`, or `archspec.compiled_of(model)`, which also works on copies and on `torch.compile`d models
  (it lives in `model.meta`, which GraphModule carries across `deepcopy`).
"""

from __future__ import annotations

import contextlib
import gc
import operator
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import fx, nn

from archspec.compiler.ir import order

_INPLACE_SAFE_PRODUCERS = {"conv", "bn", "linear", "add"}


class SubsamplePad(nn.Module):
    """Option-A shortcut: keep every `stride`-th position, zero-pad channels up to `out` (no parameters)."""

    def __init__(self, out: int, stride: int, where: str = "end"):
        super().__init__()
        self.out, self.stride, self.where = out, stride, where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out - x.shape[1]
        before = extra // 2 if self.where == "both" else 0
        return F.pad(x, (0, 0, 0, 0, before, extra - before))

    def extra_repr(self) -> str:
        return f"out={self.out}, stride={self.stride}, where={self.where}"


class Block(nn.Module):
    """A container for one block instance; printed with its template's name (`bottleneck`, `stack`, ...)."""

    __jit_ignored_attributes__ = ["_template"]

    def __init__(self, template: str):
        super().__init__()
        self._template = template

    def _get_name(self) -> str:
        return self._template


def _pair(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _module(op: str, a: Any, in_shape: tuple[int, ...]) -> nn.Module | None:
    """The nn.Module of an op with state or train/eval behaviour; None for function-call ops."""
    if op == "conv":
        return nn.Conv2d(in_shape[0], a["out"], _pair(a["kernel"]), _pair(a["stride"]), _pair(a["pad"]),
                         _pair(a["dilation"]), a["groups"], a["bias"])
    if op == "bn":
        cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
        return cls(in_shape[0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"])
    if op == "linear":
        return nn.Linear(in_shape[0], a["out"], a["bias"])
    if op == "maxpool":
        return nn.MaxPool2d(_pair(a["kernel"]), _pair(a["stride"]) if a["stride"] is not None else None,
                            _pair(a["pad"]), _pair(a["dilation"]), ceil_mode=a["ceil_mode"])
    if op == "avgpool":
        return nn.AvgPool2d(_pair(a["kernel"]), _pair(a["stride"]) if a["stride"] is not None else None,
                            _pair(a["pad"]), ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])
    if op == "global_avgpool":
        return nn.AdaptiveAvgPool2d((1, 1))
    if op == "dropout":
        return nn.Dropout(a["p"])
    if op == "subsample_pad":
        return SubsamplePad(a["out"], a["stride"], a["where"])
    return None


def _initialise(module: nn.Module, op: str, attrs: Any) -> None:
    if op == "conv":
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif op == "bn" and module.affine:
        nn.init.constant_(module.weight, 0.0 if attrs.get("zero_init") else 1.0)
        nn.init.zeros_(module.bias)


def _container(root: nn.Module, path: str, blocks: dict[str, Any]) -> nn.Module:
    """The module at `path`, creating block containers on the way."""
    current, walked = root, []
    for part in path.split("."):
        walked.append(part)
        child = current._modules.get(part)
        if child is None:
            block = blocks.get(".".join(walked))
            child = Block(block.template) if block is not None else Block("module")
            current.add_module(part, child)
        current = child
    return current


def _users(g: Any) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {n: [] for n in g.nodes}
    for name in g.nodes:
        for p in g.nodes[name]["inputs"]:
            users[p].append(name)
    return users


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Building thousands of modules makes the cyclic GC run again and again; pause it, then restore it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def lower(compiled: Any, *, inplace: bool = True) -> fx.GraphModule:
    """The compiled spec as an executable GraphModule with freshly initialised parameters. (Activation
    checkpointing by stage, a training concern, is `archspec.runtime.stages.checkpoint_stages`.)"""
    with _collector_paused():
        return _lower(compiled, inplace)


def _lower(compiled: Any, inplace: bool) -> fx.GraphModule:
    g = compiled.graph
    blocks = compiled.expansion.blocks
    root = nn.Module()
    graph = fx.Graph()
    values: dict[str, fx.Node] = {}
    users = _users(g)

    def value_name(name: str) -> str:
        return name.replace(".", "_")

    for name in order(g):
        data = g.nodes[name]
        op, attrs = data["op"], data["attrs"]
        ins = data["inputs"]
        args = [values[p] for p in ins]
        if op == "input":
            values[name] = graph.placeholder("x")
            continue
        in_shape = g.nodes[ins[0]]["meta"]["shape"]
        module = _module(op, attrs, in_shape)
        if module is not None:
            _initialise(module, op, attrs)
            parent, _, leaf = name.rpartition(".")
            owner = _container(root, parent, blocks) if parent else root
            owner.add_module(leaf, module)
            node = graph.call_module(name, tuple(args))
        else:
            node = _function(graph, op, attrs, args, _may_overwrite(g, users, ins[0] if ins else None, name)
                             if inplace else False)
        aliased = bool(args) and node is args[0]  # identity: the op is its input, nothing new to name
        if not aliased:
            node.name = value_name(name)
            node.meta["archspec_name"] = name  # the IR node it comes from (for tools and tests)
        values[name] = node
    graph.output(values[g.graph["output"]])
    gm = fx.GraphModule(root, graph, class_name=_class_name(compiled.name))
    for child, module in root.named_children():  # keep the block containers (same leaf modules)
        setattr(gm, child, module)
    type(gm).__jit_ignored_attributes__ = ["archspec"]
    gm.archspec = compiled
    gm.meta["archspec"] = compiled
    return gm


def _may_overwrite(g: Any, users: dict[str, list[str]], producer: str | None, consumer: str) -> bool:
    """May `consumer` write its result into `producer`'s output tensor (in place)?"""
    if producer is None:
        return False
    return users[producer] == [consumer] and g.nodes[producer]["op"] in _INPLACE_SAFE_PRODUCERS


def _function(graph: fx.Graph, op: str, attrs: Any, args: list[fx.Node], inplace: bool) -> fx.Node:
    if op == "identity":
        return args[0]
    if op == "relu":
        return graph.call_function(torch.relu_ if inplace else torch.relu, (args[0],))
    if op == "add":
        if inplace:
            node = graph.call_method("add_", (args[0], args[1]))
        else:
            node = graph.call_function(operator.add, (args[0], args[1]))
        for extra in args[2:]:
            node = graph.call_function(operator.add, (node, extra))
        return node
    if op == "concat":
        return graph.call_function(torch.cat, (tuple(args), 1))
    if op == "flatten":
        return graph.call_function(torch.flatten, (args[0], 1))
    if op == "softmax":
        return graph.call_function(torch.softmax, (args[0], 1))
    raise NotImplementedError(f"no lowering for op `{op}`")


def _class_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in name)
    return cleaned if cleaned[:1].isalpha() else f"Net_{cleaned}"


def compiled_of(model: nn.Module) -> Any:
    """The `Compiled` spec a module was built from (shapes, params and MACs per node), or None."""
    model = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    meta = getattr(model, "meta", None)
    return meta.get("archspec") if isinstance(meta, dict) else None


def build(ref: Any, overrides: Any = (), input_shape: str | None = None, **options: Any) -> fx.GraphModule:
    from archspec.compiler.analysis import compile_spec

    with _collector_paused():
        return lower(compile_spec(ref, overrides, input_shape, **options))
