"""`archspec compile`, `table`, `summary`, `export` and `render`: each adds its subparser and imports its work
lazily. A bad spec raises SpecError out of `compile_args`; `archspec.cli.main` prints its diagnostics and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec import flags

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled

from archspec.cmdbase import (EXIT_OK, Commands, UsageError, add_spec_args, add_weights_arg, allocation_problem,
                              human_bytes, out_of_memory)

command = Commands()


def add_count_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", choices=["conv", "all"], default="conv",
                   help="conv: conv+linear multiply-adds (the paper's convention, default); all: also BN, ReLU, "
                   "add and pooling")
    p.add_argument("--unit", choices=["macs", "flops"], default="macs",
                   help="macs (default) or flops = 2 x multiply-adds")
    p.add_argument("--dtype-bytes", type=flags.integer(1, 8), choices=[1, 2, 4, 8], default=4,
                   help="bytes per activation element for the memory figure (default 4, float32)")
    p.add_argument("--max-nodes", type=flags.POSITIVE, default=None,
                   help="node budget for expansion (default 100,000)")


def compile_args(args: argparse.Namespace, ref: str, overrides: list[str] | None = None) -> Any:
    """Compile one spec with the command's options (SpecError if it is invalid); `overrides` in place of the
    command's `--set` values. Commands without the counting options (export, eval) get the default convention."""
    from archspec.compiler.analysis import compile_spec
    from archspec.lang.diagnostics import render_text

    compiled = compile_spec(ref, args.overrides if overrides is None else overrides, args.input_shape, count=getattr(args, "count", "conv"),
                            unit=getattr(args, "unit", "macs"), dtype_bytes=getattr(args, "dtype_bytes", 4),
                            max_nodes=getattr(args, "max_nodes", None), sources=args.sources)
    if compiled.warnings:  # e.g. a network no machine could hold: say so before anything tries to build it
        print(render_text(compiled.warnings, args.sources), file=sys.stderr)
    return compiled


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
    c = compile_args(args, args.spec)
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
    """Every spec is compiled, so that the diagnostics of all the bad ones are shown together."""
    from archspec.compiler.report import markdown_table
    from archspec.lang.diagnostics import SpecError

    compiled, bad = [], []
    for ref in args.specs:
        try:
            compiled.append(compile_args(args, ref))
        except SpecError as e:
            bad.append(e)
    if bad:
        raise SpecError(d for e in bad for d in e.diagnostics)
    print(markdown_table(compiled))
    return EXIT_OK


@command
def _register_summary(sub: Any) -> None:
    p = sub.add_parser("summary", help="the lowered module as a tree with output shapes, params and MACs "
                       "(numbers from the compiler, like torchinfo)")
    add_spec_args(p)
    add_count_args(p)
    p.add_argument("--depth", type=flags.POSITIVE, default=3, help="levels of the module tree to show (default 3)")
    p.add_argument("--batch", type=flags.POSITIVE, default=1, help="batch size for shapes and totals (default 1)")
    add_weights_arg(p, "check that these weights load into the module and say where they come from")
    p.set_defaults(run=_cmd_summary)


def _cmd_summary(args: argparse.Namespace) -> int:
    from archspec.compiler.report import module_summary

    c = compile_args(args, args.spec)
    if args.weights:
        from archspec.compiler.lower import lower
        from archspec.runtime.weights import describe, load_into

        print(describe(load_into(_build(c, lower), c, args.weights)))
    print(module_summary(c, args.depth, args.batch))
    return EXIT_OK


@command
def _register_export(sub: Any) -> None:
    p = sub.add_parser("export", help="write the lowered module as ONNX, TorchScript or a torch.export program")
    add_spec_args(p)
    p.add_argument("--onnx", metavar="FILE", type=flags.output_file,
                   help="write an ONNX model (checked with onnx.checker)")
    p.add_argument("--torchscript", metavar="FILE", type=flags.output_file,
                   help="write a TorchScript module (torch.jit.script)")
    p.add_argument("--program", metavar="FILE", type=flags.output_file, help="write a torch.export program (.pt2)")
    add_weights_arg(p, "load these weights first")
    p.add_argument("--batch", type=flags.POSITIVE, default=1,
                   help="example batch size (the batch axis stays dynamic)")
    p.add_argument("--opset", type=flags.integer(7, 25), default=18, help="ONNX opset (default 18)")
    p.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo",
                   help="ONNX exporter: torch.export-based (default) or the legacy TorchScript one")
    p.add_argument("--check", action="store_true",
                   help="run the ONNX file with onnxruntime and compare with PyTorch (needs onnxruntime); fails "
                   "(exit 1) when the largest difference is above the tolerance")
    p.add_argument("--tolerance", type=flags.POSITIVE_REAL, default=None, metavar="T",
                   help="for --check: the largest |onnxruntime - PyTorch| allowed, relative to the output scale "
                   "(the largest |PyTorch output|, at least 1); default 1e-4")
    p.add_argument("--with-preprocessing", action="store_true",
                   help="the export takes raw RGB pixels (0..255, float32, NCHW, the recorded centre crop) and "
                   "normalises them itself, as the --weights were trained (a run's checkpoint, published weights); "
                   "without, it takes normalised input and records the preprocessing in its metadata")
    p.set_defaults(run=_cmd_export)


