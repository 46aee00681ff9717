"""Subcommands beyond `validate` (compile, table, ...): each adds its subparser and imports its work lazily."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

REGISTER: list[Callable[[Any], None]] = []


def command(fn: Callable[[Any], None]) -> Callable[[Any], None]:
    REGISTER.append(fn)
    return fn


def add_spec_args(p: argparse.ArgumentParser, *, many: bool = False) -> None:
    p.add_argument("specs" if many else "spec", nargs="+" if many else None, metavar="SPEC",
                   help="a spec file or the name of a shipped spec (`archspec list`)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param, e.g. --set n=200 or --set shortcut=C (repeatable)")
    p.add_argument("--input", dest="input_shape", metavar="CxHxW", help="input shape, e.g. 3x224x224")


def add_count_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", choices=["conv", "all"], default="conv",
                   help="conv: conv+linear multiply-adds (the paper's convention, default); all: also BN, ReLU, "
                   "add and pooling")
    p.add_argument("--unit", choices=["macs", "flops"], default="macs",
                   help="macs (default) or flops = 2 x multiply-adds")
    p.add_argument("--dtype-bytes", type=int, choices=[1, 2, 4, 8], default=4,
                   help="bytes per activation element for the memory figure (default 4, float32)")
    p.add_argument("--max-nodes", type=int, default=None, help="node budget for expansion (default 100,000)")


def compile_or_report(args: argparse.Namespace, ref: str) -> Any:
    """Compile one spec; on a bad spec print its diagnostics and return None."""
    from archspec.cli import print_diagnostics
    from archspec.compiler.analysis import compile_spec
    from archspec.diagnostics import Sources, SpecError

    sources = Sources()
    try:
        return compile_spec(ref, args.overrides, args.input_shape, count=args.count, unit=args.unit,
                            dtype_bytes=args.dtype_bytes, max_nodes=args.max_nodes, sources=sources)
    except SpecError as e:
        print_diagnostics(e.diagnostics, sources)
        return None


@command
def _register_compile(sub: Any) -> None:
    p = sub.add_parser("compile", help="check every shape; count parameters, MACs/FLOPs and memory")
    add_spec_args(p)
    add_count_args(p)
    p.add_argument("--flops", action="store_true", help="add the per-stage table (Table 1 of the paper)")
    p.add_argument("--layers", action="store_true", help="add the per-layer table")
    p.add_argument("--ir", action="store_true", help="print the IR graph as text")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(run=_cmd_compile)


def _cmd_compile(args: argparse.Namespace) -> int:
    from archspec.cli import EXIT_INVALID, EXIT_OK

    c = compile_or_report(args, args.spec)
    if c is None:
        return EXIT_INVALID
    if args.json:
        json.dump(c.to_dict(), sys.stdout, indent=2)
        print()
        return EXIT_OK
    from archspec.compiler import report

    print(report.summary(c))
    if args.flops:
        print()
        print(report.stage_table(c))
    if args.layers:
        print()
        print(report.layer_table(c))
    if args.ir:
        print()
        print(c.format())
    return EXIT_OK


@command
def _register_table(sub: Any) -> None:
    p = sub.add_parser("table", help="several specs side by side as a Markdown table (Table 1 of the paper)")
    add_spec_args(p, many=True)
    add_count_args(p)
    p.set_defaults(run=_cmd_table)


def _cmd_table(args: argparse.Namespace) -> int:
    from archspec.cli import EXIT_INVALID, EXIT_OK
    from archspec.compiler.report import markdown_table

    compiled = [compile_or_report(args, ref) for ref in args.specs]
    if any(c is None for c in compiled):
        return EXIT_INVALID
    print(markdown_table(compiled))
    return EXIT_OK
