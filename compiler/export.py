"""Writing a lowered module out: ONNX, TorchScript, torch.export programs; and reading state_dict files.

Every file is written next to its destination under a temporary name and renamed into place when complete,
so an interrupted or failed export never leaves a half-written file where the real one should be.
Weights are read with `torch.load(..., weights_only=True)`: a checkpoint can hold tensors, not code.
An `ExportRequest`'s `metadata` (what the caller knows of the inputs: runtime/export_inputs.py) goes into every file:
ONNX metadata_props, and `KEY.json` extra files of TorchScript archives and torch.export programs.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch
from torch import nn

from archspec.lang.errors import UserError
from archspec.lang.files import BadFile, atomic_path

if TYPE_CHECKING:  # (types only: no import at run time)
    from archspec.compiler.analysis import Compiled


# `archspec export --check`: the largest |onnxruntime - PyTorch| allowed, relative to the output scale (the
# largest |PyTorch output|, or 1 when the outputs are smaller): float32 kernels of two runtimes that agree differ
# by about 1e-6 of it.
TOLERANCE = 1e-4


class CheckFailed(UserError):
    """The ONNX file computes something else than the PyTorch module (exit code 1: the export is wrong)."""

    exit_code = 1


def load_tensors(path: str | os.PathLike, what: str) -> Any:
    """`torch.load(path, weights_only=True)`: tensors and plain values, never code. Any failure is a BadFile
    whose one line names the file and the fix; `what` says what the file should have been."""
    path = Path(path)
    if not path.is_file():
        raise BadFile(f"no such {what} file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise BadFile(f"cannot read {what} from {path}: {_load_problem(e)}") from None


def export_format(path: str | os.PathLike) -> str | None:
    """What `path` is when it holds a network exported to run elsewhere, as `archspec export` writes them:
    "an ONNX export", "a TorchScript export" or "a torch.export program"; None for anything else (a state_dict, a
    checkpoint, a file that cannot be read). Told by the content: the members of a PyTorch zip archive, and
    ONNX's protobuf opening (its IR version, then the producer's name), or the `.onnx` suffix on a file that is
    neither a zip archive nor a pickle."""
    import zipfile

    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(4)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        else:
            names = None
    except (OSError, zipfile.BadZipFile):
        return None
    if names is not None:
        if any("/code/__torch__/" in n or n.endswith("/constants.pkl") for n in names):
            return "a TorchScript export"
        if any(n.endswith(("/archive_format", "/models/model.json")) for n in names):
            return "a torch.export program"
        return None
    suffix = path.suffix.lower()
    if (head[:1] == b"\x08" and head[2:3] == b"\x12" and suffix != ".safetensors") or \
            (suffix == ".onnx" and head[:1] != b"\x80"):
        return "an ONNX export"
    return None


def state_dict_of(data: Any, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """`data` (read from `path`) if it is a state_dict: a mapping of names to tensors."""
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise BadFile(f"{path} holds no state_dict (a mapping of parameter names to tensors)")
    return data


def _load_problem(e: Exception) -> str:
    """One line for why torch.load refused a file."""
    text = str(e)
    if "TorchScript" in text:
        return "it is a TorchScript archive, not a state_dict; save one with torch.save(model.state_dict(), ...)"
    if "zip archive" in text or "central directory" in text or "EOF" in text or "truncated" in text:
        return "the file is truncated or damaged (a PyTorch zip archive that cannot be read); save it again"
    if "Unsupported global" in text or "GLOBAL" in text:
        return ("it holds Python objects, which are never loaded (weights_only=True); save a state_dict with "
                "torch.save(model.state_dict(), ...)")
    return "it is not a file written by torch.save (or it is damaged)"


def export_onnx(model: nn.Module, example: torch.Tensor, dest: str | os.PathLike, *, opset: int = 18,
                exporter: str = "dynamo", input_name: str = "image", metadata: dict[str, str] | None = None) -> None:
    """`metadata`: written into the file's metadata_props (needs the onnx package)."""
    model = model.eval()
    with atomic_path(dest) as tmp, contextlib.redirect_stdout(io.StringIO()):
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1)
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                        input_names=[input_name], output_names=["logits"],
                                        dynamic_shapes={"x": {0: batch}}, external_data=False)
            program.save(str(tmp))
        else:
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=min(opset, 17),
                              input_names=[input_name], output_names=["logits"],
                              dynamic_axes={input_name: {0: "batch"}, "logits": {0: "batch"}})
        if metadata:
            _onnx_metadata(tmp, metadata)
        _check_onnx(tmp)


def _onnx_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Add (or replace) `metadata` in an ONNX file's metadata_props."""
    try:
        import onnx
    except ImportError:
        from archspec.lang import install_hint

        raise BadFile(f"recording the inputs in an ONNX file's metadata needs the onnx package: "
                      f"{install_hint('export')}") from None
    model = onnx.load(str(path))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    for key, value in [*kept, *metadata.items()]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def _check_onnx(path: Path) -> None:
    try:
        import onnx
    except ImportError:
        return  # the check needs the `onnx` package (pip install 'archspec[export]')
    onnx.checker.check_model(onnx.load(str(path)))


