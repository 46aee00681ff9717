"""`archspec predict`: a trained network and the inputs it was trained with, applied to image files.

The model is a run folder (its best.pt, else its last.pt), a run's checkpoint, or a spec with `--weights` (published
weights by name, or a file). Its preprocessing (runtime/preprocess.py) comes from where the weights come from: the
checkpoint's record, else the run folder's preprocessing.json, the published record of named weights; a checkpoint
of an archspec before records were kept can have it computed from the run's dataset (`--data-dir`), as training
did. Images are read and resized as the record says (runtime/predict_images.py); the result is the top-k classes
with their probabilities. Every refusal is a `PredictError`: one line, exit 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from archspec.runtime.predict_images import PredictError, check_images, cifar_images, read_image
from archspec.runtime.preprocess import FILE, Preprocessing, PreprocessingError, from_published, of_stored, read

__all__ = ["Loaded", "PredictError", "PredictRequest", "as_text", "known_record", "load", "predict", "record"]


@dataclass
class PredictRequest:
    model: str                              # a run folder, a run's checkpoint, or (with weights) a spec
    images: list[Path] = field(default_factory=list)
    weights: str | None = None
    overrides: list[str] = field(default_factory=list)
    input_shape: str | None = None
    top: int = 5
    device: str | None = None
    data_dir: Path | None = None            # recompute a missing record from the run's training split
    cifar_batch: Path | None = None         # images of a CIFAR-10 batch file, by --index
    indices: list[int] = field(default_factory=list)


@dataclass
class Loaded:
    name: str                  # the spec's name
    origin: str                # where the weights came from, in words
    model: torch.nn.Module
    pre: Preprocessing
    outputs: int


# -- the model and its record -------------------------------------------------------------------------------------

def load(req: PredictRequest, sources: Any) -> Loaded:
    """The network with its weights, in eval mode, and what its inputs must be."""
    from archspec.compiler.lower import lower
    from archspec.runtime.plan import load_graph
    from archspec.runtime.rundir import find_run
    from archspec.runtime.weights import load_into

    if req.weights is not None:
        spec, compiled = load_graph(req.model, req.overrides, req.input_shape, sources)
        run, source = None, req.weights
    else:
        if req.overrides or req.input_shape:
            raise PredictError("--set and --input change a spec given with --weights; a run's network is its own "
                               "(spec.yaml in its folder): drop them")
        checkpoint = checkpoint_file(Path(req.model))
        run = find_run(checkpoint)
        if run is None:
            raise PredictError(f"{checkpoint} is not in a run folder: give the spec it was trained with (`archspec "
                               f"predict SPEC --weights {checkpoint} IMAGE...`)")
        spec, compiled = load_graph(run / "spec.yaml", [], None, sources)
        source = str(checkpoint)
    model = lower(compiled)
    fix = "give the spec it was trained with" + (f" ({run / 'spec.yaml'})" if run is not None else "")
    weights = load_into(model, compiled, source, fresh_head=False, fix=fix)
    outputs = int(compiled.output_shape[0])
    pre = record(source, weights, compiled, outputs, req, spec)
    if tuple(pre.input) != tuple(compiled.input_shape):
        shape = "x".join(map(str, pre.input))
        raise PredictError(f"the weights' inputs are {shape} images but {compiled.name} takes "
                           f"{'x'.join(map(str, compiled.input_shape))}: add --input {shape}")
    at = weights.trained.get("iteration")
    origin = weights.origin + (f", iteration {at:,}" if isinstance(at, int) else "")
    return Loaded(compiled.name, origin, model.eval(), pre, outputs)


def checkpoint_file(given: Path) -> Path:
    """The checkpoint `given` names: the file itself, or a run folder's best.pt (else its last.pt)."""
    from archspec.runtime.rundir import RunDir

    if not given.exists():
        raise PredictError(f"no such run folder or checkpoint: {given} (to predict with a spec, give --weights "
                           "SOURCE: a file or published weights such as torchvision)")
    if not given.is_dir():
        return given
    run = RunDir(given)
    if run.marker() is None:
        raise PredictError(f"{given} is a folder but not a run folder (it has no run.json of an archspec run): give "
                           "a run folder or a checkpoint file")
    for path in (run.best, run.last):
        if path.is_symlink():
            raise PredictError(f"{path} is a symbolic link: archspec reads a run folder's own files only as plain "
                               "files; give the file it points to, or remove the link")
        if path.is_file():
            return path
    raise PredictError(f"{given} holds no checkpoint yet (neither best.pt nor last.pt): continue the run "
                       f"(`archspec train --resume --out {given}`) or give a checkpoint file")


