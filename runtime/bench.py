"""`archspec bench`: the inference and training speed of specs, in the manner of timm's benchmark.py, with the
torchvision or timm twin of each (runtime/twins.py) measured in the same run with the same settings.

For every spec, mode (infer, train) and batch size, on synthetic tensors of the spec's input shape: `warmup`
untimed steps, then `steps` timed ones (or as many as fit in `seconds`). An inference step is a forward pass under
no_grad; a training step is zero_grad, forward, cross-entropy against random labels, backward and an SGD step
(momentum 0.9), as timm's train benchmark does. Reported per measurement:
- images/s: the images of the timed steps over their wall time (the device synchronised before and after);
- latency: the median and 90th percentile of the steps' times, in ms per batch (CUDA: events recorded around each
  step, so the queue keeps running; CPU: the clock);
- peak memory: CUDA, torch.cuda.max_memory_allocated over the warm-up and timed steps (weights, gradients,
  optimizer state, activations, the batch; only the model measured is on the GPU); CPU, the growth of the
  process's peak resident set over those steps above its size when they began (Linux: the peak is reset through
  /proc/self/clear_refs, and the heap trimmed first; elsewhere not measured).
The archspec model and its twin are measured one after the other at each point (with `rounds` > 1, again and again
in alternating order, each one's fastest round kept); the ratio is archspec's images/s over the twin's (above 1:
archspec is faster).
"""

from __future__ import annotations

import gc
import math
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from archspec.runtime.inputs import pick_device
from archspec.runtime.request import RunError
from archspec.runtime.twins import Twin, twin_for

DEFAULT_WARMUP, DEFAULT_STEPS = 10, 40  # timm's benchmark.py
MODES = ("infer", "train")


@dataclass(frozen=True)
class BenchRequest:
    specs: tuple[str, ...]
    overrides: tuple[str, ...] = ()           # --set, for every spec
    input_shape: str | None = None            # --input (default: each spec's)
    batch_sizes: tuple[int, ...] | None = None  # None: each spec's recipe batch size
    modes: tuple[str, ...] = MODES
    device: str | None = None                 # None: cuda if present
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    warmup: int = DEFAULT_WARMUP
    steps: int | None = None                  # None (and no `seconds`): DEFAULT_STEPS
    seconds: float | None = None              # time the steps that fit in this many seconds (at least one)
    twin: str = "auto"                        # auto, none, torchvision:NAME, timm:NAME
    rounds: int = 1                           # each model measured this often, the order alternating; its fastest kept


@dataclass
class BenchResult:
    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    twins: dict[str, str] = field(default_factory=dict)  # spec: the twin's label, or why there is none
    memory: str = ""                                      # what peak_mem_mb measures

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


TwinHook = Callable[[str, Any], "Twin | str"]  # (spec name, compiled) -> a twin or the reason there is none


def bench(req: BenchRequest, sources: Any = None, log: Callable[[str], None] | None = None,
          twin_hook: TwinHook | None = None) -> BenchResult:
    """Measure every spec of `req` (and its twin); `log` gets one line per measurement; `twin_hook` replaces the
    torchvision/timm lookup (tests, benchmarks/gpu_check.py's hand-written fallback)."""
    device = pick_device(req.device)
    check(req, device)
    if req.twin not in ("auto", "none") and len(req.specs) > 1:
        raise RunError(f"--twin {req.twin} names the twin of one spec, and {len(req.specs)} are given: bench them one "
                       "at a time, or leave --twin out for each one's own")
    log = log or (lambda text: None)
    from archspec.runtime.plan import load_graph

    graphs = [load_graph(s, list(req.overrides), req.input_shape, sources) for s in req.specs]  # all checked first
    result = BenchResult(settings=_settings(req, device), memory=memory_kind(device))
    cudnn = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        for spec, compiled in graphs:
            result.rows.extend(_bench_spec(spec, compiled, req, device, log, twin_hook, result.twins))
            _free(device)
    finally:
        torch.backends.cudnn.benchmark = cudnn
    return result


