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
    name: str = choice("cifar10", ("cifar10", "cifar100", "imagenet_folder", "synthetic"),
                       doc="the data: CIFAR-10, CIFAR-100, an ImageNet-style folder of class folders (--data-dir), "
                       "or synthetic")
    train_size: int | None = integer(optional=True, minimum=1, schema_minimum=0,
                                     doc="CIFAR-10/100: the images trained on (absent: 45000 of the 50000, the rest "
                                     "validate); a folder: at most this many")
    val_size: int | None = integer(optional=True, minimum=0,
                                   doc="CIFAR-10/100: the held-out images of the 50000 that validate (absent: 5000); "
                                   "a folder: at most this many")
    classes: int | None = integer(optional=True, minimum=1,
                                  doc="the classes, for the reader: the network's outputs are what counts")
    image_size: int | None = integer(optional=True, minimum=1,
                                     doc="the image size, for the reader: the spec's input is what counts")
    normalize: str = choice("per_pixel_mean", ("per_pixel_mean", "per_channel", "none", "imagenet", "inception"),
                            doc="how pixels are normalised (per_pixel_mean: minus the training set's mean image)")
    labels: str | None = choice(None, ("fine", "coarse"), optional=True,
                                doc="CIFAR-100: its 100 fine classes or its 20 coarse superclasses (absent: fine)")

    def check(self, unit: str) -> str | None:
        if self.labels is not None and self.name != "cifar100":
            return (f"dataset labels {self.labels} picks CIFAR-100's fine or coarse classes, but the dataset is "
                    f"{self.name}: drop dataset.labels or use --dataset cifar100")
        return None


NORM_BIAS_DOC = ("weight decay on normalisation weights and biases too (false: every 1-D parameter is left "
                 "undecayed, as timm's and torchvision's recent recipes do)")


def _betas(default: tuple[float, float]) -> Any:
    return items(default, FieldSpec(kind="number", minimum=0, maximum=1, high_open=True, label="each beta",
                                    doc="a moment's decay"),
                 label="optimizer betas", doc="the decays of the first and second moment estimates (two numbers)")


def _two_betas(betas: tuple[float, ...]) -> str | None:
    if len(betas) != 2:
        return f"optimizer betas must be two numbers (first and second moment), got {len(betas)}: e.g. [0.9, 0.999]"
    return None


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
    norm_bias_decay: bool = boolean(True, doc=NORM_BIAS_DOC)

    def check(self, unit: str) -> str | None:
        if self.nesterov and self.momentum == 0:
            return ("optimizer nesterov needs a momentum above 0, got momentum 0: give a momentum "
                    "(--momentum 0.9) or drop Nesterov (--recipe optimizer.nesterov=false)")
        return None


@dataclass(frozen=True, kw_only=True)
class AdamW(Section):
    """Adam with decoupled weight decay (torch.optim.AdamW; Loshchilov and Hutter, 2019)."""
    name: str = choice("adamw", ("adamw",), doc="the optimizer")
    lr: float = number(1e-3, minimum=0, low_open=True, label="learning rate", doc="the peak learning rate")
    betas: tuple[float, ...] = _betas((0.9, 0.999))
    eps: float = number(1e-8, minimum=0, low_open=True, label="optimizer eps", doc="added to the denominator")
    weight_decay: float = number(0.05, minimum=0, label="weight_decay",
                                 doc="decoupled weight decay (each step shrinks the weights by lr x weight_decay)")
    norm_bias_decay: bool = boolean(True, doc=NORM_BIAS_DOC)

    def check(self, unit: str) -> str | None:
        return _two_betas(self.betas)


@dataclass(frozen=True, kw_only=True)
class LAMB(Section):
    """Layer-wise adaptive moments (You et al., 2020), as timm's Lamb, which ResNet Strikes Back trains with."""
    name: str = choice("lamb", ("lamb",), doc="the optimizer")
    lr: float = number(5e-3, minimum=0, low_open=True, label="learning rate", doc="the peak learning rate")
    betas: tuple[float, ...] = _betas((0.9, 0.999))
    eps: float = number(1e-6, minimum=0, low_open=True, label="optimizer eps", doc="added to the denominator")
    weight_decay: float = number(0.02, minimum=0, label="weight_decay", doc="decoupled weight decay, in the update")
    max_grad_norm: float | None = number(1.0, minimum=0, low_open=True, optional=True, label="optimizer max_grad_norm",
                                         doc="the gradients of all parameters together are scaled down to this "
                                         "2-norm before the step (null: never; timm's default is 1)")
    trust_clip: bool = boolean(False, doc="clip the layer-wise trust ratio at 1")
    always_adapt: bool = boolean(False, doc="apply the trust ratio to parameters without weight decay too")
    norm_bias_decay: bool = boolean(True, doc=NORM_BIAS_DOC)

    def check(self, unit: str) -> str | None:
        return _two_betas(self.betas)


