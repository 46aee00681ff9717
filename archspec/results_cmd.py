"""`archspec results DIR...`: one row per grid point of sweeps and run folders, like Table 6 of the paper. The
work is in the runtime (`archspec.runtime.results` finds and pools the runs, `archspec.runtime.results_table`
writes the table).

Exit codes: 0 the table was printed (unfinished, failed and diverged runs are marked in it, not errors); 2 a folder
that holds no runs, or a damaged sweep.json or run.json (one line naming it), raised as a `UserError` that
`archspec.cli.main` prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archspec.cmdbase import EXIT_OK, Commands, say

command = Commands()

FORMATS = ("markdown", "csv", "json")
SORTS = ("point", "final", "lowest", "params", "macs", "speed", "time")


@command
def _register_results(sub: Any) -> None:
    p = sub.add_parser("results", help="a table of many runs, one row per grid point with best (mean±std) over "
                       "seeds (like Table 6 of the paper)")
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                   help="a sweep folder (made by `archspec sweep`), a run folder, or a folder of run folders (runs "
                   "of the same spec, params and recipe are pooled, seeds apart)")
    p.add_argument("--format", choices=FORMATS, default="markdown", help="markdown (default), csv or json")
    p.add_argument("--sort", choices=SORTS, default="point",
                   help="order of the rows: point (as found, default), final or lowest (mean error, lowest first), "
                   "params, macs, speed (fastest first) or time")
    p.set_defaults(run=_cmd_results)


def _cmd_results(args: argparse.Namespace) -> int:
    from archspec.runtime.results import Results, collect
    from archspec.runtime.results_table import render, sort_points

    found = collect(args.dirs)
    say(render(Results(sort_points(found.points, args.sort), found.notes), args.format).rstrip("\n"))
    return EXIT_OK
