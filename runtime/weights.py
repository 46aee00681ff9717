"""Weights from elsewhere, for `--weights` (build, summary, export, eval, train) and `archspec.build(weights=...)`.

A source is one of:

- a file: a state_dict saved with `torch.save` (`.pt`, `.pth`; read with `weights_only=True`, never code), an
  archspec checkpoint (a run's `best.pt`/`last.pt`: checksum, content and architecture checked), or a
  `.safetensors` file (read with the safetensors library, its header checked whole before any tensor is read);
- published ImageNet weights by name. `torchvision` (its DEFAULT: IMAGENET1K_V2 where there is one, else V1),
  `torchvision:IMAGENET1K_V1`, or just `IMAGENET1K_V2`, for the specs with torchvision's layout and names;
  `timm` for the timm-named specs. torchvision's files go through torch.hub's cache (`$TORCH_HOME/hub/
  checkpoints`, the SHA-256 prefix in each file name checked); timm's through the Hugging Face hub's cache where
  `huggingface_hub` is installed (the file's SHA-256 checked against the hub's content address). Offline
  (`ARCHSPEC_OFFLINE=1` or `HF_HUB_OFFLINE=1`, or no network), a missing file is an error naming the URL and
  where to put it.

Named weights only go into the architecture they were trained for: the spec's convolutions, BN and pooling must
be those of the shipped spec of that name (so `--set stride_on=1x1` on resnet50_tv is refused, not silently
wrong). Any spec takes a file. A classifier of another size (`--set num_classes=10`) keeps the rest of the
network and starts the classifier afresh, which the result says in one line; any other mismatch is an error
naming the first key that differs and both shapes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from archspec.lang.errors import UserError
from archspec.runtime.published import Published, PublishedError, find, is_named

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled


HUB_FILE = "model.safetensors"  # timm's weights in their Hugging Face repos


class WeightsError(UserError):
    """Weights that cannot be used: one line naming the file or source and the fix (exit code 2)."""


@dataclass
class Weights:
    state: dict[str, torch.Tensor]
    origin: str                       # what to print: "torchvision IMAGENET1K_V2 (resnet50-11ad3fa6.pth)"
    sha256: str | None = None         # of the file, where one was read
    notes: list[str] = field(default_factory=list)
    trained: dict[str, Any] = field(default_factory=dict)  # a run's checkpoint: {"iteration": N}
    preprocessing: dict[str, Any] | None = None  # a run's checkpoint: its inputs' record (runtime.preprocess), checked


FIX = "use the spec it was trained with (its run folder's spec.yaml)"


def fetch(source: str | os.PathLike, compiled: Compiled, model: torch.nn.Module, fresh_head: bool = True,
          fix: str = FIX) -> Weights:
    """The weights `source` names, for `compiled` (lowered as `model`): read, hashed and checked, not loaded.
    With `fresh_head`, a run's checkpoint whose classifier has another size is still this architecture; `fix` is
    what a checkpoint of another architecture is told to do."""
    text = os.fspath(source)
    if is_named(text) and not Path(text).exists():
        return _named(text, compiled)
    return read_file(Path(text), compiled, model, fresh_head, fix)


def load_into(model: torch.nn.Module, compiled: Compiled, source: str | os.PathLike, fresh_head: bool = True,
              fix: str = FIX) -> Weights:
    """Fetch the weights `source` names and load them into `model`; the result's `notes` say what changed. Without
    `fresh_head` (eval, export), a classifier of another size is refused rather than started afresh."""
    weights = fetch(source, compiled, model, fresh_head, fix)
    weights.notes.extend(apply(model, compiled, weights, fresh_head))
    return weights


# -- files ------------------------------------------------------------------------------------------------------

def read_file(path: Path, compiled: Compiled, model: torch.nn.Module, fresh_head: bool = True,
              fix: str = FIX) -> Weights:
    if not path.is_file():
        hint = " (named sources: torchvision, torchvision:IMAGENET1K_V1, IMAGENET1K_V2, timm)" if os.sep not in str(
            path) and not path.suffix else ""
        raise WeightsError(f"no such weights file: {path}{hint}")
    refuse_export(path)
    if path.suffix == ".safetensors":  # the header is checked (and the tensors' fit) before the data is read
        state = read_safetensors(path, lambda meta: check_fit(model, compiled, str(path), meta, fresh_head))
        return Weights(state, str(path), file_sha256(path))
    digest = file_sha256(path)
    from archspec.runtime import checkpoint

    state, note, trained, inputs = checkpoint.weights_in(path, checkpoint.architecture(compiled, model), fix,
                                                         ignore=classifier(compiled) if fresh_head else None,
                                                         what="weights")
    return Weights(dict(state), str(path), digest, [note] if note else [], trained, inputs)


def refuse_export(path: Path, use: str = "loaded as weights",
                  instead: str = "the checkpoint or state_dict file it was exported from (a run's best.pt or last.pt, "
                  "or a .pt, .pth or .safetensors state_dict)") -> None:
    """A WeightsError when `path` is a network exported to run elsewhere (ONNX, TorchScript, torch.export), which
    cannot be `use`d: it holds no weights to load into a spec's network; `instead` says what to give."""
    from archspec.compiler.export import export_format

    kind = export_format(path)
    if kind is not None:
        raise WeightsError(f"{path} is {kind}, which cannot be {use}: give {instead}")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