# the optimizer's `name` -> its fields (a new optimizer is one more section here, and its use in runtime/optim.py)
OPTIMIZERS: dict[str, type] = {"sgd": SGD, "adamw": AdamW, "lamb": LAMB}


@dataclass(frozen=True, kw_only=True)
class Warmup(Section):
    """A warm-up at the start: a constant learning rate until the training error falls below a threshold or
    `max_iters` pass (the paper's ResNet-110/1202 recipe), or a linear ramp from `lr` to the optimizer's over
    `max_iters` (timm's and torchvision's recipes)."""
    kind: str = choice("constant", ("constant", "linear"), label="warm-up kind",
                       doc="constant: `lr` throughout; linear: from `lr` up to the optimizer's lr over max_iters")
    lr: float = number(minimum=0, low_open=True, label="warm-up lr",
                       doc="the learning rate while warming up (linear: the first step's)")
    until_train_error: float | None = number(optional=True, label="warm-up until_train_error",
                                             doc="constant: warm-up ends once the training error (a fraction) is "
                                             "below this")
    max_iters: float | None = integer(optional=True, minimum=1, in_unit=True, label="warm-up max_iters",
                                      doc="warm-up ends after this many iterations (epochs) at the latest; linear: "
                                      "its length")
    prefix: bool = boolean(False, label="warm-up prefix",
                           doc="linear: the schedule starts after the warm-up and spans the rest of the run "
                           "(torchvision); false: the warm-up replaces the schedule's start (timm)")

    def check(self, unit: str) -> str | None:
        if self.kind == "constant" and self.max_iters is None and self.until_train_error is None:
            return ("a constant warm-up needs an end, or it lasts the whole run: give schedule.warmup.max_iters "
                    "or until_train_error (or kind linear with max_iters)")
        if self.kind == "linear" and self.max_iters is None:
            return ("a linear warm-up needs its length: give schedule.warmup.max_iters (in the schedule's unit, "
                    "e.g. 5 epochs)")
        if self.kind == "linear" and self.until_train_error is not None:
            return ("warm-up until_train_error ends a constant warm-up early; a linear one runs max_iters: drop "
                    "until_train_error or use kind constant")
        if self.kind == "constant" and self.prefix:
            return "warm-up prefix applies to a linear warm-up: drop it or use kind linear"
        return None


@dataclass(frozen=True, kw_only=True)
class Schedule(Section):
    """The run's length and its learning-rate steps: lr x gamma at each milestone, after an optional warm-up."""
    name: str = choice("step", ("step",), label="schedule name", doc="the schedule")
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
        return past_the_end(self.length, self.milestones, unit) or _warmup_fits(self, unit)


@dataclass(frozen=True, kw_only=True)
class Cosine(Section):
    """The run's length and a cosine decay of the learning rate from the optimizer's lr down to `min_lr` at the end
    (Loshchilov and Hutter, 2017; one cycle), after an optional warm-up."""
    name: str = choice("cosine", ("cosine",), label="schedule name", doc="the schedule")
    unit: str = choice("iter", ("iter", "epoch"),
                       doc="what length, the eval interval and warm-up max_iters count")
    length: float = integer(64000, minimum=1, in_unit=True, label="schedule length",
                            doc="the run's length, in the unit")
    min_lr: float = number(0.0, minimum=0, label="schedule min_lr", doc="the floor the learning rate decays to")
    update: str = choice("iter", ("iter", "epoch"), label="schedule update",
                         doc="iter: a new learning rate every iteration; epoch: once per epoch (timm, torchvision)")
    warmup: Warmup | None = section(Warmup, optional=True, doc="a warm-up before the schedule (absent: none)")

    def check(self, unit: str) -> str | None:
        return _warmup_fits(self, unit)


def _warmup_fits(schedule: Any, unit: str) -> str | None:
    w = schedule.warmup
    if w is None or w.kind != "linear" or w.max_iters is None or w.max_iters < schedule.length:
        return None
    kind = "epochs" if unit == "epoch" else "iterations"
    return (f"the linear warm-up's {_count(w.max_iters)} {kind} are not shorter than the run ({_count(schedule.length)} "
            f"{kind}): shorten schedule.warmup.max_iters or lengthen the run (--{'epochs' if unit == 'epoch' else 'iters'})")


# the schedule's `name` -> its fields
SCHEDULES: dict[str, type] = {"step": Schedule, "cosine": Cosine}


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
class ClipGrad(Section):
    """Gradient clipping before each step."""
    mode: str = choice("norm", ("norm", "value", "agc"), label="clip_grad mode",
                       doc="norm: scale all gradients to a 2-norm of at most `max`; value: clamp each to [-max, "
                       "max]; agc: adaptive clipping, unit by unit against the weight's norm (Brock et al., 2021)")
    max: float = number(minimum=0, low_open=True, label="clip_grad max",
                        doc="the largest norm, value, or (agc) gradient-to-weight ratio")


