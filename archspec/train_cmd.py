"""`archspec train`, `archspec eval` and `archspec plot`: their arguments. The work is in the runtime
(`archspec.runtime.driver`, `archspec.runtime.rundir`, `archspec.runtime.plot`).

Every value goes through `archspec.flags` (ranges, output paths). Exit codes: 0 done, 3 the run diverged, 130
interrupted (a checkpoint was saved), as the runtime returns them; 2 bad input (spec, recipe, data, checkpoint,
flag, run folder), raised as a `UserError` that `archspec.cli.main` prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archspec import flags
from archspec.cmdbase import EXIT_OK, Commands, UsageError, add_spec_args, add_weights_arg

command = Commands()

def _argparse_of(option: Any) -> dict[str, Any]:
    """argparse settings for a recipe option (`archspec.runtime.options`): its field's type, range or choices, as
    declared (`archspec.lang.recipe_fields`)."""
    spec = option.declared
    if option.drops:
        return {"action": "store_true"}
    if spec.kind == "list":
        return {"type": flags.increasing}
    if spec.kind == "choice":
        return {"type": type(spec.choices[0]), "choices": list(spec.choices)}
    if spec.whole(option.unit):
        return {"type": flags.integer(spec.minimum, spec.maximum)}
    if spec.in_unit:  # a count of epochs
        return {"type": flags.POSITIVE_REAL}
    return {"type": flags.real(spec.minimum, spec.maximum, low_open=spec.low_open, high_open=spec.high_open)}


def _flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _add_recipe_options(p: Any, for_eval: bool = False) -> None:
    """The recipe options (`RECIPE_OPTIONS`) as flags: all of them for train, those marked `eval` for eval."""
    from archspec.runtime.options import RECIPE_OPTIONS

    for o in RECIPE_OPTIONS:
        if for_eval and not o.eval:
            continue
        extra = {"metavar": o.metavar} if o.metavar else {}
        p.add_argument(_flag_name(o.name), default=None, help=o.help or o.declared.doc, **_argparse_of(o), **extra)


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipe overrides (default: the spec's recipe; with --resume: the run's)")
    _add_recipe_options(g)
    g.add_argument("--recipe", dest="recipe_overrides", action="append", default=[], metavar="NAME|FIELD=VALUE",
                   help="a whole recipe in place of the spec's: a shipped one (rsb_a3, tv_v2, cifar10_modern, ...: "
                   "`archspec list --recipes`) or a recipe file; or any recipe field, e.g. "
                   "--recipe optimizer.nesterov=true (repeatable; fields apply after the named recipe)")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """The fields of `RunOptions` as --x/--no-x flags (None: not given; a resumed run keeps its own)."""
    from archspec.runtime.options import RunOptions

    for name in RunOptions.names():
        p.add_argument(_flag_name(name), action=argparse.BooleanOptionalAction, default=None,
                       help=RunOptions.help(name) + " (a resumed run keeps the run's choice unless given)")


def _add_device_args(p: argparse.ArgumentParser, run_options: bool) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="where the dataset is (or goes, with --download); a run folder remembers it")
    p.add_argument("--download", action="store_true", help="CIFAR-10 and CIFAR-100: fetch it if absent (checksum verified)")
    p.add_argument("--workers", type=flags.NON_NEGATIVE, default=4, help="DataLoader workers for image folders "
                   "(default 4)")
    if run_options:
        _add_run_options(p)


@command
def _register_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a spec with its recipe (resumable, with metrics and checkpoints)")
    add_spec_args(p, optional=True)
    _add_device_args(p, run_options=True)
    p.add_argument("--out", type=flags.output_folder, default=None, help="run folder (default runs/<spec name>)")
    p.add_argument("--seed", type=flags.SEED, default=None, help="random seed (default 0; a resumed run keeps its own)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out: its spec, recipe, seed and data come from the folder")
    _add_checkpoint_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    add_weights_arg(p, "fine-tune: start a new run from these weights")
    _add_recipe_args(p)
    p.set_defaults(run=_cmd_train)


def _add_checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint-interval", type=flags.POSITIVE, default=None,
                   help="iterations between checkpoints (default: every evaluation, at least 10 per run; a resumed run "
                   "keeps its own)")
    p.add_argument("--checkpoint-minutes", type=flags.POSITIVE_REAL, default=None,
                   help="also checkpoint when this many minutes passed since the last one (default 10; a resumed "
                   "run keeps its own)")


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of `archspec train` that `archspec sweep` takes and passes to every run (the same definitions):
    device and data, run options, checkpointing, --weights and the recipe options."""
    _add_device_args(p, run_options=True)
    _add_checkpoint_args(p)
    add_weights_arg(p, "fine-tune: start each run from these weights")
    _add_recipe_args(p)


