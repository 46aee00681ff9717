"""Architecture diagrams with Graphviz: the Table 1 view, residual blocks, or every op.

Levels:
- `stage`: one box per Table 1 row (stem, conv2_x .. conv5_x with their blocks and repeat counts, head).
- `block`: each residual block is a cluster with its skip edge; runs of identical blocks (same template and
  arguments) of `collapse` (default 2) or more become one box "bottleneck x 35".
- `layer`: every primitive op.

Like `mx.viz.plot_network`: tensor shapes (C x H x W) label the edges, weights are never drawn, and BN and ReLU
fold into the conv before them (`fold=False` shows them). Boxes are coloured by the kind of op (with a legend);
skip connections are dashed and coloured apart from the main path; `annotate` adds MACs and/or params.
"""

from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from archspec.compiler.report import eng, stage_descriptions
from archspec.lang.errors import UserError
from archspec.lang.ops import fmt_shape

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled
    from archspec.compiler.expand import Block
    from archspec.compiler.ir import Graph


LEVELS = ("stage", "block", "layer")
COLOURS = {  # fill colours by op kind (ColorBrewer pastels: readable in print and for most colour vision)
    "input": "#ffffff", "conv": "#a6cee3", "norm": "#b2df8a", "act": "#b2df8a", "pool": "#fdbf6f",
    "merge": "#fb9a99", "linear": "#cab2d6", "reshape": "#eeeeee", "other": "#dddddd", "block": "#c7e9f1",
    "stage": "#f0f0f0",
}
KIND_NAMES = {"input": "input", "conv": "convolution", "norm": "batch norm", "act": "activation",
              "pool": "pooling", "merge": "add / concat", "linear": "fully connected", "reshape": "flatten",
              "other": "shortcut op", "block": "repeated blocks", "stage": "stage"}
SKIP_COLOUR, MAIN_COLOUR = "#d6604d", "#404040"


@dataclass
class Box:
    """One drawn node: a group of IR nodes (a conv with its BN and ReLU, a collapsed run of blocks, ...)."""

    id: str
    kind: str
    lines: list[str]
    members: list[str] = field(default_factory=list)
    cluster: str | None = None
    skip: bool = False


@dataclass
class Picture:
    boxes: dict[str, Box]
    edges: dict[tuple[str, str], dict[str, Any]]
    clusters: dict[str, str]  # cluster id -> label


def skip_edges(g: Graph) -> set[tuple[str, str]]:
    """Edges of shortcut paths: into a residual sum's (an add's) 2nd+ input, traced back while inside its block."""
    out: set[tuple[str, str]] = set()
    for name in g:
        node = g.node(name)
        if not node.opdef.residual:
            continue
        scope = node.scope
        for producer in node.inputs[1:]:
            out.add((producer, name))
            current = g.node(producer)
            while current.name != "input" and scope and current.scope[: len(scope)] == scope and \
                    not current.opdef.residual and len(current.inputs) == 1 and g.out_degree(current.name) == 1:
                parent = g.node(current.inputs[0])
                out.add((parent.name, current.name))
                if parent.scope[: len(scope)] != scope:
                    break
                current = parent
    return out


def _layer_text(g: Graph, name: str) -> str:
    node = g.node(name)
    return node.opdef.text(node.attrs)


def _annotation(c: Compiled, members: Iterable[str], annotate: Iterable[str]) -> str | None:
    members = list(members)
    parts = []
    if "macs" in annotate:
        total = c.total(members)
        if total:
            parts.append(f"{eng(total)} {c.convention.unit_name}")
    if "params" in annotate:
        params = c.summed("params", members)
        if params:
            parts.append(f"{eng(params)} params")
    return " · ".join(parts) or None


def _within(scope: tuple[str, ...], outer: tuple[str, ...]) -> bool:
    """Is a node of `scope` in the block `outer` or in a block around it (a prefix of it)?"""
    return tuple(outer[:len(scope)]) == tuple(scope)