@dataclass(frozen=True, kw_only=True)
class Ema(Section):
    """An exponential moving average of the weights, evaluated and checkpointed beside them (timm's ModelEmaV3)."""
    decay: float = number(0.9998, minimum=0, maximum=1, high_open=True, label="ema decay",
                          doc="each update keeps this share of the average (1 - decay comes from the weights)")
    warmup: bool = boolean(False, label="ema warmup",
                           doc="the decay rises from 0 as 1 - (1 + updates)^-warmup_power until it reaches `decay`")
    warmup_power: float = number(2 / 3, minimum=0, low_open=True, label="ema warmup_power",
                                 doc="how fast the warm-up's decay rises")
    every: int = integer(1, minimum=1, label="ema every", doc="iterations between updates")
    start: float | None = integer(optional=True, minimum=1, in_unit=True, label="ema start",
                                  doc="iterations (epochs) in which the average only follows the weights (timm's "
                                  "update_after_step; torchvision restarts it through its warm-up; absent: none)")

    def check(self, unit: str) -> str | None:
        if not self.warmup and self.warmup_power != 2 / 3:
            return "ema warmup_power shapes the EMA's warm-up, which is off: drop it or set ema.warmup true"
        return None


@dataclass(frozen=True, kw_only=True)
class Mixup(Section):
    """Mixup (Zhang et al., 2018) and CutMix (Yun et al., 2019) of each training batch with itself reversed, with
    mixed (and label-smoothed) targets; timm's batch mode."""
    mixup_alpha: float = number(0.0, minimum=0, label="mixup mixup_alpha",
                                doc="Mixup's Beta(alpha, alpha) mixing weight (0: no Mixup)")
    cutmix_alpha: float = number(0.0, minimum=0, label="mixup cutmix_alpha",
                                 doc="CutMix's Beta(alpha, alpha) area kept (0: no CutMix)")
    prob: float = number(1.0, minimum=0, maximum=1, label="mixup prob", doc="the share of batches mixed")
    switch_prob: float = number(0.5, minimum=0, maximum=1, label="mixup switch_prob",
                                doc="with both alphas above 0: the share of mixed batches that use CutMix")

    def check(self, unit: str) -> str | None:
        if self.mixup_alpha == 0 and self.cutmix_alpha == 0:
            return ("mixup mixes nothing with mixup_alpha and cutmix_alpha both 0: give one of them (e.g. "
                    "mixup_alpha 0.2, cutmix_alpha 1.0) or drop the mixup section")
        if self.switch_prob not in (0.5,) and (self.mixup_alpha == 0 or self.cutmix_alpha == 0):
            return ("mixup switch_prob chooses between Mixup and CutMix, but only one of them is on: drop "
                    "switch_prob or give both alphas")
        return None


@dataclass(frozen=True, kw_only=True)
class RecipeValues(Section):
    """A training recipe: the data, augmentation, batch, optimizer, schedule, evaluation, logging and loss."""
    dataset: Dataset = section(Dataset, doc="the data trained and evaluated on")
    augment: tuple[dict[str, Any], ...] = augment_list(doc="training augmentation, applied in order")
    batch_size: int = integer(128, minimum=1, doc="the global batch (split over the processes under torchrun)")
    optimizer: Any = keyed(OPTIMIZERS, "sgd", doc="how the weights are updated (`name` picks the optimizer: sgd, "
                           "adamw or lamb)")
    schedule: Any = keyed(SCHEDULES, "step", doc="the run's length and learning-rate schedule (`name`: step or "
                          "cosine)")
    eval: Eval = section(Eval, doc="when and how the model is evaluated")
    log_interval: int = integer(100, minimum=1, doc="iterations between log lines (where the NaN check runs)")
    loss: str = choice("cross_entropy", ("cross_entropy", "bce"),
                       doc="the training loss: cross_entropy (softmax), or bce (a sigmoid per class, binary "
                       "cross-entropy against the one-hot or mixed targets, as ResNet Strikes Back)")
    label_smoothing: float = number(0.0, minimum=0, maximum=1, high_open=True,
                                    doc="the share of each target spread evenly over all classes")
    bce_target_threshold: float | None = number(optional=True, minimum=0, maximum=1, high_open=True,
                                                doc="bce: targets above this become 1 and the rest 0 (after "
                                                "smoothing and mixing; absent: soft targets)")
    clip_grad: ClipGrad | None = section(ClipGrad, optional=True, doc="gradient clipping (absent: none)")
    ema: Ema | None = section(Ema, optional=True,
                              doc="an exponential moving average of the weights (absent: none)")
    mixup: Mixup | None = section(Mixup, optional=True, doc="Mixup and CutMix of training batches (absent: none)")
    repeated_augment: int = integer(1, minimum=1,
                                    doc="each image drawn appears this many times in an epoch, augmented anew each "
                                    "time (spread over the processes under torchrun); epochs keep their length")

    def check(self, unit: str) -> str | None:
        if self.bce_target_threshold is not None and self.loss != "bce":
            return ("bce_target_threshold thresholds the targets of the bce loss, but the loss is "
                    f"{self.loss}: drop it or set loss bce")
        return None


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
