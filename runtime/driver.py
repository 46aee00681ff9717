"""The training and evaluation drivers: from what the user asked (a `TrainRequest`, an `EvalRequest`) to a run.

The command line only parses arguments; `train_run` plans the request against the run folder
(`runtime.plan`: what a new run or `--resume` means there, and what is refused), builds the model and the data,
changes the folder only once everything is checked, and runs the training loop (`runtime.train`), recording how
it ended (`runtime.runinfo`). `evaluate_checkpoint` scores a checkpoint on a split.

Exit codes: 0 done (or nothing left to do), 3 diverged, 130 interrupted; refusals are `RunError` (exit 2).
The request types, `RunError` and the option tables live in `runtime.request` and are importable from here.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.runtime.inputs import check_fit, data_config, open_data, pick_device
from archspec.runtime.plan import (NOTHING_TO_TRAIN, Plan, load_graph, plan_new, plan_resume, resolve_recipe,
                                   sha256, weights_recipe)
from archspec.runtime.options import OPTION_FIELDS, RunOptions
from archspec.runtime.request import (EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_OK, EvalRequest, RunError,
                                      TrainRequest)
from archspec.runtime.rundir import RunDir, find_run, refuse_irregular
from archspec.runtime.runinfo import RunLog, record_end, run_info

if TYPE_CHECKING:  # (types only: no import at run time)
    import torch

    from archspec.compiler.analysis import Compiled
    from archspec.lang.diagnostics import Sources
    from archspec.runtime.data.base import Data
    from archspec.runtime.distributed import Dist
    from archspec.runtime.weights import Weights


__all__ = ["EXIT_DIVERGED", "EXIT_INTERRUPTED", "EXIT_OK", "OPTION_FIELDS", "RunOptions", "EvalRequest", "RunError",
           "TrainRequest", "evaluate_checkpoint", "pick_device", "train_run"]


# -- training -------------------------------------------------------------------------------------------------

def train_run(req: TrainRequest, sources: Sources) -> int:
    """Carry out `archspec train`; SpecError (a bad spec), RunError and RunDirError (exit 2) propagate."""
    import gc

    from archspec.runtime.distributed import from_environment

    out = req.out
    if out is None:
        if req.spec is None and req.resume:
            raise RunError("--resume continues the run in a folder: name it (`archspec train --resume --out RUN`)")
        if req.spec is None:
            raise RunError(NOTHING_TO_TRAIN)
        ref = str(req.spec)
        out = Path("runs") / (Path(ref).stem if ref.endswith((".yaml", ".yml")) else Path(ref).name)
    gc.enable()  # training runs for long: give the cyclic collector back (the CLI pauses it)
    dist, device = from_environment(pick_device(req.device))  # under torchrun: join the group before any file
    run = RunDir(out)
    try:
        if dist.is_main:
            run.acquire()  # one process per folder; stale temporaries go
        dist.barrier()
        state = run.state()
        if req.resume and req.weights:
            raise RunError(f"--weights starts a run; a resumed run continues from its own last.pt: drop --weights "
                           f"(or start a new run in another folder than {out})")
        plan = plan_resume(req, run, state, sources) if req.resume else plan_new(req, run, state, sources)
        if req.resume and state == "finished":
            print(f"{out} holds a finished run ({run.describe()}): nothing left to do", file=sys.stderr)
            return EXIT_OK
        code = _execute(req, plan, run, dist, device)
        # Every process got here by the same collective decisions: leave the group together, so that no process
        # tears its connections down while another still reads from them (gloo then aborts the reader).
        dist.barrier()
        return code
    finally:
        run.release()
        # The DDP wrapper holds the process group too, sometimes through reference cycles: free it now, while the
        # interpreter is whole, so that the group's threads end here and not during interpreter shutdown (where
        # gloo's can abort the process).
        gc.collect()
        dist.close()


def _execute(req: TrainRequest, plan: Plan, run: RunDir, dist: Dist, device: torch.device) -> int:
    """Build the model and the data, check everything, then change the folder and train."""
    from archspec.runtime import checkpoint, preprocess

    if plan.options.tensorboard:
        from archspec.runtime.metrics import require_tensorboard

        require_tensorboard()  # before anything is built or written: a missing package is one line (exit 2)
    model, weights = _build_model(req, plan, dist, device)
    data = _training_data(req, plan, dist, device)
    arch = checkpoint.architecture(plan.compiled, model, plan.spec_text)
    inputs = preprocess.from_data(data)  # what the inputs must be: into every checkpoint and preprocessing.json
    total = plan.recipe.total_iters(data.iters_per_epoch)
    resume_state = _resume_state(plan, run, arch)
    dist.barrier()  # every process has read the folder before rank 0 changes it
    if dist.is_main:  # everything is checked: now the folder changes
        if not plan.resume:
            run.clear()
            info = run_info(req, plan, arch, device, data, total, dist)
            if weights is not None:
                given = Path(req.weights)
                info["weights"] = {"source": str(given.resolve()) if given.exists() else req.weights,
                                   "from": weights.origin, "sha256": weights.sha256,
                                   "notes": weights.notes}
            recipe_text = plan.recipe.to_json() + "\n"
            info["recipe_sha256"] = sha256(recipe_text)  # checked on --resume, as the spec's is
            run.begin(info, plan.spec_text, recipe_text)
        else:
            run.update_info(status="running", resumed=plan.info.get("resumed", 0) + 1, options=plan.options.as_dict(),
                            checkpointing=plan.checkpointing)  # what this run goes on with, for the next --resume
        inputs.write(run / preprocess.FILE)
    dist.barrier()
    log = RunLog(run.log_file if dist.is_main else None, echo=dist.is_main and not req.quiet)
    try:
        _log_start(log, plan, run, data, total, dist, device)
        return _train(req, plan, run, model, data, arch, resume_state, total, dist, device, log, inputs.stored())
    finally:
        log.close()


def _build_model(req: TrainRequest, plan: Plan, dist: Dist, device: torch.device) -> tuple[torch.nn.Module, Weights | None]:
    """The network from the plan's graph, its initial weights from the run's seed (alike in every process) or
    from --weights, and those weights (None without)."""
    import torch

    from archspec.compiler.lower import lower

    if plan.options.sync_bn and not (dist.active and device.type == "cuda"):
        raise RunError("--sync-bn needs several processes on CUDA (torchrun --nproc_per_node=N ... --device cuda)")
    torch.manual_seed(plan.seed)  # the model's initial weights come from the run's seed (alike in every process)
    model = lower(plan.compiled)
    weights = _start_weights(req, plan, model, dist)
    if plan.options.checkpoint_activations:
        from archspec.runtime.stages import checkpoint_stages

        model = checkpoint_stages(model)
    if plan.options.sync_bn:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, weights


def _training_data(req: TrainRequest, plan: Plan, dist: Dist, device: torch.device) -> Data:
    """This process's share of the run's data, checked against the network; with --download under torchrun,
    one process fetches the data while the others wait and then read it."""
    spec, compiled = plan.spec, plan.compiled
    config = data_config(plan.recipe, spec.input_shape, plan.data_dir, device, plan.seed, compiled.output_shape[0],
                         req.workers, req.download)
    config.shard = (dist.rank, dist.world)
    config.channels_last = plan.options.channels_last
    if req.download and dist.active:  # one process fetches the data, the others wait and read it
        data = open_data(config) if dist.is_main else None
        dist.barrier()
        if not dist.is_main:
            config.download = False
            data = open_data(config)
    else:
        data = open_data(config)
    check_fit(spec.name, spec.input_shape, compiled.output_shape[0], data, plan.recipe.batch_size)
    _check_train_size(req, plan, data)
    return data


def _check_train_size(req: TrainRequest, plan: Plan, data: Data) -> None:
    """A recipe that trains at another size than it evaluates (FixRes: 176-pixel crops, evaluated at 224) needs a
    network that takes both: compile the spec at the training size too (RunError naming the size otherwise)."""
    train_shape = tuple(getattr(data, "train_shape", data.input_shape))
    if train_shape == tuple(data.input_shape):
        return
    from archspec.lang.diagnostics import SpecError

    shown, evaluated = "x".join(map(str, train_shape)), "x".join(map(str, data.input_shape))
    fix = "make the training crop the evaluation size, or use a network that pools globally before its head"
    try:
        _, compiled = load_graph(plan.spec.path, [] if plan.resume else list(req.overrides), shown, None)
    except SpecError as e:
        raise RunError(f"the recipe trains on {shown} crops and evaluates at {evaluated}, but {plan.spec.name} "
                       f"does not take {shown} inputs ({e.diagnostics[0].message}): {fix}") from None
    if compiled.params != plan.compiled.params:  # (a head sized by its input: other weights at the other size)
        raise RunError(f"the recipe trains on {shown} crops and evaluates at {evaluated}, but {plan.spec.name} has "
                       f"{compiled.params:,} parameters at {shown} and {plan.compiled.params:,} at {evaluated} (a "
                       f"layer sized by its input, such as a linear layer after a flatten): {fix}")


def _resume_state(plan: Plan, run: RunDir, arch: dict[str, Any]) -> dict[str, Any] | None:
    """last.pt of a resumed run, read and verified before anything is printed or written (a bad one is one line)."""
    from archspec.runtime import checkpoint

    if not plan.resume:
        return None
    try:
        return checkpoint.training_state(run.last, arch)
    except checkpoint.CheckpointError as e:
        raise RunError(str(e)) from None


def _start_weights(req: TrainRequest, plan: Plan, model: torch.nn.Module, dist: Dist) -> Weights | None:
    """Fine-tuning: a new run's model starts from `--weights`; the log's first lines say where they come from and
    what starts afresh. Under torchrun the first process fetches them (a download, into the shared cache) before
    the others read the same file; a classifier that starts afresh does so from the run's seed in every process."""
    if not req.weights or plan.resume:
        return None
    from archspec.runtime.weights import describe, load_into

    if not dist.is_main:
        dist.barrier()  # the first process has the file in the cache now (or has failed, which ends the group)
    weights = load_into(model, plan.compiled, req.weights)
    if dist.is_main:
        dist.barrier()
    plan.notes.append(describe(weights))
    return weights


