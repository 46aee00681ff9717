"""The `archspec` command line: the parser and `main`, the one place where errors become exit codes.

The subcommands live in `archspec.spec_cmd` (validate, schema, list, explain), `archspec.commands` (compile,
table, summary, export, render), `archspec.train_cmd` (train, eval, plot), `archspec.results_cmd` (results) and
others; each imports what it needs only when it runs (validate and compile never import torch). They share
`archspec.cmdbase` and never import this module.

Exit codes: 0 success, 2 invalid input (a bad spec, file, flag or checkpoint: any
`archspec.lang.errors.UserError`, whose `exit_code` says the code), 1 an internal error, 130 interrupted;
a command may also return its own result code (validate: 2 when a spec is invalid; train: 3 diverged).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Sequence

from archspec import bench_cmd, commands, diff_cmd, predict_cmd, results_cmd, spec_cmd, sweep_cmd, train_cmd
from archspec.cmdbase import (EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, UsageError, allocation_problem, out_of_memory, say,
                              silence)
from archspec.lang.diagnostics import Sources, SpecError, printable
from archspec.lang.errors import UserError

# The modules whose subcommands `archspec --help` lists, in this order.
COMMAND_MODULES = (spec_cmd, commands, diff_cmd, train_cmd, sweep_cmd, results_cmd, bench_cmd, predict_cmd)

__all__ = ["EXIT_INTERNAL", "EXIT_INVALID", "EXIT_OK", "UsageError", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the whole usage text
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command-line parser; with `only` (the command being run), the other commands have their names and
    help but not their options (building `train`'s flags costs `archspec compile` 15 ms of imports)."""
    from archspec import __version__

    parser = _Parser(prog="archspec", description="Neural-network architectures as YAML: validate, compile, "
                     "lower to PyTorch, train and draw them.")
    from archspec.lang import DISTRIBUTION

    parser.add_argument("--version", action="version", version=f"archspec {__version__} ({DISTRIBUTION})")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module in COMMAND_MODULES:
        module.command.add_to(sub, only)
    return parser


def foreign_archspec() -> str | None:
    """A warning when this environment also holds PyPI's `archspec` (CPU micro-architecture detection, which conda
    and spack depend on): it installs a Python package named `archspec` too, so one overwrote the other's files."""
    from importlib import metadata

    from archspec.lang import DISTRIBUTION

    try:
        other = metadata.distribution("archspec")
    except metadata.PackageNotFoundError:
        return None
    summary = other.metadata.get("Summary") or ""
    if summary.startswith("Declarative neural-network"):  # this project, installed under its former name
        return None
    what = summary or "another project"
    return (f"archspec: warning: this environment also holds the package `archspec` {other.version} ({what}), "
            "which installs a Python package of the same name; each overwrites the other's files: install "
            f"{DISTRIBUTION} in a virtual environment of its own (README, \"Installing\")")