def _cmd_train(args: argparse.Namespace) -> int:
    from archspec.runtime.driver import OPTION_FIELDS, RunOptions, TrainRequest, train_run

    request = TrainRequest(
        spec=args.spec, overrides=args.overrides, input_shape=args.input_shape,
        recipe_options={k: getattr(args, k) for k in OPTION_FIELDS if getattr(args, k) is not None},
        recipe_overrides=args.recipe_overrides, out=args.out, resume=args.resume, seed=args.seed,
        data_dir=args.data_dir, download=args.download, workers=args.workers, device=args.device,
        run_options={k: getattr(args, k) for k in RunOptions.names()}, checkpoint_interval=args.checkpoint_interval,
        checkpoint_minutes=args.checkpoint_minutes, quiet=args.quiet, weights=args.weights,
        command=" ".join(["archspec"] + sys.argv[1:]))
    return train_run(request, args.sources)


# -- eval ------------------------------------------------------------------------------------------------------

@command
def _register_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a data split (single view or 10-crop)")
    add_spec_args(p, optional=True)
    _add_device_args(p, run_options=False)
    p.add_argument("--checkpoint", type=flags.input_path,
                   help="a run folder (its best.pt, else its last.pt) or a run's last.pt/best.pt (spec, recipe and "
                   "data come from the run folder), or a state_dict file (give the spec)")
    add_weights_arg(p, "instead of --checkpoint, evaluate these weights (give the spec)")
    p.add_argument("--split", default=None, help="val or test (default: test when there is one)")
    _add_recipe_options(p, for_eval=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from archspec.runtime.driver import EvalRequest, evaluate_checkpoint

    request = EvalRequest(
        checkpoint=args.checkpoint, weights=args.weights, spec=args.spec, overrides=args.overrides, input_shape=args.input_shape,
        split=args.split, views=args.views, batch_size=args.batch_size, train_size=args.train_size,
        val_size=args.val_size, dataset=args.dataset, data_dir=args.data_dir, download=args.download,
        workers=args.workers, device=args.device)
    result = evaluate_checkpoint(request, args.sources)
    if args.json:
        from archspec.runtime.metrics import strict_tree

        print(json.dumps(strict_tree(result), allow_nan=False))
    else:
        views = result["views"]
        at = ""
        if result["iteration"] is not None:
            epoch = f", epoch {result['epoch']:g}" if result["epoch"] is not None else ""
            at = f" (iteration {result['iteration']:,}{epoch})"
        print(f"{result['spec']}{at} on {result['split']} ({result['images']:,} images, {views} "
              f"view{'s' if views > 1 else ''}): error {result['err']:.2f}%, top-5 error {result['top5_err']:.2f}%, "
              f"loss {result['loss']:.4f}")
    return EXIT_OK


# -- plot ------------------------------------------------------------------------------------------------------

@command
def _register_plot(sub: Any) -> None:
    p = sub.add_parser("plot", help="training curves of one or more runs (like Figure 6 of the paper) as PNG")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR",
                   help="a run folder (one curve each), or a sweep folder or folder of run folders (one curve per "
                   "grid point: the mean over its seeds, with a band from the lowest to the highest)")
    p.add_argument("-o", "--output", default="curves.png", type=flags.output_file,
                   help="image file (.png, .svg or .pdf)")
    p.add_argument("--title", default=None)
    p.add_argument("--ymax", type=flags.POSITIVE_REAL, default=None, help="top of the error axis (%%)")
    p.add_argument("--dpi", type=flags.integer(1, 1200), default=120,
                   help="resolution in dots per inch (default 120: 840x540 pixels); the figure is 7x4.5 inches")
    p.set_defaults(run=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from archspec.runtime.plot import plot_runs

    try:
        text = plot_runs(args.runs, args.output, title=args.title, ymax=args.ymax, dpi=args.dpi).text
    except ImportError:  # the message names the extra to install
        from archspec.lang import install_hint

        raise UsageError(f"archspec plot needs matplotlib: {install_hint('train')}") from None
    print(text)
    return EXIT_OK
