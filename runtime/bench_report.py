"""What `archspec bench` prints and writes: a text table, CSV (one row per measurement, the run's settings on each
row so that a file stands alone) and JSON (the settings, the rows, each spec's twin or why it has none, and what the
memory column measures)."""

from __future__ import annotations

import csv
import io
import json

from archspec.runtime.bench import BenchResult

CSV_FIELDS = ("spec", "model", "mode", "batch", "input", "images_per_s", "latency_median_ms", "latency_p90_ms",
              "peak_mem_mb", "steps", "params", "ratio", "device", "bf16", "channels_last", "compile")
_COLUMNS = (("spec", "spec", "<"), ("model", "model", "<"), ("mode", "mode", "<"), ("batch", "batch", ">"),
            ("images_per_s", "images/s", ">"), ("latency_median_ms", "median ms", ">"),
            ("latency_p90_ms", "p90 ms", ">"), ("peak_mem_mb", "peak MiB", ">"), ("ratio", "archspec/twin", ">"))


def describe(result: BenchResult) -> str:
    """The settings in one line: `cpu (CPU (2 threads)), torch 2.13: bf16, channels_last, eager; 10 warm-up ...`."""
    s = result.settings
    how = ", ".join(["bf16 autocast" if s["bf16"] else "fp32", "channels_last" if s["channels_last"] else "contiguous",
                     "torch.compile" if s["compile"] else "eager"])
    length = f"{s['steps']} timed" if s["steps"] is not None else f"timed for {s['seconds']:g} s"
    rounds = f"; the fastest of {s['rounds']} rounds in alternating order" if s["rounds"] > 1 else ""
    return (f"{s['device']} ({s['device_name']}), torch {s['torch']}: {how}; {s['warmup']} warm-up steps, "
            f"{length}{rounds}")


def table(result: BenchResult) -> str:
    cells = [[ratio_cell(row.get(key)) if key == "ratio" else _cell(row.get(key)) for key, _, _ in _COLUMNS]
             for row in result.rows]
    heads = [head for _, head, _ in _COLUMNS]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]

    def line(values: list[str]) -> str:
        return "  ".join(v.ljust(w) if align == "<" else v.rjust(w)
                         for v, w, (_, _, align) in zip(values, widths, _COLUMNS)).rstrip()

    out = [f"archspec bench on {describe(result)}"]
    out += [f"twin of {spec}: {twin}" for spec, twin in result.twins.items()]
    out += ["", line(heads)] + [line(c) for c in cells]
    out += ["", "images/s: images of the timed steps over their wall time; median and p90: ms per batch; "
            "archspec/twin: archspec's images/s over the twin's (above 1: archspec faster)",
            f"peak MiB: {result.memory}"]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}" if value >= 100 else f"{value:.2f}"
    return str(value)


def ratio_cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def csv_text(result: BenchResult) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    s = result.settings
    for row in result.rows:
        writer.writerow({**{k: row.get(k) for k in CSV_FIELDS}, "device": s["device"], "bf16": s["bf16"],
                         "channels_last": s["channels_last"], "compile": s["compile"]})
    return buf.getvalue()


def json_text(result: BenchResult) -> str:
    return json.dumps(result.as_dict(), indent=2)