def onnx_difference(model: nn.Module, path: str | os.PathLike, example: torch.Tensor) -> tuple[float, float] | None:
    """(max |onnxruntime - PyTorch|, output scale: max |PyTorch output| but at least 1) on `example`, or None
    when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
    with torch.no_grad():
        want = model.eval()(example).numpy()
    return float(abs(got - want).max()), max(1.0, float(abs(want).max()))


def _check(model: nn.Module, dest: str, example: torch.Tensor,
           tolerance: float | None) -> tuple[str, CheckFailed | None]:
    """What `--check` adds to the line of the ONNX file, and the failure when the difference is above tolerance."""
    found = onnx_difference(model, dest, example)
    if found is None:
        return "; onnxruntime not installed, not compared", None
    diff, scale = found
    relative = TOLERANCE if tolerance is None else tolerance
    allowed = relative * scale
    line = f"; onnxruntime max |difference| {diff:.2e} (tolerance {allowed:.2e})"
    if not diff <= allowed:  # a NaN difference fails too
        return line, CheckFailed(
            f"{dest} was written, but onnxruntime's output differs from PyTorch's by up to {diff:.2e}, above the "
            f"tolerance of {allowed:.2e} ({relative:g} x output scale {scale:.3g}); try --exporter torchscript or "
            "another --opset, or raise --tolerance if the difference is acceptable")
    return line, None


def export_torchscript(model: nn.Module, dest: str | os.PathLike, metadata: dict[str, str] | None = None) -> None:
    """`metadata`: extra files of the archive, `KEY.json` each (torch.jit.load(..., _extra_files=...) reads them)."""
    scripted = torch.jit.script(model.eval())
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer, _extra_files=extra_files(metadata))
    _write_bytes(dest, buffer)


def export_program(model: nn.Module, example: torch.Tensor, dest: str | os.PathLike,
                   metadata: dict[str, str] | None = None) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (example,), dynamic_shapes={"x": {0: batch}})
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files=extra_files(metadata))
    _write_bytes(dest, buffer)


def extra_files(metadata: dict[str, str] | None) -> dict[str, str]:
    """The extra files of a TorchScript archive or torch.export program that hold `metadata`: `KEY.json` (a JSON
    string for a value that is not JSON itself)."""
    import json

    out = {}
    for key, value in (metadata or {}).items():
        try:
            json.loads(value)
        except ValueError:
            value = json.dumps(value)
        out[f"{key}.json"] = value
    return out


def _write_bytes(dest: str | os.PathLike, buffer: io.BytesIO) -> None:
    """Serialised in memory first: torch's own file writers abort the process on a full disk (a C++ error);
    Python's raise an OSError, which the command line turns into one line."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporters narrate and warn about things that do not concern the user; keep errors only."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """What to export and how: a path per format (None: not that one), the ONNX options, the example batch, and
    whether to compare onnxruntime's output with PyTorch's (within `tolerance`, or the default)."""
    onnx: str | None = None
    torchscript: str | None = None
    program: str | None = None
    opset: int = 18
    exporter: str = "dynamo"
    batch: int = 2
    check: bool = False
    tolerance: float | None = None
    raw_pixels: bool = False  # the module takes raw pixels (0..255; ONNX input `pixels`), not normalised `image`s
    metadata: dict[str, str] | None = None     # recorded in every file (ONNX metadata_props, extra files)


def export_all(compiled: Compiled, request: ExportRequest, model: nn.Module | None = None) -> Iterator[str]:
    """What `archspec export` does; yields one line per file written. `model`: the lowered module with its
    weights loaded (by default freshly initialised)."""
    from archspec.compiler.lower import lower

    model = (model if model is not None else lower(compiled)).eval()
    torch.manual_seed(0)
    # the batch axis stays dynamic: an example of 1 would let the exporters fix it to 1
    example = torch.randn(max(2, request.batch), *compiled.input_shape)
    if request.raw_pixels:  # (what such a module is given: --check compares the normalisation too)
        example = torch.rand(example.shape) * 255
    jobs: list[tuple[str | None, str, Callable[[str], None]]] = [
        (request.onnx, "ONNX",
         lambda d: export_onnx(model, example, d, opset=request.opset, exporter=request.exporter,
                               input_name="pixels" if request.raw_pixels else "image", metadata=request.metadata)),
        (request.torchscript, "TorchScript", lambda d: export_torchscript(model, d, request.metadata)),
        (request.program, "torch.export program", lambda d: export_program(model, example, d, request.metadata)),
    ]
    failed: CheckFailed | None = None  # raised once every file is written
    for dest, what, run in jobs:
        if not dest:
            continue
        with _quiet():
            run(dest)
        line = f"wrote {dest} ({what}, {Path(dest).stat().st_size / 2**20:.1f} MiB)"
        if what == "ONNX" and request.check:
            more, failed = _check(model, dest, example, request.tolerance)
            line += more
        yield line
    if failed is not None:
        raise failed
