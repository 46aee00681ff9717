"""The expander: walks the network and the block bodies item by item (`op:`, `use:`, `cases:`, `when:`,
`repeat:`, a repeat's `names:` and `items:`), keeps the node and step budgets, and hands each kind of item to the
piece that knows it: names (`naming`), references (`frame`), attributes (`primitives`), template arguments
(`arguments`), `in_channels` (`channels`), repeat bounds (`budget`). The whole-network checks (cycles, unused
nodes, shapes) come from `compiler.graph_checks`.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.expand.arguments import bind, template_constraints
from archspec.compiler.expand.blame import at_user_lines
from archspec.compiler.expand.budget import min_size
from archspec.compiler.expand.channels import in_lookup
from archspec.compiler.expand.frame import Broken, Excluded, Frame, attach, item_inputs, resolve_pending
from archspec.compiler.expand.model import MAX_NESTING, MAX_NODES, Block, Build, Expansion, IRNode, show_value
from archspec.compiler.expand.naming import claim_module, claim_name, item_name
from archspec.compiler.expand.primitives import primitive
from archspec.compiler.expand.unread import unread_params, unused_block_changes
from archspec.compiler.graph_checks import check_graph, check_shapes, collapse
from archspec.lang.codes import (DUPLICATE_NODE, GRAPH_CYCLE, INVALID_SIZE, INVALID_VALUE,
                                 NO_CASE_APPLIES, NO_NETWORK, RECURSIVE_BLOCK, UNDEFINED_NODE, UNKNOWN_BLOCK,
                                 UNNAMED_ITEM, WRONG_INPUT_COUNT, WRONG_TYPE)
from archspec.lang.diagnostics import Diagnostic, Loc, SpecError, did_you_mean
from archspec.lang.expr import metered
from archspec.lang.nearmiss import searching
from archspec.lang.schema import ITEM_KEYS
from archspec.lang.schema.translate import kind_of
from archspec.lang.spec import Spec, control_characters
from archspec.lang.values import Failed, Scope, evaluate_expression, evaluate_value, needs_evaluation
from archspec.lang.yamlsrc import LocDict, LocList


class Expander:
    def __init__(self, spec: Spec, max_nodes: int = MAX_NODES, check_shapes: bool = False):
        self.b = Build(spec, max_nodes)
        self.check_shapes = check_shapes

    def run(self) -> Expansion:
        # every expression evaluated here in one budget (E501), and every did-you-mean looked for in another
        with metered(self.b.max_work) as self.b.meter, searching():
            return self._run()

    def _run(self) -> Expansion:
        spec = self.b.spec
        self.b.nodes["input"] = IRNode("input", "input", {"shape": list(spec.input_shape)}, [], spec.input_loc, (),
                                     "input")
        globals_ = spec.scope()
        frame = Frame("", None, globals_.child(in_lookup(self.b, ["input"]), names=["in_channels", "in_shape"]),
                       {"input": "input"}, (), "", None)
        uses_stages = isinstance(spec.network, list) and any(
            isinstance(it, LocDict) and any(isinstance(b, LocDict) and "stage" in b for b in it.values())
            for it in spec.network)
        output = self._body(spec.network, frame, top=True, uses_stages=uses_stages,
                            where=("network", spec.doc.val_loc("network")))
        if "output" in spec.doc:
            output = self._named_output(spec.doc, frame)
        if output is None and not self.b.diags:
            self.b.diags.append(Diagnostic(NO_NETWORK, "every item of the network is excluded by `when`",
                                         spec.doc.val_loc("network")))
        if not self.b.diags and not self.b.silent:
            self.b.diags += unread_params(spec)
            self.b.diags += unused_block_changes(spec, {b.template for b in self.b.blocks.values()})
        if not self.b.diags:
            structure = check_graph(self.b.nodes, output)
            self.b.diags += structure
            # every node is built: shapes can be checked beside an unused node (not around a loop). A spec that
            # fails anyway gets its shape problems now too, so that one run reports them all.
            if (self.check_shapes or structure) and not any(d.code == GRAPH_CYCLE for d in structure):
                self.b.diags += check_shapes(self.b.nodes, self.b.blocks)
        if self.b.diags:
            raise SpecError(collapse(at_user_lines(self.b.diags, spec, self.b.nodes, self.b.blocks)))
        return Expansion(spec, self.b.nodes, self.b.blocks, output, self.b.stages)

    def _named_output(self, doc: LocDict, frame: Frame) -> str | None:
        ref = doc["output"]
        target = frame.local.get(ref)
        if isinstance(target, str):
            return target
        self.b.diags.append(Diagnostic(UNDEFINED_NODE, f"`output: {ref}` names no item of {frame.where()}",
                                     doc.val_loc("output"), hint=did_you_mean(ref, frame.local, what="items")))
        return None

    def _body(self, items: LocList, frame: Frame, *, top: bool = False, uses_stages: bool = False,
              where: tuple[str, Loc | None] = ("body", None)) -> str | None:
        if not self._is_list(items, *where):
            return None
        previous, included = self._items(items, frame, next(iter(frame.inputs.values()), None), top=top,
                                         uses_stages=uses_stages, sole=len(items) == 1 and not top)
        resolve_pending(self.b, frame)
        return previous if included else None

    def _items(self, items: LocList, frame: Frame, previous: str | None, *, top: bool = False,
               uses_stages: bool = False, sole: bool = False) -> tuple[str | None, bool]:
        """Expand `items` into `frame`, the first reading `previous` unless it says otherwise: the last output and
        whether any item was included (or failed: then nothing is claimed to be missing)."""
        included = False
        for i, raw in enumerate(items):
            loc = items.val_loc(i)
            parsed = self._split(raw, loc, frame, sole=sole)
            if parsed is None:
                continue
            name, body, name_loc = parsed
            if not _per_copy_stage(body):  # a repeat whose stage reads `index` opens it copy by copy
                stage = self._stage(body, frame.scope)
                if top:
                    if stage is None and not uses_stages:
                        stage = name
                    self._open_stage(frame, stage or frame.stage or name or "network")
                elif stage is not None:
                    self._open_stage(frame, stage)
            before = self.b.problems
            out = self._item(name, body, name_loc, frame, previous)
            if isinstance(out, str):
                previous, included = out, True
            elif out is None and self.b.problems > before and name is not None:
                frame.local.setdefault(name, Broken())
                included = True  # do not also claim that nothing was included
        return previous, included

    def _is_list(self, value: Any, key: str, loc: Loc | None) -> bool:
        """Whether `value` (of `key`) is a list; E100 if not. The schema says so before expansion starts: this is
        the defence in depth that keeps a file the schema check never saw from crashing the expander."""
        if isinstance(value, list):
            return True
        self.b.diags.append(Diagnostic(WRONG_TYPE, f"`{key}` should be a list of items, found {kind_of(value)}", loc,
                                       hint=f"write `{key}:` as a list: `- name: {{op: ...}}` per item"))
        return False

    def _open_stage(self, frame: Frame, stage: str) -> None:
        """Items from here on belong to Table 1 row `stage` (a row of the network's own body)."""
        frame.stage = stage
        if frame.block is None and stage not in self.b.stages:
            self.b.stages.append(stage)

    def _stage(self, body: LocDict, scope: Scope) -> str | None:
        """The item's `stage:` with its `=expression` or `${...}` computed; None when it has none or it fails."""
        if "stage" not in body:
            return None
        try:
            stage = evaluate_value(body["stage"], body.val_loc("stage"), scope)
        except Failed as e:
            self.b.fail(e)
            return None
        if not isinstance(stage, str):
            self.b.diags.append(Diagnostic(WRONG_TYPE, f"`stage` must be the name of a row (a string), got "
                                           f"{show_value(stage)}", body.val_loc("stage"),
                                           hint='e.g. `stage: "conv${index + 2}_x"`, or `=str(...)` around a number'))
            return None
        problem = control_characters(stage)
        if problem:
            self.b.diags.append(Diagnostic(INVALID_VALUE, f"`stage` holds {problem}", body.val_loc("stage"),
                                           hint="a stage is printed in tables and diagrams: write plain text"))
            return None
        return stage

    def _split(self, raw: Any, loc: Loc | None, frame: Frame, sole: bool
               ) -> tuple[str | None, LocDict, Loc | None] | None:
        if not isinstance(raw, LocDict):
            self.b.diags.append(Diagnostic(WRONG_TYPE, "a body item is `- name: {op: ...}`", loc))
            return None
        if any(k in ITEM_KEYS for k in raw):
            if "repeat" not in raw and not sole:
                self.b.diags.append(Diagnostic(
                    UNNAMED_ITEM, "this item has no name; only `repeat` items, or the single item of a block, may be "
                    "unnamed", loc, hint="write `- name: {op: ...}`"))
                return None
            return None, raw, loc
        (name, body), = raw.items()
        name_loc = raw.key_loc(name)
        name = item_name(self.b, name, name_loc, frame.scope)
        if name is None:
            return None
        if not isinstance(body, LocDict):
            self.b.diags.append(Diagnostic(WRONG_TYPE, f"`{name}` should be a mapping like {{op: relu}}", name_loc))
            return None
        if not claim_name(self.b, name, name_loc, frame):
            return None
        return name, body, name_loc

    def _item(self, name: str | None, body: LocDict, loc: Loc | None, frame: Frame, previous: str | None,
              builtins: dict[str, Any] | None = None) -> str | Excluded | None:
        scope = frame.scope.child(builtins) if builtins else frame.scope
        self.b.steps += 1
        if self.b.steps > self.b.max_steps:
            raise self.b.over_budget(
                f"expanding the network takes more than {self.b.max_steps:,} steps (items skipped by `when` "
                "inside `repeat` still cost)", loc,
                "check `repeat` counts; `--max-nodes` raises the budget")
        if "repeat" in body and builtins is None:
            return self._repeat(name, body, loc, frame, previous)
        if "when" in body:
            keep = self._holds(body, scope)
            if keep is None:
                return None
            if not keep:
                excluded = Excluded(body.val_loc("when"), body["when"])
                if name is not None:
                    frame.local.setdefault(name, excluded)
                return excluded
        if "cases" in body:
            return self._cases(name, body, loc, frame, previous, scope, builtins)
        inputs, in_locs = item_inputs(self.b, body, frame, previous, scope)
        if inputs is None:
            return None
        full = frame.full(name)
        if full in self.b.nodes or (full in self.b.blocks and full != frame.block):
            self.b.diags.append(Diagnostic(DUPLICATE_NODE, f"two nodes are named `{full}`", loc,
                                           hint="rename one of them"))
            return None
        if name is not None and ("." in name or name in frame.containers):
            if not claim_module(self.b, name, loc, frame):
                return None
        if "op" in body:
            out = primitive(self.b, full, body, loc, frame, inputs, in_locs, scope)
        else:
            out = self._instance(full, body, loc, frame, inputs, in_locs, scope)
            if out is not None and builtins is not None and full in self.b.blocks:
                self.b.blocks[full].copy = (builtins["index"], builtins["count"])
        if out is not None and name is not None:
            frame.local[name] = out
        return out

    def _repeat(self, name: str | None, body: LocDict, loc: Loc | None, frame: Frame,
                previous: str | None) -> str | None:
        try:
            count = evaluate_value(body["repeat"], body.val_loc("repeat"), frame.scope)
        except Failed as e:
            self.b.fail(e)
            return None
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.b.diags.append(Diagnostic(INVALID_SIZE,
                                           f"`repeat` must be a whole number of copies, got {show_value(count)}",
                                           body.val_loc("repeat")))
            return None
        per_copy = max(1, min_size(self.b, body))
        if count * per_copy + len(self.b.nodes) > self.b.max_nodes or count + self.b.steps > self.b.max_steps:
            raise self.b.over_budget(
                f"`repeat: {count:,}` would expand to at least {count * per_copy:,} nodes; the budget is "
                f"{self.b.max_nodes:,} (ResNet-1202 has about 4,800)", body.val_loc("repeat"),
                "check the count; `--max-nodes` raises the budget")
        inner = LocDict({k: v for k, v in body.items() if k not in ("repeat", "names")}, loc=body.loc)
        inner.key_locs, inner.val_locs = body.key_locs, body.val_locs
        current = previous  # the first copy reads `in` (or the previous item), the others chain
        dynamic_stage = _per_copy_stage(body)
        before, steps_before = len(self.b.nodes), self.b.steps
        for i in range(count):
            if i == 1:  # one copy is made: now the real cost of all of them is known
                per_copy = len(self.b.nodes) - before
                per_copy_steps = self.b.steps - steps_before
                if (count - 1) * per_copy + len(self.b.nodes) > self.b.max_nodes or \
                        (count - 1) * per_copy_steps + self.b.steps > self.b.max_steps:
                    raise self.b.over_budget(
                        f"`repeat: {count:,}` of {per_copy:,} nodes each would make {count * per_copy:,} "
                        f"nodes; the budget is {self.b.max_nodes:,} (ResNet-1202 has about 4,800)",
                        body.val_loc("repeat"), "check the count; `--max-nodes` raises the budget")
            builtins = {"index": i, "count": count}
            if dynamic_stage:
                before_stage = len(self.b.diags)
                stage = self._stage(body, frame.scope.child(builtins))
                if stage is not None:
                    self._open_stage(frame, stage)
                dynamic_stage = len(self.b.diags) == before_stage  # a failing stage is reported once
            if "items" in body:
                out = self._group_copy(body, frame, current, builtins)
            else:
                child = self._copy_name(name, body, frame, builtins)
                if child is None:
                    return None
                copy = LocDict(inner, loc=inner.loc)
                copy.key_locs, copy.val_locs = inner.key_locs, inner.val_locs
                if i > 0:
                    copy.pop("in", None)
                out = self._item(child, copy, loc, frame, current, builtins)
                made = self.b.blocks.get(frame.full(child))
                if made is not None and made.copy is not None:
                    made.group = frame.full(name)
            if isinstance(out, str):
                current = out
            elif out is None:
                return None
            if name is None and "items" not in body and "names" not in body:
                frame.item_locs[child] = loc
        if name is not None and current is not None:
            frame.local[name] = current
        return current

    def _copy_name(self, name: str | None, body: LocDict, frame: Frame, builtins: dict[str, Any]) -> str | None:
        """The name of one copy of a `repeat`: its `names:` computed with `index` and `count`, else NAME.i (or i
        for an unnamed repeat); None (reported) if `names:` gives one that cannot name a node or is taken."""
        if "names" not in body:
            return f"{name}.{builtins['index']}" if name is not None else str(builtins["index"])
        loc = body.val_loc("names")
        child = item_name(self.b, body["names"], loc, frame.scope.child(builtins),
                           f" (copy {builtins['index']} of `names: {body['names']}`)")
        if child is None or not claim_name(self.b, child, loc, frame):
            return None
        return child

    def _group_copy(self, body: LocDict, frame: Frame, previous: str | None, builtins: dict[str, Any]
                    ) -> str | Excluded | None:
        """One copy of a `repeat` of several `items:`: they join the frame's body, with `index` and `count` in
        scope (their names compute `${...}` with them); the first reads `previous` unless its `in:` says
        otherwise. Its output is the last included item's; None if one failed (the repeat then stops)."""
        scope = frame.scope.child(builtins)
        if "when" in body:
            keep = self._holds(body, scope)
            if not keep:
                return None if keep is None else Excluded(body.val_loc("when"), body["when"])
        if not self._is_list(body["items"], "items", body.val_loc("items")):
            return None
        before, outer = self.b.problems, frame.scope
        frame.scope = scope
        try:
            out, included = self._items(body["items"], frame, previous)
        finally:
            frame.scope = outer
        if self.b.problems > before:
            return None
        return out if included else Excluded(body.val_loc("items"), "every item excluded")

    def _holds(self, item: LocDict, scope: Scope) -> bool | None:
        """Whether the item's `when:` holds; None when it cannot be evaluated (the diagnostic is recorded)."""
        if not isinstance(item["when"], (str, bool)):
            self.b.diags.append(Diagnostic(WRONG_TYPE, f"`when` should be an expression or true/false, found "
                                           f"{kind_of(item['when'])}", item.val_loc("when")))
            return None
        try:
            return bool(evaluate_expression(item["when"], item.val_loc("when"), scope))
        except Failed as e:
            self.b.fail(e)
            return None

    def _cases(self, name: str | None, body: LocDict, loc: Loc | None, frame: Frame, previous: str | None,
               scope: Scope, builtins: dict[str, Any] | None) -> str | Excluded | None:
        alternatives: LocList = body["cases"]
        if not self._is_list(alternatives, "cases", body.val_loc("cases")):
            return None
        for i, alt in enumerate(alternatives):
            if not isinstance(alt, LocDict):
                continue
            if "when" in alt:
                ok = self._holds(alt, scope)
                if ok is None:
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
            stage = self._stage(alt, scope)  # the chosen alternative opens its own row
            if stage is not None:
                self._open_stage(frame, stage)
            return self._item(name, chosen, loc, frame, previous, builtins)
        conditions = ", ".join(f"`{a.get('when')}`" for a in alternatives if isinstance(a, LocDict))
        self.b.diags.append(Diagnostic(NO_CASE_APPLIES, f"no alternative of `cases` applies (conditions: {conditions})",
                                     body.key_loc("cases"), hint="add a last alternative without `when`"))
        return None

    def _instance(self, full: str, body: LocDict, loc: Loc | None, frame: Frame, inputs: list[Any],
                  in_locs: list[Loc | None], scope: Scope) -> str | None:
        try:
            tname = evaluate_value(body["use"], body.val_loc("use"), scope)
        except Failed as e:
            self.b.fail(e)
            return None
        template = self.b.spec.blocks.get(tname) if isinstance(tname, str) else None
        if template is None:
            self.b.diags.append(Diagnostic(UNKNOWN_BLOCK, f"unknown block `{tname}`", body.val_loc("use"),
                                         hint=did_you_mean(str(tname), self.b.spec.blocks, what="blocks")))
            return None
        if tname in frame.stack:
            chain = " -> ".join(frame.stack + (tname,))
            self.b.diags.append(Diagnostic(RECURSIVE_BLOCK, f"block `{tname}` contains itself: {chain}",
                                           body.val_loc("use"),
                                           hint="a block cannot use itself, directly or through others"))
            return None
        if len(frame.stack) >= MAX_NESTING:
            self.b.diags.append(Diagnostic(RECURSIVE_BLOCK, f"blocks are nested more than {MAX_NESTING} deep",
                                         body.val_loc("use")))
            return None
        declared = list(template.get("inputs", ["input"]))
        if len(inputs) != len(declared):
            self.b.diags.append(Diagnostic(WRONG_INPUT_COUNT, f"block `{tname}` takes {len(declared)} input"
                                         f"{'s' if len(declared) != 1 else ''} ({', '.join(declared)}), got "
                                         f"{len(inputs)}", body.val_loc("in") if "in" in body else loc))
            return None
        later = [ref for ref in inputs if isinstance(ref, tuple)]
        if later:
            self.b.diags.append(Diagnostic(
                UNDEFINED_NODE, f"block input `{later[0][1]}` must be defined above the block that reads it",
                in_locs[inputs.index(later[0])], hint=f"move `{later[0][1]}` above this item"))
            return None
        # an unnamed single item of a block stands for the block itself and takes over its record
        parent = self.b.blocks[full].parent if full == frame.block else frame.block
        block = Block(full, tname, {}, loc, frame.stage, parent)
        attach(self.b, block, inputs, in_locs, frame)
        args = bind(self.b, tname, template, body, loc, scope, block, frame)
        if args is None:
            return None
        block.args = args
        self.b.blocks[full] = block
        child_scope = self.b.spec.scope().child(args, in_lookup(self.b, block.inputs, frame),
                                              names=["in_channels", "in_shape"])
        if not template_constraints(self.b, template, child_scope):
            return None
        child = Frame(full, tname, child_scope, dict(zip(declared, block.inputs)), frame.stack + (tname,),
                       frame.stage, full)
        before = self.b.problems
        out = self._body(template["body"], child, where=("body", template.val_loc("body")))
        if "output" in template:
            out = self._named_output(template, child)
        if out is None and self.b.problems > before:
            return None
        if out is None:
            self.b.diags.append(Diagnostic(NO_NETWORK, f"block `{tname}` produces nothing here: every item is excluded",
                                         loc))
            return None
        block.output = out
        return out


def _per_copy_stage(body: LocDict) -> bool:
    """Whether the item is a `repeat` whose `stage` is computed: each copy then opens the row it names."""
    return "repeat" in body and "stage" in body and needs_evaluation(body["stage"])


def expand(spec: Spec, max_nodes: int = MAX_NODES, check_shapes: bool = False) -> Expansion:
    """Expand a spec; with `check_shapes`, also check every shape (what `archspec validate` does)."""
    return Expander(spec, max_nodes, check_shapes).run()