def main(argv: Sequence[str] | None = None) -> int:
    # Commands are short-lived and allocate many small objects: the cyclic collector only costs time here.
    # Long-running commands (train) turn it back on.
    gc.disable()
    argv = list(sys.argv[1:] if argv is None else argv)
    sources = Sources()  # every spec file the command reads, to quote under a SpecError's diagnostics
    clash = foreign_archspec()
    if clash:
        print(clash, file=sys.stderr)
    try:
        _unknown_top_level_option(argv)
        args = build_parser(_command(argv)).parse_args(argv)
        args.sources = sources
        if sys.stdout is None and _command(argv) != "train":  # `archspec compile spec >&-`: print() would drop it all
            raise UsageError("standard output is closed, so the result would be lost: give the command somewhere "
                             "to write (a file or a pipe)")
        code = int(args.run(args) or 0)
        if sys.stdout is not None:
            try:
                sys.stdout.flush()  # a full disk or /dev/full is an error here, not a result silently lost at exit
            except BrokenPipeError:  # the reader left; the command's result stands (validate: 2 if invalid)
                silence(sys.stdout)
        return code
    except UserError as e:  # a bad spec, flag, file, folder or checkpoint, from any layer
        return _user_error(e, argv, sources)
    except BrokenPipeError:  # `archspec schema | head`: the reader had what it wanted of a result being written
        for stream in (sys.stdout, sys.stderr):  # (failures were reported by `say`, which keeps their code)
            if stream is not None:
                silence(stream)
        return EXIT_OK
    except OSError as e:  # a full disk, a read-only mount, no permission: the user's to fix, wherever it happens
        return _os_error(e)
    except KeyboardInterrupt:
        say("archspec: interrupted", err=True)
        return 130
    except SystemExit as e:  # --help and --version
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else EXIT_INVALID
    except Exception as e:  # noqa: BLE001 - the last line of defence: say it is our fault, not the user's
        if _out_of_memory(e) and not os.environ.get("ARCHSPEC_DEBUG"):
            say(f"archspec: error: out of memory: could not allocate {allocation_problem(e)}; the network or "
                "a batch is too big for this machine (`archspec compile SPEC` shows its parameters and "
                "activation memory): make it smaller (check `out:` widths, `repeat` counts and the input size), "
                "or lower the batch size (--batch-size, --batch) or use --checkpoint-activations", err=True)
            return EXIT_INVALID
        return _internal(e)
    finally:
        gc.enable()


def _user_error(e: UserError, argv: list[str], sources: Sources) -> int:
    """Print the error for the user and return its exit code: a bad spec as its diagnostics (with the source line
    and a caret), anything else as one line (`printable`: it may quote a flag or a file). The code stands even
    when stderr's reader has gone (`archspec compile bad.yaml 2>&1 | head -1` exits 2)."""
    if isinstance(e, SpecError):
        if e.diagnostics:
            say(str(e.quoting(sources)), err=True)  # the one rendering, as `str(e)` gives it from Python
        return e.exit_code
    message = str(e)
    command = _command(argv)
    if "(see `archspec --help`)" in message and command in _command_names():
        message = message.replace("`archspec --help`", f"`archspec {command} --help`")
    say("archspec: error: " + printable(message, keep="\n"), err=True)
    return e.exit_code


def _command(argv: list[str]) -> str | None:
    """The subcommand named on the command line (the first word that is no option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _os_error(e: OSError) -> int:
    from archspec.lang.files import is_filesystem_error, os_problem

    if not is_filesystem_error(e) or os.environ.get("ARCHSPEC_DEBUG"):
        return _internal(e)
    say("archspec: error: " + printable(os_problem(e), keep="\n"), err=True)
    return EXIT_INVALID


def _out_of_memory(e: BaseException) -> bool:
    """A GPU or CPU allocation that failed: the request was too big for the machine (torch is not imported here)."""
    return out_of_memory(e)


def _internal(e: Exception) -> int:
    if os.environ.get("ARCHSPEC_DEBUG"):
        raise e
    say(printable(f"archspec: internal error: {type(e).__name__}: {e} (this is a bug in archspec; "
                  f"set ARCHSPEC_DEBUG=1 for the traceback)", keep="\n"), err=True)
    return EXIT_INTERNAL


def _unknown_top_level_option(argv: list[str]) -> None:
    """`archspec --bogus`: argparse would only say that a COMMAND is required; name the option instead."""
    for arg in argv:
        if arg in ("-h", "--help", "--version") or not arg.startswith("-") or arg == "-":
            return
        names = _command_names()
        if arg.split("=")[0].lstrip("-") in names:
            hint = f"; did you mean `archspec {arg.split('=')[0].lstrip('-')}`?"
        else:
            hint = (f"; options go after the command (`archspec COMMAND --help`), and the commands are "
                    f"{', '.join(sorted(names))}")
        raise UsageError(f"unknown option {arg}{hint}")


def _command_names() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()
