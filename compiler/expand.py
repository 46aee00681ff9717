"""Expansion: a resolved spec becomes a table of primitive nodes (the IR before it is a graph).

Each body item is a primitive (`op:`), a block template instance (`use:`), or a choice (`cases:`); `when:`
drops an item, `repeat:` chains copies of it (`index` and `count` are defined in its expressions). An item's
input is the previous included item unless `in:` names others. Inside a block, `input` is the block's input and
`in_channels` its channel count. Names are hierarchical (`layer2.0.conv1`); a body with a single unnamed item
makes that item the block itself, and an unnamed `repeat` names its copies 0, 1, ...

Expansion checks what needs the whole structure: unknown ops, blocks and references, template arguments,
recursion, duplicate names, cycles, unused nodes, and the node budget (checked before a `repeat` runs).
Problems inside a block used many times are reported once, at the block's YAML line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archspec.compiler.graph_checks import check_graph, check_shapes, collapse
from archspec.lang.ops import OPS, USER_OPS, ShapeError, check_attr, fmt_shape
from archspec.lang.diagnostics import Diagnostic, Loc, SpecError, did_you_mean
from archspec.lang.schema import ITEM_KEYS, RESERVED_NAMES
from archspec.lang.spec import Spec
from archspec.lang.values import Failed, Scope, evaluate_expression, evaluate_value
from archspec.lang.types import value_problem
from archspec.lang.yamlsrc import LocDict, LocList

MAX_NODES = 100_000  # ResNet-1202 has 4,807
MAX_NESTING = 32  # blocks within blocks


@dataclass
class IRNode:
    name: str
    op: str
    attrs: dict[str, Any]
    inputs: list[str]
    loc: Loc | None
    scope: tuple[str, ...]  # the enclosing block instances, outermost first
    stage: str
    in_locs: list[Loc | None] = field(default_factory=list)


@dataclass
class Block:
    """One block template instance (`use:`), for reports and diagrams."""

    name: str
    template: str
    args: dict[str, Any]
    loc: Loc | None
    stage: str
    parent: str | None
    inputs: list[str] = field(default_factory=list)
    output: str = ""
    copy: tuple[int, int] | None = None  # (index, count) when made by `repeat`


@dataclass
class Expansion:
    spec: Spec
    nodes: dict[str, IRNode]
    blocks: dict[str, Block]
    output: str
    stages: list[str]


class _Excluded:
    def __init__(self, loc: Loc | None, condition: Any):
        self.loc, self.condition = loc, condition


class _Broken:
    """An item that already has a diagnostic: readers of it stay quiet."""


@dataclass
class _Frame:
    prefix: str
    template: str | None
    scope: Scope
    inputs: dict[str, str]  # local input names -> full node names
    stack: tuple[str, ...]
    stage: str
    block: str | None
    local: dict[str, Any] = field(default_factory=dict)  # item name -> output node name or _Excluded
    item_locs: dict[str, Loc | None] = field(default_factory=dict)
    pending: list[tuple[IRNode | Block, int, str, Loc | None]] = field(default_factory=list)

    def full(self, name: str | None) -> str:
        if name is None:
            return self.prefix
        return f"{self.prefix}.{name}" if self.prefix else name

    def where(self) -> str:
        return f"block `{self.template}`" if self.template else "the network"


class Expander:
    def __init__(self, spec: Spec, max_nodes: int = MAX_NODES, check_shapes: bool = False):
        self.spec = spec
        self.check_shapes = check_shapes
        self.max_nodes = max_nodes
        self.nodes: dict[str, IRNode] = {}
        self.blocks: dict[str, Block] = {}
        self.diags: list[Diagnostic] = []
        self.shapes: dict[str, Any] = {}
        self.size_memo: dict[str, int] = {}
        self.stages: list[str] = []
        self.steps = 0  # items visited, made or not: `when` can skip nodes but not the work
        self.max_steps = 10 * max_nodes

    # -- entry ---------------------------------------------------------------------------------------------

    def run(self) -> Expansion:
        spec = self.spec
        self.nodes["input"] = IRNode("input", "input", {"shape": list(spec.input_shape)}, [], spec.input_loc, (),
                                     "input")
        globals_ = spec.scope()
        frame = _Frame("", None, globals_.child(self._in_lookup(["input"]), names=["in_channels", "in_shape"]),
                       {"input": "input"}, (), "", None)
        uses_stages = any(isinstance(it, LocDict) and any(isinstance(b, LocDict) and "stage" in b
                                                          for b in it.values()) for it in spec.network)
        output = self._body(spec.network, frame, top=True, uses_stages=uses_stages)
        if "output" in spec.doc:
            output = self._named_output(spec.doc, frame)
        if output is None and not self.diags:
            self.diags.append(Diagnostic("E125", "every item of the network is excluded by `when`",
                                         spec.doc.val_loc("network")))
        if not self.diags:
            self.diags += check_graph(self.nodes, output)
        if not self.diags and self.check_shapes:
            self.diags += check_shapes(self.nodes, self.blocks)
        if self.diags:
            raise SpecError(collapse(self.diags))
        return Expansion(spec, self.nodes, self.blocks, output, self.stages)

    def _named_output(self, doc: LocDict, frame: _Frame) -> str | None:
        ref = doc["output"]
        target = frame.local.get(ref)
        if isinstance(target, str):
            return target
        self.diags.append(Diagnostic("E305", f"`output: {ref}` names no item of {frame.where()}",
                                     doc.val_loc("output"), hint=did_you_mean(ref, frame.local, what="items")))
        return None

    # -- bodies and items ----------------------------------------------------------------------------------

    def _body(self, items: LocList, frame: _Frame, *, top: bool = False, uses_stages: bool = False) -> str | None:
        previous = next(iter(frame.inputs.values()), None)
        included = False
        for i, raw in enumerate(items):
            loc = items.val_loc(i)
            parsed = self._split(raw, loc, frame, sole=len(items) == 1 and not top)
            if parsed is None:
                continue
            name, body, name_loc = parsed
            if top:
                stage = body.get("stage") if isinstance(body.get("stage"), str) else None
                if stage is None and not uses_stages:
                    stage = name
                frame.stage = stage or frame.stage or name or "network"
                if frame.stage not in self.stages:
                    self.stages.append(frame.stage)
            elif isinstance(body.get("stage"), str):
                frame.stage = body["stage"]
            before = len(self.diags)
            out = self._item(name, body, name_loc, frame, previous)
            if isinstance(out, str):
                previous, included = out, True
            elif out is None and len(self.diags) > before and name is not None:
                frame.local.setdefault(name, _Broken())
                included = True  # do not also claim that nothing was included
        self._resolve_pending(frame)
        return previous if included else None

    def _split(self, raw: Any, loc: Loc | None, frame: _Frame, sole: bool
               ) -> tuple[str | None, LocDict, Loc | None] | None:
        if not isinstance(raw, LocDict):
            self.diags.append(Diagnostic("E100", "a body item is `- name: {op: ...}`", loc))
            return None
        if any(k in ITEM_KEYS for k in raw):
            if "repeat" not in raw and not sole:
                self.diags.append(Diagnostic(
                    "E315", "this item has no name; only `repeat` items, or the single item of a block, may be "
                    "unnamed", loc, hint="write `- name: {op: ...}`"))
                return None
            return None, raw, loc
        (name, body), = raw.items()
        name_loc = raw.key_loc(name)
        if name in RESERVED_NAMES:
            self.diags.append(Diagnostic("E316", f"`{name}` is a reserved word and cannot name a node", name_loc,
                                         hint="choose another name"))
            return None
        if not isinstance(body, LocDict):
            self.diags.append(Diagnostic("E100", f"`{name}` should be a mapping like {{op: relu}}", name_loc))
            return None
        if name in frame.local or name in frame.item_locs:
            first = frame.item_locs.get(name)
            self.diags.append(Diagnostic("E306", f"`{name}` is defined twice in {frame.where()}" +
                                         (f" (first at line {first.line})" if first else ""), name_loc,
                                         hint="give each item its own name"))
            return None
        frame.item_locs[name] = name_loc
        return name, body, name_loc

    def _item(self, name: str | None, body: LocDict, loc: Loc | None, frame: _Frame, previous: str | None,
              builtins: dict[str, Any] | None = None) -> str | _Excluded | None:
        scope = frame.scope.child(builtins) if builtins else frame.scope
        self.steps += 1
        if self.steps > self.max_steps:
            raise SpecError(self.diags + [Diagnostic(
                "E500", f"expanding the network takes more than {self.max_steps:,} steps (items skipped by `when` "
                "inside `repeat` still cost)", loc, hint="check `repeat` counts; `--max-nodes` raises the budget")])
        if "repeat" in body and builtins is None:
            return self._repeat(name, body, loc, frame, previous)
        if "when" in body:
            try:
                keep = evaluate_expression(body["when"], body.val_loc("when"), scope)
            except Failed as e:
                self._fail(e)
                return None
            if not keep:
                excluded = _Excluded(body.val_loc("when"), body["when"])
                if name is not None:
                    frame.local.setdefault(name, excluded)
                return excluded
        if "cases" in body:
            return self._cases(name, body, loc, frame, previous, scope, builtins)
        inputs, in_locs = self._inputs(body, frame, previous, scope)
        if inputs is None:
            return None
        full = frame.full(name)
        if full in self.nodes or (full in self.blocks and full != frame.block):
            self.diags.append(Diagnostic("E306", f"two nodes are named `{full}`", loc, hint="rename one of them"))
            return None
        if "op" in body:
            out = self._primitive(full, body, loc, frame, inputs, in_locs, scope)
        else:
            out = self._instance(full, body, loc, frame, inputs, in_locs, scope)
            if out is not None and builtins is not None and full in self.blocks:
                self.blocks[full].copy = (builtins["index"], builtins["count"])
        if out is not None and name is not None:
            frame.local[name] = out
        return out

    def _repeat(self, name: str | None, body: LocDict, loc: Loc | None, frame: _Frame,
                previous: str | None) -> str | None:
        try:
            count = evaluate_value(body["repeat"], body.val_loc("repeat"), frame.scope)
        except Failed as e:
            self._fail(e)
            return None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.diags.append(Diagnostic("E208", f"`repeat` must be a whole number of copies, got {_show(count)}",
                                         body.val_loc("repeat")))
            return None
        per_copy = max(1, self._min_size(body))
        if count * per_copy + len(self.nodes) > self.max_nodes or count + self.steps > self.max_steps:
            raise SpecError(self.diags + [Diagnostic(
                "E500", f"`repeat: {count:,}` would expand to at least {count * per_copy:,} nodes; the budget is "
                f"{self.max_nodes:,} (ResNet-1202 has about 4,800)", body.val_loc("repeat"),
                hint="check the count; `--max-nodes` raises the budget")])
        inner = LocDict({k: v for k, v in body.items() if k != "repeat"}, loc=body.loc)
        inner.key_locs, inner.val_locs = body.key_locs, body.val_locs
        current = previous  # the first copy reads `in` (or the previous item), the others chain
        before, steps_before = len(self.nodes), self.steps
        for i in range(count):
            if i == 1:  # one copy is made: now the real cost of all of them is known
                per_copy = len(self.nodes) - before
                per_copy_steps = self.steps - steps_before
                if (count - 1) * per_copy + len(self.nodes) > self.max_nodes or \
                        (count - 1) * per_copy_steps + self.steps > self.max_steps:
                    raise SpecError(self.diags + [Diagnostic(
                        "E500", f"`repeat: {count:,}` of {per_copy:,} nodes each would make {count * per_copy:,} "
                        f"nodes; the budget is {self.max_nodes:,} (ResNet-1202 has about 4,800)",
                        body.val_loc("repeat"), hint="check the count; `--max-nodes` raises the budget")])
            copy = LocDict(inner, loc=inner.loc)
            copy.key_locs, copy.val_locs = inner.key_locs, inner.val_locs
            if i > 0:
                copy.pop("in", None)
            child = f"{name}.{i}" if name is not None else str(i)
            out = self._item(child, copy, loc, frame, current, {"index": i, "count": count})
            if isinstance(out, str):
                current = out
            elif out is None:
                return None
            if name is None:
                frame.item_locs[child] = loc
        if name is not None and current is not None:
            frame.local[name] = current
        return current

    def _cases(self, name: str | None, body: LocDict, loc: Loc | None, frame: _Frame, previous: str | None,
               scope: Scope, builtins: dict[str, Any] | None) -> str | _Excluded | None:
        alternatives: LocList = body["cases"]
        for i, alt in enumerate(alternatives):
            if not isinstance(alt, LocDict):
                continue
            if "when" in alt:
                try:
                    ok = evaluate_expression(alt["when"], alt.val_loc("when"), scope)
                except Failed as e:
                    self._fail(e)
                    return None
                if not ok:
                    continue
            chosen = LocDict({k: v for k, v in body.items() if k in ("in", "stage", "doc")}, loc=alt.loc)
            chosen.key_locs = {k: body.key_locs[k] for k in chosen if k in body.key_locs}
            chosen.val_locs = {k: body.val_locs[k] for k in chosen if k in body.val_locs}
            for k, v in alt.items():
                if k != "when":
                    chosen[k] = v
                    chosen.key_locs[k], chosen.val_locs[k] = alt.key_loc(k), alt.val_loc(k)
            return self._item(name, chosen, loc, frame, previous, builtins)
        conditions = ", ".join(f"`{a.get('when')}`" for a in alternatives if isinstance(a, LocDict))
        self.diags.append(Diagnostic("E310", f"no alternative of `cases` applies (conditions: {conditions})",
                                     body.key_loc("cases"), hint="add a last alternative without `when`"))
        return None

    def _inputs(self, body: LocDict, frame: _Frame, previous: str | None, scope: Scope
                ) -> tuple[list[Any], list[Loc | None]] | tuple[None, None]:
        """The item's inputs: full node names where known now, `(_ref, name)` markers for later items."""
        if "in" not in body:
            if previous is None:
                self.diags.append(Diagnostic("E305", f"the first item of {frame.where()} has no input",
                                             body.loc, hint="name one with `in:`"))
                return None, None
            return [previous], [None]
        raw = body["in"]
        loc = body.val_loc("in")
        refs = list(raw) if isinstance(raw, list) else [raw]
        locs = [raw.val_loc(i) for i in range(len(refs))] if isinstance(raw, LocList) else [loc] * len(refs)
        out: list[Any] = []
        for ref, rloc in zip(refs, locs):
            try:
                ref = evaluate_value(ref, rloc, scope)
            except Failed as e:
                self._fail(e)
                return None, None
            if not isinstance(ref, str):
                self.diags.append(Diagnostic("E100", f"`in` names nodes, found {ref!r}", rloc))
                return None, None
            target = self._lookup_ref(ref, frame)
            if target == _BROKEN:
                return None, None
            out.append(target or ("ref", ref))
        return out, locs

    def _lookup_ref(self, ref: str, frame: _Frame) -> str | None:
        if isinstance(frame.local.get(ref), _Broken):
            return _BROKEN
        if ref in frame.inputs:
            return frame.inputs[ref]
        target = frame.local.get(ref)
        if isinstance(target, str):
            return target
        if target is None and "." in ref and frame.full(ref) in self.nodes:
            return frame.full(ref)
        return None

    def _resolve_pending(self, frame: _Frame) -> None:
        for holder, index, ref, loc in frame.pending:
            target = self._lookup_ref(ref, frame)
            if target == _BROKEN:
                continue
            if target is None:
                self._unknown_ref(ref, loc, frame, holder.name)
                continue
            holder.inputs[index] = target

    def _unknown_ref(self, ref: str, loc: Loc | None, frame: _Frame, user: str) -> None:
        target = frame.local.get(ref)
        if isinstance(target, _Excluded):
            self.diags.append(Diagnostic(
                "E305", f"`{user}` reads `{ref}`, which `when: {target.condition}` excludes here", loc,
                hint="give the item reading it the same condition, or use `cases:` to choose a replacement"))
            return
        known = [n for n in frame.local if "." not in n and frame.full(n) != user] + list(frame.inputs)
        self.diags.append(Diagnostic("E305", f"`{ref}` is not defined in {frame.where()}", loc,
                                     hint=did_you_mean(ref, known, what="defined here")))

    def _attach(self, holder: IRNode | Block, inputs: list[Any], locs: list[Loc | None], frame: _Frame) -> None:
        for i, item in enumerate(inputs):
            if isinstance(item, tuple):
                frame.pending.append((holder, i, item[1], locs[i]))
                holder.inputs.append("")
            else:
                holder.inputs.append(item)

    # -- primitives and blocks -----------------------------------------------------------------------------

    def _primitive(self, full: str, body: LocDict, loc: Loc | None, frame: _Frame, inputs: list[Any],
                   in_locs: list[Loc | None], scope: Scope) -> str | None:
        op = body["op"]
        if op not in OPS or op == "input":
            self.diags.append(Diagnostic("E300", f"unknown op `{op}`", body.val_loc("op"),
                                         hint=did_you_mean(str(op), USER_OPS, what="ops")))
            return None
        spec = OPS[op]
        attrs: dict[str, Any] = {}
        ok = True
        for key, value in body.items():
            if key in ITEM_KEYS:
                continue
            if key not in spec.attrs:
                self.diags.append(Diagnostic("E101", f"unknown attribute `{key}` of op `{op}`", body.key_loc(key),
                                             hint=did_you_mean(key, spec.attrs, what="attributes")))
                ok = False
                continue
            try:
                value = evaluate_value(value, body.val_loc(key), scope)
            except Failed as e:
                self._fail(e)
                ok = False
                continue
            problem = check_attr(op, key, spec.attrs[key], value)
            if problem:
                code = "E208" if spec.attrs[key].type in ("int", "size") else "E314"
                hint = "use `//` to divide whole numbers" if isinstance(value, float) and \
                    isinstance(body[key], str) and "/" in body[key] else None
                self.diags.append(Diagnostic(code, f"`{key}` of {op} must be {problem}, got {_show(value)}",
                                             body.val_loc(key), hint=hint))
                ok = False
                continue
            attrs[key] = value
        for key, a in spec.attrs.items():
            if key not in attrs and key not in body:
                if a.required:
                    self.diags.append(Diagnostic("E313", f"op `{op}` needs `{key}`" + (f" ({a.doc})" if a.doc else ""),
                                                 loc))
                    ok = False
                else:
                    attrs[key] = a.default
        lo, hi = spec.inputs
        if not (lo <= len(inputs) and (hi is None or len(inputs) <= hi)):
            want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
            self.diags.append(Diagnostic("E309", f"op `{op}` takes {want} input{'s' if lo != 1 else ''}, "
                                         f"got {len(inputs)}", body.val_loc("in") if "in" in body else loc,
                                         hint="list them with `in: [a, b]`" if lo > 1 else None))
            ok = False
        if not ok:
            return None
        node = IRNode(full, op, attrs, [], loc, self._scope_path(frame), frame.stage, list(in_locs))
        self._attach(node, inputs, in_locs, frame)
        self._add(node)
        return full

    def _add(self, node: IRNode) -> None:
        if len(self.nodes) >= self.max_nodes:
            raise SpecError(self.diags + [Diagnostic(
                "E500", f"the network expands beyond the budget of {self.max_nodes:,} nodes", node.loc,
                hint="check `repeat` counts; `--max-nodes` raises the budget")])
        self.nodes[node.name] = node

    def _scope_path(self, frame: _Frame) -> tuple[str, ...]:
        out, block = [], frame.block
        while block is not None and block not in out:
            out.append(block)
            block = self.blocks[block].parent
        return tuple(reversed(out))

    def _instance(self, full: str, body: LocDict, loc: Loc | None, frame: _Frame, inputs: list[Any],
                  in_locs: list[Loc | None], scope: Scope) -> str | None:
        try:
            tname = evaluate_value(body["use"], body.val_loc("use"), scope)
        except Failed as e:
            self._fail(e)
            return None
        template = self.spec.blocks.get(tname) if isinstance(tname, str) else None
        if template is None:
            self.diags.append(Diagnostic("E301", f"unknown block `{tname}`", body.val_loc("use"),
                                         hint=did_you_mean(str(tname), self.spec.blocks, what="blocks")))
            return None
        if tname in frame.stack:
            chain = " -> ".join(frame.stack + (tname,))
            self.diags.append(Diagnostic("E311", f"block `{tname}` contains itself: {chain}", body.val_loc("use"),
                                         hint="a block cannot use itself, directly or through others"))
            return None
        if len(frame.stack) >= MAX_NESTING:
            self.diags.append(Diagnostic("E311", f"blocks are nested more than {MAX_NESTING} deep",
                                         body.val_loc("use")))
            return None
        declared = list(template.get("inputs", ["input"]))
        if len(inputs) != len(declared):
            self.diags.append(Diagnostic("E309", f"block `{tname}` takes {len(declared)} input"
                                         f"{'s' if len(declared) != 1 else ''} ({', '.join(declared)}), got "
                                         f"{len(inputs)}", body.val_loc("in") if "in" in body else loc))
            return None
        later = [ref for ref in inputs if isinstance(ref, tuple)]
        if later:
            self.diags.append(Diagnostic(
                "E305", f"block input `{later[0][1]}` must be defined above the block that reads it",
                in_locs[inputs.index(later[0])], hint=f"move `{later[0][1]}` above this item"))
            return None
        # an unnamed single item of a block stands for the block itself and takes over its record
        parent = self.blocks[full].parent if full == frame.block else frame.block
        block = Block(full, tname, {}, loc, frame.stage, parent)
        self._attach(block, inputs, in_locs, frame)
        args = self._bind(tname, template, body, loc, scope, block, frame)
        if args is None:
            return None
        block.args = args
        self.blocks[full] = block
        child_scope = self.spec.scope().child(args, self._in_lookup(block.inputs, frame),
                                              names=["in_channels", "in_shape"])
        if not self._template_constraints(template, child_scope):
            return None
        child = _Frame(full, tname, child_scope, dict(zip(declared, block.inputs)), frame.stack + (tname,),
                       frame.stage, full)
        before = len(self.diags)
        out = self._body(template["body"], child)
        if "output" in template:
            out = self._named_output(template, child)
        if out is None and len(self.diags) > before:
            return None
        if out is None:
            self.diags.append(Diagnostic("E125", f"block `{tname}` produces nothing here: every item is excluded",
                                         loc))
            return None
        block.output = out
        return out

    def _bind(self, tname: str, template: LocDict, body: LocDict, loc: Loc | None, scope: Scope, block: Block,
              frame: _Frame) -> dict[str, Any] | None:
        decls: LocDict = template.get("params", LocDict())
        given: dict[str, tuple[Any, Loc | None]] = {}
        if "with" in body:
            try:
                extra = evaluate_value(body["with"], body.val_loc("with"), scope)
            except Failed as e:
                self._fail(e)
                return None
            if not isinstance(extra, dict):
                self.diags.append(Diagnostic("E100", f"`with` must be a mapping of arguments, got {extra!r}",
                                             body.val_loc("with")))
                return None
            given.update({k: (v, body.val_loc("with")) for k, v in extra.items()})
        ok = True
        for key, value in body.items():
            if key in ITEM_KEYS:
                continue
            try:
                given[key] = (evaluate_value(value, body.val_loc(key), scope), body.val_loc(key))
            except Failed as e:
                self._fail(e)
                ok = False
        for key in given:
            if key not in decls:
                self.diags.append(Diagnostic("E303", f"block `{tname}` has no parameter `{key}`",
                                             body.key_loc(key) if key in body else given[key][1],
                                             hint=did_you_mean(key, decls, what="parameters")))
                ok = False
        args: dict[str, Any] = {}
        in_lookup = self._in_lookup(block.inputs, frame)
        for pname, decl in decls.items():
            kind, default, dloc = _decl(decl, decls.val_loc(pname))
            if pname in given:
                value, vloc = given[pname]
            elif default is not _MISSING:
                try:
                    value = evaluate_value(default, dloc, self.spec.scope().child(args, in_lookup))
                except Failed as e:
                    self._fail(e)
                    ok = False
                    continue
                vloc = dloc
            else:
                self.diags.append(Diagnostic("E302", f"block `{tname}` needs `{pname}`" +
                                             (f" ({decl.get('doc')})" if isinstance(decl, dict) and decl.get("doc")
                                              else ""), loc, hint=f"add `{pname}: ...` to this item"))
                ok = False
                continue
            problem = _check_arg(kind, decl, value, self.spec.blocks)
            if problem:
                self.diags.append(Diagnostic("E304", f"`{pname}` of block `{tname}` must be {problem}, got {_show(value)}",
                                             vloc, hint=problem.split("; ", 1)[1] if "; " in problem else None))
                ok = False
                continue
            args[pname] = value
        return args if ok else None

    def _template_constraints(self, template: LocDict, scope: Scope) -> bool:
        ok = True
        for c in template.get("constraints", []):
            try:
                holds = evaluate_expression(c["check"], c.val_loc("check"), scope)
                if not holds:
                    self.diags.append(Diagnostic("E206", str(evaluate_value(c["message"], c.val_loc("message"), scope)),
                                                 c.val_loc("check"), hint=f"the constraint is `{c['check']}`"))
                    ok = False
            except Failed as e:
                self._fail(e)
                ok = False
        return ok

    # -- in_channels: shapes known during expansion --------------------------------------------------------

    def _in_lookup(self, inputs: list[Any], frame: _Frame | None = None):
        def lookup(name: str) -> Any:
            if name not in ("in_channels", "in_shape"):
                raise KeyError(name)
            first = inputs[0] if inputs else None
            if not isinstance(first, str) or not first:
                raise Failed(Diagnostic(
                    "E312", f"`{name}` is read before this block's input is defined",
                    None, hint="define the input item above the block that reads it"))
            shape = self._shape(first)
            return shape[0] if name == "in_channels" else list(shape)

        return lookup

    def _shape(self, name: str) -> tuple[int, ...]:
        """The shape of a node made so far, computed (iteratively) from its producers."""
        todo = [name]
        while todo:
            current = todo[-1]
            if current in self.shapes:
                todo.pop()
                continue
            node = self.nodes[current]
            missing = [p for p in node.inputs if p and p not in self.shapes]
            if missing:
                if any(p in todo for p in missing):
                    raise Failed(Diagnostic("E307", f"`{current}` (indirectly) reads its own output", node.loc,
                                            hint="a node cannot depend on itself; check `in:`"))
                todo.extend(missing)
                continue
            if not all(node.inputs) and node.op != "input":
                raise Failed(Diagnostic("E312", f"`in_channels` needs the shape of `{current}`, whose input is "
                                        "defined later", node.loc,
                                        hint="define items before the blocks that read their channels"))
            try:
                self.shapes[current] = OPS[node.op].shape(node.attrs, [self.shapes[p] for p in node.inputs])
            except ShapeError as e:
                raise Failed(Diagnostic(e.code, f"{current}: {e.message}", node.loc, hint=e.hint)) from None
            todo.pop()
        return self.shapes[name]

    # -- budget --------------------------------------------------------------------------------------------

    def _min_size(self, body: LocDict) -> int:
        """A lower bound on the nodes one copy of `body` makes, without evaluating anything."""
        if "op" in body:
            return 1
        if "cases" in body:
            sizes = [self._min_size(a) for a in body["cases"] if isinstance(a, LocDict)]
            return min(sizes) if sizes else 0
        use = body.get("use")
        if not isinstance(use, str) or use.startswith("="):
            return 1
        return self._template_size(use, ())

    def _template_size(self, tname: str, stack: tuple[str, ...]) -> int:
        if tname in self.size_memo:
            return self.size_memo[tname]
        template = self.spec.blocks.get(tname)
        if template is None or tname in stack or not isinstance(template.get("body"), list):
            return 1
        total = 0
        for item in template["body"]:
            if not isinstance(item, LocDict):
                continue
            body = item if any(k in ITEM_KEYS for k in item) else next(iter(item.values()), None)
            if not isinstance(body, LocDict) or "when" in body:
                continue
            n = body.get("repeat", 1)
            n = n if isinstance(n, int) and not isinstance(n, bool) else 1
            inner = self._min_size(body) if body.get("use") != tname else 1
            total += max(0, n) * inner
        self.size_memo[tname] = max(1, total)
        return self.size_memo[tname]

    # -- whole-graph checks --------------------------------------------------------------------------------

    def _fail(self, e: Failed) -> None:
        if e.diagnostic is not None:
            self.diags.append(e.diagnostic)


