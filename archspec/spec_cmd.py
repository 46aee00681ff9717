"""`archspec validate`, `schema`, `list`, `ops`, `explain` and `cache`: the subcommands that need only the spec
language and the validator (none imports torch or networkx)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from archspec import flags
from archspec.cmdbase import EXIT_INVALID, EXIT_OK, Commands, UsageError, add_spec_args, say

command = Commands()


@command
def _register(sub: Any) -> None:
    p = sub.add_parser("validate", help="check specs and report every problem with file:line:col")
    add_spec_args(p, many=True)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--max-nodes", type=flags.POSITIVE, default=None, help="node budget for expansion (default 100,000)")
    p.set_defaults(run=_cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of spec files")
    p.set_defaults(run=_cmd_schema)

    p = sub.add_parser("list", help="list the shipped specs (--recipes: the shipped recipes)")
    p.add_argument("--recipes", action="store_true",
                   help="list the shipped training recipes instead (for `archspec train SPEC --recipe NAME`)")
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("ops", help="list the primitive ops with their attributes, defaults and ranges")
    p.add_argument("names", nargs="*", metavar="OP", help="only these ops")
    p.set_defaults(run=_cmd_ops)

    p = sub.add_parser("explain", help="explain a diagnostic code, e.g. `archspec explain E305`; without a code, "
                       "list every code; `--origin SPEC [NAME]`: where each param and block of a spec comes from")
    p.add_argument("code", nargs="?", help="a diagnostic code; with --origin, a param or block name")
    p.add_argument("--origin", metavar="SPEC", help="show where the spec's params and blocks were declared, set "
                   "and edited, file by file in merge order (only NAME's with a name)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="with --origin: override a param, as for validate")
    p.set_defaults(run=_cmd_explain)

    p = sub.add_parser("cache", help="where the schema verdict cache is and its size; `archspec cache clear` "
                       "empties it")
    p.add_argument("action", nargs="?", choices=["clear"], help="clear: remove every entry")
    p.set_defaults(run=_cmd_cache)


def _cmd_validate(args: argparse.Namespace) -> int:
    """Every spec is reported (ok, or its diagnostics) and the command goes on: a bad spec is its result, not an
    error that stops it; exit code 2 when any is invalid."""
    from archspec.compiler.validate import validate
    from archspec.lang.diagnostics import Sources, render_json, render_text
    from archspec.lang.schema import SchemaChecker

    checker = SchemaChecker()
    results = []
    for ref in args.specs:
        sources = Sources()
        result = validate(ref, args.overrides, args.input_shape, sources, checker, args.max_nodes)
        results.append(result)
        if args.format == "text":  # (`say`: a reader that leaves early changes what is shown, not the exit code)
            if result.ok:
                exp = result.expansion
                say(f"{result.file}: ok ({exp.spec.name}, {len(exp.nodes) - 1:,} nodes)")
            elif result.diagnostics:
                say(render_text(result.diagnostics, sources), err=True)
    if args.format == "json":
        say(render_json([r.as_dict() for r in results]))
    bad = sum(not r.ok for r in results)
    if args.format == "text" and len(results) > 1:
        say(f"{len(results)} specs: {len(results) - bad} valid, {bad} invalid", err=bool(bad))
    return EXIT_INVALID if bad else EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from archspec.lang.schema import schema_json

    sys.stdout.write(schema_json())
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from archspec.lang.resolve import available_specs
    from archspec.lang.yamlsrc import display_path

    if args.recipes:
        import yaml

        from archspec.lang.spec import shipped_recipes

        recipes = shipped_recipes()
        width = max((len(display_path(p)) for p in recipes.values()), default=0)
        for name, path in recipes.items():  # (archspec's own files, read safely)
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            about = doc.get("description", "") if isinstance(doc, dict) else ""
            print(f"{name:<16} {display_path(path):<{width}}  {' '.join(str(about).split())}")
        return EXIT_OK
    for name, path in available_specs().items():
        print(f"{name:<20} {display_path(path)}")
    return EXIT_OK


def _cmd_ops(args: argparse.Namespace) -> int:
    from archspec.lang.diagnostics import did_you_mean
    from archspec.lang.ops import USER_OPS
    from archspec.lang.ops.catalogue import catalogue

    for name in args.names:
        if name not in USER_OPS:
            hint = did_you_mean(name, USER_OPS, what="ops")
            raise UsageError(f"unknown op {name!r}" + (f" ({hint})" if hint else f"; the ops are {', '.join(USER_OPS)}"))
    print(catalogue(args.names))
    if not args.names:
        from archspec.lang.ops import PLUGINS
        from archspec.lang.ops.plugins import describe

        for line in describe(PLUGINS):
            print(f"plugin {line}")
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from archspec.lang.diagnostics import CODES
    from archspec.lang.explanations import explain

    if args.origin is not None:
        return _cmd_origin(args)
    if args.code is None:
        for code in sorted(CODES):
            print(f"{code}: {CODES[code]}")
        return EXIT_OK
    code = args.code.upper()
    if code not in CODES:
        raise UsageError(f"unknown code {args.code}; `archspec explain` lists every code")
    print(explain(code, CODES[code]))
    return EXIT_OK


def _cmd_origin(args: argparse.Namespace) -> int:
    """`archspec explain --origin SPEC [NAME]`: the history of each param and block, merge order first."""
    from archspec.lang.diagnostics import did_you_mean, printable
    from archspec.lang.params import origin_report
    from archspec.lang.spec import load_spec

    spec = load_spec(args.origin, args.overrides)
    lines = origin_report(spec.param_table, spec.block_origins, spec.merge_order, args.code)
    if lines is None:
        hint = did_you_mean(args.code, spec.param_table.names() + list(spec.block_origins), what="params and blocks")
        raise UsageError(f"{spec.display} has no param or block `{args.code}`" + (f"; {hint}" if hint else ""))
    print(printable(f"{spec.name}  ({spec.display})"))  # a param's doc, a value, a file name: shown, never obeyed
    print("\n".join(map(printable, lines)))
    return EXIT_OK


def _cmd_cache(args: argparse.Namespace) -> int:
    """The schema verdict cache: a file per spec text known to pass the schema, bounded (see README)."""
    from archspec.lang.schema import MAX_CACHE_ENTRIES, cache_info, clear_cache

    if args.action == "clear":
        folder, removed = cache_info()[0], clear_cache()
        print(f"removed {removed} entr{'y' if removed == 1 else 'ies'} from {folder}")
        return EXIT_OK
    folder, count, size = cache_info()
    state = " (off: ARCHSPEC_NO_CACHE is set)" if os.environ.get("ARCHSPEC_NO_CACHE") else ""
    print(f"{folder}: {count} entr{'y' if count == 1 else 'ies'} of at most {MAX_CACHE_ENTRIES}, "
          f"{size:,} bytes on disk{state}")
    return EXIT_OK
