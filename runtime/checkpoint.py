"""Checkpoints that survive and identify themselves: written whole or not at all, checked when read.

A checkpoint is a dict of tensors and plain values (`torch.load(..., weights_only=True)` reads it, never code):
the model and optimizer state, the iteration, the schedule state, the RNG states, the metric window in progress,
what the inputs must be (`preprocessing`: runtime/preprocess.py; absent from older checkpoints), and two things
that make it safe to use later:

- `arch`: the architecture's identity: the spec's name, the SHA-256 of the resolved spec text, the SHA-256 of
  the compiled graph (every op, its attributes and inputs, in order) with the graph's lines, and every
  parameter's and buffer's name and shape. A checkpoint read for another architecture is refused in one line
  naming the first difference (a key, a shape, or the first op that differs), even when the state_dict keys
  happen to be the same (cifar_plain20 and cifar_resnet20 have the same keys).
- `sha256`: a checksum of everything else, computed over the content (every tensor's bytes, every value), so a
  file with flipped bytes is refused ("damaged") instead of evaluating to nonsense. Truncation and foreign files
  are refused by the reader itself.

A checksum proves nothing about structure (anyone can compute one), so a checkpoint's content is bounded before
it is walked (at most `MAX_DEPTH` levels and `MAX_VALUES` values, counting a value shared by several containers
once per place: a file of a few KB cannot make the walk exponential) and checked against the checkpoint's layout
after the checksum (`check_content`): every field archspec reads has the type it must have.

Writes go through `archspec.lang.files.atomic_path` (temporary file, fsync, rename, fsync of the folder).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

FORMAT = "archspec-checkpoint"
VERSION = 2


from archspec.lang.errors import UserError

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled



class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message is one line naming the file and the fix."""


# -- content checksum -------------------------------------------------------------------------------------------

MAX_DEPTH = 32           # containers inside containers (archspec writes 6)
MAX_VALUES = 1_000_000   # values in all, a shared part counted at every place (a ResNet-1202's last.pt: 69,125)


def check_bounded(path: Path, data: Any) -> None:
    """Refuse content that nests deeper than MAX_DEPTH, holds more than MAX_VALUES values (a container shared by
    several others counted at every place, as a walk would meet it) or contains itself: what `content_digest` and
    the readers then walk is bounded (`archspec.lang.files.tree_problem`, in linear time)."""
    from archspec.lang.files import tree_problem

    problem = tree_problem(data, MAX_DEPTH, MAX_VALUES)
    if problem is not None:
        _unbounded(path, problem)


def _unbounded(path: Path, what: str) -> None:
    raise CheckpointError(f"{path} is not a checkpoint archspec wrote: its content is {what} (damaged or made to "
                          "exhaust the reader); use the run's own best.pt or last.pt")


def content_digest(value: Any) -> str:
    """SHA-256 of a tree of dicts, lists, tensors and plain values, independent of how it is stored."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for k in sorted(value, key=lambda k: (type(k).__name__, str(k))):
            h.update(f"K{type(k).__name__}:{k}".encode())
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}".encode())
        for v in value:
            _feed(h, v)
    else:
        h.update(f"V{type(value).__name__}:{value!r};".encode())


# -- architecture identity --------------------------------------------------------------------------------------

def architecture(compiled: Compiled, model: torch.nn.Module, spec_text: str | None = None) -> dict[str, Any]:
    """The identity of `compiled` (lowered as `model`), as stored in checkpoints and run folders."""
    lines = graph_lines(compiled)
    return {
        "name": compiled.name,
        "spec_sha256": hashlib.sha256(spec_text.encode()).hexdigest() if spec_text is not None else None,
        "graph_sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(),
        "graph": lines,
        "tensors": [[k, list(v.shape)] for k, v in model.state_dict().items()],
    }


def graph_lines(compiled: Compiled) -> list[str]:
    """The compiled graph as lines, one per op (name, op, attributes, inputs, shape): what identifies it."""
    from archspec.compiler.ir import format_graph

    return format_graph(compiled.graph, locations=False).splitlines()[1:]


def first_difference(ours: list[str], theirs: list[str]) -> tuple[str, str] | None:
    """The first pair of lines that differ (an empty string where one graph has ended), or None if equal."""
    for x, y in zip(ours, theirs):
        if x != y:
            return x.strip(), y.strip()
    if len(ours) != len(theirs):
        n = min(len(ours), len(theirs))
        return (ours[n].strip() if n < len(ours) else ""), (theirs[n].strip() if n < len(theirs) else "")
    return None


def arch_difference(stored: dict[str, Any], wanted: dict[str, Any], ignore: str | None = None) -> str | None:
    """The first difference between two identities in words, or None when they are the same architecture.
    `ignore` names a node (a classifier that fine-tuning starts afresh) whose tensors and op may differ."""
    if ignore is not None:
        stored, wanted = _without(stored, ignore), _without(wanted, ignore)
    a, b = stored.get("tensors") or [], wanted.get("tensors") or []
    sa, sb = {k: tuple(s) for k, s in a}, {k: tuple(s) for k, s in b}
    for k, shape in sb.items():
        if k not in sa:
            return f"{k} {_shape(shape)} is not in the checkpoint"
        if sa[k] != shape:
            return f"{k} is {_shape(sa[k])} in the checkpoint, {_shape(shape)} in the model"
    for k, shape in sa.items():
        if k not in sb:
            return f"the checkpoint's {k} {_shape(shape)} is not in the model"
    if ignore is None and stored.get("graph_sha256") == wanted.get("graph_sha256"):
        return None
    ga, gb = stored.get("graph") or [], wanted.get("graph") or []
    diff = first_difference(ga, gb)
    if diff is None:
        return None if ignore is not None else "the graphs differ"
    if diff[0] and diff[1]:
        return f"the checkpoint has `{diff[0]}` where the model has `{diff[1]}`"
    return f"the checkpoint's graph has {len(ga)} ops, the model's {len(gb)}"


def _without(identity: dict[str, Any], node: str) -> dict[str, Any]:
    """An architecture identity without `node`'s tensors and op line."""
    return {**identity, "graph_sha256": None,
            "tensors": [t for t in identity.get("tensors") or [] if not t[0].startswith(node + ".")],
            "graph": [line for line in identity.get("graph") or [] if not line.strip().startswith(f"%{node} = ")]}