_MISSING = object()
_BROKEN = "\0broken"  # the output name of an item that failed


def _decl(decl: Any, loc: Loc | None) -> tuple[str, Any, Loc | None]:
    if isinstance(decl, str):
        return decl, _MISSING, loc
    if isinstance(decl, LocDict):
        return decl.get("type", "any"), decl.get("default", _MISSING), decl.val_loc("default")
    return "any", _MISSING, loc


def _check_arg(kind: str, decl: Any, value: Any, blocks: LocDict) -> str | None:
    """What is wrong with a template argument (by the language's one type checker), with a near miss."""
    bounds = decl if isinstance(decl, dict) else {}
    problem = value_problem(kind, value, minimum=bounds.get("min"), maximum=bounds.get("max"),
                            choices=bounds.get("enum"), templates=blocks)
    if problem == "the name of a block":
        hint = did_you_mean(value, blocks, what="blocks")
        return problem + (f"; {hint}" if hint else "")
    return problem


def _show(value: Any) -> str:
    """A value as the spec would write it: `wide`, 64.5, [3, 3], true."""
    import json

    if isinstance(value, str):
        return f"`{value}`"
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def expand(spec: Spec, max_nodes: int = MAX_NODES, check_shapes: bool = False) -> Expansion:
    """Expand a spec; with `check_shapes`, also check every shape (what `archspec validate` does)."""
    return Expander(spec, max_nodes, check_shapes).run()


__all__ = ["Block", "Expansion", "IRNode", "expand", "fmt_shape"]
