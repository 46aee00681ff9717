"""Planning a training run: what a `TrainRequest` means for its run folder, before anything changes.

- a new run: the folder must be new, empty, or hold a run that ended before its first checkpoint (which is
  replaced, saying so). A folder holding a resumable or finished run, or files of someone else's, is refused.
- `--resume`: everything comes from the folder (spec.yaml, recipe.json, seed, data location, options). What the
  command line says as well must agree with it: a spec that builds another network, a `--set`, `--input`,
  recipe option or `--seed` that would change the run is refused naming the option and the values. Options of
  how to run (`--device`, `--bf16`, `--compile`, ...) and the data location may change; the log says so.

The spec is compiled once, here (`load_graph`); the plan carries the graph that is trained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.lang.yamlsrc import plain
from archspec.runtime.options import OPTION_FIELDS, RunOptions
from archspec.runtime.request import RunError, TrainRequest
from archspec.runtime.rundir import RunDir, RunDirError

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled
    from archspec.lang.spec import Spec
    from archspec.runtime.recipe import Recipe



@dataclass
class Plan:
    """What a train request means, once checked against the folder: the network, the recipe, the seed, whether to
    load last.pt, the options of how to run, and the notes the log starts with."""

    spec: Spec
    compiled: Compiled           # the spec's compiled graph (compiled once, here)
    spec_text: str
    recipe: Recipe
    seed: int
    resume: bool                 # load last.pt
    state: str                   # the folder's state before this run
    data_dir: Path | None
    options: RunOptions
    info: dict[str, Any]         # run.json of the run being resumed ({} for a new run)
    notes: list[str]
    # when to checkpoint: {"interval": iterations or None (every evaluation), "minutes": ...}; kept in run.json
    checkpointing: dict[str, Any] = field(default_factory=lambda: dict(CHECKPOINTING))


CHECKPOINTING = {"interval": None, "minutes": 10.0}
CHECKPOINT_FLAGS = {"interval": "--checkpoint-interval", "minutes": "--checkpoint-minutes"}


def _checkpointing(req: TrainRequest, stored: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """When to checkpoint: what the command line gives, else what the run started with (`stored`, on --resume),
    else the defaults; a given value that differs from the run's own is a note (it holds from here on)."""
    given = {"interval": req.checkpoint_interval, "minutes": req.checkpoint_minutes}
    out, notes = {}, []
    for key, default in CHECKPOINTING.items():
        own = (stored or {}).get(key, default)
        out[key] = own if given[key] is None else given[key]
        if stored is not None and given[key] is not None and given[key] != own:
            was = "every evaluation" if own is None else own
            notes.append(f"{CHECKPOINT_FLAGS[key]} {given[key]} from here on (the run started with {was})")
    return out, notes


# -- values and differences -----------------------------------------------------------------------------------

def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def resolved_spec_yaml(spec: Spec, recipe: dict[str, Any]) -> str:
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


def sha256(text: str) -> str:
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


# -- planning: what the request means for the folder ---------------------------------------------------------

NOTHING_TO_TRAIN = ("say what to train: `archspec train SPEC` (a spec file, or a shipped spec's name: `archspec "
                    "list`), or continue a run with `archspec train --resume --out RUN`")

def load_graph(ref: Any, overrides: list[str], input_shape: str | None, sources: Any) -> tuple[Any, Any]:
    """A spec and its compiled graph (SpecError with every problem otherwise)."""
    from archspec.compiler.analysis import analyse
    from archspec.lang.spec import load_spec

    spec = load_spec(ref, overrides, input_shape, sources)
    return spec, analyse(spec)


def resolve_recipe(base: dict[str, Any] | None, options: dict[str, Any], generic: list[str]) -> Recipe:
    """The resolved recipe (`runtime.recipe.resolve`); a bad value or override is a RunError."""
    from archspec.runtime.recipe import RecipeError, resolve

    try:
        return resolve(base, options, generic)
    except RecipeError as e:
        raise RunError(str(e)) from None