def _bench_spec(spec: Any, compiled: Any, req: BenchRequest, device: torch.device, log: Callable[[str], None],
                twin_hook: TwinHook | None, twins: dict[str, str]) -> list[dict[str, Any]]:
    """The rows of one spec and its twin (whose label, or the reason there is none, goes into `twins`)."""
    from archspec.compiler.lower import lower

    classes = compiled.output_shape[0] if len(compiled.output_shape) == 1 else None
    twin = (twin_hook(spec.name, compiled) if twin_hook is not None
            else twin_for(req.twin, spec.name, compiled.params, classes, req.overrides))
    twins[spec.name] = twin.label if isinstance(twin, Twin) else twin
    torch.manual_seed(0)
    models = [("archspec", lower(compiled), compiled.params)]
    if isinstance(twin, Twin):
        models.append((twin.label, twin.module, sum(p.numel() for p in twin.module.parameters())))
    shape = tuple(spec.input_shape)
    batches = req.batch_sizes or (int((spec.recipe or {}).get("batch_size") or 1),)
    # untimed: the process's first steps set up libraries and caches (not the first model's cost), and a batch
    # that cannot train is refused before anything is measured
    _prime(models[0][1], spec.name, shape, classes, min(2, *batches), req.modes, device)
    out = []
    for mode in req.modes:
        for batch in batches:
            rows: list[dict[str, Any]] = [{} for _ in models]
            for turn in range(req.rounds):  # a-t, then t-a, ...: drift in the machine's load hits both
                for i in (range(len(models)) if turn % 2 == 0 else reversed(range(len(models)))):
                    label, model, params = models[i]
                    row = _measure_one(label, model, params, spec.name, shape, classes, mode, batch, req, device, log)
                    if row["images_per_s"] > rows[i].get("images_per_s", -1.0):
                        rows[i] = row
            if len(rows) == 2:
                rows[0]["ratio"] = round(rows[0]["images_per_s"] / rows[1]["images_per_s"], 3)
            out.extend(rows)
    return out


def check(req: BenchRequest, device: torch.device) -> None:
    """Refuse settings that cannot be measured as asked (RunError, one line)."""
    if req.compile:
        problem = compile_problem(device)
        if problem:
            raise RunError(problem)
        if req.warmup == 0:
            raise RunError("--compile with --warmup 0 would time the compilation: give --warmup 1 or more")
    if req.steps is not None and req.seconds is not None:
        raise RunError("--steps and --seconds both say how long to measure: give one")


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile cannot run here, or None (a probe that fails in an unforeseen way refuses nothing)."""
    import platform

    try:
        from torch._dynamo import is_dynamo_supported

        if not is_dynamo_supported():
            return (f"--compile: torch.compile does not support Python {platform.python_version()} with torch "
                    f"{torch.__version__} here: leave --compile out")
    except ImportError:
        return f"--compile: this torch ({torch.__version__}) has no torch.compile: leave --compile out"
    if device.type == "cuda":
        try:
            from torch.utils._triton import has_triton

            if not has_triton():
                return "--compile on CUDA needs triton, which is not importable here: pip install triton, or leave " \
                       "--compile out"
        except ImportError:
            pass
        return None
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except (ImportError, AttributeError):
        return None
    except Exception as e:  # noqa: BLE001 - inductor's InvalidCxxCompiler and kin
        return (f"--compile on a CPU needs a C++ compiler, and none was found ({type(e).__name__}): install g++ "
                "(or set CXX), or leave --compile out")
    return None


def memory_kind(device: torch.device) -> str:
    if device.type == "cuda":
        return "torch.cuda.max_memory_allocated over the warm-up and timed steps (weights, gradients, optimizer " \
               "state, activations, batch)"
    if _can_reset_peak_rss():
        return "growth of the process's peak resident set over the warm-up and timed steps (CPU; the weights " \
               "already resident are not counted)"
    return "not measured (a CPU peak needs Linux's /proc/self/clear_refs)"


def _settings(req: BenchRequest, device: torch.device) -> dict[str, Any]:
    return {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({torch.get_num_threads()} threads)", "torch": torch.__version__, "bf16": req.bf16,
            "channels_last": req.channels_last, "compile": req.compile, "warmup": req.warmup,
            "steps": None if req.seconds is not None else (req.steps or DEFAULT_STEPS), "seconds": req.seconds,
            "rounds": req.rounds,
            "set": list(req.overrides), "input": req.input_shape, "twin": req.twin}


# -- one measurement --------------------------------------------------------------------------------------------

def _measure_one(label: str, model: torch.nn.Module, params: int, spec_name: str, shape: tuple[int, ...],
                 classes: int | None, mode: str, batch: int, req: BenchRequest, device: torch.device,
                 log: Callable[[str], None]) -> dict[str, Any]:
    fmt = torch.channels_last if req.channels_last and len(shape) == 3 else torch.contiguous_format
    model = model.to(device).to(memory_format=fmt)
    gen = torch.Generator(device="cpu").manual_seed(batch)
    x = torch.randn((batch, *shape), generator=gen).to(device).contiguous(memory_format=fmt)
    y = torch.randint(0, classes or 1, (batch,), generator=gen).to(device)
    if req.compile:
        torch._dynamo.reset()  # a fresh graph for this model, mode and batch (no recompile limit, no stale guards)
    runner = torch.compile(model) if req.compile else model
    step, cleanup = _step(runner, model, mode, x, y, classes, req.bf16, device)
    memory = _Peak(device)
    try:
        with _batch_norm_hint(f"{label} of {spec_name}", batch):
            for _ in range(req.warmup):
                step()
            times, wall = _timed(step, req, device)
        peak = memory.read()
    finally:
        cleanup()
        _off_device(model, device)
    row = {"spec": spec_name, "model": label, "mode": mode, "batch": batch, "input": "x".join(map(str, shape)),
           "images_per_s": round(batch * len(times) / wall, 2), "latency_median_ms": round(percentile(times, 50), 3),
           "latency_p90_ms": round(percentile(times, 90), 3), "peak_mem_mb": None if peak is None else round(peak, 1),
           "steps": len(times), "params": params, "ratio": None}
    log(f"bench: {spec_name} {label} {mode} batch {batch}: {row['images_per_s']:,.1f} images/s, median "
        f"{row['latency_median_ms']:.2f} ms, p90 {row['latency_p90_ms']:.2f} ms")
    return row


def _prime(model: torch.nn.Module, spec_name: str, shape: tuple[int, ...], classes: int | None, batch: int,
           modes: tuple[str, ...], device: torch.device) -> None:
    """One plain step of each mode at `batch` (1 or 2), untimed."""
    model.to(device)
    x, y = torch.randn((batch, *shape), device=device), torch.zeros(batch, dtype=torch.long, device=device)
    for mode in modes:
        step, cleanup = _step(model, model, mode, x, y, classes, False, device)
        with _batch_norm_hint(f"archspec of {spec_name}", batch):
            step()
        cleanup()
    _off_device(model, device)


def _off_device(model: torch.nn.Module, device: torch.device) -> None:
    """On CUDA, only the model being measured is on the GPU: its peak holds its own weights, not its twin's."""
    if device.type == "cuda":
        model.to("cpu")
        torch.cuda.empty_cache()


