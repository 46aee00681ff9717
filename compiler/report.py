"""Human-readable reports of a compiled spec: the summary, the Table 1 stage table, the per-layer table, and the
side-by-side Markdown table of several specs (`archspec table`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Sequence

from archspec.lang.diagnostics import printable
from archspec.lang.ops import fmt_shape
from archspec.lang.ops.layers import conv_text

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled
    from archspec.compiler.expand import Block
    from archspec.compiler.ir import Graph


_UNITS = [(10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")]


def eng(n: float) -> str:
    """Engineering units with 3 significant digits: 1.81 G, 118 M, 9.54 K, 650."""
    for scale, suffix in _UNITS:
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.3g} {suffix}" if v < 100 else f"{v:.0f} {suffix}"
    return f"{n:g}"


def aligned(rows: Sequence[Sequence[Any]], right: Sequence[bool] = (), indent: str = "") -> list[str]:
    """Rows as aligned columns two spaces apart (those marked in `right` right-aligned), each line `indent`ed: the
    one column formatter of every text table (reports, Table 1, diffs)."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    return [(indent + "  ".join(c.rjust(w) if i < len(right) and right[i] else c.ljust(w)
                                for i, (c, w) in enumerate(zip(r, widths)))).rstrip() for r in cells]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[bool]) -> str:
    """Aligned columns under a header and its rule; numbers right-aligned."""
    lines = aligned([headers, *rows], right)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def overrides_text(c: Compiled) -> str:
    """The `--set` values a spec was compiled with, as `n=200, shortcut=C` (empty without), `printable`: a value
    holding an escape sequence is shown, not obeyed."""
    return printable(", ".join(f"{k}={v}" for k, v in c.spec.overrides.items()))


def title(c: Compiled) -> str:
    """`resnet50  (specs/resnet50.yaml; depths=[3, 4, 23, 3])`: the name, the file and the --set values."""
    sets = overrides_text(c)
    return f"{c.name}  ({printable(c.spec.display)}{'; ' + sets if sets else ''})"


def _has_filters(c: Compiled) -> bool:
    """Whether some buffers are not norm statistics but fixed filters (blur_pool's)."""
    return any(c.facts(n).buffers and c.graph.node(n).opdef.kind != "norm" for n in c.graph.order())


def _buffers_text(c: Compiled) -> str:
    return "buffers (norm running statistics, fixed filters)" if _has_filters(c) else "BN buffers (running statistics)"


def summary(c: Compiled) -> str:
    unit = c.convention.unit_name
    lines = [title(c)]
    if c.spec.description:
        lines.append(f"  {c.spec.description}")
    rows = [
        ("input", fmt_shape(c.input_shape)),
        ("output", f"{fmt_shape(c.output_shape)}  ({c.output})"),
        ("depth", f"{c.depth} weighted layers (conv and linear on the longest path)"),
        ("params", f"{c.params:,}  ({eng(c.params)})   + {c.buffers:,} {_buffers_text(c)}"),
        (unit, f"{c.total():,}  ({eng(c.total())})   {c.convention.text}"),
        ("activations", f"{c.activation_bytes / 2**20:,.1f} MiB per sample ({_dtype(c.dtype_bytes)}, every op "
                        f"output)"),
        ("graph", f"{c.graph.number_of_nodes() - 1:,} ops, {len(c.expansion.blocks):,} block instances"),
    ]
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def _dtype(nbytes: int) -> str:
    return {4: "float32", 2: "16-bit", 8: "float64", 1: "8-bit"}.get(nbytes, f"{nbytes} bytes")


def stage_table(c: Compiled) -> str:
    unit = c.convention.unit_name
    rows = []
    for s in c.stages():
        blocks = f"{s.blocks} x {s.block}" if s.blocks else "-"
        rows.append([s.name, fmt_shape(s.output), blocks, eng(c.total(s.nodes)), f"{s.params:,}"])
    rows.append(["total", fmt_shape(c.output_shape), "", eng(c.total()), f"{c.params:,}"])
    return table(["stage", "output", "blocks", unit, "params"], rows, [False, True, True, True, True])


