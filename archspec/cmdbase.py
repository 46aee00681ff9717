"""What every subcommand module shares, so that they need nothing from `archspec.cli` (which imports them):
the exit codes, `UsageError`, the registry of subcommands and the SPEC/--set/--input arguments.

Errors are not turned into exit codes here nor in the commands: a command raises (a `UsageError`, or any
`archspec.lang.errors.UserError` from a layer below, a `SpecError` included) and `archspec.cli.main` prints it
and exits with its `exit_code`. A command that reads specs passes `args.sources` (set by `main`) to the
compiler, so that `main` can quote the offending source lines under a SpecError's diagnostics.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Callable

from archspec.lang.errors import UserError

EXIT_OK, EXIT_INTERNAL, EXIT_INVALID = 0, 1, 2

Register = Callable[[Any], None]


class UsageError(UserError):
    """A bad command line or a bad non-spec input: printed as one line, exit code 2."""


class Commands:
    """The subcommands one module defines: `@command` on a function that adds a subparser (given the
    subparsers object) and sets its `run`. They appear in `archspec --help` in the order they were defined."""

    def __init__(self) -> None:
        self._register: list[Register] = []

    def __call__(self, register: Register) -> Register:
        self._register.append(register)
        return register

    def add_to(self, sub: Any, only: str | None = None) -> None:
        """Add every subcommand of the module to `sub` (argparse's subparsers action). With `only`, the other
        subcommands are added by name and help alone (their options are not built: `archspec compile` need not
        import what declares `train`'s flags), which is all that parsing `only`'s command line needs."""
        for register in self._register:
            register(_OnlyNamed(sub, only) if only is not None else sub)


class _OnlyNamed:
    """The subparsers action, seen by a subcommand's register function: the subcommand `only` is added whole;
    any other gets its name and help, and a stand-in that takes its options and keeps none."""

    def __init__(self, sub: Any, only: str) -> None:
        self._sub, self._only = sub, only

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        parser = self._sub.add_parser(name, **kwargs)
        return parser if name == self._only or self._only in kwargs.get("aliases", ()) else _Unused()


class _Unused:
    """What a subcommand that is not being run builds its options on: every call is taken and does nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


def add_spec_args(p: argparse.ArgumentParser, *, many: bool = False, optional: bool = False) -> None:
    """SPEC (or SPEC... with `many`; SPEC may be left out with `optional`), --set and --input."""
    p.add_argument("specs" if many else "spec", nargs="+" if many else ("?" if optional else None), metavar="SPEC",
                   help="a spec file or the name of a shipped spec (`archspec list`)"
                   + ("; left out, the run folder's" if optional else ""))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param, e.g. --set n=200 or --set shortcut=C (repeatable)")
    p.add_argument("--input", dest="input_shape", metavar="CxHxW", help="input shape, e.g. 3x224x224")


def add_weights_arg(p: argparse.ArgumentParser, what: str) -> None:
    """--weights: a state_dict file (.pt, .pth, .safetensors, a run's checkpoint) or published weights by name."""
    from archspec import flags

    p.add_argument("--weights", metavar="SOURCE", type=flags.weights_source,
                   help=f"{what}: a state_dict file (.pt/.pth/.safetensors, or a run's best.pt/last.pt) or published "
                   "ImageNet weights: torchvision (IMAGENET1K_V1, IMAGENET1K_V2) for torchvision-layout specs, timm "
                   "for timm-named ones (a classifier of another size starts afresh)")


# What torch's allocators say when a request is too big (torch is not imported here).
_OOM_TEXTS = ("can't allocate memory", "not enough memory", "DefaultCPUAllocator", "CUDA out of memory",
              "out of memory")


def out_of_memory(e: BaseException) -> bool:
    """A GPU or CPU allocation that failed: the request was too big for the machine."""
    text = str(e)
    return (isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError"
            or any(t in text for t in _OOM_TEXTS))


def allocation_problem(e: BaseException) -> str:
    """What could not be allocated, in words: `10.8 GB on the CPU`, `2.0 GB on the GPU`, or `memory`."""
    text = str(e)
    where = " on the GPU" if "CUDA" in text or "GPU" in text else (" on the CPU" if "CPU" in text else "")
    found = re.search(r"(?:tried to allocate|allocate) ([0-9.]+) ?(bytes|[KMGT]i?B)", text)
    if not found:
        return f"memory{where}"
    amount, unit = float(found.group(1)), found.group(2)
    if unit == "bytes":
        return f"{human_bytes(amount)}{where}"
    return f"{found.group(1)} {unit}{where}"


def human_bytes(n: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def say(text: str, err: bool = False) -> bool:
    """`print(text)` to stdout (`err`: stderr), whose reader may have gone away: False, and nothing more written to
    that stream, when its pipe is broken (`archspec validate bad.yaml 2>&1 | head -1`). The caller keeps its result,
    so a failure whose report was cut short still exits as a failure."""
    import sys

    stream = sys.stderr if err else sys.stdout
    if stream is None:  # closed from the start (`2>&-`): nowhere to write
        return False
    try:
        print(text, file=stream, flush=True)
        return True
    except BrokenPipeError:
        silence(stream)
        return False


def silence(stream: Any) -> None:
    """Send what is still written to `stream` (its buffer, later prints, Python's flush at exit) to os.devnull:
    its reader has gone. The file descriptor is redirected, so every object writing to it goes quiet."""
    import os

    try:
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):
        return
    try:
        os.dup2(devnull, fd)
    except OSError:
        pass
    finally:
        os.close(devnull)