def weights_recipe(recipe: Recipe, weights: str | None, spec_name: str, base: Any, options: dict[str, Any],
                   generic: list[str]) -> tuple[Recipe, list[str]]:
    """The recipe with the inputs that named `weights` expect (their normalisation; an image folder's eval resize
    and crop) where the user did not set them, and the note that says so."""
    from archspec.runtime.weights import expected_inputs

    given = {g.split("=", 1)[0].strip() for g in generic}
    fields = {k: v for k, v in expected_inputs(weights, spec_name, recipe.dataset.name).items()
              if k not in given and recipe.at(k) != v}
    if not fields:
        return recipe, []
    changed = resolve_recipe(base, options, [f"{k}={v}" for k, v in fields.items()] + list(generic))
    shown = ", ".join(f"{k}={v}" for k, v in fields.items())
    return changed, [f"recipe: {shown}, as the {weights} weights expect (--recipe FIELD=VALUE sets another)"]


def plan_new(req: TrainRequest, run: RunDir, state: str, sources: Any) -> Plan:
    """The plan of a new run in `run` (whose state is `state`), or the RunError that refuses it."""
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
        raise RunError(NOTHING_TO_TRAIN)
    spec, compiled = load_graph(req.spec, req.overrides, req.input_shape, sources)
    recipe = resolve_recipe(spec.recipe, req.recipe_options, req.recipe_overrides)
    recipe, notes = weights_recipe(recipe, req.weights, spec.name, spec.recipe, req.recipe_options,
                                   req.recipe_overrides)
    if state == "failed_start":
        info = run.marker() or {}
        notes.append(f"replacing the run in {where} that ended before its first checkpoint (started "
                     f"{info.get('started', '?')}: {info.get('command', '?')})")
    options = RunOptions(**{k: bool(req.run_options.get(k)) for k in RunOptions.names()})
    return Plan(spec, compiled, resolved_spec_yaml(spec, recipe.data), recipe, req.seed or 0, False, state,
                 req.data_dir, options, {}, notes, _checkpointing(req)[0])