def record(source: str, weights: Any, compiled: Any, outputs: int, req: PredictRequest | None = None,
           spec: Any = None) -> Preprocessing:
    """The record of the weights `source`: named weights' published one, a checkpoint's own, else its run
    folder's preprocessing.json, else (with `req.data_dir`) computed from the run's dataset; otherwise a
    PredictError that says what is missing and how to fix it."""
    found, missing = known_record(source, weights, compiled, outputs)
    if found is not None:
        return found
    from archspec.runtime.rundir import find_run

    run = find_run(source)
    if req is not None and req.data_dir is not None and run is not None:
        pre = computed(run, req.data_dir, spec, compiled)
        keep(run, pre)
        return pre
    if run is not None:
        where = (run.marker() or {}).get("data_dir")
        named = f" (run.json names {where})" if isinstance(where, str) else ""
        raise PredictError(f"{missing}: give --data-dir DIR, the run's dataset{named}, to compute it from the "
                           "training split as training did")
    raise PredictError(f"{missing}: use the run's own checkpoint in its run folder (with --data-dir DIR for one "
                       "written before records were kept), or published weights by name")


def known_record(source: str, weights: Any, compiled: Any, outputs: int) -> tuple[Preprocessing | None, str]:
    """The record that travels with the weights `source` (published, the checkpoint's, the run folder's), or None
    and what is missing, in words."""
    from archspec.runtime.published import find, is_named
    from archspec.runtime.rundir import find_run

    try:
        if is_named(source) and not Path(source).exists():
            return from_published(find(source, compiled.name), int(compiled.input_shape[0]), outputs), ""
        if weights.preprocessing is not None:
            return of_stored(weights.preprocessing, source), ""
        run = find_run(source)
        if run is not None and (run / FILE).is_file():
            return read(run / FILE), ""
    except PreprocessingError as e:
        raise PredictError(str(e)) from None
    if weights.trained or run is not None:  # an archspec checkpoint, of an archspec before the records
        return None, (f"{source} records no preprocessing (the inputs it was trained with: written by archspec "
                      "since the record was added)")
    return None, f"{source} is a plain state_dict, which records no preprocessing (the inputs it was trained with)"


def computed(run: Any, data_dir: Path, spec: Any, compiled: Any) -> Preprocessing:
    """The record of an older run, from its recipe and its dataset's training split (as training computed it)."""
    from archspec.runtime.inputs import check_fit, data_config, open_data
    from archspec.runtime.plan import resolve_recipe
    from archspec.runtime.preprocess import from_data
    from archspec.runtime.request import RunError

    try:
        recipe = resolve_recipe(json.loads(run.read_text("recipe.json")), {}, [])
    except ValueError:
        raise PredictError(f"{run / 'recipe.json'} is damaged: the record cannot be computed without it") from None
    try:
        data = open_data(data_config(recipe, spec.input_shape, data_dir, torch.device("cpu"), 0,
                                     int(compiled.output_shape[0]), workers=0))
        check_fit(spec.name, spec.input_shape, compiled.output_shape[0], data)
    except RunError as e:
        raise PredictError(str(e)) from None
    print(f"computed the preprocessing from {data_dir} (the checkpoint has no record): {data.norm.text}",
          file=sys.stderr)
    return from_data(data)