def layer_picture(c: Compiled, fold: bool = True) -> Picture:
    """Every op (BN and ReLU folded into the op before them unless `fold` is False); identities vanish."""
    g = c.graph
    owner: dict[str, str] = {}
    boxes: dict[str, Box] = {}
    for node in g.nodes_in_order():
        name, op = node.name, node.opdef
        if op.hidden:
            owner[name] = owner[node.inputs[0]]
            continue
        if fold and op.fold and len(node.inputs) == 1:
            prev = owner[node.inputs[0]]
            box = boxes[prev]
            head = g.node(box.members[0])
            # BN and ReLU join the op before them when they are its only reader, in its block or one around it
            # (never into the block before: a pre-activation block's first BN stays in it); a residual add takes
            # only its activation
            inside = _within(node.scope, head.scope)
            if (g.users(box.members[-1]) == [name] and head.opdef.kind != "input" and inside
                    and (not head.opdef.residual or op.kind == "act")):
                box.members.append(name)
                owner[name] = prev
                continue
        boxes[name] = Box(name, op.kind, [_layer_text(g, name)], [name])
        owner[name] = name
    for box in boxes.values():  # the folded ops, on a second line: "BN · ReLU"
        extra = [_layer_text(g, m) for m in box.members[1:]]
        if extra:
            box.lines.append(" · ".join(extra))
    skips = skip_edges(g)
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for name in g:
        for producer in g.node(name).inputs:
            a, b = owner[producer], owner[name]
            if a == b:
                continue
            skip = (producer, name) in skips
            shape = g.shape(producer)
            edge = edges.setdefault((a, b), {"shape": shape, "skip": True})
            edge["skip"] = edge["skip"] and skip  # a drawn edge is a skip edge only if all it stands for are
    for (a, b), e in edges.items():
        if e["skip"] and boxes[b].kind != "merge":  # a merge (the add itself) is where the skip path ends
            boxes[b].skip = True
    return Picture(boxes, edges, {})


def _identical_runs(g: Graph, counted: list[Block]) -> list[list[tuple[Any, Block]]]:
    """Consecutive blocks with the same template, arguments, shapes, stage and parent: (signature, block) runs."""
    runs: list[list[Any]] = []
    for b in counted:
        sig = (b.template, tuple(sorted((k, repr(v)) for k, v in b.args.items())),
               g.shape(b.inputs[0]) if b.inputs else None, g.shape(b.output) if b.output in g else None,
               b.stage, b.parent)
        if runs and runs[-1][0][0] == sig:
            runs[-1].append((sig, b))
        else:
            runs.append([(sig, b)])
    return runs


def block_picture(c: Compiled, fold: bool = True, collapse: int = 2) -> Picture:
    """Residual blocks as clusters; runs of `collapse` or more identical blocks as one box."""
    from archspec.compiler.analysis import stage_blocks

    pic = layer_picture(c, fold)
    g = c.graph
    counted = [b for s in c.stages() for b in stage_blocks(g, s.name)]
    counted_names = {b.name for b in counted}
    prefix_of: dict[str, str] = {}  # box id -> the counted block it is in
    for box_id in pic.boxes:
        block = _block_of(g, box_id, counted_names)
        if block is not None:
            prefix_of[box_id] = block
    runs = _identical_runs(g, counted)
    merged: dict[str, str] = {}  # counted block name -> collapsed box id
    boxes: dict[str, Box] = {}
    clusters: dict[str, str] = {}
    for run in runs:
        if len(run) >= collapse:
            first, last = run[0][1], run[-1][1]
            box_id = f"{first.name}..{last.name.rsplit('.', 1)[-1]}"
            width = first.args.get("width")
            label = f"{first.template}" + (f" {width}" if width is not None else "")
            out_shape = g.shape(last.output)
            members = [n for _, b in run for n in g.members(b.name)]
            boxes[box_id] = Box(box_id, "block", [f"{label} x {len(run)}",
                                                  f"{first.name} .. {last.name}", fmt_shape(out_shape)], members)
            for _, b in run:
                merged[b.name] = box_id
        else:
            for _, b in run:
                extra = f", /{b.args['stride']}" if b.args.get("stride", 1) != 1 else ""
                clusters[f"cluster_{b.name}"] = f"{b.name} ({b.template}{extra})"
    mapping: dict[str, str] = {}
    for box_id, box in pic.boxes.items():
        block = prefix_of.get(box_id)
        if block is not None and block in merged:
            mapping[box_id] = merged[block]
            continue
        mapping[box_id] = box_id
        if block is not None:
            box.cluster = f"cluster_{block}"
        boxes[box_id] = box
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    for (a, b), e in pic.edges.items():
        ma, mb = mapping[a], mapping[b]
        if ma == mb:
            continue
        edge = edges.setdefault((ma, mb), {"shape": e["shape"], "skip": True})
        edge["skip"] = edge["skip"] and e["skip"]
    return Picture(boxes, edges, clusters)


