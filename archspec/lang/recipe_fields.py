"""The training recipe, declared once: each field's type, default, range or choices and one line of doc.

A recipe (a spec's `recipe:`, `--recipe FIELD=VALUE`, a run folder's recipe.json) is a tree of sections, each a
frozen record below (`RecipeValues` is the whole recipe) whose fields are declared as `archspec.lang.fields`
describes. Everything else comes from these classes:

- `recipe_json_schema()`: the spec schema's `recipe` definition (`archspec.lang.schema.build`);
- `defaults()` and `with_defaults(data)`: the recipe of a spec that gives none, and a recipe with the fields it
  leaves out filled in (in the key order recipe.json has always had);
- `problem(data)`: the first value that cannot be used (a range, a choice, milestones that do not increase), in
  the one line every source of a recipe gets;
- `read(data)`: the typed, frozen record the runtime reads (`recipe.optimizer.momentum`);
- `field_at("optimizer.lr")` and `field_names(...)`: one field's declaration, the fields inside one (the `train`
  flags and `--recipe` paths are checked against them).

A new field is one line in its section here (and its use). Augment ops have their own table
(`archspec.lang.augment`); the `augment` list refers to it. An optimizer with fields of its own is one more section
in `OPTIMIZERS` (the optimizer's `name` picks it); a schedule or a loss with variants of its own becomes a `keyed`
field in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from archspec.lang import fields as declared
from archspec.lang.fields import (FieldSpec, Section, augment_list, boolean, choice, integer, items, keyed, number,
                                  section)

UNIT_PATH = ("schedule", "unit")  # what the `in_unit` counts are counted in


# -- the declaration ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Dataset(Section):
    """The data a run trains and evaluates on."""
    name: str = choice("cifar10", ("cifar10", "imagenet_folder", "synthetic"),
                       doc="the data: CIFAR-10, an ImageNet-style folder of class folders (--data-dir), or synthetic")
    train_size: int | None = integer(optional=True, minimum=1, schema_minimum=0,
                                     doc="CIFAR-10: the images trained on (absent: 45000 of the 50000, the rest "
                                     "validate); a folder: at most this many")
    val_size: int | None = integer(optional=True, minimum=0,
                                   doc="CIFAR-10: the held-out images of the 50000 that validate (absent: 5000); "
                                   "a folder: at most this many")
    classes: int | None = integer(optional=True, minimum=1,
                                  doc="the classes, for the reader: the network's outputs are what counts")
    image_size: int | None = integer(optional=True, minimum=1,
                                     doc="the image size, for the reader: the spec's input is what counts")
    normalize: str = choice("per_pixel_mean", ("per_pixel_mean", "per_channel", "none", "imagenet", "inception"),
                            doc="how pixels are normalised (per_pixel_mean: minus the training set's mean image)")


@dataclass(frozen=True, kw_only=True)
class SGD(Section):
    """Stochastic gradient descent with momentum and weight decay (torch.optim.SGD)."""
    name: str = choice("sgd", ("sgd",), doc="the optimizer")
    lr: float = number(0.1, minimum=0, low_open=True, label="learning rate",
                       doc="the learning rate before the schedule's steps")
    momentum: float = number(0.9, minimum=0, maximum=1, high_open=True, label="momentum",
                             doc="the momentum (1 or more makes the steps grow without end)")
    weight_decay: float = number(1e-4, minimum=0, label="weight_decay", doc="the L2 penalty on every weight")
    nesterov: bool = boolean(False, doc="Nesterov momentum (needs a momentum above 0)")

    def check(self, unit: str) -> str | None:
        if self.nesterov and self.momentum == 0:
            return ("optimizer nesterov needs a momentum above 0, got momentum 0: give a momentum "
                    "(--momentum 0.9) or drop Nesterov (--recipe optimizer.nesterov=false)")
        return None


# the optimizer's `name` -> its fields (a new optimizer is one more section here, and its use in runtime/train.py)
OPTIMIZERS: dict[str, type] = {"sgd": SGD}


@dataclass(frozen=True, kw_only=True)
class Warmup(Section):
    """A constant learning rate at the start, until the training error falls below a threshold or `max_iters`
    pass (the paper's ResNet-110/1202 recipe)."""
    lr: float = number(minimum=0, low_open=True, label="warm-up lr", doc="the learning rate while warming up")
    until_train_error: float | None = number(optional=True, label="warm-up until_train_error",
                                             doc="warm-up ends once the training error (a fraction) is below this")
    max_iters: float | None = integer(optional=True, minimum=1, in_unit=True, label="warm-up max_iters",
                                      doc="warm-up ends after this many iterations (epochs) at the latest")


@dataclass(frozen=True, kw_only=True)
class Schedule(Section):
    """The run's length and its learning-rate steps: lr x gamma at each milestone, after an optional warm-up."""
    unit: str = choice("iter", ("iter", "epoch"),
                       doc="what length, milestones, the eval interval and warm-up max_iters count")
    length: float = integer(64000, minimum=1, in_unit=True, label="schedule length",
                            doc="the run's length, in the unit")
    milestones: tuple[float, ...] = items(
        (32000, 48000), FieldSpec(kind="integer", minimum=1, in_unit=True, label="each milestone",
                                  doc="a step of the learning rate"),
        increasing=True, label="milestones", doc="when the learning rate steps, in the unit: increasing, before "
        "the end (scaled with the length by --iters and --epochs)")
    gamma: float = number(0.1, minimum=0, maximum=1, low_open=True, label="schedule gamma",
                          doc="what each step multiplies the learning rate by")
    warmup: Warmup | None = section(Warmup, optional=True, doc="a warm-up before the schedule (absent: none)")

    def check(self, unit: str) -> str | None:
        return past_the_end(self.length, self.milestones, unit)


def past_the_end(length: float, milestones: Sequence[float], unit: str, origin: str = "") -> str | None:
    """The problem of a schedule whose last milestone is not before the end of the run, opening with the length
    (what the user set, most often) and saying where the milestones came from (`origin`: "the spec's recipe"; they
    may come from a recipe the user never read); None when the milestones fit."""
    milestones, kind = [_count(m) for m in milestones], "epochs" if unit == "epoch" else "iterations"
    if not milestones or milestones[-1] < length:
        return None
    came = (f"the milestones {milestones} come from {origin}" if origin else
            f"the schedule's milestones are {milestones}")
    return (f"schedule length {_count(length)} {kind} is not longer than the last milestone, {milestones[-1]}: "
            f"{came}: give milestones below {_count(length)} (--milestones, or "
            f"schedule.milestones in the recipe), or set the length with --{'epochs' if unit == 'epoch' else 'iters'}, "
            "which scales the milestones with it")


def _count(v: float) -> float:
    return int(v) if float(v).is_integer() else v


@dataclass(frozen=True, kw_only=True)
class Eval(Section):
    """When and how the model is evaluated."""
    interval: float = integer(2000, minimum=1, in_unit=True, label="eval interval",
                              doc="evaluate every this many iterations (epochs), and at the end")
    views: int = choice(1, (1, 10), label="eval views",
                        doc="views per image: 1, or 10 (the corners and the centre, and their flips, averaged)")
    resize: int = integer(256, minimum=1, doc="image folders: the shorter side is resized to this, then centre-cropped")
    crop: int | None = integer(optional=True, minimum=1,
                               doc="the centre crop evaluated (absent: the training crop, else the input size)")


@dataclass(frozen=True, kw_only=True)
class RecipeValues(Section):
    """A training recipe: the data, augmentation, batch, optimizer, schedule, evaluation, logging and loss."""
    dataset: Dataset = section(Dataset, doc="the data trained and evaluated on")
    augment: tuple[dict[str, Any], ...] = augment_list(doc="training augmentation, applied in order")
    batch_size: int = integer(128, minimum=1, doc="the global batch (split over the processes under torchrun)")
    optimizer: SGD = keyed(OPTIMIZERS, "sgd", doc="how the weights are updated (`name` picks the optimizer)")
    schedule: Schedule = section(Schedule, doc="the run's length and learning-rate schedule")
    eval: Eval = section(Eval, doc="when and how the model is evaluated")
    log_interval: int = integer(100, minimum=1, doc="iterations between log lines (where the NaN check runs)")
    loss: str = choice("cross_entropy", ("cross_entropy",), doc="the training loss")


# -- what is generated from it -----------------------------------------------------------------------------------

def _unit(data: Any) -> str:
    node = data
    for key in UNIT_PATH:
        node = node.get(key) if isinstance(node, dict) else None
    return node if node in ("iter", "epoch") else "iter"


def recipe_json_schema() -> dict[str, Any]:
    """The JSON-schema definition of a recipe (it refers to the spec schema's `count`, `number`, `expr` and
    `augment` definitions)."""
    return declared.json_schema(RecipeValues)


def defaults() -> dict[str, Any]:
    """The recipe every field of which has its default (fields without one are absent)."""
    return declared.defaults(RecipeValues)


def with_defaults(data: Any) -> Any:
    """`data` with the fields it leaves out at their defaults (what it gives is kept, null included)."""
    return declared.with_defaults(data, RecipeValues)


def problem(data: Any) -> str | None:
    """The first value of the recipe `data` (defaults filled in) that cannot be used, as one line; None if it fits."""
    return declared.problem(data, RecipeValues, _unit(with_defaults(data)))


def read(data: Any, record: type = RecipeValues, /, **extra: Any) -> Any:
    """The typed record of the recipe `data` (checked with `problem` first): `record` is RecipeValues or a
    subclass, whose own fields are `extra`."""
    return declared.read(data, record, **extra)


def field_at(path: str | Sequence[str]) -> FieldSpec:
    """The declaration of the recipe field at a dotted path ("optimizer.lr"); KeyError if there is none."""
    return declared.field_at(path, RecipeValues)


def field_names(path: Sequence[str] = ()) -> tuple[str, ...]:
    """The names of the fields inside the recipe field at `path` (the recipe's own for ())."""
    return declared.field_names(path, RecipeValues)