def layer_table(c: Compiled) -> str:
    unit = c.convention.unit_name
    rows = []
    for node in c.graph.nodes_in_order():
        if node.name == "input":
            continue
        params = c.facts(node.name).params
        rows.append([node.name, node.op, fmt_shape(c.shape(node.name)), f"{params:,}" if params else "-",
                     eng(c.total([node.name])) if c.total([node.name]) else "-"])
    return table(["layer", "op", "output", "params", unit], rows, [False, False, True, True, True])


# -- Table 1: several specs side by side ---------------------------------------------------------------------

def stage_descriptions(c: Compiled) -> dict[str, list[str]]:
    """Each stage as the paper writes it: "7x7, 64, stride 2", "[3x3, 64; 3x3, 64] x 2", "1000-d fc"."""
    from archspec.compiler.analysis import stage_blocks

    g, blocks = c.graph, c.graph.blocks
    out: dict[str, list[str]] = {}
    done: set[str] = set()
    for node in g.nodes_in_order():
        if node.name == "input":
            continue
        lines = out.setdefault(node.stage, [])
        if node.scope:
            top = node.scope[0]
            if top in done:
                continue
            done.add(top)
            counted = [b for b in stage_blocks(g, node.stage) if b.name == top or top in g.around(b.name)]
            first = counted[0] if counted else blocks[top]
            if _plain_ops(g, top, counted, blocks):  # a stem or a head: its ops one by one, as Table 1 lists them
                lines.extend(t for t in map(lambda n: _op_text(g, n), g.members(top)) if t)
                continue
            # blocks of a stage that differ (a pruned net's) each get their line; alike ones are counted together
            runs: list[list[Any]] = []
            for b in counted or [first]:
                inner = _inner_text(g, b)
                if runs and runs[-1][0] == inner:
                    runs[-1][1] += 1
                else:
                    runs.append([inner, 1])
            lines.extend(f"[{inner}] x {n}" for inner, n in runs)
            continue
        text = _op_text(g, node.name)
        if text:
            lines.append(text)
    return out


def _inner_text(g: Graph, b: Block) -> str:
    """A residual block's convs as Table 1 writes them: `1x1, 64; 3x3, 64; 1x1, 256`."""
    convs = [g.node(n) for n in g.members(b.name)]
    return "; ".join(conv_text(n.attrs, stride=False) for n in convs
                     if n.opdef.kind == "conv" and n.block == b.name) or b.template


def _plain_ops(g: Graph, top: str, counted: list[Block], blocks: dict[str, Block]) -> bool:
    """Is the top-level instance `top` neither repeated nor residual (no residual sum, `add`, in it)?"""
    if len(counted) > 1 or blocks[top].copy is not None or any(b.name != top for b in counted):
        return False
    return not any(g.node(n).opdef.residual for n in g.members(top))


def _op_text(g: Graph, name: str) -> str | None:
    node = g.node(name)
    table = node.opdef.table
    return table(node.attrs) if table is not None else None


# Markdown that spec text could make active in a cell: a backslash (it escapes what follows), `*`, `~` and the
# backtick (emphasis, strikethrough, code) always; `_` where it can open or close emphasis (not inside a word:
# `conv2_x` stays); `]` where it could close a link's or an image's text (followed by `(` or `[`: `[a](url)`,
# `![i](src)`, `[a][ref]`), so Table 1's own `[3x3, 64; 3x3, 64] x 2` stays as the paper writes it.
_MD_ACTIVE = re.compile(r"[\\*~`|]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|\](?=\s*[(\[])")


def _md(text: str) -> str:
    """Spec text as one Markdown table cell: `|` cannot end the cell, HTML is shown, not interpreted (`&lt;`),
    and no link, image, emphasis or code span can start in it (`_MD_ACTIVE` gets a backslash)."""
    from html import escape

    return _MD_ACTIVE.sub(lambda m: "\\" + m.group(), escape(str(text), quote=False))