def _cmd_export(args: argparse.Namespace) -> int:
    if not (args.onnx or args.torchscript or args.program):
        raise UsageError("say what to write: --onnx FILE, --torchscript FILE and/or --program FILE")
    if args.tolerance is not None and not (args.check and args.onnx):
        raise UsageError("--tolerance is the limit of --check: give it with --onnx FILE --check")
    outputs = [Path(p) for p in (args.onnx, args.torchscript, args.program) if p]
    resolved = [p.resolve() for p in outputs]
    if len(set(resolved)) < len(resolved):
        raise UsageError("give each format its own file: the same path is named twice")
    if args.weights and Path(args.weights).resolve() in resolved:
        raise UsageError(f"{args.weights} is the --weights file: writing the export there would destroy it; "
                         "name another file")
    c = compile_args(args, args.spec)
    _refuse_writing_over_the_spec(c, [(p, flag) for p, flag in ((args.onnx, "--onnx"),
                                                              (args.torchscript, "--torchscript"),
                                                              (args.program, "--program")) if p])
    from archspec.compiler.export import ExportRequest, export_all
    from archspec.compiler.lower import lower

    from archspec.runtime.export_inputs import for_export

    model = _build(c, lower)
    weights = None
    if args.weights:
        from archspec.runtime.weights import describe, load_into

        weights = load_into(model, c, args.weights, fresh_head=False)
        print(describe(weights))
    model, metadata, inputs = for_export(model, c, args.weights, weights, args.with_preprocessing)
    if inputs:
        print(inputs)
    request = ExportRequest(onnx=args.onnx, torchscript=args.torchscript, program=args.program, opset=args.opset,
                            exporter=args.exporter, batch=args.batch, check=args.check,
                            tolerance=args.tolerance, raw_pixels=args.with_preprocessing, metadata=metadata)
    for line in export_all(c, request, model):
        print(line)
    return EXIT_OK


def _refuse_writing_over_the_spec(c: Compiled, outputs: list[tuple[str, str]]) -> None:
    """An output is never a file the spec was read from (the spec, what it extends, a library it imports)."""
    inputs = {}
    for name in c.spec.files:
        try:
            inputs[Path(name).resolve()] = name
        except (OSError, ValueError):
            continue
    for path, flag in outputs:
        try:
            target = Path(path).resolve()
        except (OSError, ValueError):
            continue
        if target in inputs:
            raise UsageError(f"{flag} {path} is {inputs[target]}, a file the spec is read from: writing there would "
                             "destroy it; name another file")


def _build(c: Compiled, lower: Any) -> Any:
    """The lowered module; a model whose weights do not fit in memory is the user's to fix (exit 2)."""
    try:
        return lower(c)
    except Exception as e:  # noqa: BLE001 - torch's allocators raise RuntimeError
        if not out_of_memory(e):
            raise
        size = human_bytes(4 * c.params)
        raise UsageError(f"the model does not fit in memory: it has {c.params:,} parameters ({size} as float32), "
                         f"and allocating {allocation_problem(e)} failed; make it smaller (check the `out:` "
                         "widths and `repeat` counts; `archspec compile SPEC --layers` shows where the parameters "
                         "are)") from None


@command
def _register_render(sub: Any) -> None:
    p = sub.add_parser("render", help="draw the architecture with Graphviz (.svg, .png, .pdf or .dot)")
    add_spec_args(p)
    add_count_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", type=flags.output_file,
                   help="the file to write; its extension "
                   "picks the format (.svg, .png, .pdf, .dot)")
    p.add_argument("--level", choices=["stage", "block", "layer"], default="block",
                   help="stage: the Table 1 view; block: residual blocks as clusters (default); layer: every op")
    p.add_argument("--direction", choices=["TB", "LR"], default="TB", help="top to bottom (default) or left to right")
    p.add_argument("--no-fold", dest="fold", action="store_false", help="draw BN and ReLU as boxes of their own")
    p.add_argument("--annotate", default="", metavar="macs,params", help="add MACs and/or params to each box")
    p.add_argument("--collapse", type=flags.NON_NEGATIVE, default=2, metavar="N",
                   help="draw runs of N or more identical blocks as one box (default 2; 0 never)")
    p.add_argument("--no-legend", dest="legend", action="store_false")
    p.add_argument("--no-title", dest="title", action="store_false")
    p.add_argument("--max-boxes", type=flags.POSITIVE, default=None, help="size budget for drawn formats (default 1,000)")
    p.set_defaults(run=_cmd_render)


def _cmd_render(args: argparse.Namespace) -> int:
    annotate = [a.strip() for a in args.annotate.split(",") if a.strip()]
    bad = [a for a in annotate if a not in ("macs", "params")]
    if bad:
        raise UsageError(f"--annotate takes macs and/or params, not {bad[0]!r}")
    c = compile_args(args, args.spec)
    _refuse_writing_over_the_spec(c, [(args.output, "-o")])
    from archspec.compiler.render import MAX_BOXES, picture, to_graphviz, write

    pic = picture(c, args.level, args.fold, args.collapse or 10**9)
    dg = to_graphviz(c, pic, level=args.level, direction=args.direction, annotate=annotate, legend=args.legend,
                     title=args.title)
    print(write(dg, args.output, len(pic.boxes), level=args.level, max_boxes=args.max_boxes or MAX_BOXES))
    return EXIT_OK
