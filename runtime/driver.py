"""The training and evaluation drivers: from what the user asked (a `TrainRequest`, an `EvalRequest`) to a run.

The command line only parses arguments; this module decides what a request means for the run folder
(`runtime.rundir.RunDir`) and carries it out:

- a new run: the folder must be new, empty, or hold a run that ended before its first checkpoint (which is
  replaced, saying so). A folder holding a resumable or finished run, or files of someone else's, is refused.
- `--resume`: everything comes from the folder (spec.yaml, recipe.json, seed, data location, options). What the
  command line says as well must agree with it: a spec that builds another network, a `--set`, `--input`,
  recipe option or `--seed` that would change the run is refused naming the option and the values. Options of
  how to run (`--device`, `--bf16`, `--compile`, ...) and the data location may change; the log says so.

Exit codes: 0 done (or nothing left to do), 3 diverged, 130 interrupted; refusals are `RunError` (exit 2).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from archspec.lang.errors import UserError
from archspec.runtime.rundir import RunDir, RunDirError, find_run

EXIT_OK, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 3, 130

# options of how to run: they may differ when a run is resumed (the run's own are the default)
RUN_OPTIONS = ("bf16", "channels_last", "compile", "checkpoint_activations", "sync_bn")
# recipe options and the recipe field each one sets
OPTION_FIELDS = {"iters": "schedule.length", "epochs": "schedule.length", "batch_size": "batch_size",
                 "lr": "optimizer.lr", "momentum": "optimizer.momentum", "weight_decay": "optimizer.weight_decay",
                 "milestones": "schedule.milestones", "no_warmup": "schedule.warmup",
                 "eval_interval": "eval.interval", "log_interval": "log_interval", "train_size": "dataset.train_size",
                 "val_size": "dataset.val_size", "views": "eval.views", "dataset": "dataset.name"}


class RunError(UserError):
    """A request that cannot be carried out as asked; one line naming what and the fix (exit code 2)."""


@dataclass
class TrainRequest:
    spec: str | None = None                 # a file or a shipped name; None with --resume: the folder's
    overrides: list[str] = field(default_factory=list)      # --set
    input_shape: str | None = None          # --input
    recipe_options: dict[str, Any] = field(default_factory=dict)  # the named recipe options given (--iters, ...)
    recipe_overrides: list[str] = field(default_factory=list)     # --recipe field=value
    out: Path | None = None
    resume: bool = False
    seed: int | None = None
    data_dir: Path | None = None
    download: bool = False
    workers: int = 4
    device: str | None = None
    run_options: dict[str, bool | None] = field(default_factory=dict)  # RUN_OPTIONS; None: not given
    checkpoint_interval: int | None = None
    checkpoint_minutes: float = 10.0
    quiet: bool = False
    command: str = ""


@dataclass
class _Plan:
    spec: Any
    compiled: Any                # the spec's compiled graph (compiled once, here)
    spec_text: str
    recipe: Any
    seed: int
    resume: bool                 # load last.pt
    state: str                   # the folder's state before this run
    data_dir: Path | None
    options: dict[str, bool]
    info: dict[str, Any]         # run.json of the run being resumed ({} for a new run)
    notes: list[str]


# -- small pieces ---------------------------------------------------------------------------------------------

def pick_device(name: str | None) -> Any:
    import torch

    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RunError(f"unknown device {name!r}: use cpu or cuda") from None
    if device.type not in ("cpu", "cuda"):
        raise RunError(f"device {name!r} is not supported: use cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RunError("CUDA is not available on this machine: use --device cpu")
    return device


def plain(value: Any) -> Any:
    """LocDict/LocList trees as plain dicts and lists (for YAML and JSON)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
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


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def _first_difference(a: Any, b: Any, path: str) -> str | None:
    """`path.to.field: A in the run, B given` for the first difference of two JSON-like values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else k)
            if d:
                return d
        return None
    return None if a == b else f"{path}: {_show(a)} in the run, {_show(b)} given"


def _show(value: Any) -> str:
    return "none" if value is None else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _field(data: dict[str, Any], path: str) -> Any:
    node: Any = data
    for k in path.split("."):
        node = node.get(k) if isinstance(node, dict) else None
    return node


def _flag(name: str, value: Any) -> str:
    flag = "--" + name.replace("_", "-")
    if value is True:
        return flag
    return f"{flag} {','.join(map(str, value)) if isinstance(value, list) else value}"


def data_config(recipe: Any, input_shape: tuple[int, ...], data_dir: Path | None, device: Any, seed: int,
                outputs: int, workers: int = 4, download: bool = False) -> Any:
    """The data source's configuration. The model's output count is the number of classes: a folder with
    fewer classes fits it (labels index the outputs), one with more does not."""
    from archspec.runtime.data import DataConfig

    ds = recipe.dataset
    crop = next((a.get("size") for a in recipe.augment if a.get("op") == "random_crop"), None)
    return DataConfig(
        name=ds.get("name", "cifar10"), root=data_dir, batch_size=recipe.batch_size, seed=seed,
        device=device, train_size=ds.get("train_size"), val_size=ds.get("val_size"),
        normalize=ds.get("normalize", "per_pixel_mean"), augment=recipe.augment,
        image_size=recipe.eval.get("crop") or crop or input_shape[-1], classes=outputs,
        eval_views=int(recipe.eval.get("views", 1)), eval_resize=int(recipe.eval.get("resize") or 256),
        workers=workers, download=download)


def check_fit(name: str, input_shape: tuple[int, ...], outputs: int, data: Any) -> None:
    if tuple(data.input_shape) != tuple(input_shape):
        shape = "x".join(map(str, data.input_shape))
        raise RunError(f"the data gives {shape} images but {name} takes {'x'.join(map(str, input_shape))}: "
                       f"add --input {shape}")
    if outputs != data.num_classes:
        raise RunError(f"{name} has {outputs} outputs but the dataset has {data.num_classes} classes: "
                       f"add --set num_classes={data.num_classes} (or the spec's equivalent)")


def _make_data(config: Any) -> Any:
    from archspec.runtime.data import DataError, make_data

    try:
        return make_data(config)
    except DataError as e:
        raise RunError(str(e)) from None


def _resolve_recipe(base: dict[str, Any] | None, options: dict[str, Any], generic: list[str]) -> Any:
    from archspec.runtime.recipe import RecipeError, resolve

    try:
        return resolve(base, options, generic)
    except RecipeError as e:
        raise RunError(str(e)) from None


class RunLog:
    """log.txt with times, echoed to the terminal unless quiet; `note` writes the file only."""

    def __init__(self, path: Path | None, echo: bool, stream: TextIO | None = None):
        self.file = path.open("a", encoding="utf-8") if path is not None else None
        self.echo = echo
        self.stream = stream or sys.stderr

    def note(self, text: str) -> None:
        if self.file is not None:
            self.file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {text}\n")
            self.file.flush()

    def __call__(self, text: str) -> None:
        self.note(text)
        if self.echo:
            self.stream.write(("\r\x1b[K" if self.stream.isatty() else "") + text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


# -- planning: what the request means for the folder ---------------------------------------------------------

def _load(ref: Any, overrides: list[str], input_shape: str | None, sources: Any) -> tuple[Any, Any]:
    """A spec and its compiled graph (SpecError with every problem otherwise)."""
    from archspec.compiler.analysis import analyse
    from archspec.lang.spec import load_spec

    spec = load_spec(ref, overrides, input_shape, sources)
    return spec, analyse(spec)


def _plan_new(req: TrainRequest, run: RunDir, state: str, sources: Any) -> _Plan:
    where = run.path
    if state == "foreign":
        names = run.foreign_files()
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        raise RunError(f"{where} holds files that no archspec run wrote ({shown}); nothing was changed: choose "
                       "a new or empty folder with --out")
    if state == "resumable":
        raise RunError(f"{where} holds a run ({run.describe()}): continue it with `archspec train --resume --out "
                       f"{where}`, or choose another folder with --out")
    if state == "finished":
        raise RunError(f"{where} holds a finished run ({run.describe()}): choose another folder with --out")
    if state == "missing_checkpoint":
        raise RunError(_missing_checkpoint(run))
    if req.spec is None:
        raise RunError("say what to train: a spec file or a shipped spec's name (`archspec list`), or "
                       "--resume --out RUN to continue a run")
    spec, compiled = _load(req.spec, req.overrides, req.input_shape, sources)
    recipe = _resolve_recipe(spec.recipe, req.recipe_options, req.recipe_overrides)
    notes = []
    if state == "failed_start":
        info = run._marker() or {}
        notes.append(f"replacing the run in {where} that ended before its first checkpoint (started "
                     f"{info.get('started', '?')}: {info.get('command', '?')})")
    options = {k: bool(req.run_options.get(k)) for k in RUN_OPTIONS}
    return _Plan(spec, compiled, resolved_spec_yaml(spec, recipe.data), recipe, req.seed or 0, False, state,
                 req.data_dir, options, {}, notes)


def _plan_resume(req: TrainRequest, run: RunDir, state: str, sources: Any) -> _Plan:
    from archspec.runtime.recipe import Recipe

    where = run.path
    if state == "new":
        raise RunError(f"cannot resume {where}: there is no run there (start one without --resume)")
    if state == "foreign":
        raise RunError(f"cannot resume {where}: it holds no archspec run (no run.json of one)")
    if state == "missing_checkpoint":
        raise RunError(_missing_checkpoint(run))
    info = run.info()
    if info.get("status") == "diverged" and state == "resumable":
        raise RunError(f"{where} diverged ({info.get('message', 'the loss became NaN')}); resuming would repeat the "
                       "same steps: start a new run with a lower learning rate (--lr) or a warm-up in another "
                       "folder (--out)")
    spec_text = run.read_text("spec.yaml")
    if info.get("spec", {}).get("sha256") not in (None, _sha256(spec_text)):
        raise RunDirError(f"{where / 'spec.yaml'} was changed after the run started (its SHA-256 differs from "
                          "run.json's): restore it, or start a new run from it in another folder")
    try:
        recipe_data = json.loads(run.read_text("recipe.json"))
        seed = int(info["seed"])
    except (ValueError, KeyError, TypeError):
        raise RunDirError(f"cannot resume {where}: recipe.json or run.json is damaged") from None
    spec, compiled = _load(where / "spec.yaml", [], None, sources)
    _refuse_contradictions(req, run, info, spec, compiled, recipe_data, seed, sources)
    recipe = Recipe(recipe_data, [])
    notes = []
    if state == "failed_start":
        notes.append(f"{where} has no checkpoint yet (the run ended before its first one): starting it from the "
                     "beginning with its own spec and recipe")
    stored = info.get("options", {})
    options = {}
    for k in RUN_OPTIONS:
        given = req.run_options.get(k)
        options[k] = bool(stored.get(k, False)) if given is None else bool(given)
        if given is not None and bool(given) != bool(stored.get(k, False)):
            notes.append(f"{_flag(k, True)} is {'on' if given else 'off'} from here on (the run started with it "
                         f"{'on' if stored.get(k) else 'off'})")
    data_dir = req.data_dir
    if data_dir is None and info.get("data_dir"):
        data_dir = Path(info["data_dir"])
    elif data_dir is not None and info.get("data_dir") and Path(data_dir).expanduser().resolve() != \
            Path(info["data_dir"]):
        notes.append(f"data from {data_dir} (the run started with {info['data_dir']})")
    return _Plan(spec, compiled, spec_text, recipe, seed, state != "failed_start", state, data_dir, options, info, notes)


def _missing_checkpoint(run: RunDir) -> str:
    at = (run._marker() or {}).get("checkpoint_iteration")
    return (f"{run.path}/run.json records a checkpoint at iteration {at:,} but {run.last} is missing: restore it "
            "(nothing was changed), or start a new run in another folder (--out)")


def _refuse_contradictions(req: TrainRequest, run: RunDir, info: dict[str, Any], spec: Any, compiled: Any,
                           recipe: dict[str, Any], seed: int, sources: Any) -> None:
    """A resumed run keeps its spec, recipe and seed: refuse what on the command line says otherwise."""
    where = run.path
    keep = (f"a resumed run keeps the spec, recipe and seed it started with ({where}/spec.yaml, recipe.json): "
            "drop it, or start a new run in another folder")
    if req.seed is not None and req.seed != seed:
        raise RunError(f"--seed {req.seed} changes the run (it started with --seed {seed}); {keep}")
    if req.spec is not None or req.overrides or req.input_shape:
        ref = req.spec if req.spec is not None else where / "spec.yaml"
        given, given_compiled = _load(ref, req.overrides, req.input_shape, sources)
        named = [f"--set {o}" for o in req.overrides] + ([f"--input {req.input_shape}"] if req.input_shape else [])
        what = " ".join(([f"the spec {req.spec}"] if req.spec is not None else []) + named)
        what = what if req.spec is not None or not named else "the run's spec with " + what
        from archspec.runtime.checkpoint import first_difference, graph_lines

        ours, theirs = graph_lines(compiled), graph_lines(given_compiled)
        diff = first_difference(ours, theirs)
        if diff is not None and diff[0] and diff[1]:
            raise RunError(f"{what} builds another network than the run's: `{diff[1]}` where the run has "
                           f"`{diff[0]}`; {keep}")
        if diff is not None:
            raise RunError(f"{what} builds another network than the run's ({len(theirs)} ops, the run has "
                           f"{len(ours)}); {keep}")
        if req.spec is not None:
            own = json.loads(json.dumps(plain(given.recipe or {})))
            started = info.get("spec_recipe")
            if own != started and _resolve_recipe(own, {}, []).data != recipe:
                diff = _first_difference(started or {}, own, "recipe")
                raise RunError(f"the recipe in {req.spec} differs from the run's ({diff}); {keep}")
    if not (req.recipe_options or req.recipe_overrides):
        return
    changed = _resolve_recipe(recipe, req.recipe_options, req.recipe_overrides).data
    if changed == recipe:  # the same options as at the start (e.g. the very same command again)
        return
    given = [(_flag(k, v), OPTION_FIELDS.get(k, "")) for k, v in req.recipe_options.items()]
    given += [(f"--recipe {item}", item.split("=", 1)[0].strip()) for item in req.recipe_overrides]
    for flag, path in given:
        before, after = _field(recipe, path), _field(changed, path)
        if before != after:
            raise RunError(f"{flag} changes the run ({path}: {_show(before)} in the run, {_show(after)} given); "
                           f"{keep}")
    raise RunError(f"the options given change the run ({_first_difference(recipe, changed, '')}); {keep}")


# -- carrying it out ------------------------------------------------------------------------------------------

def train_run(req: TrainRequest, sources: Any) -> int:
    """Carry out `archspec train`; SpecError (a bad spec), RunError and RunDirError (exit 2) propagate."""
    import gc

    from archspec.runtime.distributed import from_environment

    gc.enable()  # training runs for long: give the cyclic collector back (the CLI pauses it)
    dist, device = from_environment(pick_device(req.device))  # under torchrun: join the group before any file
    out = req.out
    if out is None:
        if req.spec is None:
            raise RunError("give the run folder to resume: --out RUN")
        ref = str(req.spec)
        out = Path("runs") / (Path(ref).stem if ref.endswith((".yaml", ".yml")) else Path(ref).name)
    run = RunDir(out)
    try:
        if dist.is_main:
            run.acquire()  # one process per folder; stale temporaries go
        dist.barrier()
        state = run.state()
        plan = _plan_resume(req, run, state, sources) if req.resume else _plan_new(req, run, state, sources)
        if req.resume and state == "finished":
            print(f"{out} holds a finished run ({run.describe()}): nothing left to do", file=sys.stderr)
            return EXIT_OK
        return _execute(req, plan, run, dist, device)
    finally:
        run.release()
        dist.close()


def _execute(req: TrainRequest, plan: _Plan, run: RunDir, dist: Any, device: Any) -> int:
    import torch

    from archspec.compiler.lower import lower
    from archspec.runtime import checkpoint
    from archspec.runtime.checkpoint import CheckpointError
    from archspec.runtime.data import DataError
    from archspec.runtime.train import Diverged, Interrupted, TrainOptions, train

    spec, recipe, opts = plan.spec, plan.recipe, plan.options
    if opts["sync_bn"] and not (dist.active and device.type == "cuda"):
        raise RunError("--sync-bn needs several processes on CUDA (torchrun --nproc_per_node=N ... --device cuda)")
    compiled = plan.compiled
    torch.manual_seed(plan.seed)  # the model's initial weights come from the run's seed (alike in every process)
    model = lower(compiled)
    if opts["checkpoint_activations"]:
        from archspec.runtime.stages import checkpoint_stages

        model = checkpoint_stages(model)
    if opts["sync_bn"]:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    main = dist.is_main
    config = data_config(recipe, spec.input_shape, plan.data_dir, device, plan.seed, compiled.output_shape[0],
                         req.workers, req.download)
    config.shard = (dist.rank, dist.world)
    config.channels_last = opts["channels_last"]
    if req.download and dist.active:  # one process fetches the data, the others wait and read it
        data = _make_data(config) if main else None
        dist.barrier()
        if not main:
            config.download = False
            data = _make_data(config)
    else:
        data = _make_data(config)
    check_fit(spec.name, spec.input_shape, compiled.output_shape[0], data)
    arch = checkpoint.architecture(compiled, model, plan.spec_text)
    total = recipe.total_iters(data.iters_per_epoch)
    resume_state = None
    if plan.resume:  # read and verified before anything is printed or written: a bad last.pt is one line
        try:
            resume_state = checkpoint.training_state(run.last, arch)
        except CheckpointError as e:
            raise RunError(str(e)) from None
    dist.barrier()  # every process has read the folder before rank 0 changes it
    if main:  # everything is checked: now the folder changes
        if not plan.resume:
            run.clear()
            run.begin(_run_info(req, plan, arch, device, data, total, dist), plan.spec_text, recipe.to_json() + "\n")
        else:
            run.update_info(status="running", resumed=plan.info.get("resumed", 0) + 1)
    dist.barrier()
    log = RunLog(run.log_file if main else None, echo=main and not req.quiet)
    try:
        for note in plan.notes:
            log(note)
        log(f"{spec.name}: {compiled.params:,} params, {total:,} iterations of {recipe.batch_size} "
            f"({total / data.iters_per_epoch:.1f} epochs) on {device}; run folder {run.path}")
        if dist.active:
            log(f"distributed: {dist.world} processes ({torch.distributed.get_backend()}), global batch "
                f"{recipe.batch_size} = {dist.world} x {recipe.batch_size // dist.world}"
                + (", SyncBatchNorm" if opts["sync_bn"] else ", batch norm per process"))
        log(f"data: {data.describe()}")
        for note in recipe.notes:
            log(f"recipe: {note}")
        options = TrainOptions(run_dir=run.path, device=device, resume=plan.resume,
                               checkpoint_interval=req.checkpoint_interval, checkpoint_minutes=req.checkpoint_minutes,
                               progress=not req.quiet, channels_last=opts["channels_last"], bf16=opts["bf16"],
                               compile=opts["compile"], dist=dist, arch=arch,
                               checkpoint_activations=opts["checkpoint_activations"], resume_state=resume_state,
                               on_checkpoint=(lambda at: run.update_info(checkpoint_iteration=at)) if main else None)
        try:
            summary = train(model, recipe, data, options, log)
        except (CheckpointError, DataError) as e:
            _ended(run, main, log, "failed", str(e))
            raise RunError(str(e)) from None
        except Diverged as e:
            _ended(run, main, log, "diverged", str(e))
            if main:
                print(f"archspec: training diverged: {e}", file=sys.stderr)
            return EXIT_DIVERGED
        except Interrupted as e:
            _ended(run, main, log, "interrupted", str(e))
            if main:
                print(f"archspec: {e}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except KeyboardInterrupt:  # a second Ctrl-C: stopped in the middle of a step, nothing saved
            _ended(run, main, log, "interrupted", "stopped at once by a second Ctrl-C; the last checkpoint stays")
            raise
        except BaseException as e:
            _ended(run, main, log, "failed", f"{type(e).__name__}: {e}")
            raise
        if not main:
            return EXIT_OK
        kind = "max allocated on the GPU" if device.type == "cuda" else "process resident set"
        log(f"peak memory {summary['peak_mem_mb']:,.0f} MiB ({kind})")
        run.update_info(status="finished", final=summary, checkpoint_iteration=total,
                        finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        test = summary.get("final_test") or summary.get("final_val")
        line = f"{spec.name}: {summary['iterations']:,} iterations"
        if test:
            line = (f"{spec.name}: {test['kind']} error {test['err']:.2f}% after {summary['iterations']:,} iterations "
                    f"({summary.get('images_per_s', 0):,.0f} images/s, peak memory {summary['peak_mem_mb']:,.0f} MiB)")
        log.note(line + f"; run folder {run.path}")
        print(f"{line}; run folder {run.path}")
        return EXIT_OK
    finally:
        log.close()


def _ended(run: RunDir, main: bool, log: RunLog, status: str, message: str) -> None:
    """Record how the run ended in run.json and log.txt (the terminal gets the message once, from the caller)."""
    if not main:
        return
    log.note(f"{status}: {message}")
    try:
        run.update_info(status=status, message=message)
    except OSError:
        pass  # the disk that failed the run may refuse this too; the run folder stays as it was


def _run_info(req: TrainRequest, plan: _Plan, arch: dict[str, Any], device: Any, data: Any, total: int,
              dist: Any) -> dict[str, Any]:
    import torch

    from archspec.lang import VERSION as __version__

    spec = plan.spec
    return {"spec": {"name": spec.name, "source": spec.display, "sha256": _sha256(plan.spec_text),
                     "graph_sha256": arch["graph_sha256"]},
            "spec_recipe": json.loads(json.dumps(plain(spec.recipe or {}))),
            "seed": plan.seed, "device": str(device), "command": req.command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "archspec": __version__, "torch": torch.__version__,
            "python": platform.python_version(), "data": data.describe(),
            "data_dir": str(Path(plan.data_dir).expanduser().resolve()) if plan.data_dir is not None else None,
            "iterations": total, "iters_per_epoch": data.iters_per_epoch, "processes": dist.world,
            "options": plan.options}


# -- evaluation -----------------------------------------------------------------------------------------------

@dataclass
class EvalRequest:
    checkpoint: Path
    spec: str | None = None
    overrides: list[str] = field(default_factory=list)
    input_shape: str | None = None
    split: str | None = None
    views: int | None = None
    batch_size: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    dataset: str | None = None
    data_dir: Path | None = None
    download: bool = False
    workers: int = 4
    device: str | None = None


def evaluate_checkpoint(req: EvalRequest, sources: Any) -> dict[str, Any]:
    """`archspec eval`: a checkpoint's error on a split. In a run folder, the spec, the recipe (so the same
    validation images) and the data location come from the folder unless given."""
    import torch

    from archspec.compiler.export import BadFile, load_weights
    from archspec.compiler.lower import lower
    from archspec.runtime import checkpoint
    from archspec.runtime.evaluate import evaluate

    device = pick_device(req.device)
    run = find_run(req.checkpoint)
    if req.spec is None and run is None:
        raise RunError(f"{req.checkpoint} is not in a run folder: give the spec it was trained with "
                       f"(`archspec eval SPEC --checkpoint {req.checkpoint}`)")
    spec, compiled = _load(req.spec if req.spec is not None else run / "spec.yaml",
                           req.overrides, req.input_shape, sources)
    model = lower(compiled)
    fix = ("evaluate it with the spec it was trained with"
           + (f" (`archspec eval --checkpoint {req.checkpoint}` takes {run / 'spec.yaml'})" if run else ""))
    try:
        state = checkpoint.model_weights(req.checkpoint, checkpoint.architecture(compiled, model), fix)
        load_weights(model, state, req.checkpoint)
    except (checkpoint.CheckpointError, BadFile) as e:
        raise RunError(str(e)) from None
    base = spec.recipe
    info: dict[str, Any] = {}
    if run is not None:
        info = run.info()
        try:
            base = json.loads(run.read_text("recipe.json"))
        except ValueError:
            raise RunError(f"{run / 'recipe.json'} is damaged: give the data options (--train-size, ...)") from None
    recipe = _resolve_recipe(base, {"batch_size": req.batch_size, "views": req.views, "train_size": req.train_size,
                                    "val_size": req.val_size, "dataset": req.dataset}, [])
    data_dir = req.data_dir or (Path(info["data_dir"]) if info.get("data_dir") else None)
    data = _make_data(data_config(recipe, spec.input_shape, data_dir, device, 0, compiled.output_shape[0],
                                  req.workers, req.download))
    check_fit(spec.name, spec.input_shape, compiled.output_shape[0], data)
    split = req.split or ("test" if "test" in data.splits else data.splits[0])
    if split not in data.splits:
        raise RunError(f"split {split!r} is not available here: {', '.join(data.splits)}")
    model.to(device)
    views = int(recipe.eval.get("views", 1))
    try:
        result = evaluate(model, data, split, views=views, batch_size=req.batch_size)
    except torch.OutOfMemoryError:  # the user's to fix; any other error is a real error and says what it is
        raise RunError(f"evaluating {spec.name} on {device} ran out of memory at batch size "
                       f"{req.batch_size or recipe.batch_size}: lower --batch-size") from None
    return {"spec": spec.name, "split": split, "views": views, **result}