def markdown_table(compiled: Sequence[Any]) -> str:
    """Rows per stage, a column per model, then params and FLOPs rows: Table 1 of the ResNet paper."""
    stages: list[str] = []
    sizes: dict[str, dict[str, None]] = {}  # each stage's output sizes, in model order, once each
    descs = []
    for c in compiled:
        descs.append(stage_descriptions(c))
        for s in c.stages():
            if s.name not in stages:
                stages.append(s.name)
            size = "x".join(map(str, s.output[1:])) if len(s.output) == 3 else fmt_shape(s.output)
            sizes.setdefault(s.name, {})[size] = None
    header = ["stage", "output size"] + [_md(c.name + (f" ({overrides_text(c)})" if c.spec.overrides else ""))
                                         for c in compiled]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in stages:
        cells = [_md(s), " / ".join(sizes[s])] + ["<br>".join(_md(x) for x in d.get(s, [])) or "" for d in descs]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("| params | | " + " | ".join(f"{c.params / 1e6:.1f} M" for c in compiled) + " |")
    unit = "FLOPs" if compiled and compiled[0].unit == "flops" else "FLOPs (multiply-adds)"  # the paper's name
    lines.append(f"| {unit} | | " + " | ".join(f"{c.total() / 1e9:.2f} x 10^9" for c in compiled) + " |")
    return "\n".join(lines)


# -- summary: the lowered module as torchinfo shows one ----------------------------------------------------------



def summary_rows(c: Compiled, max_depth: int = 3) -> list[dict[str, Any]]:
    """Rows of the module tree: block containers (with totals) and the ops in them, to `max_depth` levels.

    Names and types are those of `lower()`'s module (its tree is the nodes' qualified names, `Node.path`): a
    container per block instance (its template as type), a module per stateful op, a function for the rest.
    Numbers come from the compiler's passes.
    """
    from archspec.compiler.ops import LOWERINGS  # (the lowering table: only `summary` needs it, not `compile`)

    g, blocks = c.graph, c.graph.blocks
    members: dict[tuple[str, ...], list[str]] = {}
    nodes = [n for n in g.nodes_in_order() if n.name != "input"]
    for node in nodes:
        for k in range(1, len(node.path)):
            members.setdefault(node.path[:k], []).append(node.name)
    rows: list[dict[str, Any]] = []
    shown: set[tuple[str, ...]] = set()
    for node in nodes:
        path = node.path
        for k in range(1, len(path)):
            prefix = path[:k]
            if prefix in shown or k > max_depth:
                continue
            shown.add(prefix)
            name = ".".join(prefix)
            block = blocks.get(name)
            inside = members[prefix]
            out = c.shape(block.output) if block is not None and block.output in g else c.shape(inside[-1])
            rows.append({"name": name, "label": prefix[-1], "depth": k,
                         "type": block.template if block else "module", "shape": out,
                         "params": c.summed("params", inside), "total": c.total(inside), "leaf": False})
        if len(path) <= max_depth and path not in shown:
            shown.add(path)
            rows.append({"name": node.name, "label": path[-1], "depth": len(path),
                         "type": LOWERINGS[node.op].torch_name or "op", "shape": c.shape(node.name),
                         "params": c.facts(node.name).params, "total": c.total([node.name]), "leaf": True})
    return rows


def module_summary(c: Compiled, max_depth: int = 3, batch: int = 1) -> str:
    unit = c.convention.unit_name
    rows = []
    for r in summary_rows(c, max_depth):
        label = "  " * (r["depth"] - 1) + r["label"] + f" ({r['type']})"
        shape = "[" + ", ".join(str(d) for d in (batch,) + tuple(r["shape"])) + "]"
        rows.append([label, shape, f"{r['params']:,}" if r["params"] else "-",
                     eng(r["total"] * batch) if r["total"] else "-"])
    head = f"{c.name} ({type_name(c)})"
    body = table([head, "output shape", "params", unit], rows, [False, True, True, True])
    mib = 2**20
    foot = [
        f"total params: {c.params:,}",
        f"trainable params: {c.params:,}",
        f"buffers ({'norm running statistics, fixed filters' if _has_filters(c) else 'BN running statistics'}): "
        f"{c.buffers:,}",
        f"total {unit}: {eng(c.total() * batch)} ({c.convention.text}, batch {batch})",
        f"input size: {batch * _numel(c.input_shape) * 4 / mib:.2f} MiB",
        f"forward activations: {batch * c.activation_bytes / mib:.2f} MiB",
        f"params size: {c.params * 4 / mib:.2f} MiB",
    ]
    return body + "\n" + "=" * len(body.splitlines()[1]) + "\n" + "\n".join(foot)


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def type_name(c: Compiled) -> str:
    return "GraphModule"
