"""A primitive item (`op:`): its attributes evaluated and checked against the op's registry entry (known names,
types and ranges by the one type checker, required ones present, defaults filled in) and its number of inputs.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.expand.frame import Frame, attach
from archspec.compiler.expand.model import Build, IRNode, show_value
from archspec.lang.codes import (INVALID_OP_ATTR, INVALID_SIZE, MISSING_OP_ATTR, UNKNOWN_KEY, UNKNOWN_OP,
                                 WRONG_INPUT_COUNT)
from archspec.lang.diagnostics import Diagnostic, Loc, did_you_mean
from archspec.lang.ops import OPS, USER_OPS, check_attr, unknown_op_hint
from archspec.lang.schema import ITEM_KEYS
from archspec.lang.values import Failed, Scope, evaluate_value, needs_evaluation
from archspec.lang.yamlsrc import LocDict


def primitive(b: Build, full: str, body: LocDict, loc: Loc | None, frame: Frame, inputs: list[Any],
               in_locs: list[Loc | None], scope: Scope) -> str | None:
    op = body["op"]
    if needs_evaluation(op):  # `op: =act`: an op chosen by a param (an activation or norm for the whole net)
        try:
            op = evaluate_value(op, body.val_loc("op"), scope)
        except Failed as e:
            b.fail(e)
            return None
    if not isinstance(op, str) or op not in USER_OPS:  # the network input is the spec's `input:`, no op to write
        shown = op if isinstance(op, str) else show_value(op)
        computed = f" (`{body['op']}`)" if body["op"] != op else ""
        b.diags.append(Diagnostic(UNKNOWN_OP, f"unknown op `{shown}`{computed}", body.val_loc("op"),
                                     hint=unknown_op_hint(shown)))
        return None
    spec = OPS[op]
    attrs: dict[str, Any] = {}
    ok = True
    for key, value in body.items():
        if key in ITEM_KEYS:
            continue
        if key not in spec.attrs:
            b.diags.append(Diagnostic(UNKNOWN_KEY, f"unknown attribute `{key}` of op `{op}`", body.key_loc(key),
                                         hint=did_you_mean(key, spec.attrs, what="attributes")))
            ok = False
            continue
        try:
            value = evaluate_value(value, body.val_loc(key), scope)
        except Failed as e:
            b.fail(e)
            ok = False
            continue
        problem = check_attr(op, key, spec.attrs[key], value)
        if problem:
            code = INVALID_SIZE if spec.attrs[key].type in ("int", "size") else INVALID_OP_ATTR
            hint = "use `//` to divide whole numbers" if isinstance(value, float) and \
                isinstance(body[key], str) and "/" in body[key] else None
            b.diags.append(Diagnostic(code, f"`{key}` of {op} must be {problem}, got {show_value(value)}",
                                         body.val_loc(key), hint=hint))
            ok = False
            continue
        attrs[key] = value
    for key, a in spec.attrs.items():
        if key not in attrs and key not in body:
            if a.required:
                b.diags.append(Diagnostic(MISSING_OP_ATTR,
                                          f"op `{op}` needs `{key}`" + (f" ({a.doc})" if a.doc else ""), loc))
                ok = False
            else:
                attrs[key] = a.default
    lo, hi = spec.inputs
    if not (lo <= len(inputs) and (hi is None or len(inputs) <= hi)):
        want = f"{lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo} to {hi}"
        b.diags.append(Diagnostic(WRONG_INPUT_COUNT, f"op `{op}` takes {want} input{'s' if lo != 1 else ''}, "
                                     f"got {len(inputs)}", body.val_loc("in") if "in" in body else loc,
                                     hint="list them with `in: [a, b]`" if lo > 1 else None))
        ok = False
    if not ok:
        return None
    node = IRNode(full, op, attrs, [], loc, b.scope_path(frame.block), frame.stage, list(in_locs),
                  {k: body.val_loc(k) for k in body if k in attrs})
    attach(b, node, inputs, in_locs, frame)
    b.add(node)
    return full
