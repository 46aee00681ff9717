"""`check_size`: a warning, with the figures, when a network could not be held by any machine.

A typo in a width (`out: 100000000`) compiles to 9e16 parameters; archspec says so before anything tries to
allocate it. The limits are far above every real network (ResNet-1202 holds 19.4 M parameters and 0.5 GiB of
activations per CIFAR image): parameters of more than 1 TiB (at the compile's bytes per element), or the
activations of one sample above 256 GiB (more than any accelerator holds, for a batch of one).
"""

from __future__ import annotations

import networkx as nx

from archspec.compiler.ir import order
from archspec.compiler.passes.context import PassContext
from archspec.lang.diagnostics import Diagnostic

PARAM_BYTES_LIMIT = 2 ** 40
ACTIVATION_BYTES_LIMIT = 256 * 2 ** 30


def _gib(n: int) -> str:
    return f"{n / 2 ** 30:,.0f} GiB"


def check_size(g: nx.DiGraph, ctx: PassContext) -> None:
    names = order(g)
    params = sum(g.nodes[n]["meta"].get("params", 0) for n in names)
    activations = sum(g.nodes[n]["meta"].get("activation_bytes", 0) for n in names)
    biggest = max(names, key=lambda n: g.nodes[n]["meta"].get("params", 0))
    if params * ctx.dtype_bytes > PARAM_BYTES_LIMIT:
        ctx.warnings.append(Diagnostic(
            "E600", f"{params:,} parameters ({_gib(params * ctx.dtype_bytes)} at {ctx.dtype_bytes} bytes each): no "
            f"machine can hold them; `{biggest}` alone has {g.nodes[biggest]['meta']['params']:,}",
            g.nodes[biggest]["loc"], severity="warning", hint="check the widths (`out`) of the largest layers"))
    if activations > ACTIVATION_BYTES_LIMIT:
        widest = max(names, key=lambda n: g.nodes[n]["meta"].get("activation_bytes", 0))
        ctx.warnings.append(Diagnostic(
            "E600", f"the activations of one sample take {_gib(activations)}: no accelerator can hold them; "
            f"`{widest}` alone gives {_gib(g.nodes[widest]['meta']['activation_bytes'])}",
            g.nodes[widest]["loc"], severity="warning", hint="check the widths (`out`) and the input size"))
