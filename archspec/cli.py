"""The `archspec` command line. Each subcommand imports only what it needs (validate and compile never import torch).

Exit codes: 0 success, 2 invalid input (a bad spec, file, flag or checkpoint), 1 an internal error.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Any, Callable, Sequence

from archspec import flags
from archspec.lang.errors import UserError

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2


class UsageError(UserError):
    """A bad command line or a bad non-spec input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the whole usage text
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from archspec import __version__
    from archspec.commands import add_spec_args

    parser = _Parser(prog="archspec", description="Neural-network architectures as YAML: validate, compile, "
                     "lower to PyTorch, train and draw them.")
    parser.add_argument("--version", action="version", version=f"archspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("validate", help="check specs and report every problem with file:line:col")
    add_spec_args(p, many=True)
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.add_argument("--max-nodes", type=flags.POSITIVE, default=None, help="node budget for expansion (default 100,000)")
    p.set_defaults(run=_cmd_validate)

    p = sub.add_parser("schema", help="print the JSON Schema of spec files")
    p.set_defaults(run=_cmd_schema)

    p = sub.add_parser("list", help="list the shipped specs")
    p.set_defaults(run=_cmd_list)

    p = sub.add_parser("explain", help="explain a diagnostic code, e.g. `archspec explain E305`")
    p.add_argument("code")
    p.set_defaults(run=_cmd_explain)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    """Subcommands defined beside the modules that implement them (compile, render, train, ...)."""
    from archspec import commands, train_cmd  # noqa: F401 - importing registers their subcommands

    return commands.REGISTER


def main(argv: Sequence[str] | None = None) -> int:
    # Commands are short-lived and allocate many small objects: the cyclic collector only costs time here.
    # Long-running commands (train) turn it back on.
    gc.disable()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except UserError as e:  # a bad flag, file, folder or checkpoint, from any layer
        message = str(e)
        command = next((a for a in argv if not a.startswith("-")), None)
        if "(see `archspec --help`)" in message and command in _command_names():
            message = message.replace("`archspec --help`", f"`archspec {command} --help`")
        print(f"archspec: error: {message}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # `archspec schema | head`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return EXIT_OK
    except OSError as e:  # a full disk, a read-only mount, no permission: the user's to fix, wherever it happens
        from archspec.lang.files import is_filesystem_error, os_problem

        if not is_filesystem_error(e) or os.environ.get("ARCHSPEC_DEBUG"):
            return _internal(e)
        print(f"archspec: error: {os_problem(e)}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("archspec: interrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help and --version
        return int(e.code or 0) if isinstance(e.code, int) or e.code is None else EXIT_INVALID
    except Exception as e:  # noqa: BLE001 - the last line of defence: say it is our fault, not the user's
        if _out_of_memory(e) and not os.environ.get("ARCHSPEC_DEBUG"):
            first = " ".join(str(e).split())[:160]
            print(f"archspec: error: out of memory ({first}): lower the batch size (--batch-size, --batch), or use "
                  "--checkpoint-activations or a smaller input", file=sys.stderr)
            return EXIT_INVALID
        return _internal(e)
    finally:
        gc.enable()


def _out_of_memory(e: BaseException) -> bool:
    """A GPU or CPU allocation that failed: the request was too big for the machine (torch is not imported here)."""
    text = str(e)
    return (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in text or "CUDA out of memory" in text)


def _internal(e: Exception) -> int:
    if os.environ.get("ARCHSPEC_DEBUG"):
        raise e
    print(f"archspec: internal error: {type(e).__name__}: {e} (this is a bug in archspec; "
          f"set ARCHSPEC_DEBUG=1 for the traceback)", file=sys.stderr)
    return EXIT_INTERNAL


def _command_names() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def print_diagnostics(diagnostics: list, sources: Any) -> None:
    from archspec.lang.diagnostics import render_text

    if diagnostics:
        print(render_text(diagnostics, sources), file=sys.stderr)


def _cmd_validate(args: argparse.Namespace) -> int:
    from archspec.lang.diagnostics import Sources, render_json
    from archspec.lang.schema import SchemaChecker
    from archspec.compiler.validate import validate

    checker = SchemaChecker()
    results = []
    for ref in args.specs:
        sources = Sources()
        result = validate(ref, args.overrides, args.input_shape, sources, checker, args.max_nodes)
        results.append(result)
        if args.format == "text":
            if result.ok:
                exp = result.expansion
                print(f"{result.file}: ok ({exp.spec.name}, {len(exp.nodes) - 1:,} nodes)")
            else:
                print_diagnostics(result.diagnostics, sources)
    if args.format == "json":
        print(render_json([r.as_dict() for r in results]))
    bad = sum(not r.ok for r in results)
    if args.format == "text" and len(results) > 1:
        print(f"{len(results)} specs: {len(results) - bad} valid, {bad} invalid",
              file=sys.stderr if bad else sys.stdout)
    return EXIT_INVALID if bad else EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from archspec.lang.schema import schema_json

    sys.stdout.write(schema_json())
    return EXIT_OK


def _cmd_list(args: argparse.Namespace) -> int:
    from archspec.lang.resolve import available_specs
    from archspec.lang.yamlsrc import display_path

    for name, path in available_specs().items():
        print(f"{name:<20} {display_path(path)}")
    return EXIT_OK


def _cmd_explain(args: argparse.Namespace) -> int:
    from archspec.lang.diagnostics import CODES

    code = args.code.upper()
    if code not in CODES:
        raise UsageError(f"unknown code {args.code}; codes run from E001 to E900")
    print(f"{code}: {CODES[code]}")
    return EXIT_OK
