"""Block template arguments: each parameter bound from the item, its `with:` mapping or its default, checked by
the language's one type checker (`archspec.lang.types`), and the template's own constraints.
"""

from __future__ import annotations

from typing import Any

from archspec.compiler.expand.blame import is_mine, user_files
from archspec.compiler.expand.channels import in_lookup
from archspec.compiler.expand.frame import Frame
from archspec.compiler.expand.model import Block, Build, show_value
from archspec.lang.codes import CONSTRAINT_NOT_MET, INVALID_BLOCK_ARG, MISSING_BLOCK_ARG, UNKNOWN_BLOCK_ARG, WRONG_TYPE
from archspec.lang.diagnostics import Diagnostic, Loc, did_you_mean
from archspec.lang import expr
from archspec.lang.ops import USER_OPS, unknown_op_hint
from archspec.lang.schema import ITEM_KEYS
from archspec.lang.types import declared_problem
from archspec.lang.values import Failed, Scope, evaluate_expression, evaluate_value
from archspec.lang.yamlsrc import LocDict

MISSING = object()


def _given(b: Build, tname: str, body: LocDict, scope: Scope, decls: LocDict
           ) -> tuple[dict[str, tuple[Any, Loc | None]], set[str], bool] | None:
    """The arguments the item gives (from its keys and its `with:` mapping), the ones that failed to evaluate
    (already reported: not to be called missing too), and whether all is well so far."""
    given: dict[str, tuple[Any, Loc | None]] = {}
    if "with" in body:
        try:
            extra = evaluate_value(body["with"], body.val_loc("with"), scope)
        except Failed as e:
            b.fail(e)
            return None
        if not isinstance(extra, dict):
            b.diags.append(Diagnostic(WRONG_TYPE, f"`with` must be a mapping of arguments, got {extra!r}",
                                      body.val_loc("with")))
            return None
        given.update({k: (v, body.val_loc("with")) for k, v in extra.items()})
    ok, failed = True, set()
    for key, value in body.items():
        if key in ITEM_KEYS:
            continue
        try:
            given[key] = (evaluate_value(value, body.val_loc(key), scope), body.val_loc(key))
        except Failed as e:
            b.fail(e)
            ok = False
            failed.add(key)
    for key in list(given) + sorted(failed - set(decls)):
        if key not in decls:
            b.diags.append(Diagnostic(UNKNOWN_BLOCK_ARG, f"block `{tname}` has no parameter `{key}`",
                                      body.key_loc(key) if key in body else given[key][1],
                                      hint=did_you_mean(key, decls, what="parameters")))
            ok = False
    return given, failed, ok


def bind(b: Build, tname: str, template: LocDict, body: LocDict, loc: Loc | None, scope: Scope, block: Block,
         frame: Frame) -> dict[str, Any] | None:
    decls: LocDict = template.get("params", LocDict())
    if not isinstance(decls, dict):  # the schema says so first; this keeps an unchecked file from crashing here
        b.diags.append(Diagnostic(WRONG_TYPE, f"`params` of block `{tname}` should be a mapping of parameters",
                                  template.val_loc("params")))
        return None
    found = _given(b, tname, body, scope, decls)
    if found is None:
        return None
    given, failed, ok = found
    args: dict[str, Any] = {}
    lookup = in_lookup(b, block.inputs, frame)
    blamed: set[Loc] = set()
    for pname, decl in decls.items():
        kind, default, dloc = declaration(decl, decls.val_loc(pname))
        if pname in failed:
            continue  # its value is already reported; it is not missing
        if pname in given:
            value, vloc = given[pname]
        elif default is not MISSING:
            try:
                value = evaluate_value(default, dloc, b.spec.scope().child(args, lookup))
            except Failed as e:
                if e.diagnostic is not None:
                    e = Failed(_at_cause(b, e.diagnostic, default, given, pname, blamed))
                b.fail(e)
                ok = False
                continue
            vloc = dloc
        else:
            b.diags.append(Diagnostic(MISSING_BLOCK_ARG, f"block `{tname}` needs `{pname}`" +
                                         (f" ({decl.get('doc')})" if isinstance(decl, dict) and decl.get("doc")
                                          else ""), loc, hint=f"add `{pname}: ...` to this item"))
            ok = False
            continue
        problem = check_argument(kind, decl, value, b.spec.blocks)
        if problem:
            d = Diagnostic(INVALID_BLOCK_ARG, f"`{pname}` of block `{tname}` must be {problem}, got {show_value(value)}",
                           vloc, hint=problem.split("; ", 1)[1] if "; " in problem else None)
            b.fail(Failed(d if pname in given else _at_cause(b, d, default, given, pname, blamed)))
            ok = False
            continue
        args[pname] = value
    return args if ok else None


