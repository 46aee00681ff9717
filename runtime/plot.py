"""Training curves as in Figure 6 of the paper: error (%) against iterations, several runs overlaid.

Each run is drawn in its own colour: training error thin and dashed, test error (or validation error when the
run has no test split) bold. Runs are named by their spec (run.json) or their folder.

Given a sweep folder (`archspec sweep`) or a folder of run folders, each grid point (`runtime.results`: a
sweep's points, or runs of the same spec, params and recipe) is one curve: the mean over its seeds at each
iteration (of the seeds that reached it), training error dashed, test error bold with a band from the lowest to
the highest seed.

Every run folder is read the same way, whenever it was written: `read_metrics` gives NaN and infinities back as
numbers from old files (bare `NaN`/`Infinity` tokens) and new ones (`null` with `"nonfinite"`), and a value that
is missing or not a number is drawn as a gap (NaN), never an error. A damaged line of metrics.jsonl (not UTF-8,
nested too deeply, numbers out of range) is skipped, with a note on stderr that counts them; a run.json that
cannot be read (damaged, not a file) only costs the run its name.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from archspec.lang.errors import UserError
from archspec.lang.files import load_json, read_regular


class PlotError(UserError):
    """A run folder or output that cannot be used; one line with the fix."""


def _runs(paths: Sequence[Path]) -> list[tuple[str, list[dict[str, Any]]]]:
    from archspec.runtime.metrics import damaged_note, scan_metrics

    out = []
    for path in paths:
        metrics = path / "metrics.jsonl"
        if not path.exists():
            raise PlotError(f"no such folder: {path} (not a run folder): give folders made by `archspec train`")
        if path.is_file():
            raise PlotError(f"{path} is a file, not a run folder: give the folder that holds it ({path.parent})")
        if not metrics.is_file():
            raise PlotError(f"{path} is not a run folder (it has no metrics.jsonl): give folders made by "
                            "`archspec train`")
        try:
            records, damaged = scan_metrics(metrics)
        except OSError as e:
            raise PlotError(f"cannot read {metrics}: {e.strerror or e}") from None
        if not any(r.get("kind") == "train" for r in records):
            raise PlotError(f"{metrics} has no training records yet" + (
                f" (and {len(damaged):,} damaged line{'s' if len(damaged) != 1 else ''}, the first line "
                f"{damaged[0]:,})" if damaged else ""))
        note = damaged_note(metrics, damaged)
        if note:
            print(f"note: {note}", file=sys.stderr)
        out.append((_name(path), records))
    names = [n for n, _ in out]
    # runs of the same spec are told apart by their folders
    return [(f"{n} ({Path(p).name})" if names.count(n) > 1 else n, rec) for (n, rec), p in zip(out, paths)]


def _name(path: Path) -> str:
    """The run's spec as run.json names it, else the folder's name."""
    try:
        info = load_json(read_regular(path / "run.json"))
    except (OSError, ValueError):
        return path.name
    spec = info.get("spec") if isinstance(info, dict) else None
    name = spec.get("name") if isinstance(spec, dict) else spec  # (early run.json: the spec's name itself)
    return name if isinstance(name, str) and name else path.name


def _number(value: Any) -> float:
    """A value to draw: a number, or NaN (a gap) for anything else."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


DPI = 120  # the default resolution (--dpi): a 7 x 4.5 inch figure, 840 x 540 pixels
MAX_DPI = 1200


@dataclass
class Plotted:
    """What `plot_runs` drew: the line it prints, the legend's labels (one per run or grid point, then the key to
    the line styles) and the image's size in pixels."""
    text: str
    labels: list[str]
    size: tuple[int, int]