def plan_resume(req: TrainRequest, run: RunDir, state: str, sources: Any) -> Plan:
    """The plan of `--resume` in `run`: spec, recipe, seed and options from the folder, checked against `req`."""
    from archspec.runtime.recipe import Recipe, RecipeError, check_schema

    where = run.path
    if state == "new":
        raise RunError(f"cannot resume {where}: there is no run there (start one without --resume)")
    if state == "foreign":
        damage = run.damage()
        if damage is not None:  # (truncated by a full disk, or edited: not someone else's folder)
            raise RunDirError(f"{where / 'run.json'} is damaged: it is {damage}; restore it from a copy, or start a "
                              "new run in another folder")
        raise RunError(f"cannot resume {where}: it holds no archspec run (no run.json of one)")
    info = run.info()  # every field used below is checked: a damaged one is refused naming it
    if state == "missing_checkpoint":
        raise RunError(_missing_checkpoint(run))
    if info.get("status") == "diverged" and state == "resumable":
        raise RunError(f"{where} diverged ({info.get('message', 'the loss became NaN')}); resuming would repeat the "
                       "same steps: start a new run with a lower learning rate (--lr) or a warm-up in another "
                       "folder (--out)")
    spec_text = run.read_text("spec.yaml")
    if info.get("spec", {}).get("sha256") not in (None, sha256(spec_text)):
        raise RunDirError(f"{where / 'spec.yaml'} was changed after the run started (its SHA-256 differs from "
                          "run.json's): restore it, or start a new run from it in another folder")
    recipe_text = run.read_text("recipe.json")
    if info.get("recipe_sha256") not in (None, sha256(recipe_text)):
        raise RunDirError(f"{where / 'recipe.json'} was changed after the run started (its SHA-256 differs from "
                          "run.json's): restore it, or start a new run with the recipe you want in another folder "
                          "(--recipe FIELD=VALUE)")
    try:
        recipe_data = json.loads(recipe_text)
        seed = int(info["seed"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise RunDirError(f"cannot resume {where}: recipe.json or run.json is damaged") from None
    try:  # (the same checks as a new run's recipe: a value out of range reads as it does there)
        check_schema(recipe_data, f"{where / 'recipe.json'}")
        recipe = Recipe.of(recipe_data)
    except RecipeError as e:
        raise RunDirError(f"cannot resume {where}: recipe.json is damaged ({e})") from None
    spec, compiled = load_graph(where / "spec.yaml", [], None, sources)
    _refuse_contradictions(req, run, info, spec, compiled, recipe_data, seed, sources)
    notes = []
    if state == "failed_start":
        notes.append(f"{where} has no checkpoint yet (the run ended before its first one): starting it from the "
                     "beginning with its own spec and recipe")
    else:
        notes += _damaged_metrics(run)
    stored = RunOptions.from_stored(info.get("options"))
    chosen = {}
    for k in RunOptions.names():
        given, own = req.run_options.get(k), getattr(stored, k)
        chosen[k] = own if given is None else bool(given)
        if given is not None and bool(given) != own:
            notes.append(f"{_flag(k, True)} is {'on' if given else 'off'} from here on (the run started with it "
                         f"{'on' if own else 'off'})")
    options = RunOptions(**chosen)
    data_dir = req.data_dir
    if data_dir is None and info.get("data_dir"):
        data_dir = Path(info["data_dir"])
    elif data_dir is not None and info.get("data_dir") and Path(data_dir).expanduser().resolve() != \
            Path(info["data_dir"]):
        notes.append(f"data from {data_dir} (the run started with {info['data_dir']})")
    checkpointing, changed = _checkpointing(req, info.get("checkpointing") or {})
    return Plan(spec, compiled, spec_text, recipe, seed, state != "failed_start", state, data_dir, options, info,
                notes + changed, checkpointing)


def _missing_checkpoint(run: RunDir) -> str:
    at = (run.marker() or {}).get("checkpoint_iteration")
    shown = f"{at:,}" if isinstance(at, int) else json.dumps(at)[:40]  # (unchecked for a new run: shown as is)
    return (f"{run.path}/run.json records a checkpoint at iteration {shown} but {run.last} is missing: restore it "
            "(nothing was changed), or start a new run in another folder (--out)")


def _damaged_metrics(run: RunDir) -> list[str]:
    """The note that the damaged lines of metrics.jsonl (not UTF-8, nested too deeply, numbers out of range) are
    dropped when the resumed run rewrites it, as torn lines are; none if there are none."""
    from archspec.runtime.metrics import damaged_note, scan_metrics

    try:
        damaged = scan_metrics(run.metrics).damaged if run.metrics.is_file() else []
    except OSError:
        return []  # (opening the metrics for the run says what is wrong with the file)
    note = damaged_note(run.metrics, damaged, "dropped")
    return [note] if note else []


def _refuse_contradictions(req: TrainRequest, run: RunDir, info: dict[str, Any], spec: Spec, compiled: Compiled,
                           recipe: dict[str, Any], seed: int, sources: Any) -> None:
    """A resumed run keeps its spec, recipe and seed: refuse what on the command line says otherwise."""
    where = run.path
    keep = (f"a resumed run keeps the spec, recipe and seed it started with ({where}/spec.yaml, recipe.json): "
            "drop it, or start a new run in another folder")
    if req.seed is not None and req.seed != seed:
        raise RunError(f"--seed {req.seed} changes the run (it started with --seed {seed}); {keep}")
    if req.spec is not None or req.overrides or req.input_shape:
        ref = req.spec if req.spec is not None else where / "spec.yaml"
        given, given_compiled = load_graph(ref, req.overrides, req.input_shape, sources)
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
            if own != started and resolve_recipe(own, {}, []).data != recipe:
                diff = _first_difference(started or {}, own, "recipe")
                raise RunError(f"the recipe in {req.spec} differs from the run's ({diff}); {keep}")
    if not (req.recipe_options or req.recipe_overrides):
        return
    changed = resolve_recipe(recipe, req.recipe_options, req.recipe_overrides).data
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
