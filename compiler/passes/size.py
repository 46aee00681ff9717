"""`size_warnings`: a warning, with the figures, when a network could not be held by any machine.

A typo in a width (`out: 100000000`) compiles to 9e16 parameters; archspec says so before anything tries to
allocate it. The limits are far above every real network (ResNet-1202 holds 19.4 M parameters and 0.5 GiB of
activations per CIFAR image): parameters of more than 1 TiB (at the bytes per element figures are shown with),
or the activations of one sample above 256 GiB (more than any accelerator holds, for a batch of one). Bytes are
a presentation choice, so the warnings are made from the raw facts when a compiled spec is shown.
"""

from __future__ import annotations

from archspec.lang.codes import NETWORK_TOO_LARGE
from archspec.compiler.ir import Graph
from archspec.lang.diagnostics import Diagnostic

PARAM_BYTES_LIMIT = 2 ** 40
ACTIVATION_BYTES_LIMIT = 256 * 2 ** 30


def _gib(n: int) -> str:
    return f"{n / 2 ** 30:,.0f} GiB"


def size_warnings(g: Graph, dtype_bytes: int) -> list[Diagnostic]:
    names = g.order()
    facts = {n: g.facts(n) for n in names}
    params = sum(f.params for f in facts.values())
    activations = sum(f.activation_elements for f in facts.values()) * dtype_bytes
    out = []
    if params * dtype_bytes > PARAM_BYTES_LIMIT:
        biggest = max(names, key=lambda n: facts[n].params)
        out.append(Diagnostic(
            NETWORK_TOO_LARGE, f"{params:,} parameters ({_gib(params * dtype_bytes)} at {dtype_bytes} bytes each): no "
            f"machine can hold them; `{biggest}` alone has {facts[biggest].params:,}",
            g.node(biggest).loc, severity="warning", hint="check the widths (`out`) of the largest layers"))
    if activations > ACTIVATION_BYTES_LIMIT:
        widest = max(names, key=lambda n: facts[n].activation_elements)
        out.append(Diagnostic(
            NETWORK_TOO_LARGE, f"the activations of one sample take {_gib(activations)}: no accelerator can hold them; "
            f"`{widest}` alone gives {_gib(facts[widest].activation_elements * dtype_bytes)}",
            g.node(widest).loc, severity="warning", hint="check the widths (`out`) and the input size"))
    return out
