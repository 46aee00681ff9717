"""The options of `archspec train` and `archspec eval`, each declared once.

- `RunOptions`: how to run (bf16, channels_last, ...). A frozen record: its fields make the `--x/--no-x` flags, the
  `options` of run.json, and what a resumed run keeps (the run's own are the default; one given on `--resume`
  holds from there on).
- `RECIPE_OPTIONS`: the flags that set one recipe field each (`--batch-size` sets `batch_size`), whether
  `archspec eval` has them too, and how a resumed run refuses them (they would change the run). What a flag takes
  (type, range, choices, default help) is its field's declaration in `archspec.lang.recipe_fields`; `kind` names
  it in one word.

A new run option is one field of `RunOptions` (plus its use); a new recipe flag is one `RecipeOption` (plus its
use, where the recipe field needs more than being set).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from archspec.lang.recipe_fields import FieldSpec, field_at


def _option(help: str) -> Any:
    return field(default=False, metadata={"help": help})


@dataclass(frozen=True)
class RunOptions:
    """How a run is carried out; none of these changes what is learned, so a resumed run may change them."""
    bf16: bool = _option("bfloat16 autocast")
    channels_last: bool = _option("channels_last memory format")
    compile: bool = _option("torch.compile the model")
    checkpoint_activations: bool = _option("keep only each stage's inputs and recompute the rest in backward (less "
                                           "memory)")
    sync_bn: bool = _option("under torchrun on CUDA: batch norm over the global batch (SyncBatchNorm)")
    tensorboard: bool = _option("also write scalars as TensorBoard events in RUN/tensorboard/ (needs the "
                                "tensorboard package)")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def help(cls, name: str) -> str:
        return next(f.metadata["help"] for f in fields(cls) if f.name == name)

    @classmethod
    def from_stored(cls, stored: Any) -> "RunOptions":
        """The options run.json holds (absent ones off)."""
        stored = stored if isinstance(stored, dict) else {}
        return cls(**{k: bool(stored.get(k, False)) for k in cls.names()})

    def as_dict(self) -> dict[str, bool]:
        return {k: getattr(self, k) for k in self.names()}


@dataclass(frozen=True, kw_only=True)
class RecipeOption:
    """A flag that sets one recipe field: `--batch-size 64` sets `batch_size`. What it takes (type, range,
    choices) is the field's declaration (`archspec.lang.recipe_fields`), read through `declared`."""
    name: str                      # the keyword: batch_size is --batch-size
    field: str                     # the recipe field it sets ("schedule.length")
    help: str = ""                 # (default: the field's doc)
    eval: bool = False             # `archspec eval` has it too
    metavar: str | None = None
    unit: str = "iter"             # a field counted in the schedule's unit: the unit the flag counts in
    drops: bool = False            # a flag without a value that removes the field (--no-warmup)

    @property
    def declared(self) -> FieldSpec:
        return field_at(self.field)

    @property
    def kind(self) -> str:
        """What the flag takes, from the declaration: count (a whole number >= 1), count0 (>= 0), real (> 0),
        real0 (>= 0), fraction ([0, 1)), increasing (A,B,...), flag; a choice is named by its option (views,
        dataset)."""
        spec = self.declared
        if self.drops:
            return "flag"
        if spec.kind == "list":
            return "increasing"
        if spec.kind == "choice":
            return self.name
        if spec.whole(self.unit):
            return "count" if spec.minimum == 1 else "count0"
        if spec.in_unit or spec.minimum == 0 and spec.low_open:
            return "real"
        return "fraction" if spec.maximum == 1 and spec.high_open else "real0"


RECIPE_OPTIONS: tuple[RecipeOption, ...] = (
    RecipeOption(name="iters", field="schedule.length", help="train for N iterations (milestones scale along)"),
    RecipeOption(name="epochs", field="schedule.length", unit="epoch", help="train for N epochs (milestones scale "
                 "along)"),
    RecipeOption(name="batch_size", field="batch_size", eval=True),
    RecipeOption(name="lr", field="optimizer.lr"),
    RecipeOption(name="momentum", field="optimizer.momentum"),
    RecipeOption(name="weight_decay", field="optimizer.weight_decay"),
    RecipeOption(name="milestones", field="schedule.milestones", metavar="A,B",
                 help="lr steps, in the schedule's unit, increasing"),
    RecipeOption(name="no_warmup", field="schedule.warmup", drops=True, help="drop the recipe's warm-up"),
    RecipeOption(name="eval_interval", field="eval.interval"),
    RecipeOption(name="log_interval", field="log_interval"),
    RecipeOption(name="train_size", field="dataset.train_size", eval=True,
                 help="CIFAR-10/100: images to train on (the rest of 50k validate; eval: as in training, so that val "
                 "is the same images)"),
    RecipeOption(name="val_size", field="dataset.val_size", eval=True),
    RecipeOption(name="views", field="eval.views", eval=True, help="evaluation views: 1, or 10-crop"),
    RecipeOption(name="dataset", field="dataset.name", eval=True),
)
# the recipe field each option sets, by option
OPTION_FIELDS: dict[str, str] = {o.name: o.field for o in RECIPE_OPTIONS}
# the options `resolve` sets by their field alone (the others change the schedule in their own way)
PLAIN_OPTIONS: dict[str, tuple[str, ...]] = {o.name: tuple(o.field.split(".")) for o in RECIPE_OPTIONS
                                             if o.name not in ("iters", "epochs", "milestones", "no_warmup")}
DATASETS: tuple[str, ...] = field_at("dataset.name").choices  # (the data layer checks a DataConfig's name by it)