def _block_of(g: Graph, name: str, names: set[str]) -> str | None:
    """The outermost block instance of `names` that the node `name` is in (None if in none)."""
    return next((b for b in g.node(name).scope if b in names), None)


def stage_picture(c: Compiled) -> Picture:
    """One box per Table 1 stage, described as the paper writes it."""
    descriptions = stage_descriptions(c)
    boxes: dict[str, Box] = {"input": Box("input", "input", [f"input {fmt_shape(c.input_shape)}"], ["input"])}
    owner = {"input": "input"}
    for s in c.stages():
        lines = [s.name] + (descriptions.get(s.name) or [])
        boxes[s.name] = Box(s.name, "stage", lines, list(s.nodes))
        for n in s.nodes:
            owner[n] = s.name
    edges: dict[tuple[str, str], dict[str, Any]] = {}
    g = c.graph
    for name in g:
        for producer in g.node(name).inputs:
            a, b = owner[producer], owner[name]
            if a != b:
                edges.setdefault((a, b), {"shape": g.shape(producer), "skip": False})
    return Picture(boxes, edges, {})


def picture(c: Compiled, level: str = "block", fold: bool = True, collapse: int = 2) -> Picture:
    if level == "stage":
        return stage_picture(c)
    if level == "layer":
        return layer_picture(c, fold)
    return block_picture(c, fold, collapse)


def _html(lines: list[str], note: str | None) -> str:
    from html import escape

    lines = [_printable(x) for x in lines]
    parts = [f"<B>{escape(lines[0])}</B>"] + [f'<FONT POINT-SIZE="10">{escape(x)}</FONT>' for x in lines[1:]]
    if note:
        parts.append(f'<FONT POINT-SIZE="9" COLOR="#555555">{escape(note)}</FONT>')
    return "<" + "<BR/>".join(parts) + ">"


def to_graphviz(c: Compiled, pic: Picture, *, level: str, direction: str = "TB", annotate: Iterable[str] = (),
                legend: bool = True, title: bool = True) -> Any:
    """The picture as a graphviz.Digraph (nothing is rendered yet)."""
    import graphviz

    annotate = set(annotate)
    unit = c.convention.unit_name
    ids = _dot_ids(pic)
    dg = graphviz.Digraph(name=_text(c.name), graph_attr={
        "rankdir": direction, "fontname": "Helvetica", "nodesep": "0.25", "ranksep": "0.3",
        "labelloc": "t", "fontsize": "16",
        **({"label": _text(f"{c.name}: {c.params:,} params, {eng(c.total())} {unit}")} if title else {}),
    }, node_attr={"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "11",
                  "penwidth": "1.0", "margin": "0.12,0.04"},
        edge_attr={"fontname": "Helvetica", "fontsize": "9", "color": MAIN_COLOUR, "arrowsize": "0.6"})
    grouped: dict[str | None, list[Box]] = {}
    for box in pic.boxes.values():
        grouped.setdefault(box.cluster, []).append(box)

    def draw(target: Any, box: Box) -> None:
        note = _annotation(c, box.members, annotate) if annotate else None
        extra = {"color": SKIP_COLOUR, "penwidth": "1.4"} if box.skip else {}
        if box.kind == "block":
            extra.update(style="rounded,filled,bold", peripheries="2")
        target.node(ids[box.id], _html(box.lines, note), fillcolor=COLOURS.get(box.kind, "#dddddd"), **extra)

    for box in grouped.get(None, []):
        draw(dg, box)
    for cluster, members in grouped.items():
        if cluster is None:
            continue
        with dg.subgraph(name=_text(cluster)) as sub:
            sub.attr(label=_text(pic.clusters.get(cluster, cluster)), style="rounded,dashed", color="#888888",
                     fontsize="10", fontname="Helvetica", labeljust="l")
            for box in members:
                draw(sub, box)
    for (a, b), e in pic.edges.items():
        label = fmt_shape(e["shape"]) if e["shape"] is not None else ""
        attrs: dict[str, str] = {}
        if e["skip"]:
            attrs = {"style": "dashed", "color": SKIP_COLOUR, "fontcolor": SKIP_COLOUR, "penwidth": "1.6"}
            if not pic.boxes[a].skip:
                label = ""  # the same shape is already on the main path beside it
        dg.edge(ids.get(a, a), ids.get(b, b), label=label, **attrs)
    if legend and level != "stage":
        _legend(dg, pic)
    return dg