def _log_start(log: RunLog, plan: Plan, run: RunDir, data: Data, total: int, dist: Dist, device: torch.device) -> None:
    import torch

    spec, recipe = plan.spec, plan.recipe
    for note in plan.notes:
        log(note)
    log(f"{spec.name}: {plan.compiled.params:,} params, {total:,} iterations of {recipe.batch_size} "
        f"({total / data.iters_per_epoch:.1f} epochs) on {device}; run folder {run.path}")
    if dist.active:
        log(f"distributed: {dist.world} processes ({torch.distributed.get_backend()}), global batch "
            f"{recipe.batch_size} = {dist.world} x {recipe.batch_size // dist.world}"
            + (", SyncBatchNorm" if plan.options.sync_bn else ", batch norm per process"))
    log(f"data: {data.describe()}")
    for note in recipe.notes:
        log(f"recipe: {note}")


def _train(req: TrainRequest, plan: Plan, run: RunDir, model: torch.nn.Module, data: Data, arch: dict[str, Any],
           resume_state: dict[str, Any] | None, total: int, dist: Dist, device: torch.device, log: RunLog,
           inputs: dict[str, Any] | None = None) -> int:
    """Run the training loop; record how it ended (run.json, log.txt) and return the exit code."""
    from archspec.runtime.checkpoint import CheckpointError
    from archspec.runtime.data import DataError
    from archspec.runtime.train import Diverged, Interrupted, TrainOptions, train

    main, opts = dist.is_main, plan.options
    options = TrainOptions(run_dir=run.path, device=device, resume=plan.resume,
                           checkpoint_interval=plan.checkpointing["interval"],
                           checkpoint_minutes=plan.checkpointing["minutes"],
                           progress=not req.quiet, channels_last=opts.channels_last, bf16=opts.bf16,
                           compile=opts.compile, dist=dist, arch=arch,
                           checkpoint_activations=opts.checkpoint_activations,
                           tensorboard=opts.tensorboard, preprocessing=inputs, seed=plan.seed,
                           on_checkpoint=(lambda at: run.update_info(checkpoint_iteration=at)) if main else None)
    try:
        summary = train(model, plan.recipe, data, options, log, resume_state=resume_state)
    except (CheckpointError, DataError) as e:
        record_end(run, main, log, "failed", str(e))
        raise RunError(str(e)) from None
    except Diverged as e:
        record_end(run, main, log, "diverged", str(e))
        if main:
            print(f"archspec: training diverged: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except Interrupted as e:
        record_end(run, main, log, "interrupted", str(e))
        if main:
            print(f"archspec: {e}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C: stopped in the middle of a step, nothing saved
        record_end(run, main, log, "interrupted", "stopped at once by a second Ctrl-C; the last checkpoint stays")
        raise
    except BaseException as e:
        record_end(run, main, log, "failed", f"{type(e).__name__}: {e}")
        raise
    if main:
        _finish(plan, run, summary, total, device, log)
    return EXIT_OK


def _finish(plan: Plan, run: RunDir, summary: dict[str, Any], total: int, device: torch.device, log: RunLog) -> None:
    """Record a finished run (run.json) and say how it did (log and terminal)."""
    name = plan.spec.name
    kind = "max allocated on the GPU" if device.type == "cuda" else "process resident set"
    log(f"peak memory {summary['peak_mem_mb']:,.0f} MiB ({kind})")
    run.update_info(status="finished", final=summary, checkpoint_iteration=total,
                    finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
    test = summary.get("final_test") or summary.get("final_val")
    line = f"{name}: {summary['iterations']:,} iterations"
    if test:
        line = (f"{name}: {test['kind']} error {test['err']:.2f}% after {summary['iterations']:,} iterations "
                f"({summary.get('images_per_s', 0):,.0f} images/s, peak memory {summary['peak_mem_mb']:,.0f} MiB)")
    log.note(line + f"; run folder {run.path}")
    print(f"{line}; run folder {run.path}")


# -- evaluation -----------------------------------------------------------------------------------------------

def evaluate_checkpoint(req: EvalRequest, sources: Sources) -> dict[str, Any]:
    """`archspec eval`: a checkpoint's error on a split, with the iteration (and epoch) it was saved at when it
    says. In a run folder, the spec, the recipe (so the same validation images) and the data location come from
    the folder unless given; a run folder itself stands for its best.pt."""
    import torch

    from archspec.runtime.evaluate import evaluate
    from archspec.runtime.weights import refuse_export

    device = pick_device(req.device)
    if (req.checkpoint is None) == (req.weights is None):
        raise RunError("give exactly one of --checkpoint FILE (a run folder, a run's checkpoint or a state_dict) "
                       "and --weights SOURCE (a file, or published weights such as torchvision)")
    if req.checkpoint is not None:
        req.checkpoint = _checkpoint_file(Path(req.checkpoint))
    elif Path(req.weights).is_file():
        refuse_export(Path(req.weights))
    run = find_run(req.checkpoint) if req.checkpoint is not None else None
    if req.spec is None and run is None:
        what = f"--checkpoint {req.checkpoint}" if req.checkpoint is not None else f"--weights {req.weights}"
        raise RunError(f"{req.checkpoint or req.weights} is not in a run folder: give the spec it was trained with "
                       f"(`archspec eval SPEC {what}`)")
    spec, compiled = load_graph(req.spec if req.spec is not None else run / "spec.yaml",
                                req.overrides, req.input_shape, sources)
    model, trained = _trained_model(req, run, compiled)
    recipe, data_dir = _eval_recipe(req, run, spec.recipe, spec.name)
    data = open_data(data_config(recipe, spec.input_shape, data_dir, device, 0, compiled.output_shape[0],
                                 req.workers, req.download))
    check_fit(spec.name, spec.input_shape, compiled.output_shape[0], data)
    split = req.split or ("test" if "test" in data.splits else data.splits[0])
    if split not in data.splits:
        raise RunError(f"split {split!r} is not available here: {', '.join(data.splits)}")
    model.to(device)
    views = recipe.eval.views
    try:
        result = evaluate(model, data, split, views=views, batch_size=req.batch_size)
    except torch.OutOfMemoryError:  # the user's to fix; any other error is a real error and says what it is
        raise RunError(f"evaluating {spec.name} on {device} ran out of memory at batch size "
                       f"{req.batch_size or recipe.batch_size}: lower --batch-size") from None
    iteration = trained.get("iteration")
    per_epoch = (run.marker() or {}).get("iters_per_epoch") if run is not None else None
    epoch = round(iteration / per_epoch, 2) if iteration is not None and isinstance(per_epoch, int) and \
        per_epoch > 0 else None
    return {"spec": spec.name, "split": split, "views": views, **result,
            "checkpoint": str(req.checkpoint if req.checkpoint is not None else req.weights),
            "iteration": iteration, "epoch": epoch}


def _checkpoint_file(given: Path) -> Path:
    """The file `--checkpoint` names: the file itself, or for a run folder its best.pt (else its last.pt), which
    is said on stderr. A network exported to run elsewhere (ONNX, TorchScript, torch.export) is refused, naming
    what to give instead."""
    from archspec.runtime.weights import refuse_export

    if not given.is_dir():
        refuse_export(given, "evaluated as a checkpoint", "the checkpoint it was exported from (a run folder, or "
                      "its best.pt or last.pt), or a state_dict file with its spec (`archspec eval SPEC "
                      "--checkpoint FILE`)")
        return given
    run = RunDir(given)
    if run.marker() is None and run.damage() is not None:
        raise RunError(f"{given / 'run.json'} is damaged: it is {run.damage()}; restore it from a copy, or give the "
                       f"checkpoint with the run's spec and data (`archspec eval {given / 'spec.yaml'} --checkpoint "
                       f"{run.last} --data-dir DIR`)")
    if run.marker() is None:
        raise RunError(f"{given} is a folder but not a run folder (it has no run.json of an archspec run): give a "
                       "checkpoint file (a run's best.pt or last.pt, or a state_dict with its spec) or a run folder")
    _own_checkpoint(run.best)
    if run.best.is_file():
        print(f"evaluating {run.best}: the run's best checkpoint (lowest validation error)", file=sys.stderr)
        return run.best
    _own_checkpoint(run.last)
    if run.last.is_file():
        print(f"evaluating {run.last}: {given} has no best.pt (it is written when the run is evaluated on a "
              "validation split, and this run has no validation split or has not been evaluated yet)",
              file=sys.stderr)
        return run.last
    at = (run.marker() or {}).get("checkpoint_iteration")
    if isinstance(at, int):
        raise RunError(f"{given} has neither best.pt nor last.pt, though its run.json records a checkpoint at "
                       f"iteration {at:,}: restore {run.last}, or give a checkpoint file")
    raise RunError(f"{given} holds no checkpoint yet (neither best.pt nor last.pt: the run ended before its first "
                   f"one): continue it (`archspec train --resume --out {given}`), or give a checkpoint file")


def _own_checkpoint(path: Path) -> None:
    """A RunError, worded as `--resume` words it, when a run's best.pt or last.pt is there but not a plain file (a
    folder, a named pipe, a link): it is damaged, not missing, and another checkpoint is not taken in its place."""
    if path.is_symlink():
        raise RunError(f"{path} is a symbolic link: archspec reads a run folder's own files only as plain files, never "
                       "through a link (it could stand for any file); give the file it points to with --checkpoint, "
                       "or remove the link")
    refuse_irregular(path, fix="remove it, or give a checkpoint file with --checkpoint")


def _trained_model(req: EvalRequest, run: RunDir | None, compiled: Compiled) -> tuple[Any, dict[str, Any]]:
    """The network of `compiled` with the checkpoint's weights, and when a run's checkpoint was saved
    ({"iteration": N}, or {}); RunError if they do not fit."""
    from archspec.compiler.lower import lower
    from archspec.runtime.weights import describe, load_into

    model = lower(compiled)
    if req.weights is not None:
        weights = load_into(model, compiled, req.weights, fresh_head=False)
        print(describe(weights), file=sys.stderr)
        return model, weights.trained
    fix = ("evaluate it with the spec it was trained with"
           + (f" (`archspec eval --checkpoint {req.checkpoint}` takes {run / 'spec.yaml'})" if run else ""))
    return model, load_into(model, compiled, req.checkpoint, fresh_head=False, fix=fix).trained


def _eval_recipe(req: EvalRequest, run: RunDir | None, base: Any, spec_name: str) -> tuple[Any, Path | None]:
    """The recipe evaluation follows (the run folder's, else the spec's `base`, with the options given) and the
    data location (given, else the run's)."""
    info: dict[str, Any] = {}
    if run is not None:
        info = run.info()
        try:
            base = json.loads(run.read_text("recipe.json"))
        except ValueError:
            raise RunError(f"{run / 'recipe.json'} is damaged: give the data options (--train-size, ...)") from None
    options = {"batch_size": req.batch_size, "views": req.views, "train_size": req.train_size,
               "val_size": req.val_size, "dataset": req.dataset}
    recipe = resolve_recipe(base, options, [])
    recipe, notes = weights_recipe(recipe, req.weights, spec_name, base, options, [])
    for note in notes:
        print(note, file=sys.stderr)
    data_dir = req.data_dir or (Path(info["data_dir"]) if info.get("data_dir") else None)
    return recipe, data_dir