def _shape(shape: Any) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def check_architecture(path: Path, data: dict[str, Any], wanted: dict[str, Any], fix: str,
                       ignore: str | None = None) -> None:
    """Refuse a checkpoint of another architecture, naming the first difference and `fix`."""
    stored = data.get("arch") or {}
    diff = arch_difference(stored, wanted, ignore)
    if diff is not None:
        what = stored.get("name", "another network")
        if what == wanted.get("name"):
            raise CheckpointError(f"{path} holds {what} in another configuration (other --set values): {diff}; {fix}")
        raise CheckpointError(f"{path} holds {what}, not {wanted.get('name')}: {diff}; {fix}")


# -- files ----------------------------------------------------------------------------------------------------

def save(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically, with its format, version and checksum."""
    from archspec.lang.files import atomic_path

    body = {"format": FORMAT, "version": VERSION, **state}
    body["sha256"] = content_digest(body)
    buffer = io.BytesIO()  # serialise first: torch's own file writer reports a full disk as a RuntimeError
    torch.save(body, buffer)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())


def _read(path: Path, what: str = "checkpoint") -> Any:
    from archspec.compiler.export import BadFile, load_tensors

    try:
        return load_tensors(path, what)
    except BadFile as e:
        text = str(e)
        if "truncated or damaged" in text and what == "checkpoint":  # "save it again" is no advice for a run's
            text = (f"{path} is truncated or damaged (an incomplete copy?): restore it from a whole copy, or start "
                    "a new run")
        raise CheckpointError(text) from None


def _verified(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    check_bounded(path, data)
    if data.get("version") != VERSION:
        raise CheckpointError(f"{path} is checkpoint format {data.get('version')}; this archspec reads {VERSION}: "
                              "start the run again (or use an archspec of that format)")
    stored = data.pop("sha256", None)
    if stored != content_digest(data):
        raise CheckpointError(f"{path} is damaged: its content does not match its checksum (bytes changed on disk "
                              "or in a copy); restore it from a whole copy (for eval and export, the run's other "
                              "checkpoint, best.pt or last.pt, may do)")
    check_content(path, data)
    return data


# -- content: what each field must be, checked after the checksum -------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _str_or_none(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _tensor_list(v: Any) -> bool:
    return isinstance(v, list) and all(
        isinstance(t, (list, tuple)) and len(t) == 2 and isinstance(t[0], str) and isinstance(t[1], (list, tuple))
        and all(_is_int(n) and n >= 0 for n in t[1]) for t in v)


def _state_dict(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and all(isinstance(k, str) and isinstance(t, torch.Tensor)
                                                   for k, t in v.items())


def _rng(v: Any) -> bool:
    def one(r: Any) -> bool:
        return isinstance(r, dict) and isinstance(r.get("torch"), torch.Tensor) and r["torch"].dtype == torch.uint8
    return one(v) and (v.get("ranks") is None or (isinstance(v["ranks"], list) and all(one(r) for r in v["ranks"])))


def _pending(v: Any) -> bool:
    return v is None or (isinstance(v, dict) and _is_int(v.get("iteration")) and isinstance(v.get("splits"), list)
                         and all(isinstance(x, str) for x in v["splits"]))


# field -> (check, what it must be); "a.b" is field b of mapping a. Checked where present, and required as listed.
LAYOUT: dict[str, tuple[Any, str]] = {
    "arch": (lambda v: isinstance(v, dict), "a mapping"),
    "arch.name": (lambda v: isinstance(v, str), "a name"),
    "arch.spec_sha256": (_str_or_none, "a SHA-256 or null"),
    "arch.graph_sha256": (_str_or_none, "a SHA-256 or null"),
    "arch.graph": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of lines"),
    "arch.tensors": (_tensor_list, "a list of [name, shape] pairs"),
    "model": (_state_dict, "a state_dict (names to tensors)"),
    "ema": (_state_dict, "the EMA weights' state_dict (names to tensors)"),
    "iteration": (lambda v: _is_int(v) and v >= 0, "an iteration (a whole number from 0)"),
    "val_err": (_is_number, "a number"),
    "optimizer": (lambda v: isinstance(v, dict) and isinstance(v.get("state"), dict)
                  and isinstance(v.get("param_groups"), list) and all(isinstance(g, dict) for g in v["param_groups"]),
                  "an optimizer's state_dict"),
    "state": (lambda v: isinstance(v, dict), "a mapping"),
    "state.iteration": (lambda v: _is_int(v) and v >= 0, "an iteration (a whole number from 0)"),
    "state.warming_up": (lambda v: isinstance(v, bool), "true or false"),
    "state.best_val_err": (lambda v: v is None or _is_number(v), "a number or null"),
    "state.best_val_ema_err": (lambda v: v is None or _is_number(v), "a number or null"),
    "state.pending_eval": (_pending, "null or {iteration, splits}"),
    "rng": (_rng, "random generator states (byte tensors)"),
    "window": (lambda v: isinstance(v, dict) and isinstance(v.get("loss"), torch.Tensor)
               and isinstance(v.get("wrong"), torch.Tensor) and _is_int(v.get("images")) and _is_int(v.get("steps")),
               "a metric window {loss, wrong, images, steps}"),
    "recipe": (lambda v: isinstance(v, dict), "a mapping"),
    "preprocessing": (lambda v: _preprocessing_problem(v) is None, "the inputs' record (runtime/preprocess.py)"),
}
REQUIRED = ("arch", "model")  # (`preprocessing` is absent from checkpoints of archspec before it: still read)


def _preprocessing_problem(v: Any) -> str | None:
    from archspec.runtime.preprocess import problem

    return problem(v)

TRAINING = ("optimizer", "state", "state.iteration", "state.warming_up", "rng", "window")


def _field(data: dict[str, Any], name: str) -> tuple[bool, Any]:
    value: Any = data
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def check_content(path: Path, data: dict[str, Any]) -> None:
    """Refuse a checkpoint whose fields are not what archspec writes (a checksum anyone can compute proves nothing
    about them): a missing model, an `arch` that is a string, a tensor list that is a number, ..."""
    required = REQUIRED + (TRAINING if "optimizer" in data else ())
    for name, (ok, what) in LAYOUT.items():
        present, value = _field(data, name)
        if not present and name in required:
            raise CheckpointError(f"{path} is not a checkpoint archspec wrote: it has no `{name}`; use the run's "
                                  "own best.pt or last.pt")
        if present and not ok(value):
            raise CheckpointError(f"{path} is not a checkpoint archspec wrote: `{name}` is {_kind(value)}, not "
                                  f"{what}; use the run's own best.pt or last.pt")


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor"
    if value is None:
        return "null"
    import reprlib

    return f"{type(value).__name__} {reprlib.repr(value)}"


def load(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by `save`, checksum verified; anything else (missing, damaged, foreign) is a
    CheckpointError."""
    path = Path(path)
    data = _read(path)
    if not is_checkpoint(data):
        raise CheckpointError(f"{path} is not an archspec training checkpoint (use `archspec export --weights` "
                              "or `archspec eval --checkpoint` for a plain state_dict)")
    return _verified(path, data)


# the keys under which training scripts commonly save a model's state_dict
WRAPPERS = ("state_dict", "model", "model_state_dict", "module", "net")


def weights_in(path: str | os.PathLike, wanted: dict[str, Any], fix: str, ignore: str | None = None,
               what: str = "checkpoint") -> tuple[dict[str, torch.Tensor], str | None, dict[str, Any], Any]:
    """The model weights in `path` for the architecture `wanted`: from an archspec checkpoint (checksum and
    architecture checked; `fix` says what to do on a mismatch) or from a plain state_dict file (whose keys and
    shapes the caller checks when loading it), found also inside a common wrapper ({"state_dict": ...},
    {"model": ...}) and without DDP's `module.` prefix; the second value says what was unwrapped, the third is
    when a checkpoint was written (`trained_at`: its iteration; empty for a state_dict), the fourth its inputs' record
    (`preprocessing`, checked; None for a state_dict or an older checkpoint). `ignore` is a node (a classifier
    starting afresh) whose difference does not make a checkpoint another architecture."""
    path = Path(path)
    data = _read(path, what)
    if is_checkpoint(data):
        data = _verified(path, data)
        check_architecture(path, data, wanted, fix, ignore)
        return data["model"], None, trained_at(data), data.get("preprocessing")
    return (*plain_state(data, path), {}, None)


def trained_at(data: dict[str, Any]) -> dict[str, Any]:
    """When a (verified) checkpoint was written: {"iteration": N} (best.pt records it at the top, last.pt in its
    training state), or {} if it does not say."""
    at = data.get("iteration", (data.get("state") or {}).get("iteration"))
    return {"iteration": at} if isinstance(at, int) and not isinstance(at, bool) else {}


def plain_state(data: Any, path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    from archspec.compiler.export import BadFile, state_dict_of

    how = []
    if isinstance(data, dict) and not all(isinstance(v, torch.Tensor) for v in data.values()):
        for key in WRAPPERS:
            inner = data.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                data = inner
                how.append(f"the state_dict under {key!r}")
                break
    try:
        state = state_dict_of(data, path)
    except BadFile as e:
        raise CheckpointError(f"{e}; save one with torch.save(model.state_dict(), ...)") from None
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
        how.append("its keys without DDP's `module.` prefix")
    return state, ("read " + " and ".join(how)) if how else None


def training_state(path: str | os.PathLike, wanted: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint to resume from: verified, of the architecture `wanted`, holding a whole training state."""
    data = load(path)
    if not all(k in data for k in ("model", "optimizer", "state", "rng", "window")):
        raise CheckpointError(f"{path} holds weights only (a best.pt?), not a training state: --resume needs the "
                              "run's own last.pt; restore it, or start a new run (best.pt still serves eval and "
                              "export)")
    check_architecture(Path(path), data, wanted, "it is not this run's own last.pt (or spec.yaml was changed): "
                       "restore the run's files, or start a new run in another folder")
    return data


def is_checkpoint(data: Any) -> bool:
    return isinstance(data, dict) and data.get("format") == FORMAT


def rng_state(device: torch.device | None = None, dist: Any = None) -> dict[str, Any]:
    """The random generators this run uses: the CPU generator and, on CUDA, the generator of this process's own
    GPU only (not of every visible GPU: a resume on a machine with fewer GPUs must work). Under DDP (`dist`
    active) every process's states are gathered, by rank, so each process gets its own back on resume; every
    process must call this (it is a collective)."""
    own: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device is not None and device.type == "cuda":
        own["cuda"] = torch.cuda.get_rng_state(device)
    state = dict(own)
    if dist is not None and dist.active:
        ranks: list[Any] = [None] * dist.world
        torch.distributed.all_gather_object(ranks, own)
        state["ranks"] = ranks
    return state


def set_rng_state(state: dict[str, Any], device: torch.device | None = None, dist: Any = None) -> str | None:
    """Restore what `rng_state` saved, this process's own part; returns a note when it cannot be exact (a resume
    with another number of processes, or from a CUDA run onto the CPU or back)."""
    rank, world = (dist.rank, dist.world) if dist is not None and dist.active else (0, 1)
    ranks = state.get("ranks")
    own = state
    note = None
    if ranks is not None or world > 1:
        if ranks is not None and len(ranks) == world:
            own = ranks[rank]
        else:
            saved = len(ranks) if ranks is not None else 1
            note = (f"random generators: the checkpoint holds {saved} process(es), this run has {world}; each "
                    "process continues from the first one's state (augmentation is unaffected: it depends on "
                    "the seed and the iteration only)")
            own = ranks[0] if ranks else state
    torch.set_rng_state(own["torch"])
    on_cuda = device is not None and device.type == "cuda"
    if on_cuda and "cuda" in own:
        cuda = own["cuda"]
        if isinstance(cuda, (list, tuple)):  # written by an older archspec: every visible GPU's state
            cuda = cuda[0] if cuda else None
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)
    elif on_cuda != ("cuda" in own) and note is None:
        note = "random generators: the run moved between CPU and CUDA; the GPU generator starts afresh"
    return note
