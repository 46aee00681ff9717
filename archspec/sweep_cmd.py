"""`archspec sweep`: an experiment's grid of training runs (docs/experiments.md). The work is in the runtime
(`archspec.runtime.sweep` and the modules it names); the experiment file's format is `archspec.lang.experiment`.

The flags of `archspec train` that apply to every run are train's own definitions (`train_cmd.add_run_flags`), so
they take and check the same values; the `train:` entries of an experiment file are read by the same definitions
(a name it does not take, or a value it refuses, is an E703 at the entry). Exit codes: 0 every run finished, 3 a
run failed or diverged, 130 interrupted, 2 bad input (before any run starts).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archspec import flags
from archspec.cmdbase import EXIT_OK, Commands, UsageError

command = Commands()

# train flags a sweep sets itself, or takes from the grid, with what to do instead
MANAGED = {"--out": "the sweep names each run's folder (DIR/<point>/seed<N>): give the sweep --out DIR",
           "--seed": "the sweep runs seeds 0 to N-1 of every point: set `seeds: N` (or --seeds N)",
           "--resume": "the sweep resumes interrupted runs by itself when run again",
           "--quiet": "the sweep's runs are always quiet; `archspec sweep --quiet` quiets the live view",
           "--set": "give --set values as a grid axis or a point's `set:`"}
SWEEP_ONLY = ("--device", "--download")   # one value for the whole sweep: not in a point's `train:`


@command
def _register_sweep(sub: Any) -> None:
    p = sub.add_parser("sweep", help="train an experiment's grid of runs (specs x --set values x recipe values x "
                       "seeds), each an ordinary run folder; resumable")
    p.add_argument("experiment", nargs="?", metavar="EXPERIMENT",
                   help="an experiment file, or a shipped experiment's name (`archspec sweep --list`)")
    p.add_argument("--out", type=flags.output_folder, default=None, metavar="DIR",
                   help="the sweep folder: DIR/<point>/seed<N> per run, DIR/sweep.json (default runs/<experiment>)")
    p.add_argument("--list", action="store_true", help="list the shipped experiments")
    p.add_argument("--seeds", type=flags.integer(1, 1000), default=None, metavar="N",
                   help="runs of each point, seeds 0 to N-1 (default: the experiment's `seeds:`)")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="run only the points with this value of an axis (spec, a --set param, a recipe field); "
                   "repeatable: the same KEY twice takes either value, different KEYs must all match")
    p.add_argument("--jobs", type=flags.POSITIVE, default=None, metavar="N",
                   help="runs at a time (default: one per GPU, x --per-gpu; on a CPU 1)")
    p.add_argument("--per-gpu", type=flags.POSITIVE, default=None, metavar="K",
                   help="runs sharing each GPU (small CIFAR nets leave a GPU mostly idle)")
    p.add_argument("--cpus-per-run", type=flags.POSITIVE, default=None, metavar="N",
                   help="threads of each run (OMP_NUM_THREADS; default on a CPU: cores / --jobs); with Ray, the CPUs "
                   "each task asks for (default 1)")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: processes on this machine (default); ray: Ray tasks (pip install 'archspec-nn[ray]')")
    p.add_argument("--address", default=None, metavar="ADDRESS",
                   help="with --backend ray: the cluster to use (default: RAY_ADDRESS, else a local instance)")
    p.add_argument("--dry-run", action="store_true", help="check everything and list the runs and their commands")
    p.add_argument("--quiet", action="store_true", help="no live view; only the summary at the end")
    from archspec.train_cmd import add_run_flags

    add_run_flags(p)   # train's own flags, for every run (its recipe options keep their group)
    p.set_defaults(run=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from archspec.lang.experiment import load_experiment, select
    from archspec.lang.errors import UserError

    if args.list:
        if args.experiment is not None:
            raise UsageError("--list lists the shipped experiments: give it alone (`archspec sweep --list`)")
        return _list()
    if args.experiment is None:
        raise UsageError("name an experiment: `archspec sweep EXPERIMENT --out DIR` (a file, or a shipped name: "
                         "`archspec sweep --list`)")
    if args.address is not None and args.backend != "ray":
        raise UsageError("--address names a Ray cluster: give it with --backend ray")
    if args.backend == "ray":
        import importlib

        try:
            importlib.import_module("ray")   # (before the runs are checked: a missing extra is one line)
        except ImportError:
            from archspec.lang import install_hint

            raise UsageError(f"--backend ray needs Ray, which is not installed here: {install_hint('ray')}") from None
    exp = load_experiment(args.experiment, args.sources)
    try:
        points = select(exp, args.only)
    except UserError as e:
        raise UsageError(str(e)) from None
    flags_of = TrainFlags()
    problems = []
    common = flags_of.from_file(exp.train, exp.locs, problems, point_level=False)
    given = flags_of.from_args(args)
    train, argv = {}, {}
    for point in exp.points:   # (every point: all are checked, --only or not)
        own = flags_of.from_file(point.train, point.locs, problems, point_level=True)
        merged = flags_of.merge(common, own, given)
        train[point.key] = {dest: _json(v) for dest, (v, _) in merged.items()}
        argv[point.key] = [a for _, fragment in merged.values() for a in fragment]
    from archspec.runtime.sweep import SweepRequest, run_sweep

    top = flags_of.merge(common, given)
    request = SweepRequest(
        experiment=exp, points=points, train=train, train_argv=argv, seeds=args.seeds or exp.seeds,
        out=args.out if args.out is not None else Path("runs") / exp.name, jobs=args.jobs, per_gpu=args.per_gpu,
        cpus_per_run=args.cpus_per_run, backend=args.backend, address=args.address, quiet=args.quiet,
        dry_run=args.dry_run, command=" ".join(["archspec"] + sys.argv[1:]),
        device=top.get("device", (None,))[0], download=bool(top.get("download", (False,))[0]), problems=problems)
    return run_sweep(request, args.sources)


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _list() -> int:
    from archspec.lang.diagnostics import Sources, SpecError
    from archspec.lang.experiment import load_experiment, shipped_experiments
    from archspec.lang.yamlsrc import display_path

    for name, path in shipped_experiments().items():
        try:
            exp = load_experiment(str(path), Sources())
        except SpecError as e:  # (a shipped file is checked by the tests; say so rather than fail the list)
            print(f"{name:<12} {display_path(path)}: invalid ({e.diagnostics[0].message})")
            continue
        runs = len(exp.points) * exp.seeds
        what = " ".join(exp.description.split()).split(" - ")[0]
        what = what if len(what) <= 90 else what[:87] + "..."
        print(f"{name:<12} {len(exp.points):>3} points x {exp.seeds} seed{'s' if exp.seeds > 1 else ' '} = {runs:>3} "
              f"runs  {what}")
    return EXIT_OK


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise _Refused(message)


class TrainFlags:
    """`archspec train`'s flags that a sweep passes on: read from the command line (already parsed) or from an
    experiment file's `train:` (checked by the same definitions), each as (value, its arguments)."""

    def __init__(self) -> None:
        from archspec.train_cmd import add_run_flags

        parser = argparse.ArgumentParser(add_help=False)
        add_run_flags(parser)   # (the definitions the sweep's parser took: the same dests)
        self.actions = [a for a in parser._actions if a.option_strings]
        self.by_option = {o: a for a in self.actions for o in a.option_strings}

    def fragment(self, action: argparse.Action, value: Any) -> list[str]:
        """The arguments that give `value` to `action` (nothing for a value that is its default)."""
        option = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            return [] if value is None else [option if value else "--no-" + option[2:]]
        if isinstance(action, argparse._StoreTrueAction):
            return [option] if value else []
        if isinstance(action, argparse._AppendAction):
            return [a for item in (value or []) for a in (option, str(item))]
        if value is None:
            return []
        if isinstance(value, list):
            return [option, ",".join(str(v) for v in value)]
        if isinstance(value, Path):
            return [option, str(value.expanduser().absolute())]  # (a Ray task may run elsewhere than here)
        return [option, str(value)]

    def from_args(self, args: argparse.Namespace) -> dict[str, tuple[Any, list[str]]]:
        out = {}
        for a in self.actions:
            value = getattr(args, a.dest)
            if value != a.default and value not in (None, []):
                out[a.dest] = (value, self.fragment(a, value))
        return out

    def from_file(self, entries: tuple[tuple[str, Any], ...], locs: dict[str, Any], problems: list,
                  point_level: bool) -> dict[str, tuple[Any, list[str]]]:
        """`train:` entries as flags; each problem an E703 at the entry."""
        from archspec.lang.codes import INVALID_TRAIN_FLAG
        from archspec.lang.diagnostics import Diagnostic, did_you_mean

        out = {}
        for name, value in entries:
            option = "--" + name.replace("_", "-")
            loc = locs.get(f"train.{name}")

            def refuse(message: str, hint: str | None = None) -> None:
                problems.append(Diagnostic(INVALID_TRAIN_FLAG, message, loc, hint=hint))

            if option in MANAGED:
                refuse(f"`{name}` is not a train flag of a sweep's run", MANAGED[option])
                continue
            action = self.by_option.get(option)
            if action is None:
                names = sorted(o[2:] for o in self.by_option if not o.startswith("--no-"))
                refuse(f"`archspec train` has no flag --{option[2:]}", did_you_mean(option[2:], names) or
                       "`archspec sweep --help` lists the train flags a sweep takes")
                continue
            if point_level and option in SWEEP_ONLY:
                refuse(f"`{name}` is one for the whole sweep", "give it in the top-level `train:` or on the command "
                       "line")
                continue
            args = self._file_args(action, option, value)
            if isinstance(args, str):
                refuse(args)
                continue
            parser = _Parser(add_help=False)
            parser._add_action(action)
            try:
                parsed = parser.parse_args(args)
            except _Refused as e:
                refuse(f"train flag `{name}`: {str(e).split(': ', 1)[-1] if str(e).startswith('argument ') else e}")
                continue
            typed = getattr(parsed, action.dest)
            out[action.dest] = (typed, self.fragment(action, typed))
        return out

    @staticmethod
    def _file_args(action: argparse.Action, option: str, value: Any) -> list[str] | str:
        """The arguments a `train:` value stands for, or why it cannot stand for any."""
        takes_no_value = isinstance(action, (argparse.BooleanOptionalAction, argparse._StoreTrueAction))
        if takes_no_value:
            if not isinstance(value, bool):
                return f"`{option[2:]}` is on or off: write true or false, got {value!r}"
            if isinstance(action, argparse.BooleanOptionalAction):
                return [option if value else "--no-" + option[2:]]
            return [option] if value else []
        if isinstance(value, bool) or value is None:
            return f"`{option[2:]}` takes a value (as `{option} VALUE`), got {str(value).lower()}"
        if isinstance(action, argparse._AppendAction):
            items = value if isinstance(value, list) else [value]
            return [a for item in items for a in (option, str(item))]
        if isinstance(value, list):
            return [option, ",".join(str(v) for v in value)]
        return [option, str(value)]

    def merge(self, *layers: dict[str, tuple[Any, list[str]]]) -> dict[str, tuple[Any, list[str]]]:
        """Later layers win flag by flag; --recipe values add up (in order, so that a later one wins its field).
        In the order of `archspec train --help`."""
        out: dict[str, tuple[Any, list[str]]] = {}
        for layer in layers:
            for dest, (value, fragment) in layer.items():
                if dest == "recipe_overrides" and dest in out:
                    value = out[dest][0] + value
                    fragment = out[dest][1] + fragment
                out[dest] = (value, fragment)
        order = {a.dest: i for i, a in enumerate(self.actions)}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], 0)))
