"""`archspec train`, `archspec eval` and `archspec plot`: the command-line side of the runtime.

This module resolves the spec and the recipe, prepares the run folder (the resolved spec as a self-contained
`spec.yaml`, `recipe.json`, `run.json`), builds the model and the data source, and hands them to
`archspec.runtime.train`. Exit codes: 0 done, 2 bad input (spec, recipe, data, checkpoint, flag), 3 the run
diverged (NaN/inf loss; the last good checkpoint is kept), 130 interrupted (a checkpoint was saved).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from archspec.commands import add_spec_args, command

EXIT_DIVERGED = 3
EXIT_INTERRUPTED = 130


def _ints(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("recipe overrides (default: the spec's recipe)")
    g.add_argument("--iters", type=int, help="train for N iterations (milestones scale along)")
    g.add_argument("--epochs", type=float, help="train for N epochs (milestones scale along)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--momentum", type=float)
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--milestones", type=_ints, metavar="A,B", help="lr steps, in the schedule's unit")
    g.add_argument("--no-warmup", action="store_true", help="drop the recipe's warm-up")
    g.add_argument("--eval-interval", type=int)
    g.add_argument("--log-interval", type=int)
    g.add_argument("--train-size", type=int, help="CIFAR-10: images to train on (the rest of 50k validate)")
    g.add_argument("--val-size", type=int)
    g.add_argument("--views", type=int, choices=[1, 10], help="evaluation views: 1, or 10-crop")
    g.add_argument("--dataset", choices=["cifar10", "imagenet_folder", "synthetic"])
    g.add_argument("--recipe", dest="recipe_overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="any recipe field, e.g. --recipe optimizer.nesterov=true (repeatable)")


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--data-dir", type=Path, default=None, help="where the dataset is (or goes, with --download)")
    p.add_argument("--download", action="store_true", help="CIFAR-10: fetch it if absent (checksum verified)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers for image folders (default 4)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")


@command
def _register_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a spec with its recipe (resumable, with metrics and checkpoints)")
    add_spec_args(p)
    _add_device_args(p)
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/<spec name>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--checkpoint-interval", type=int, default=None, help="iterations between checkpoints "
                   "(default: every evaluation)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--checkpoint-activations", action="store_true",
                   help="keep only each stage's inputs and recompute the rest in backward (less memory)")
    p.add_argument("--sync-bn", action="store_true",
                   help="under torchrun on CUDA: batch norm over the global batch (SyncBatchNorm)")
    _add_recipe_args(p)
    p.set_defaults(run=_cmd_train)


def _device(name: str | None) -> Any:
    import torch

    from archspec.cli import UsageError

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r}: use cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("CUDA is not available on this machine: use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"device {name!r} is not supported: use cpu or cuda")
    return device


def plain(value: Any) -> Any:
    """LocDict/LocList trees as plain dicts and lists (for YAML and JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def resolved_spec_yaml(spec: Any, recipe: dict[str, Any]) -> str:
    """The spec as one self-contained file: libraries inlined, params and recipe as they were resolved."""
    import yaml

    doc = plain(spec.doc)
    doc["name"] = spec.name
    doc["params"] = plain(spec.params)
    doc["input"] = list(spec.input_shape)
    doc["recipe"] = _without_nulls(recipe)
    doc.pop("constraints", None)  # they held for these params; the values are fixed now
    head = f"# Resolved from {spec.display} by archspec (libraries inlined, params and recipe fixed).\n"
    return head + yaml.safe_dump(doc, sort_keys=False, width=110)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    keys = ["iters", "epochs", "batch_size", "lr", "momentum", "weight_decay", "milestones", "no_warmup",
            "eval_interval", "log_interval", "train_size", "val_size", "views", "dataset"]
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) not in (None, False)}


def _cmd_train(args: argparse.Namespace) -> int:
    from archspec.cli import EXIT_INVALID, print_diagnostics
    from archspec.diagnostics import Sources, SpecError
    from archspec.runtime.distributed import from_environment

    gc_enable()
    dist, device = from_environment(_device(args.device))  # under torchrun: join the group before any file
    try:
        out = args.out or Path("runs") / _safe_name(args.spec)
        sources = Sources()
        try:
            if args.resume:
                spec, recipe, seed = _resume_inputs(args, out, sources)
            else:
                spec, recipe, seed = _fresh_inputs(args, out, sources)
        except SpecError as e:
            if dist.is_main:
                print_diagnostics(e.diagnostics, sources)
            return EXIT_INVALID
        dist.barrier()  # every process has looked at --out before rank 0 writes into it
        return _run(args, spec, recipe, seed, out, dist, device)
    finally:
        dist.close()