MAX_SAFETENSORS_HEADER = 100 * 2**20  # bytes of JSON header (the safetensors library's own limit)


def read_safetensors(path: Path, before_loading: Any = None) -> dict[str, torch.Tensor]:
    """A .safetensors file, read with the safetensors library: its header (8 bytes of length, then JSON naming each
    tensor's dtype, shape and byte range) is checked whole before any tensor is read: lengths, dtypes, shapes,
    offsets that tile the data exactly (no overlap, gap or trailing byte), a bounded nesting depth, and (here) no
    name given twice. `before_loading(meta)` sees the tensors as shapes and dtypes only (`meta` tensors, no bytes)
    and may refuse them, so a file that cannot fit is refused before its data is read. Anything wrong is one line."""
    from safetensors import SafetensorError, safe_open

    bad = f"{path} is not a readable .safetensors file"
    header, start = _safetensors_header(path, bad)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            names = list(f.keys())
            meta = {}
            for name in names:
                part = f.get_slice(name)
                dtype = SAFETENSORS_DTYPES.get(part.get_dtype())
                if dtype is None:
                    raise WeightsError(f"{bad}: {name} is {part.get_dtype()}, which no network's weights are "
                                       f"(archspec reads {', '.join(SAFETENSORS_DTYPES)})")
                meta[name] = torch.empty(part.get_shape(), dtype=dtype, device="meta")
            if not meta:
                raise WeightsError(f"{path} holds no tensors")
            if before_loading is not None:
                before_loading(meta)
            return {name: f.get_tensor(name) for name in names}
    except SafetensorError as e:
        raise WeightsError(f"{bad}: {_safetensors_problem(str(e), header, start, path)}") from None


SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def _safetensors_header(path: Path, bad: str) -> tuple[Any, int]:
    """The header's JSON, read with a bounded length and refusing a name given twice (which the format's library
    lets through, the last one winning), and where the tensors' bytes start; None for a header that is not JSON
    (the library says why)."""
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else 0
        if len(head) < 8 or n > MAX_SAFETENSORS_HEADER:
            return None, 8 + n  # the library refuses these, in its words
        text = f.read(n)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        twice = next((k for k, _ in pairs if k in seen or seen.add(k)), None)  # (set.add returns None)
        if twice is not None:
            raise WeightsError(f"{bad}: its header names {twice} twice (which one is meant?); write it again with "
                               "safetensors' save_file")
        return dict(pairs)

    try:
        return json.loads(text, object_pairs_hook=unique), 8 + n
    except (ValueError, RecursionError):
        return None, 8 + n