_PLAIN_ID = re.compile(r"^[A-Za-z0-9_.]+$")


def _dot_ids(pic: Picture) -> dict[str, str]:
    """DOT ids for the boxes: a box's own id where it is a plain name (`layer1.0.conv1`), else a made-up one.
    Ids come from spec text (a stage's name): `<...>` would be read as an HTML label, `a:b` as a port."""
    return {b: b if _PLAIN_ID.match(b) else f"box{i}" for i, b in enumerate(pic.boxes)}


def _printable(text: str) -> str:
    """Text without control characters (a terminal's escape sequences have no place in a diagram)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in str(text))


def _text(text: str) -> Any:
    """Spec text as a DOT string that is never HTML-like, whatever it starts and ends with."""
    import graphviz

    return graphviz.nohtml(_printable(text))


def _legend(dg: Any, pic: Picture) -> None:
    """One compact table: a swatch per kind of op drawn, and the skip-connection line style."""
    kinds = [k for k in COLOURS if any(b.kind == k for b in pic.boxes.values())]
    rows = "".join(f'<TR><TD BGCOLOR="{COLOURS[k]}" WIDTH="18" BORDER="1"> </TD>'
                   f'<TD ALIGN="LEFT">{KIND_NAMES[k]}</TD></TR>' for k in kinds)
    if any(e["skip"] for e in pic.edges.values()):
        rows += (f'<TR><TD><FONT COLOR="{SKIP_COLOUR}"><B>- - -</B></FONT></TD>'
                 f'<TD ALIGN="LEFT"><FONT COLOR="{SKIP_COLOUR}">skip connection</FONT></TD></TR>')
    dg.node("legend", f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">'
            f'<TR><TD COLSPAN="2"><B>legend</B></TD></TR>{rows}</TABLE>>',
            shape="box", style="rounded", color="#bbbbbb", fontsize="9")


def render_graph(c: Compiled, level: str = "block", *, fold: bool = True, collapse: int = 2, direction: str = "TB",
                 annotate: Iterable[str] = (), legend: bool = True, title: bool = True) -> Any:
    """The diagram of a compiled spec as a graphviz.Digraph."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    pic = picture(c, level, fold, collapse)
    return to_graphviz(c, pic, level=level, direction=direction, annotate=annotate, legend=legend, title=title)


FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
MAX_BOXES = 1000  # dot lays out 1,000 boxes in about 1.5 s here; 1,800 take 12 s and no one can read them
INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
                "`conda install graphviz`; or write a .dot file")


class RenderError(UserError):
    """A diagram that cannot be written as asked; the message is one line with the fix."""


def write(dg: Any, dest: str, boxes: int, *, level: str, max_boxes: int = MAX_BOXES) -> str:
    """Render `dg` to `dest` (format from the extension), atomically; returns what was written."""
    import os
    from pathlib import Path

    from archspec.lang.files import BadFile, atomic_path

    path = Path(dest)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RenderError(f"cannot tell the format of {dest}: use a name ending in "
                          + ", ".join(sorted(set(FORMATS))))
    if fmt != "dot" and boxes > max_boxes:
        raise RenderError(f"the {level} level has {boxes:,} boxes, over the budget of {max_boxes:,} for drawn "
                          f"formats (dot would take long and the picture would be unreadable): use --level block, "
                          f"write a .dot file, or raise --max-boxes")
    try:
        data = dg.source.encode() if fmt == "dot" else dg.pipe(format=fmt)
    except Exception as e:  # noqa: BLE001 - graphviz raises its own kinds
        if type(e).__name__ == "ExecutableNotFound" or isinstance(e, FileNotFoundError):
            raise RenderError(f"writing {path.suffix} needs Graphviz's `dot` program, which is not installed: "
                              f"{INSTALL_HINT}") from None
        raise
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except BadFile as e:
        raise RenderError(str(e)) from None
    except OSError as e:
        raise RenderError(f"cannot write {dest}: {e.strerror or e}") from None
    return f"wrote {dest} ({fmt}, {boxes:,} boxes, {os.path.getsize(path) / 1024:,.0f} KiB)"
