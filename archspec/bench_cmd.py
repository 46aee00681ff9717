"""`archspec bench`: its arguments. The work is in the runtime (`archspec.runtime.bench`, the twins in
`archspec.runtime.twins`, the output in `archspec.runtime.bench_report`).

Every value is checked before anything is measured: a bad batch list, --compile where torch.compile cannot run,
--device cuda without CUDA, a twin that cannot be built: one line, exit code 2. A model too big for the memory is
`archspec.cli.main`'s out-of-memory line.
"""

from __future__ import annotations

import argparse
from typing import Any

from archspec import flags
from archspec.cmdbase import EXIT_OK, Commands, add_spec_args, say

command = Commands()


def batch_sizes(text: str) -> tuple[int, ...]:
    """--batch-size: whole numbers >= 1 separated by commas, each once (1,32,256)."""
    parts = [t.strip() for t in text.split(",")]
    try:
        values = tuple(int(t) for t in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1 separated by commas, e.g. 1,32,256; got "
                                         f"{text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"batch sizes must be >= 1, got {text}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"a batch size is given twice in {text}: give each once")
    return values


def twin_choice(text: str) -> str:
    from archspec.runtime.twins import parse_choice

    try:
        return parse_choice(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


@command
def _register_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="inference and training throughput, latency and peak memory of specs, against "
                       "their torchvision/timm twins measured in the same run")
    add_spec_args(p, many=True)
    p.add_argument("--batch-size", type=batch_sizes, default=None, metavar="N[,N...]",
                   help="batch sizes to measure, e.g. 1,32,256 (default: each spec's recipe batch size)")
    p.add_argument("--mode", choices=("infer", "train", "both"), default="both",
                   help="inference (forward under no_grad), training (forward, backward, SGD step) or both (default)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (model and batch)")
    p.add_argument("--compile", action="store_true", help="torch.compile each model (compiled during the warm-up)")
    p.add_argument("--warmup", type=flags.NON_NEGATIVE, default=10, metavar="N",
                   help="untimed steps before the timed ones (default 10)")
    how_long = p.add_mutually_exclusive_group()
    how_long.add_argument("--steps", type=flags.POSITIVE, default=None, metavar="N", help="timed steps (default 40)")
    how_long.add_argument("--seconds", type=flags.POSITIVE_REAL, default=None, metavar="S",
                          help="time the steps that fit in S seconds instead (at least one)")
    p.add_argument("--rounds", type=flags.POSITIVE, default=1, metavar="N",
                   help="measure each model N times, alternating the order (spec-twin, twin-spec, ...), and keep "
                   "each one's fastest: steadier ratios on a busy machine (default 1)")
    p.add_argument("--twin", type=twin_choice, default="auto", metavar="auto|none|torchvision:NAME|timm:NAME",
                   help="the model measured beside the spec: auto (default: torchvision's or timm's model with the "
                   "spec's architecture, where one exists and its package imports), none, or one you name (one SPEC)")
    p.add_argument("--csv", type=flags.output_file, default=None, metavar="FILE", help="also write the rows as CSV")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress lines (on stderr)")
    p.set_defaults(run=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    from archspec.lang.files import write_text
    from archspec.runtime.bench import BenchRequest, bench
    from archspec.runtime.bench_report import csv_text, json_text, table

    request = BenchRequest(
        specs=tuple(args.specs), overrides=tuple(args.overrides), input_shape=args.input_shape,
        batch_sizes=args.batch_size, modes=("infer", "train") if args.mode == "both" else (args.mode,),
        device=args.device, bf16=args.bf16, channels_last=args.channels_last, compile=args.compile,
        warmup=args.warmup, steps=args.steps, seconds=args.seconds, twin=args.twin, rounds=args.rounds)
    result = bench(request, args.sources, log=None if args.quiet else (lambda text: say(text, err=True)))
    if args.csv is not None:
        write_text(args.csv, csv_text(result))
    say(json_text(result) if args.json else table(result))
    return EXIT_OK