def keep(run: Any, pre: Preprocessing) -> None:
    """Write a computed record into the run folder (holding its lock), so that predict and export find it there
    from now on; a folder that cannot be written is said, not an error."""
    from archspec.runtime.rundir import RunDir, RunDirError

    try:
        with RunDir(run.path):
            pre.write(run / FILE)
    except (RunDirError, OSError) as e:
        print(f"could not keep it in {run / FILE} ({e}); give --data-dir again next time", file=sys.stderr)
        return
    print(f"kept it in {run / FILE}: predict and export find it there from now on", file=sys.stderr)


# -- predicting ---------------------------------------------------------------------------------------------------

def top_k(loaded: Loaded, x: torch.Tensor, k: int, device: torch.device) -> list[tuple[int, float]]:
    """The k most probable classes of one image (C, H, W raw pixels) as (index, probability)."""
    with torch.inference_mode():
        logits = loaded.model(loaded.pre.normalise(x[None].to(device))).float()
        probs = logits.softmax(-1)[0].cpu()
    values, indices = probs.topk(k)
    return [(int(i), float(p)) for i, p in zip(indices, values)]


def predict(req: PredictRequest, sources: Any) -> dict[str, Any]:
    """What `archspec predict` prints, as data: the model, its inputs and, per image, the top classes."""
    from archspec.runtime.inputs import pick_device

    if not req.images and req.cifar_batch is None:
        raise PredictError("name the images to classify (PNG or JPEG files), or --cifar-batch FILE --index I")
    if req.indices and req.cifar_batch is None:
        raise PredictError("--index picks images of --cifar-batch FILE: give the batch file too")
    check_images(req.images)  # a missing file is refused before the model is built
    device = pick_device(req.device)
    loaded = load(req, sources)
    loaded.model.to(device)
    pre, names = loaded.pre, loaded.pre.classes
    inputs: list[tuple[str, torch.Tensor, int | None]] = []
    notes = []
    for path in req.images:  # every image is read (or refused) before anything is said
        x, note = read_image(path, pre, loaded.name)
        notes += [note] if note else []
        inputs.append((str(path), x, None))
    if req.cifar_batch is not None:
        inputs += cifar_images(req.cifar_batch, req.indices or [0], pre, loaded.name)
    k = min(req.top, loaded.outputs)
    if k < req.top:
        notes.append(f"--top {req.top}: {loaded.name} has {loaded.outputs} classes; showing all of them")
    if names is None:
        notes.append(f"class names unknown ({unnamed(pre)}): showing class indices")
    for note in notes:
        print(note, file=sys.stderr)
    results = []
    for label, x, truth in inputs:
        top = top_k(loaded, x, k, device)
        entry: dict[str, Any] = {"image": label, "top": [{"index": i, "name": class_name(names, i),
                                                          "probability": p} for i, p in top]}
        if truth is not None:
            entry["label"] = {"index": truth, "name": class_name(names, truth)}
        results.append(entry)
    return {"model": loaded.name, "weights": loaded.origin, "preprocessing": pre.describe(),
            "classes": "known" if names else "unknown", "predictions": results}


def unnamed(pre: Preprocessing) -> str:
    """Why a record holds no class names, in words."""
    if pre.num_classes == 1000 and pre.source.startswith("the published"):
        return "ImageNet's names come from an installed torchvision or timm, and neither is installed; nothing is " \
               "downloaded"
    return "the training data named none: CIFAR-10's names come from its batches.meta, a folder's from its class " \
           "folders"


def class_name(names: tuple[str, ...] | None, i: int) -> str | None:
    return names[i] if names is not None and i < len(names) else None


def as_text(result: dict[str, Any]) -> str:
    """The result for people: a line per image, then its classes, most probable first."""
    lines = []
    for entry in result["predictions"]:
        truth = entry.get("label")
        shown = f" (label {truth['index']}{': ' + truth['name'] if truth['name'] else ''})" if truth else ""
        lines.append(f"{entry['image']}{shown}:")
        for t in entry["top"]:
            name = f"{t['name']} ({t['index']})" if t["name"] is not None else f"class {t['index']}"
            lines.append(f"  {100 * t['probability']:7.2f}%  {name}")
    return "\n".join(lines)