def plot_runs(paths: Sequence[Path], output: str | Path, *, title: str | None = None,
              ymax: float | None = None, dpi: int = DPI) -> Plotted:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from archspec.lang.files import atomic_path

    output = Path(output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise PlotError(f"cannot tell the format of {output}: use a name ending in .png, .svg or .pdf")
    if not (isinstance(dpi, int) and 1 <= dpi <= MAX_DPI):
        raise PlotError(f"--dpi must be a whole number from 1 to {MAX_DPI}, got {dpi}")
    grouped = _grouped(paths) if any(_holds_runs(p) for p in paths) else None
    runs = [(name, [records]) for name, records in _runs(paths)] if grouped is None else grouped
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=dpi)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    scale = 1e4 if max(r["iter"] for _, seeds in runs for rec in seeds for r in rec if "iter" in r) >= 2e4 else 1
    kinds = set()
    for k, (name, seeds) in enumerate(runs):
        colour = colours[k % len(colours)]
        if grouped is not None:
            kinds |= _draw_point(ax, name, seeds, scale, colour)
            continue
        records = seeds[0]
        train = [r for r in records if r.get("kind") == "train"]
        ax.plot([r["iter"] / scale for r in train], [_number(r.get("train_err")) for r in train], "--", lw=1,
                color=colour, alpha=0.8, marker="." if len(train) < 6 else None)
        held = [r for r in records if r.get("kind") == "test"] or [r for r in records if r.get("kind") == "val"]
        label = name
        if held:  # a few points get markers: a curve of one evaluation is still seen
            ax.plot([r["iter"] / scale for r in held], [_number(r.get("err")) for r in held], "-", lw=2.2,
                    color=colour, marker="o" if len(held) < 6 else None, markersize=4)
            label += f" ({held[-1]['kind']} {_number(held[-1].get('err')):.2f}%)"
            kinds.add(held[-1]["kind"])
        ax.plot([], [], "-", lw=2.2, color=colour, label=label)
    ax.plot([], [], "--", lw=1, color="grey", label="training error (dashed)" + (
        "; curves: mean over seeds, band: lowest to highest seed" if grouped is not None else ""))
    ax.set_xlabel("iterations" + (" (1e4)" if scale != 1 else ""))
    ax.set_ylabel("error (%)")
    if ymax is not None:
        ax.set_ylim(0, ymax)
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    legend = ax.legend(fontsize=8, loc="best")
    labels = [t.get_text() for t in legend.get_texts()]
    size = tuple(int(round(v)) for v in fig.get_size_inches() * fig.dpi)
    held_name = {"test": "test", "val": "validation"}.get(next(iter(kinds)), "held-out") if len(kinds) == 1 else (
        "test and validation" if kinds else "held-out")
    ax.set_title(title or f"training (dashed) and {held_name} (bold) error")
    fig.tight_layout()
    try:
        with atomic_path(output) as tmp:
            fig.savefig(tmp, format=output.suffix[1:].lower(), dpi=dpi)
    except Exception as e:  # noqa: BLE001 - an unwritable folder and the like
        raise PlotError(f"cannot write {output}: {getattr(e, 'strerror', None) or e}") from None
    finally:
        plt.close(fig)
    what = "grid point" if grouped is not None else "run"
    return Plotted(f"wrote {output} ({len(runs)} {what}{'s' if len(runs) != 1 else ''})", labels, size)


# -- grid points: a sweep folder or a folder of run folders -----------------------------------------------------

def _holds_runs(path: Path) -> bool:
    """A folder that is not a run folder itself but holds runs (a sweep folder, a folder of run folders)."""
    return path.is_dir() and not (path / "metrics.jsonl").exists() and not (path / "run.json").exists()


def _grouped(paths: Sequence[Path]) -> list[tuple[str, list[list[dict[str, Any]]]]]:
    """(point, the records of each of its runs that has training records) for the grid points at `paths`
    (`runtime.results.collect`); a point with none yet is said on stderr, not drawn."""
    from archspec.runtime.results import ResultsError, collect

    try:
        found = collect(paths, curves=True)
    except ResultsError as e:
        raise PlotError(str(e)) from None
    for note in found.notes:
        print(f"note: {note}", file=sys.stderr)
    out, empty = [], []
    for p in found.points:
        seeds = [r.records for r in p.runs if any(x.get("kind") == "train" for x in r.records)]
        (out if seeds else empty).append((p.key, seeds))
    if empty:
        print(f"note: {len(empty)} grid point{'s have' if len(empty) != 1 else ' has'} no training records yet, "
              f"so {'they are' if len(empty) != 1 else 'it is'} not drawn: {', '.join(k for k, _ in empty)}",
              file=sys.stderr)
    if not out:
        raise PlotError(f"no run in {', '.join(map(str, paths))} has training records yet: nothing to draw")
    return out


def _across(seeds: list[list[dict[str, Any]]], kind: str, field: str) -> tuple[list[int], list[list[float]]]:
    """The iterations any seed recorded `field` of `kind` at, and the finite values the seeds have there."""
    at: dict[int, list[float]] = {}
    for records in seeds:
        for r in records:
            if r.get("kind") == kind and isinstance(r.get("iter"), int):
                value = _number(r.get(field))
                at.setdefault(r["iter"], [])
                if math.isfinite(value):
                    at[r["iter"]].append(value)
    iters = sorted(at)
    return iters, [at[i] for i in iters]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _draw_point(ax: Any, name: str, seeds: list[list[dict[str, Any]]], scale: float, colour: str) -> set[str]:
    """One grid point: the mean training error dashed, the mean held-out error bold with a min-max band."""
    iters, values = _across(seeds, "train", "train_err")
    ax.plot([i / scale for i in iters], [_mean(v) for v in values], "--", lw=1, color=colour, alpha=0.8,
            marker="." if len(iters) < 6 else None)
    kind = "test" if any(r.get("kind") == "test" for rec in seeds for r in rec) else "val"
    iters, values = _across(seeds, kind, "err")
    label = f"{name} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
    if iters:
        x = [i / scale for i in iters]
        mean = [_mean(v) for v in values]
        ax.plot(x, mean, "-", lw=2.2, color=colour, marker="o" if len(iters) < 6 else None, markersize=4)
        if len(seeds) > 1:
            ax.fill_between(x, [min(v, default=math.nan) for v in values], [max(v, default=math.nan) for v in values],
                            color=colour, alpha=0.15, lw=0)
        label += f", {kind} {mean[-1]:.2f}%"
    ax.plot([], [], "-", lw=2.2, color=colour, label=label + ")")
    return {kind} if iters else set()