@contextmanager
def _batch_norm_hint(what: str, batch: int) -> Iterator[None]:
    """Batch norm's ValueError at a batch of one value per channel, as a RunError that says what to change."""
    try:
        yield
    except ValueError as e:
        if "more than 1 value per channel" not in str(e):
            raise
        raise RunError(f"{what} cannot train at batch {batch}: batch norm sees one value per channel (the last "
                       "feature map is 1x1): give a batch of 2 or more for --mode train, or a larger --input") from None


def _step(runner: Any, model: torch.nn.Module, mode: str, x: torch.Tensor, y: torch.Tensor, classes: int | None,
          bf16: bool, device: torch.device) -> tuple[Callable[[], Any], Callable[[], None]]:
    """The step to time and what frees its state afterwards."""
    def autocast() -> Any:
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    if mode == "infer":
        model.eval()

        def infer() -> Any:
            with torch.no_grad(), autocast():
                return runner(x)
        return infer, lambda: None
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def train() -> Any:
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = runner(x)
        out = out.float()
        loss = (torch.nn.functional.cross_entropy(out, y) if classes is not None and out.dim() == 2
                else out.square().mean())
        loss.backward()
        opt.step()
        return loss

    def cleanup() -> None:
        opt.state.clear()
        model.zero_grad(set_to_none=True)
    return train, cleanup


def _timed(step: Callable[[], Any], req: BenchRequest, device: torch.device) -> tuple[list[float], float]:
    """The timed steps' seconds each, and the wall time of all of them."""
    cuda = device.type == "cuda"
    steps = None if req.seconds is not None else (req.steps or DEFAULT_STEPS)
    marks: list[tuple[Any, Any]] = []
    times: list[float] = []
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    while (len(marks) + len(times) < steps) if steps is not None else (
            not (marks or times) or time.perf_counter() - start < req.seconds):
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            step()
            end.record()
            marks.append((begin, end))
        else:
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    if cuda:
        torch.cuda.synchronize(device)
        times = [b.elapsed_time(e) / 1000 for b, e in marks]
    return times, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile of `values` in ms (linear between the nearest ranks, as numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return 1000 * (ordered[low] + (ordered[high] - ordered[low]) * (pos - low))


# -- memory -----------------------------------------------------------------------------------------------------

class _Peak:
    """The peak memory of what runs between its creation and `read()`, in MiB (None where it cannot be measured)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        gc.collect()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            self.base = 0.0
        else:
            _trim_heap()  # freed memory goes back to the system, so that the next model's growth is its own
            self.base = _status_kib("VmRSS") if _reset_peak_rss() else None

    def read(self) -> float | None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.base is None:
            return None
        peak = _status_kib("VmHWM")
        return None if peak is None else max(0.0, (peak - self.base) / 1024)


def _can_reset_peak_rss() -> bool:
    return sys.platform.startswith("linux") and _reset_peak_rss()


def _reset_peak_rss() -> bool:
    """Linux (4.0 on): set the process's peak resident set (VmHWM) to its current size."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _trim_heap() -> None:
    """glibc: return the heap's free memory to the system (what an earlier measurement freed would otherwise be
    reused without growing the resident set, and the later model would look smaller)."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_kib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