def _safetensors_problem(text: str, header: Any, start: int, path: Path) -> str:
    """One line for the safetensors library's complaint `text`, in the user's terms where it is about the size."""
    text = text.replace("Error while deserializing header: ", "")
    if "not fully covered" in text and isinstance(header, dict):
        ends = [e["data_offsets"][1] for k, e in header.items() if k != "__metadata__" and isinstance(e, dict)
                and isinstance(e.get("data_offsets"), list) and len(e["data_offsets"]) == 2]
        size = path.stat().st_size
        need = start + max((e for e in ends if isinstance(e, int)), default=0)
        if size < need:
            return f"its header needs {need:,} bytes and the file has {size:,} (truncated?)"
        if size > need:
            return f"{size - need:,} bytes follow its last tensor (damaged, or another file appended?)"
        return "its tensors' byte ranges overlap or leave gaps (damaged)"
    if text in ("header too small", "invalid header length"):
        return f"{text} (truncated?)"
    return text


def write_safetensors(path: Path, state: dict[str, torch.Tensor]) -> None:
    """Write `state` as .safetensors (with the safetensors library), whole or not at all."""
    from safetensors.torch import save_file

    from archspec.lang.files import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in state.items()}, str(tmp))  # unshared


# -- named sources ----------------------------------------------------------------------------------------------

def offline() -> bool:
    return os.environ.get("ARCHSPEC_OFFLINE", "") == "1" or os.environ.get("HF_HUB_OFFLINE", "") == "1"


def _named(source: str, compiled: Compiled) -> Weights:
    try:
        record = find(source, compiled.name)
    except PublishedError as e:
        raise WeightsError(str(e)) from None
    check_structure(compiled, compiled.name)
    return _torchvision(record) if record.source == "torchvision" else _timm(record)


def _torchvision(record: Published) -> Weights:
    path = Path(torch.hub.get_dir()) / "checkpoints" / record.file
    prefix = record.sha256_prefix or ""
    if not path.is_file():
        _download(record.url, path, prefix)
    digest = file_sha256(path)
    if not digest.startswith(prefix):
        raise WeightsError(f"{path} does not match its published hash (sha256 {digest[:8]}..., expected "
                           f"{prefix}...): it is damaged or another file; delete it to download it again")
    from archspec.compiler.export import load_tensors, state_dict_of

    state = state_dict_of(load_tensors(path, "weights"), path)
    return Weights(dict(state), record.origin, digest)


