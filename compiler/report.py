"""Human-readable reports of a compiled spec: the summary, the Table 1 stage table, the per-layer table, and the
side-by-side Markdown table of several specs (`archspec table`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from archspec.compiler.ir import order
from archspec.compiler.ops import LOWERINGS
from archspec.lang.ops import OPS, fmt_shape
from archspec.lang.ops.layers import conv_text

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled


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
    """The `--set` values a spec was compiled with, as `n=200, shortcut=C` (empty without)."""
    return ", ".join(f"{k}={v}" for k, v in c.spec.overrides.items())


def title(c: Compiled) -> str:
    """`resnet50  (specs/resnet50.yaml; depths=[3, 4, 23, 3])`: the name, the file and the --set values."""
    sets = overrides_text(c)
    return f"{c.name}  ({c.spec.display}{'; ' + sets if sets else ''})"


def summary(c: Compiled) -> str:
    unit = "FLOPs" if c.unit == "flops" else "MACs"
    lines = [title(c)]
    if c.spec.description:
        lines.append(f"  {c.spec.description}")
    rows = [
        ("input", fmt_shape(c.input_shape)),
        ("output", f"{fmt_shape(c.output_shape)}  ({c.output})"),
        ("depth", f"{c.depth} weighted layers (conv and linear on the longest path)"),
        ("params", f"{c.params:,}  ({eng(c.params)})   + {c.buffers:,} BN buffers (running statistics)"),
        (unit, f"{c.total():,}  ({eng(c.total())})   {c.convention}"),
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
    unit = "FLOPs" if c.unit == "flops" else "MACs"
    rows = []
    for s in c.stages():
        blocks = f"{s.blocks} x {s.block}" if s.blocks else "-"
        rows.append([s.name, fmt_shape(s.output), blocks, eng(c.total(s.nodes)), f"{s.params:,}"])
    rows.append(["total", fmt_shape(c.output_shape), "", eng(c.total()), f"{c.params:,}"])
    return table(["stage", "output", "blocks", unit, "params"], rows, [False, True, True, True, True])


def layer_table(c: Compiled) -> str:
    unit = "FLOPs" if c.unit == "flops" else "MACs"
    rows = []
    for name in order(c.graph):
        if name == "input":
            continue
        data = c.graph.nodes[name]
        m = data["meta"]
        rows.append([name, data["op"], fmt_shape(m["shape"]), f"{m['params']:,}" if m["params"] else "-",
                     eng(c.total([name])) if c.total([name]) else "-"])
    return table(["layer", "op", "output", "params", unit], rows, [False, False, True, True, True])


# -- Table 1: several specs side by side ---------------------------------------------------------------------

def stage_descriptions(c: Compiled) -> dict[str, list[str]]:
    """Each stage as the paper writes it: "7x7, 64, stride 2", "[3x3, 64; 3x3, 64] x 2", "1000-d fc"."""
    from archspec.compiler.analysis import stage_blocks

    g, blocks = c.graph, c.expansion.blocks
    out: dict[str, list[str]] = {}
    done: set[str] = set()
    for name in order(g):
        data = g.nodes[name]
        if name == "input":
            continue
        stage = data["stage"]
        lines = out.setdefault(stage, [])
        if data["scope"]:
            top = data["scope"][0]
            if top in done:
                continue
            done.add(top)
            counted = stage_blocks({k: b for k, b in blocks.items()}, stage)
            counted = [b for b in counted if b.name == top or b.name.startswith(top + ".")]
            first = counted[0] if counted else blocks[top]
            if _plain_ops(g, top, counted, blocks):  # a stem or a head: its ops one by one, as Table 1 lists them
                members = [n for n in order(g) if g.nodes[n]["scope"] and g.nodes[n]["scope"][0] == top]
                lines.extend(t for t in map(lambda n: _op_text(g, n), members) if t)
                continue
            convs = [n for n in order(g) if g.nodes[n]["op"] == "conv" and g.nodes[n]["scope"]
                     and g.nodes[n]["scope"][-1] == first.name]
            inner = "; ".join(conv_text(g.nodes[n]["attrs"], stride=False) for n in convs) or first.template
            lines.append(f"[{inner}] x {max(1, len(counted))}")
            continue
        text = _op_text(g, name)
        if text:
            lines.append(text)
    return out


def _plain_ops(g: Any, top: str, counted: list[Any], blocks: dict[str, Any]) -> bool:
    """Is the top-level instance `top` neither repeated nor residual (no residual sum, `add`, in it)?"""
    if len(counted) > 1 or blocks[top].copy is not None or any(b.name != top for b in counted):
        return False
    return not any(OPS[d["op"]].residual and d["scope"] and d["scope"][0] == top for _, d in g.nodes(data=True))


def _op_text(g: Any, name: str) -> str | None:
    data = g.nodes[name]
    table = OPS[data["op"]].table
    return table(data["attrs"]) if table is not None else None


def _md(text: str) -> str:
    """Spec text as one Markdown table cell: `|` cannot end the cell, HTML is shown, not interpreted."""
    from html import escape

    return escape(str(text), quote=False).replace("|", "\\|")


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
    unit = "FLOPs" if compiled and compiled[0].unit == "flops" else "FLOPs (multiply-adds)"
    lines.append(f"| {unit} | | " + " | ".join(f"{c.total() / 1e9:.2f} x 10^9" for c in compiled) + " |")
    return "\n".join(lines)


# -- summary: the lowered module as torchinfo shows one ----------------------------------------------------------



def summary_rows(c: Compiled, max_depth: int = 3) -> list[dict[str, Any]]:
    """Rows of the module tree: block containers (with totals) and the ops in them, to `max_depth` levels.

    Names and types are those of `lower()`'s module: a container per block instance (its template as type),
    a module per stateful op, a function for the rest. Numbers come from the compiler's passes.
    """
    g, blocks = c.graph, c.expansion.blocks
    members: dict[str, list[str]] = {}
    for name in order(g):
        if name == "input":
            continue
        parts = name.split(".")
        for k in range(1, len(parts)):
            members.setdefault(".".join(parts[:k]), []).append(name)
    rows: list[dict[str, Any]] = []
    shown: set[str] = set()
    for name in order(g):
        if name == "input":
            continue
        parts = name.split(".")
        for k in range(1, len(parts)):
            prefix = ".".join(parts[:k])
            if prefix in shown or k > max_depth:
                continue
            shown.add(prefix)
            block = blocks.get(prefix)
            nodes = members[prefix]
            out = g.nodes[block.output]["meta"]["shape"] if block is not None and block.output in g.nodes else \
                g.nodes[nodes[-1]]["meta"]["shape"]
            rows.append({"name": prefix, "depth": k, "type": block.template if block else "module", "shape": out,
                         "params": c.summed("params", nodes), "total": c.total(nodes), "leaf": False})
        if len(parts) <= max_depth and name not in shown:
            shown.add(name)
            m = g.nodes[name]["meta"]
            rows.append({"name": name, "depth": len(parts), "type": LOWERINGS[g.nodes[name]["op"]].torch_name or "op",
                         "shape": m["shape"], "params": m["params"], "total": c.total([name]), "leaf": True})
    return rows


def module_summary(c: Compiled, max_depth: int = 3, batch: int = 1) -> str:
    unit = "FLOPs" if c.unit == "flops" else "MACs"
    rows = []
    for r in summary_rows(c, max_depth):
        label = "  " * (r["depth"] - 1) + r["name"].rsplit(".", 1)[-1] + f" ({r['type']})"
        shape = "[" + ", ".join(str(d) for d in (batch,) + tuple(r["shape"])) + "]"
        rows.append([label, shape, f"{r['params']:,}" if r["params"] else "-",
                     eng(r["total"] * batch) if r["total"] else "-"])
    head = f"{c.name} ({type_name(c)})"
    body = table([head, "output shape", "params", unit], rows, [False, True, True, True])
    mib = 2**20
    foot = [
        f"total params: {c.params:,}",
        f"trainable params: {c.params:,}",
        f"buffers (BN running statistics): {c.buffers:,}",
        f"total {unit}: {eng(c.total() * batch)} ({c.convention}, batch {batch})",
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
