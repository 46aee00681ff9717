"""Training curves as in Figure 6 of the paper: error (%) against iterations, several runs overlaid.

Each run is drawn in its own colour: training error thin and dashed, test error (or validation error when the
run has no test split) bold. Runs are named by their spec (run.json) or their folder.

Every run folder is read the same way, whenever it was written: `read_metrics` gives NaN and infinities back as
numbers from old files (bare `NaN`/`Infinity` tokens) and new ones (`null` with `"nonfinite"`), and a value that
is missing or not a number is drawn as a gap (NaN), never an error. A damaged line of metrics.jsonl (not UTF-8,
nested too deeply, numbers out of range) is skipped, with a note on stderr that counts them; a run.json that
cannot be read (damaged, not a file) only costs the run its name.
"""

from __future__ import annotations

import math
import sys
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


def plot_runs(paths: Sequence[Path], output: str | Path, *, title: str | None = None,
              ymax: float | None = None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from archspec.lang.files import atomic_path

    output = Path(output)
    if output.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise PlotError(f"cannot tell the format of {output}: use a name ending in .png, .svg or .pdf")
    runs = _runs(paths)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    scale = 1e4 if max(r["iter"] for _, rec in runs for r in rec if "iter" in r) >= 2e4 else 1
    kinds = set()
    for k, (name, records) in enumerate(runs):
        colour = colours[k % len(colours)]
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
    ax.plot([], [], "--", lw=1, color="grey", label="training error (dashed)")
    ax.set_xlabel("iterations" + (" (1e4)" if scale != 1 else ""))
    ax.set_ylabel("error (%)")
    if ymax is not None:
        ax.set_ylim(0, ymax)
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    held_name = {"test": "test", "val": "validation"}.get(next(iter(kinds)), "held-out") if len(kinds) == 1 else (
        "test and validation" if kinds else "held-out")
    ax.set_title(title or f"training (dashed) and {held_name} (bold) error")
    fig.tight_layout()
    try:
        with atomic_path(output) as tmp:
            fig.savefig(tmp, format=output.suffix[1:].lower())
    except Exception as e:  # noqa: BLE001 - an unwritable folder and the like
        raise PlotError(f"cannot write {output}: {getattr(e, 'strerror', None) or e}") from None
    finally:
        plt.close(fig)
    return f"wrote {output} ({len(runs)} run{'s' if len(runs) != 1 else ''})"
