"""The `bench` section of benchmarks/gpu_check.py: `archspec bench` of resnet50_tv against torchvision's resnet50,
both measured in the same run with the same settings (runtime/bench.py), in bf16 + channels_last, eager and (on
CUDA, without --quick) torch.compile'd; inference and training; the ratio archspec / torchvision of images/s.

Where torchvision cannot be imported (the CPU CI environment, a GPU box without it), the twin is the hand-written
torchvision-architecture ResNet-50 of benchmarks/reference_models.py, and the result says so.

    python benchmarks/gpu_check.py --only bench                     # on CUDA: batch 256, eager and compiled
    python benchmarks/gpu_check.py --device cpu --quick --only bench   # batch 2, a few steps, eager
"""

from __future__ import annotations

from typing import Any

import torch

SPEC = "resnet50_tv"


def bench_section(device: torch.device, quick: bool) -> dict[str, Any]:
    from reference_models import ImageNetResNet

    import archspec
    from archspec.runtime.bench import BenchRequest, bench
    from archspec.runtime.bench_report import table
    from archspec.runtime.twins import Twin, twin_for

    cuda = device.type == "cuda"
    found = twin_for("auto", SPEC, archspec.compile(SPEC).params, 1000)
    note = None
    if not isinstance(found, Twin):
        note = f"no torchvision twin ({found.removeprefix('unavailable: ')}): measured against the hand-written one"
        found = Twin("hand-written resnet50 (reference_models.py)", ImageNetResNet(50))
    twin = found
    if cuda:
        batches, warmup, steps = ((64,), 3, 10) if quick else ((256,), 10, 40)
    else:
        batches, warmup, steps = ((2,), 1, 3) if quick else ((16,), 2, 6)
    out: dict[str, Any] = {"twin": twin.label, "rows": [], "ratios": {}, "tables": []}
    if note:
        out["note"] = note
    for compiled in ([False, True] if cuda and not quick else [False]):
        request = BenchRequest(specs=(SPEC,), batch_sizes=batches, device=device.type, bf16=True,
                               channels_last=True, compile=compiled, warmup=warmup, steps=steps,
                               rounds=1 if quick else 2)
        result = bench(request, log=lambda text: print(text, flush=True), twin_hook=lambda name, graph: twin)
        how = "compiled" if compiled else "eager"
        for row in result.rows:
            out["rows"].append({**row, "compile": compiled})
            if row["ratio"] is not None:
                out["ratios"][f"{row['mode']} batch {row['batch']} {how}"] = row["ratio"]
        out["tables"].append(table(result))
        print(out["tables"][-1], flush=True)
    out["memory"] = result.memory
    return out


def markdown_lines(result: dict[str, Any]) -> list[str]:
    """The section in gpu_check.md."""
    if not result.get("ok"):
        return []
    lines = ["", f"## archspec bench: {SPEC} against {result['twin']} (bf16 + channels_last)", ""]
    if result.get("note"):
        lines += [f"- {result['note']}"]
    lines += [f"- {k}: archspec/twin = {v:.2f}x" for k, v in result["ratios"].items()]
    for t in result["tables"]:
        lines += ["", "```", t, "```"]
    return lines
