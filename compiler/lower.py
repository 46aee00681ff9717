"""Lowering: a compiled spec becomes a `torch.fx.GraphModule`.

Each op lowers as its registry entry says (`archspec.lang.ops`: a module with its initialisation, or a function
call, and whether its output may be overwritten in place); this module builds the module tree and the graph.

- The module hierarchy follows the spec's names: parameters are `layer1.0.conv1.weight`, and each block instance
  is a container module named after its template, so `print(model)` reads like the spec and torchvision's weight
  files load as they are.
- Ops with state or a train/eval difference (conv, bn, linear, pooling, dropout, drop_path, subsample_pad) are
  modules; the rest (relu, sigmoid, silu, add, mul, flatten, concat, softmax, ...) are function calls in the
  generated `forward`, which `print(model.code)` shows.
- Like hand-written ResNets, ReLU and the residual add run in place when autograd allows it: the tensor they
  overwrite has no other reader and its producer's entry says it is `overwritable` (not kept for backward).
- The compiled spec stays reachable (a `Compiled`: the networkx graph with shapes, params and MACs per node):
  `model.archspec`, or `archspec.compiled_of(model)`, which also works on copies and on `torch.compile`d models
  (it lives in `model.meta`, which GraphModule carries across `deepcopy`).
"""

from __future__ import annotations

import contextlib
import gc
from typing import Any, Iterator

from torch import fx, nn

from archspec.compiler.dag import users_of
from archspec.compiler.ir import order
from archspec.lang.ops import OPS
from archspec.lang.ops.modules import SubsamplePad

__all__ = ["Block", "SubsamplePad", "build", "compiled_of", "lower"]


class Block(nn.Module):
    """A container for one block instance; printed with its template's name (`bottleneck`, `stack`, ...)."""

    __jit_ignored_attributes__ = ["_template"]

    def __init__(self, template: str):
        super().__init__()
        self._template = template

    def _get_name(self) -> str:
        return self._template


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
    users = users_of({n: g.nodes[n]["inputs"] for n in g.nodes})

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
        definition = OPS[op]
        if definition.module is not None:
            module = definition.module(attrs, in_shape)
            if definition.init is not None:
                definition.init(module, attrs)
            parent, _, leaf = name.rpartition(".")
            owner = _container(root, parent, blocks) if parent else root
            owner.add_module(leaf, module)
            node = graph.call_module(name, tuple(args))
        else:
            in_place = inplace and _may_overwrite(g, users, ins[0] if ins else None, name)
            node = definition.function(graph, attrs, args, in_place)
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
    return users[producer] == [consumer] and OPS[g.nodes[producer]["op"]].overwritable


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