def _at_cause(b: Build, d: Diagnostic, default: Any, given: dict[str, tuple[Any, Loc | None]], pname: str,
              blamed: set[Loc]) -> Diagnostic | None:
    """A problem with a parameter's default, moved to the user's line that caused it: an argument of the item
    (`at: 7` where the default is `=widths[at]`) or a spec param set in a user's file or with `--set`, whichever
    the default reads; the library line becomes a note. A second default broken by the same line is a follow-on
    (None: not reported again)."""
    if not isinstance(default, str) or not default.startswith("="):
        return d
    try:
        names = expr.names_in(expr.parse(default[1:]))
    except expr.ExprError:
        return d
    own = user_files(b.spec)
    causes = [(n, given[n][1]) for n in sorted(names) if n in given and is_mine(given[n][1], own)]
    entries = b.spec.param_table.entries
    causes += [(n, entries[n].loc) for n in sorted(names) if n not in given and n in entries
               and entries[n].assigned and is_mine(entries[n].loc, own)]
    if not causes or is_mine(d.loc, own):
        return d
    name, loc = causes[0]
    if loc in blamed:
        return None
    blamed.add(loc)
    what = "this argument" if name in given else "this value of the spec's param"
    return Diagnostic(d.code, d.message, loc, hint=d.hint, severity=d.severity, node=d.node,
                      notes=[(None, f"{what} `{name}` is read by the default of `{pname}`, `{default}`"),
                             (d.loc, "where the problem shows")] + list(d.notes))


def template_constraints(b: Build, template: LocDict, scope: Scope) -> bool:
    """A block's constraints hold here (what they read is no read of a param: a check changes nothing built)."""
    b.spec.reads.paused += 1
    try:
        return _constraints_hold(b, template, scope)
    finally:
        b.spec.reads.paused -= 1


def _constraints_hold(b: Build, template: LocDict, scope: Scope) -> bool:
    ok = True
    for c in template.get("constraints", []):
        try:
            holds = evaluate_expression(c["check"], c.val_loc("check"), scope)
            if not holds:
                b.diags.append(Diagnostic(CONSTRAINT_NOT_MET,
                                          str(evaluate_value(c["message"], c.val_loc("message"), scope)),
                                          c.val_loc("check"), hint=f"the constraint is `{c['check']}`"))
                ok = False
        except Failed as e:
            b.fail(e)
            ok = False
    return ok


def declaration(decl: Any, loc: Loc | None) -> tuple[str, Any, Loc | None]:
    if isinstance(decl, str):
        return decl, MISSING, loc
    if isinstance(decl, LocDict):
        return decl.get("type", "any"), decl.get("default", MISSING), decl.val_loc("default")
    return "any", MISSING, loc


def check_argument(kind: str, decl: Any, value: Any, blocks: LocDict) -> str | None:
    """What is wrong with a template argument (by the language's one type checker), with a near miss."""
    problem = declared_problem(kind, value, decl if isinstance(decl, dict) else {}, templates=blocks, ops=USER_OPS)
    if problem == "the name of a block":
        hint = did_you_mean(value, blocks, what="blocks")
        return problem + (f"; {hint}" if hint else "")
    if kind == "op" and problem and isinstance(value, str):
        return f"{problem}; {unknown_op_hint(value)}"
    return problem
