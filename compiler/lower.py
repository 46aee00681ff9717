"""Lowering: a compiled spec becomes a `torch.fx.GraphModule`.

Each op lowers as its entry in the lowering table says (`archspec.compiler.ops`: a module with its
initialisation, or a function call, and whether its output may be overwritten in place); this module builds the
module tree and the graph.

- The module hierarchy follows the spec's names: parameters are `layer1.0.conv1.weight`, and each block instance
  is a container module named after its template, so `print(model)` reads like the spec and torchvision's weight
  files load as they are.
- Ops with state or a train/eval difference (conv, bn, linear, pooling, dropout, drop_path, subsample_pad) are
  modules; the rest (relu, sigmoid, silu, add, mul, flatten, concat, softmax, ...) are function calls in the
  generated `forward`, which `print(model.code)` shows.
- Like hand-written ResNets, ReLU and the residual add run in place when autograd allows it: the tensor they
  overwrite has no other reader and its producer's lowering says it is `overwritable` (not kept for backward).
- The compiled spec stays reachable (a `Compiled`: the networkx graph with shapes, params and MACs per node):
  `model.archspec`, or `archspec.compiled_of(model)`, which also works on `torch.compile`d models. The module is a
  `Network`, a GraphModule that keeps the compiled spec, the block containers, its class name and the attributes
  set on it (`weights_source`) through `copy.deepcopy` (EMA and SWA copy models) and pickling (`torch.save`), both
  of which a plain GraphModule rebuilds from its graph alone.
"""

from __future__ import annotations

import contextlib
import copy
import gc
from typing import TYPE_CHECKING, Any, Iterator

from torch import fx, nn

from archspec.compiler.ops import lowering_of
from archspec.compiler.ops.modules import SubsamplePad

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled
    from archspec.compiler.expand import Block as BlockInstance
    from archspec.compiler.ir import Graph


__all__ = ["Block", "Network", "SubsamplePad", "build", "compiled_of", "lower"]


class Block(nn.Module):
    """A container for one block instance; printed with its template's name (`bottleneck`, `stack`, ...)."""

    __jit_ignored_attributes__ = ["_template"]

    def __init__(self, template: str):
        super().__init__()
        self._template = template

    def _get_name(self) -> str:
        return self._template


def _container(root: nn.Module, path: tuple[str, ...], blocks: dict[str, BlockInstance]) -> nn.Module:
    """The module at the qualified name `path` (its parts), creating block containers on the way."""
    current = root
    for k, part in enumerate(path, 1):
        child = current._modules.get(part)
        if child is None:
            block = blocks.get(".".join(path[:k]))
            child = Block(block.template) if block is not None else Block("module")
            current.add_module(part, child)
        current = child
    return current


class Network(fx.GraphModule):
    """A lowered spec. GraphModule's own deepcopy and pickling rebuild the module from its graph (and, unpickled,
    from its generated code), keeping only the modules the graph calls: the compiled spec (`archspec`), the block
    containers above those modules, the class name and other attributes would be lost. Here they are kept."""

    __jit_ignored_attributes__ = ["archspec"]

    def __deepcopy__(self, memo: dict[int, Any]) -> "Network":
        copied = super().__deepcopy__(memo)
        type(copied).__name__ = type(self).__name__  # each GraphModule has a class of its own; its name is ours
        # GraphModule copied this instance's __dict__ with the same memo: this is that copy, not a second one
        return _restored(copied, copy.deepcopy(self.__dict__, memo))

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild, args = super().__reduce__()[:2]
        nodes = [(n.op, n.target if n.op == "call_module" else None, n.name, n.meta.get("archspec_name"))
                 for n in self.graph.nodes]
        return (_unpickled, (rebuild, args, type(self).__name__, nodes))


def _unpickled(rebuild: Any, args: tuple[Any, ...], class_name: str, nodes: list[tuple]) -> Network:
    """A pickled `Network` back: torch rebuilds a plain GraphModule by tracing the saved code, which names the
    values afresh; the names and the IR node each value comes from (which `runtime.stages` reads) are put back."""
    plain = rebuild(*args)
    traced = list(plain.graph.nodes)
    if [(n.op, n.target if n.op == "call_module" else None) for n in traced] == [r[:2] for r in nodes]:
        for node, (*_, name, origin) in zip(traced, nodes):
            node.name = name
            if origin is not None:
                node.meta["archspec_name"] = origin
        plain.recompile()
    return _restored(Network(plain, plain.graph, class_name=class_name), args[0])


def _restored(gm: Network, state: dict[str, Any]) -> Network:
    """`gm` with the top-level modules (block containers holding the same leaf modules), the attributes and the
    compiled spec of the module whose `__dict__` was `state`."""
    for name, child in state["_modules"].items():
        setattr(gm, name, child)
    for key, value in state.items():
        if key not in gm.__dict__:
            gm.__dict__[key] = value
    compiled = state.get("archspec", state.get("meta", {}).get("archspec"))
    gm.archspec = compiled
    gm.meta["archspec"] = compiled
    return gm


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


def lower(compiled: Compiled, *, inplace: bool = True) -> fx.GraphModule:
    """The compiled spec as an executable GraphModule with freshly initialised parameters. (Activation
    checkpointing by stage, a training concern, is `archspec.runtime.stages.checkpoint_stages`.)"""
    with _collector_paused():
        return _lower(compiled, inplace)


def _lower(compiled: Compiled, inplace: bool) -> fx.GraphModule:
    g = compiled.graph
    blocks = g.blocks
    root = nn.Module()
    graph = fx.Graph()
    values: dict[str, fx.Node] = {}

    def value_name(name: str) -> str:
        return name.replace(".", "_")

    for n in g.nodes_in_order():
        name, attrs, ins = n.name, n.attrs, n.inputs
        args = [values[p] for p in ins]
        lowering = lowering_of(n.op)
        if lowering.module is not None:
            module = lowering.module(attrs, g.shape(ins[0]))
            if lowering.init is not None:
                lowering.init(module, attrs)
            owner = _container(root, n.path[:-1], blocks)
            owner.add_module(n.path[-1], module)
            node = graph.call_module(name, tuple(args))
        else:
            in_place = inplace and _may_overwrite(g, ins[0] if ins else None, name)
            node = lowering.function(graph, attrs, args, in_place)
        aliased = bool(args) and node is args[0]  # identity: the op is its input, nothing new to name
        if not aliased and node.op != "placeholder":  # the network input keeps its name `x`
            node.name = value_name(name)
            node.meta["archspec_name"] = name  # the IR node it comes from (for tools and tests)
        values[name] = node
    graph.output(values[g.output])
    gm = Network(root, graph, class_name=_class_name(compiled.name))
    for child, module in root.named_children():  # keep the block containers (same leaf modules)
        setattr(gm, child, module)
    gm.archspec = compiled
    gm.meta["archspec"] = compiled
    return gm


def _may_overwrite(g: Graph, producer: str | None, consumer: str) -> bool:
    """May `consumer` write its result into `producer`'s output tensor (in place)?"""
    if producer is None:
        return False
    return g.users(producer) == [consumer] and lowering_of(g.node(producer).op).overwritable


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
