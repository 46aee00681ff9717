"""`archspec diff A B`: what a change to a spec does to the network, op by op after expansion.

The work is `archspec.compiler.diff`; this module adds the subcommand and compiles the two sides. Exit codes
follow diff(1): 0 when the two architectures are equal, 1 when they differ; a bad spec, file or flag raises
a `UserError` and `archspec.cli.main` prints it and exits 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from archspec import flags
from archspec.cmdbase import EXIT_OK, Commands
from archspec.commands import compile_args

EXIT_DIFFERENT = 1

command = Commands()


@command
def _register_diff(sub: Any) -> None:
    p = sub.add_parser("diff", help="what changed between two specs, after expansion: ops, shapes, params and "
                       "MACs by block and stage (exit 0 equal, 1 different)")
    p.add_argument("a", metavar="A", help="the spec before: a spec file or the name of a shipped spec")
    p.add_argument("b", metavar="B", help="the spec after")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param on both sides, e.g. --set shortcut=C (repeatable)")
    p.add_argument("--set-a", dest="overrides_a", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param of A only (after --set), e.g. --set-a n=3")
    p.add_argument("--set-b", dest="overrides_b", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param of B only (after --set), e.g. --set-b n=5")
    p.add_argument("--input", dest="input_shape", metavar="CxHxW", help="input shape of both, e.g. 3x224x224")
    p.add_argument("--level", choices=["stage", "block", "layer"], default="block",
                   help="stage: the Table 1 rows only; block: the changes of each residual block (default); "
                   "layer: every op that changed, with its params and MACs")
    p.add_argument("--json", action="store_true", help="print the diff as JSON")
    p.add_argument("--count", choices=["conv", "all"], default="conv",
                   help="conv: conv+linear multiply-adds (the paper's convention, default); all: also BN, ReLU, "
                   "add and pooling")
    p.add_argument("--unit", choices=["macs", "flops"], default="macs",
                   help="macs (default) or flops = 2 x multiply-adds")
    p.add_argument("--max-nodes", type=flags.POSITIVE, default=None,
                   help="node budget for each expansion (default 100,000)")
    p.set_defaults(run=_cmd_diff)


def _cmd_diff(args: argparse.Namespace) -> int:
    from archspec.compiler.diff import diff_compiled

    a, b = _compile_both(args)
    d = diff_compiled(a, b)
    if args.json:
        print(json.dumps(d.to_dict(args.level), indent=2, allow_nan=False))
    else:
        print(d.format(args.level))
    return EXIT_OK if d.equal else EXIT_DIFFERENT


def _compile_both(args: argparse.Namespace) -> tuple[Any, Any]:
    """Both sides compiled; the diagnostics of both are shown together when either is invalid."""
    from archspec.lang.diagnostics import SpecError

    compiled, bad = [], []
    for ref, own in ((args.a, args.overrides_a), (args.b, args.overrides_b)):
        try:
            compiled.append(compile_args(args, ref, [*args.overrides, *own]))
        except SpecError as e:
            bad.append(e)
    if bad:  # the same spec on both sides is diagnosed once
        found = [d for e in bad for d in e.diagnostics]
        raise SpecError(d for i, d in enumerate(found) if d.as_dict() not in [x.as_dict() for x in found[:i]])
    return compiled[0], compiled[1]