def _safe_name(ref: str) -> str:
    return Path(ref).stem if ref.endswith((".yaml", ".yml")) else Path(ref).name


def _fresh_inputs(args: argparse.Namespace, out: Path, sources: Any) -> tuple[Any, Any, int]:
    from archspec.cli import UsageError
    from archspec.runtime.recipe import RecipeError, resolve
    from archspec.spec import load_spec

    if (out / "last.pt").exists() or (out / "metrics.jsonl").exists():
        raise UsageError(f"{out} already holds a run: continue it with --resume, or name another folder with --out")
    spec = load_spec(args.spec, args.overrides, args.input_shape, sources)
    try:
        recipe = resolve(spec.recipe, _recipe_options(args), args.recipe_overrides)
    except RecipeError as e:
        raise UsageError(str(e)) from None
    return spec, recipe, args.seed


def _resume_inputs(args: argparse.Namespace, out: Path, sources: Any) -> tuple[Any, Any, int]:
    from archspec.cli import UsageError
    from archspec.runtime.recipe import Recipe
    from archspec.spec import load_spec

    needed = [out / "last.pt", out / "spec.yaml", out / "recipe.json", out / "run.json"]
    missing = [p.name for p in needed if not p.is_file()]
    if missing:
        raise UsageError(f"cannot resume {out}: it has no {missing[0]} (start a new run without --resume)")
    spec = load_spec(out / "spec.yaml", (), None, sources)
    try:
        recipe = Recipe(json.loads((out / "recipe.json").read_text(encoding="utf-8")), [])
        seed = int(json.loads((out / "run.json").read_text(encoding="utf-8"))["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"cannot resume {out}: recipe.json or run.json is damaged") from None
    if args.seed != 0 and args.seed != seed:
        raise UsageError(f"{out} was started with --seed {seed}; a resumed run keeps its seed")
    if _recipe_options(args) or args.recipe_overrides or args.overrides or args.input_shape:
        # the same command again plus --resume is fine; a changed recipe or spec is not
        from archspec.runtime.recipe import RecipeError, resolve

        given = load_spec(args.spec, args.overrides, args.input_shape, sources)
        try:
            wanted = resolve(given.recipe, _recipe_options(args), args.recipe_overrides).data
        except RecipeError as e:
            raise UsageError(str(e)) from None
        changed = _first_difference(recipe.data, json.loads(json.dumps(wanted)))
        if changed is None and (plain(given.params) != plain(spec.params) or given.input_shape != spec.input_shape):
            changed = "the spec's params or input"
        if changed is not None:
            raise UsageError(f"these options change the run ({changed}); a resumed run keeps the spec and recipe "
                             f"it started with (spec.yaml, recipe.json in {out}): drop them or start a new run")
    return spec, recipe, seed


def _first_difference(a: Any, b: Any, path: str = "recipe") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} -> {b!r}"


def data_config(recipe: Any, spec: Any, args: argparse.Namespace, device: Any, seed: int, outputs: int) -> Any:
    """The data source's configuration. The model's output count is the number of classes: a folder with
    fewer classes fits it (labels index the outputs), one with more does not."""
    from archspec.runtime.data import DataConfig

    ds = recipe.dataset
    crop = next((a.get("size") for a in recipe.augment if a.get("op") == "random_crop"), None)
    return DataConfig(
        name=ds.get("name", "cifar10"), root=args.data_dir, batch_size=recipe.batch_size, seed=seed,
        device=device, train_size=ds.get("train_size"), val_size=ds.get("val_size"),
        normalize=ds.get("normalize", "per_pixel_mean"), augment=recipe.augment,
        image_size=recipe.eval.get("crop") or crop or spec.input_shape[-1], classes=outputs,
        eval_views=int(recipe.eval.get("views", 1)), eval_resize=int(recipe.eval.get("resize") or 256),
        workers=args.workers, download=args.download)


def _check_fit(spec: Any, compiled: Any, data: Any) -> None:
    from archspec.cli import UsageError

    if tuple(data.input_shape) != tuple(spec.input_shape):
        shape = "x".join(map(str, data.input_shape))
        raise UsageError(f"the data gives {shape} images but {spec.name} takes "
                         f"{'x'.join(map(str, spec.input_shape))}: add --input {shape}")
    outputs = compiled.output_shape[0]
    if outputs != data.num_classes:
        raise UsageError(f"{spec.name} has {outputs} outputs but the dataset has {data.num_classes} classes: "
                         f"add --set num_classes={data.num_classes} (or the spec's equivalent)")


def _run(args: argparse.Namespace, spec: Any, recipe: Any, seed: int, out: Path, dist: Any, device: Any) -> int:
    import torch

    from archspec.cli import EXIT_OK, UsageError
    from archspec.compiler.analysis import analyse
    from archspec.compiler.lower import lower
    from archspec.runtime.checkpoint import CheckpointError
    from archspec.runtime.data import DataError, make_data
    from archspec.runtime.train import Diverged, Interrupted, TrainOptions, train

    if args.sync_bn and not (dist.active and device.type == "cuda"):
        raise UsageError("--sync-bn needs several processes on CUDA (torchrun --nproc_per_node=N ... --device cuda)")
    torch.manual_seed(seed)  # the model's initial weights come from the run's seed (alike in every process)
    compiled = analyse(spec)
    model = lower(compiled, checkpoint_stages=args.checkpoint_activations)
    if args.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    try:
        config = data_config(recipe, spec, args, device, seed, compiled.output_shape[0])
        config.shard = (dist.rank, dist.world)
        data = make_data(config)
    except DataError as e:
        raise UsageError(str(e)) from None
    _check_fit(spec, compiled, data)
    main = dist.is_main
    if main:
        out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "log.txt").open("a", encoding="utf-8") if main else None

    def log(text: str) -> None:
        if log_file is None:
            return
        log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {text}\n")
        log_file.flush()
        if not args.quiet:
            print(text, file=sys.stderr)

    if main and not args.resume:
        _write(out / "spec.yaml", resolved_spec_yaml(spec, recipe.data))
        _write(out / "recipe.json", recipe.to_json() + "\n")
        info = _run_info(args, spec, seed, device, data, recipe, dist)
        _write(out / "run.json", json.dumps(info, indent=2) + "\n")
    dist.barrier()
    total = recipe.total_iters(data.iters_per_epoch)
    log(f"{spec.name}: {compiled.params:,} params, {total:,} iterations of {recipe.batch_size} "
        f"({total / data.iters_per_epoch:.1f} epochs) on {device}; run folder {out}")
    if dist.active:
        log(f"distributed: {dist.world} processes ({torch.distributed.get_backend()}), global batch "
            f"{recipe.batch_size} = {dist.world} x {recipe.batch_size // dist.world}"
            + (", SyncBatchNorm" if args.sync_bn else ", batch norm per process"))
    log(f"data: {data.describe()}")
    for note in recipe.notes:
        log(f"recipe: {note}")
    options = TrainOptions(run_dir=out, device=device, resume=args.resume,
                           checkpoint_interval=args.checkpoint_interval, progress=not args.quiet,
                           channels_last=args.channels_last, bf16=args.bf16, compile=args.compile, dist=dist)
    try:
        try:
            summary = train(model, recipe, data, options, log)
        except (CheckpointError, DataError) as e:
            raise UsageError(str(e)) from None
        except Diverged as e:
            log(f"diverged: {e}")
            if main:
                print(f"archspec: training diverged: {e}", file=sys.stderr)
            return EXIT_DIVERGED
        except Interrupted as e:
            log(f"interrupted: {e}")
            if main:
                print(f"archspec: {e}", file=sys.stderr)
            return EXIT_INTERRUPTED
        if not main:
            return EXIT_OK
        kind = "max allocated on the GPU" if device.type == "cuda" else "process resident set"
        log(f"peak memory {summary['peak_mem_mb']:,.0f} MiB ({kind})")
    finally:
        if log_file is not None:
            log_file.close()
    info = json.loads((out / "run.json").read_text(encoding="utf-8"))
    info["final"] = summary
    _write(out / "run.json", json.dumps(info, indent=2) + "\n")
    test = summary.get("final_test") or summary.get("final_val")
    if test:
        print(f"{spec.name}: {test['kind']} error {test['err']:.2f}% after {summary['iterations']:,} iterations "
              f"({summary.get('images_per_s', 0):,.0f} images/s, peak memory {summary['peak_mem_mb']:,.0f} MiB); "
              f"run folder {out}")
    return EXIT_OK