def _download(url: str, path: Path, prefix: str) -> None:
    where = f"put the file there by hand: {path} (torch.hub's cache; TORCH_HOME moves it)"
    if offline():
        raise WeightsError(f"{path.name} is not in the cache and downloads are off (offline): fetch {url} and {where}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=False)
    except RuntimeError as e:  # torch.hub's hash check
        raise WeightsError(f"{url} did not match its published hash ({e}); try again later") from None
    except OSError as e:
        raise WeightsError(f"cannot download {url} ({getattr(e, 'reason', None) or e}); {where}") from None


def unreachable(host: str) -> str | None:
    """Why `host` cannot be reached on port 443 (within 10 s), or None when it can."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=10).close()
    except OSError as e:
        return str(e) or type(e).__name__
    return None


def hub_cache() -> Path:
    """The Hugging Face hub's cache folder, as huggingface_hub finds it (read now, so tests can move it)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _timm(record: Published) -> Weights:
    repo, url = record.file, record.url
    try:
        import huggingface_hub
    except ImportError:
        from archspec.lang import install_hint

        raise WeightsError(f"timm's weights come through the Hugging Face hub: pip install huggingface_hub "
                           f"({install_hint('hub')}), or download {url} and pass the file: --weights FILE") from None
    cache = hub_cache()
    found = huggingface_hub.try_to_load_from_cache(repo, HUB_FILE, cache_dir=cache)
    if not isinstance(found, str):
        if offline():
            raise WeightsError(f"{repo} is not in the Hugging Face cache ({cache / ('models--' + repo.replace('/', '--'))})"
                               f" and downloads are off (offline): download {url} and pass the file: --weights FILE")
        why = unreachable("huggingface.co")
        if why:  # the hub's client would retry for half a minute
            raise WeightsError(f"cannot download {url} ({why}); download it by hand and pass the file: --weights FILE")
        try:
            found = huggingface_hub.hf_hub_download(repo, HUB_FILE, cache_dir=cache)
        except Exception as e:  # noqa: BLE001 - the hub raises many kinds (HTTP, offline, not found)
            raise WeightsError(f"cannot download {url} ({type(e).__name__}); download it by hand and pass the "
                               "file: --weights FILE") from None
    path = Path(found)
    digest = file_sha256(path)
    published = Path(os.path.realpath(path)).name  # the cache stores each file under its content address
    if re.fullmatch(r"[0-9a-f]{64}", published) and published != digest:
        raise WeightsError(f"{path} does not match its published hash (sha256 {digest[:8]}..., expected "
                           f"{published[:8]}...): it is damaged; delete {os.path.realpath(path)} to download it again")
    return Weights(read_safetensors(path), record.origin, digest)


# -- the inputs published weights expect ---------------------------------------------------------------------------

def expected_inputs(source: str | None, spec_name: str, dataset: str) -> dict[str, Any]:
    """The recipe fields that named weights were trained and evaluated with: the normalisation always, and the
    evaluation's resize and crop on an image folder. Empty for a file (its inputs are the user's to know) and for
    a spec without such weights (refused when they are fetched)."""
    if source is None or not is_named(source) or Path(source).exists():
        return {}
    try:
        record = find(source, spec_name)
    except PublishedError:
        return {}
    fields: dict[str, Any] = {"dataset.normalize": record.normalize}
    if dataset == "imagenet_folder":
        fields.update({"eval.crop": record.crop, "eval.resize": record.resize})
    return fields


# -- checking and loading ---------------------------------------------------------------------------------------

def structure(compiled: Compiled) -> list[str]:
    """The ops that make an architecture what weights were trained for, one line each (the classifier's width
    and BN's initialisation left out: the first may change, the second is overwritten)."""
    from archspec.compiler.ir import describe_attrs

    g = compiled.graph
    head = classifier(compiled)
    lines = []
    for name in g:
        node = g.node(name)
        if not node.opdef.structural:
            continue
        attrs = {k: v for k, v in node.attrs.items() if k != "zero_init" and not (name == head and k == "out")}
        lines.append(f"{name} = {node.op}[{describe_attrs(node.op, attrs)}]")
    return lines


def check_structure(compiled: Compiled, shipped_name: str) -> None:
    """Refuse named weights for a spec whose structure is not the shipped one of that name."""
    from archspec.compiler.analysis import compile_spec

    reference = compile_spec(shipped_name)
    ours, theirs = structure(compiled), structure(reference)
    if ours == theirs:
        return
    for a, b in zip(ours, theirs):
        if a != b:
            raise WeightsError(f"the published weights of {shipped_name} were trained for `{b}`, and this spec has "
                               f"`{a}`; drop the --set that changes it, or start from a file (--weights FILE)")
    raise WeightsError(f"the published weights of {shipped_name} were trained for {len(theirs)} such ops, and "
                       f"this spec has {len(ours)}; drop the --set that changes it")


def classifier(compiled: Compiled) -> str:
    """The node that holds the classifier's weights: the last node with parameters before the output."""
    g = compiled.graph
    name = g.output
    while not g.facts(name).params and g.node(name).inputs:
        name = g.node(name).inputs[0]
    return name


def apply(model: torch.nn.Module, compiled: Compiled, weights: Weights, fresh_head: bool = True) -> list[str]:
    """Load `weights` into `model`. Keys, shapes and kinds of number must match (see `check_fit`); the returned
    notes say what changed (a classifier started afresh)."""
    state = weights.state
    fresh = check_fit(model, compiled, weights.origin, state, fresh_head)
    model.load_state_dict({k: v for k, v in state.items() if k not in fresh}, strict=False)
    if not fresh:
        return []
    head = classifier(compiled)
    theirs, mine = state[head + ".weight"].shape[0], model.state_dict()[head + ".weight"].shape[0]
    return [f"{head} starts afresh: it has {mine} outputs here, {theirs} in the weights; the rest is loaded"]


def check_fit(model: torch.nn.Module, compiled: Compiled, origin: str, state: dict[str, torch.Tensor],
              fresh_head: bool = True) -> list[str]:
    """Refuse `state` (tensors, or `meta` tensors that carry only shapes and dtypes) unless it fits `model`: the
    same keys and shapes, and floating point where the model has it (so integers read as weights are refused),
    except a classifier of another size (its keys returned, to start afresh, with `fresh_head`; refused without)
    and BN's `num_batches_tracked` (absent from old files)."""
    own = model.state_dict()
    head = classifier(compiled)
    problems = _mismatches(own, state)
    fresh = [k for k, why in problems if k.startswith(head + ".") and k in own and k in state and " in the weights, "
             in why and state[k].dtype.is_floating_point]
    rest = [(k, why) for k, why in problems if k not in fresh]
    if rest:
        k, why = rest[0]
        more = f" (and {len(rest) - 1} more)" if len(rest) > 1 else ""
        raise WeightsError(f"{origin} does not fit {compiled.name}: {k} {why}{more}; use weights of this "
                           "architecture")
    if fresh and not fresh_head:
        theirs, mine = state[head + ".weight"].shape[0], own[head + ".weight"].shape[0]
        raise WeightsError(f"{origin} has {theirs} outputs in {head}, and this {compiled.name} {mine}: a "
                           f"classifier started afresh would be random here; drop --set num_classes (to fine-tune "
                           "to other classes, use archspec train --weights)")
    return fresh


def _mismatches(own: dict[str, torch.Tensor], state: dict[str, torch.Tensor]) -> list[tuple[str, str]]:
    out = []
    for k, v in own.items():
        if k not in state:
            if not k.endswith("num_batches_tracked"):
                out.append((k, f"{_shape(v)} is missing from the weights"))
        elif tuple(state[k].shape) != tuple(v.shape):
            out.append((k, f"is {_shape(state[k])} in the weights, {_shape(v)} in the model"))
        elif state[k].dtype.is_floating_point != v.dtype.is_floating_point or \
                (state[k].dtype == torch.bool) != (v.dtype == torch.bool):
            out.append((k, f"is {_dtype(state[k])} in the weights, {_dtype(v)} in the model (another kind of "
                           "number: the file's bytes would be misread)"))
    out.extend((k, f"{_shape(v)} in the weights is not in the model") for k, v in state.items() if k not in own)
    return out


def _dtype(t: torch.Tensor) -> str:
    return str(t.dtype).replace("torch.", "")


def _shape(t: torch.Tensor) -> str:
    return "x".join(map(str, t.shape)) if t.dim() else "scalar"


def describe(weights: Weights) -> str:
    """One line for the user: where the weights came from, and what changed."""
    text = f"weights: {weights.origin}" + (f", sha256 {weights.sha256[:12]}" if weights.sha256 else "")
    return "; ".join([text, *weights.notes])


__all__ = ["Weights", "WeightsError", "apply", "check_fit", "describe", "fetch", "load_into", "read_safetensors",
           "refuse_export", "write_safetensors"]
