"""The points of `runtime.results` as text: a Markdown table like the paper's Table 6 (the default), CSV (one row per
point, plain numbers) or JSON (every point with its runs).

Markdown cells give a number over a point's finished seeds as "best (mean±std)" (errors: the lowest is best;
images/s: the highest); one seed is shown as "(1 seed)", never as a std of 0. Notes under the table say what the
columns are and count every run that is not in the numbers (running, stopped, interrupted, failed, diverged,
not started), naming the first folder of each kind.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from archspec.lang.diagnostics import printable
from archspec.runtime.results import NOT_STARTED, STOPPED, Point, Results, Stat, show_value

RESULTS_FORMAT = "archspec-results"
FORMATS = ("markdown", "csv", "json")
# --sort: the column, and whether larger comes first
SORTS = {"point": None, "final": False, "lowest": False, "params": False, "macs": False, "speed": True, "time": False}
DASH = "–"


def sort_points(points: list[Point], by: str) -> list[Point]:
    """`points` ordered by a column (`SORTS`); points without the number go last, in their order."""
    if by == "point":
        return list(points)
    descending = SORTS[by]

    def value(p: Point) -> float | None:
        if by in ("params", "macs"):
            return p.size(by)
        stat = p.stat({"final": "final_err", "lowest": "lowest_err", "speed": "images_per_s", "time": "seconds"}[by])
        return None if stat is None else stat.mean

    known = [p for p in points if value(p) is not None]
    known.sort(key=lambda p: value(p), reverse=descending)  # (stable: ties keep their order)
    return known + [p for p in points if value(p) is None]


def render(results: Results, fmt: str) -> str:
    return {"markdown": markdown, "csv": to_csv, "json": to_json}[fmt](results)


# -- Markdown -------------------------------------------------------------------------------------------------

def markdown(results: Results) -> str:
    points = results.points
    splits = {p.split for p in points if p.split}
    split = splits.pop() if len(splits) == 1 and "mixed" not in splits else None
    held = f"{split} " if split else ""
    ema = any(p.stat("ema_final_err") is not None for p in points)  # (a column only where a run kept an EMA)
    head = ["point", "spec", "settings", "seeds", f"final {held}error (%)", f"lowest {held}error (%)"] + \
        ([f"final {held}error, EMA weights (%)"] if ema else []) + ["params", "MACs", "images/s", "time/run", "status"]
    align = ["---"] * 4 + ["---:"] * (7 if ema else 6) + ["---"]
    rows = []
    for p in points:
        tag = f" [{p.split}]" if split is None and p.split else ""
        rows.append([p.key, p.spec, _settings(p.settings) or DASH, f"{len(p.finished)}/{len(p.runs)}",
                     _errors(p.stat("final_err")) + tag, _errors(p.stat("lowest_err")) + tag]
                    + ([_errors(p.stat("ema_final_err"))] if ema else [])
                    + [_params(p.size("params")), _macs(p.size("macs")), _speed(p.stat("images_per_s", True)),
                       _seconds(p.stat("seconds")), _status(p)])
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {printable(n)}" for n in _footnotes(results, split)) + "\n"


def _cell(text: str) -> str:
    """Text from sweep.json, a spec or a file name as one Markdown cell: shown, never obeyed (no control
    character, HTML, `|`, link or emphasis can act: `compiler.report`'s rule for spec text in tables)."""
    from archspec.compiler.report import _md

    return _md(printable(text))


def _settings(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k}={show_value(v)}" for k, v in settings.items())


def _errors(s: Stat | None) -> str:
    if s is None:
        return DASH
    return f"{s.best:.2f} ({s.mean:.2f}±{s.std:.2f})" if s.std is not None else f"{s.best:.2f} (1 seed)"


def _speed(s: Stat | None) -> str:
    if s is None:
        return DASH
    return f"{s.mean:,.0f}±{s.std:,.0f}" if s.std is not None else f"{s.mean:,.0f} (1 seed)"


def _params(n: int | None) -> str:
    return DASH if n is None else (f"{n / 1e6:.2f}M" if n < 1e7 else f"{n / 1e6:.1f}M")


def _macs(n: int | None) -> str:
    if n is None:
        return DASH
    return f"{n / 1e6:.1f}M" if n < 1e9 else f"{n / 1e9:.2f}G"


def _seconds(s: Stat | None) -> str:
    if s is None:
        return DASH
    t = s.mean
    return f"{t:.1f} s" if t < 120 else (f"{t / 60:.1f} min" if t < 7200 else f"{t / 3600:.1f} h")


def _status(p: Point) -> str:
    counts = p.counts()
    if not counts:
        return "no runs"
    if set(counts) == {"finished"}:
        return "finished"
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _footnotes(results: Results, split: str | None) -> list[str]:
    where = {"test": "the test split", "val": "the validation split (held out of the training images)"}.get(
        split or "", "the split in [brackets]: test, else validation for runs without a test split")
    notes = [f"errors (%) on {where}: best (mean±std) over each point's finished seeds, std with n-1; final: at "
             "the run's last evaluation; lowest: the lowest of its evaluations",
             "images/s: steady training speed (warm-up windows left out), mean±std over finished seeds; time/run: "
             "training time per finished run (metrics.jsonl's clock, summed over resumes)"]
    runs = [r for p in results.points for r in p.runs if not r.finished]
    kinds: dict[str, list] = {}
    for r in runs:
        kinds.setdefault(r.status, []).append(r)
    for status, these in kinds.items():
        first = these[0]
        what = {STOPPED: "run.json says running but no process holds the folder (killed)",
                NOT_STARTED: "listed in sweep.json, no run.json yet"}.get(status, "")
        if first.message and status in ("failed", "diverged"):
            what = first.message if len(first.message) <= 120 else first.message[:117] + "..."
        count = f"{len(these)} run{'s' if len(these) != 1 else ''} {status}"
        notes.append(f"not in the numbers: {count} (first: {first.folder}{'; ' + what if what else ''})")
    return notes + results.notes


# -- CSV and JSON ---------------------------------------------------------------------------------------------

CSV_COLUMNS = ("point", "label", "spec", "settings", "seeds_finished", "seeds_total", "split",
               "final_err_best", "final_err_mean", "final_err_std", "lowest_err_best", "lowest_err_mean",
               "lowest_err_std", "params", "macs", "images_per_s_mean", "images_per_s_std", "seconds_per_run_mean",
               "status", "ema_final_err_best", "ema_final_err_mean", "ema_final_err_std")


def to_csv(results: Results) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in results.points:
        final, lowest = p.stat("final_err"), p.stat("lowest_err")
        speed, seconds = p.stat("images_per_s", True), p.stat("seconds")
        writer.writerow([p.key, p.label or "", p.spec, _settings(p.settings), len(p.finished), len(p.runs),
                         p.split or "", *_csv_stat(final, True), *_csv_stat(lowest, True),
                         _blank(p.size("params")), _blank(p.size("macs")), *_csv_stat(speed, False),
                         _blank(seconds and seconds.mean), _status(p), *_csv_stat(p.stat("ema_final_err"), True)])
    return buffer.getvalue()


def _csv_stat(s: Stat | None, with_best: bool) -> list[str]:
    values = ([s.best] if with_best else []) + [s.mean, s.std] if s is not None else [None] * (3 if with_best else 2)
    return [_blank(v) for v in values]


def _blank(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def to_json(results: Results) -> str:
    from archspec.runtime.metrics import strict_tree

    def stat(s: Stat | None) -> dict[str, Any] | None:
        return None if s is None else {"best": s.best, "mean": s.mean, "std": s.std, "n": s.n}

    points = []
    for p in results.points:
        points.append({
            "key": p.key, "label": p.label, "spec": p.spec, "settings": p.settings,
            "sweep": str(p.source) if p.source else None, "split": p.split,
            "seeds": {"finished": len(p.finished), "total": len(p.runs)}, "status": p.counts(),
            "final_err": stat(p.stat("final_err")), "lowest_err": stat(p.stat("lowest_err")),
            "ema_final_err": stat(p.stat("ema_final_err")), "params": p.size("params"), "macs": p.size("macs"),
            "images_per_s": stat(p.stat("images_per_s", True)), "seconds": stat(p.stat("seconds")),
            "runs": [{"folder": str(r.folder), "seed": r.seed, "status": r.status, "split": r.split,
                      "final_err": r.final_err, "lowest_err": r.lowest_err, "ema_final_err": r.ema_final_err,
                      "images_per_s": r.images_per_s,
                      "seconds": r.seconds, "iteration": r.iteration, "iterations": r.iterations,
                      "message": r.message} for r in p.runs]})
    doc = {"format": RESULTS_FORMAT, "version": 1, "points": points, "notes": results.notes}
    return json.dumps(strict_tree(doc), indent=2, allow_nan=False) + "\n"