def gc_enable() -> None:
    """Training runs for long: give the cyclic collector back (the CLI pauses it for short commands)."""
    import gc

    gc.enable()


def _write(path: Path, text: str) -> None:
    from archspec.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _run_info(args: argparse.Namespace, spec: Any, seed: int, device: Any, data: Any, recipe: Any,
              dist: Any) -> dict:
    import platform

    import torch

    from archspec import __version__

    return {"spec": spec.name, "source": spec.display, "seed": seed, "device": str(device),
            "command": " ".join(["archspec"] + sys.argv[1:]), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "archspec": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "data": data.describe(), "iterations": recipe.total_iters(data.iters_per_epoch),
            "iters_per_epoch": data.iters_per_epoch, "processes": dist.world,
            "options": {"bf16": args.bf16, "channels_last": args.channels_last, "compile": args.compile,
                        "checkpoint_activations": args.checkpoint_activations, "sync_bn": args.sync_bn}}


# -- eval ------------------------------------------------------------------------------------------------------

@command
def _register_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint on a data split (single view or 10-crop)")
    add_spec_args(p)
    _add_device_args(p)
    p.add_argument("--checkpoint", required=True, type=Path, help="a run's last.pt/best.pt, or a state_dict file")
    p.add_argument("--split", default=None, help="val or test (default: test when there is one)")
    p.add_argument("--views", type=int, choices=[1, 10], default=None, help="1, or 10-crop")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--train-size", type=int, help="CIFAR-10: as in training, so that val is the same images")
    p.add_argument("--val-size", type=int)
    p.add_argument("--dataset", choices=["cifar10", "imagenet_folder", "synthetic"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_eval)


def _cmd_eval(args: argparse.Namespace) -> int:
    from archspec.cli import EXIT_INVALID, EXIT_OK, UsageError
    from archspec.commands import compile_or_report
    from archspec.compiler.export import BadFile, load_weights
    from archspec.compiler.lower import lower
    from archspec.runtime.checkpoint import CheckpointError, load
    from archspec.runtime.data import DataError, make_data
    from archspec.runtime.evaluate import evaluate
    from archspec.runtime.recipe import RecipeError, resolve

    device = _device(args.device)
    c = compile_or_report(args, args.spec)
    if c is None:
        return EXIT_INVALID
    model = lower(c)
    try:
        try:
            state = load(args.checkpoint)["model"]
            model.load_state_dict(state)
        except CheckpointError as e:
            if "not an archspec training checkpoint" not in str(e):
                raise
            load_weights(model, args.checkpoint)
        recipe = resolve(c.spec.recipe, {"batch_size": args.batch_size, "views": args.views,
                                         "train_size": args.train_size, "val_size": args.val_size,
                                         "dataset": args.dataset}, [])
        data = make_data(data_config(recipe, c.spec, args, device, 0, c.output_shape[0]))
    except (CheckpointError, BadFile, DataError, RecipeError) as e:
        raise UsageError(str(e)) from None
    except RuntimeError as e:  # load_state_dict of another model
        raise UsageError(f"{args.checkpoint} does not fit {c.name}: {str(e).splitlines()[0][:200]}") from None
    _check_fit(c.spec, c, data)
    split = args.split or ("test" if "test" in data.splits else data.splits[0])
    if split not in data.splits:
        raise UsageError(f"split {split!r} is not available here: {', '.join(data.splits)}")
    model.to(device)
    views = int(recipe.eval.get("views", 1))
    result = evaluate(model, data, split, views=views, batch_size=args.batch_size)
    if args.json:
        print(json.dumps({"spec": c.name, "split": split, "views": views, **result}))
    else:
        print(f"{c.name} on {split} ({result['images']:,} images, {views} view{'s' if views > 1 else ''}): "
              f"error {result['err']:.2f}%, top-5 error {result['top5_err']:.2f}%, loss {result['loss']:.4f}")
    return EXIT_OK


# -- plot ------------------------------------------------------------------------------------------------------

@command
def _register_plot(sub: Any) -> None:
    p = sub.add_parser("plot", help="training curves of one or more runs (like Figure 6 of the paper) as PNG")
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("-o", "--output", default="curves.png", help="image file (.png, .svg or .pdf)")
    p.add_argument("--title", default=None)
    p.add_argument("--ymax", type=float, default=None, help="top of the error axis (%%)")
    p.set_defaults(run=_cmd_plot)


def _cmd_plot(args: argparse.Namespace) -> int:
    from archspec.cli import EXIT_OK, UsageError
    from archspec.runtime.plot import PlotError, plot_runs

    try:
        text = plot_runs(args.runs, args.output, title=args.title, ymax=args.ymax)
    except PlotError as e:
        raise UsageError(str(e)) from None
    except ImportError:
        raise UsageError("archspec plot needs matplotlib: pip install 'archspec[train]'") from None
    print(text)
    return EXIT_OK
