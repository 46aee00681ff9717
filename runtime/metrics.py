"""What a run writes as it goes: metrics as JSON lines, a CSV of the evaluations, optionally TensorBoard events,
a human log, and a progress line with an ETA.

`metrics.jsonl` has one record per line: `{"kind": "train", "iter", "epoch", "loss", "lr", "train_err",
"images_per_s", "time", ...}` per log interval and `{"kind": "val" | "test", "iter", "epoch", "loss", "err",
"top5_err", "images"}` per evaluation. Errors are percentages. Every line is strict JSON (RFC 8259): a value that
is NaN or infinite is written as `null`, and the record gains `"nonfinite"`, naming each such field and what it
was (`"nan"`, `"inf"` or `"-inf"`):

    {"kind": "val", "iter": 2000, "epoch": 5.12, "loss": null, "err": 9.1, "top5_err": 0.4, "images": 5000,
     "nonfinite": {"loss": "inf"}}

`read_metrics` gives such a record back with the values themselves (`loss` is `float("inf")` again, no
`nonfinite` key), exactly as it reads files written before this rule, whose lines hold bare `NaN`/`Infinity`
tokens: old and new files read the same. Writing uses `allow_nan=False`, so a non-finite value the encoder does
not flag (one nested in a list, say) stops the run with an error rather than writing a line strict readers refuse.

`evals.csv`, beside it, holds one row per evaluation (`EVAL_COLUMNS`: iter, epoch, kind, loss, err, top5_err,
images; the header once; a value a record lacks is an empty cell; non-finite values as `nan`, `inf`, `-inf`,
which pandas and numpy read as numbers). It is appended as the run goes and rebuilt, whole or not at all, from
metrics.jsonl whenever the log is opened, so the two always agree.

With `tensorboard=True`, scalars also go to TensorBoard event files in `<run>/tensorboard/`: `train/loss`,
`train/lr`, `train/err`, `train/images_per_s`, `train/data_wait`, `train/peak_mem_mb` and, per split,
`val/loss`, `val/err`, `val/top5_err` (`test/...` likewise), each at step = iteration. This needs the
`tensorboard` package (`INSTALL_TENSORBOARD` says how to get it; `require_tensorboard` checks before a run starts).

On resume, records past the checkpoint's iteration (logged after it, before the crash) are dropped from
metrics.jsonl (and so from evals.csv), and TensorBoard is told to discard its events past that step, so a
resumed run's files read like an uninterrupted one's. Old lines kept are rewritten in the strict form.

Reading never fails on a line: one torn by a crash (the last, unfinished) is skipped, and so is a damaged one (not
UTF-8, not JSON, nested deeper than a record is, not a mapping, an `iter` that is not a whole number >= 0, an
integer outside [-2**63, 2**63), a lone surrogate). `scan_metrics` counts the damaged ones, which `archspec plot`
and a resumed run's log mention (`damaged_note`); the resumed run drops them when it rewrites the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Iterable, NamedTuple, TextIO

from archspec.lang import install_hint
from archspec.lang.files import load_json, read_regular

INSTALL_TENSORBOARD = install_hint("tensorboard")
NONFINITE = "nonfinite"  # the key that names a record's non-finite fields
_NONFINITE_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
EVAL_KINDS = ("val", "test", "val_ema", "test_ema")  # (_ema: the EMA of the weights, when the recipe keeps one)
EVAL_COLUMNS = ("iter", "epoch", "kind", "loss", "err", "top5_err", "images")
EVALS_CSV = "evals.csv"
TENSORBOARD_DIR = "tensorboard"
TRAIN_TAGS = {"loss": "train/loss", "lr": "train/lr", "train_err": "train/err", "images_per_s": "train/images_per_s",
              "data_wait": "train/data_wait", "peak_mem_mb": "train/peak_mem_mb"}
EVAL_TAGS = ("loss", "err", "top5_err")
INT_LIMIT = 2**63  # a record's integers lie in [-INT_LIMIT, INT_LIMIT): what torch, numpy and TensorBoard hold
RECORD_DEPTH = 8   # a record nests 2 deep (its "nonfinite" mapping); deeper is damage


# -- records as strict JSON -----------------------------------------------------------------------------------

def _flagged(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its non-finite numbers as None, named under `"nonfinite"` (nested values are left as they are)."""
    out: dict[str, Any] = {}
    flagged: dict[str, str] = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            flagged[key] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
            value = None
        out[key] = value
    if flagged:
        out[NONFINITE] = flagged
    return out


def _unflagged(record: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `_flagged`, in place: the values named under `"nonfinite"` back to float nan/inf."""
    flagged = record.pop(NONFINITE, None)
    if isinstance(flagged, dict):
        for key, text in flagged.items():
            if record.get(key) is None and text in _NONFINITE_VALUES:
                record[key] = _NONFINITE_VALUES[text]
    return record


def encode_record(record: dict[str, Any]) -> str:
    """One line of strict JSON: non-finite numbers as null, named under `"nonfinite"` (see the module's docstring).
    ValueError for a non-finite number elsewhere (nested), rather than a line strict readers refuse."""
    return json.dumps(_flagged(record), allow_nan=False)


def strict_tree(value: Any) -> Any:
    """`value` with every mapping's non-finite numbers as null and named under `"nonfinite"`, at any depth (for
    run.json and `archspec eval --json`, which hold records inside other mappings)."""
    if isinstance(value, dict):
        return _flagged({k: strict_tree(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return [strict_tree(v) for v in value]
    return value


def read_tree(value: Any) -> Any:
    """The inverse of `strict_tree`: flagged nulls back to float nan/inf at any depth (old bare tokens read as is)."""
    if isinstance(value, dict):
        return _unflagged({k: read_tree(v) for k, v in value.items()})
    if isinstance(value, list):
        return [read_tree(v) for v in value]
    return value


def decode_record(line: str | bytes) -> dict[str, Any] | None:
    """A record from one line, new (null and `"nonfinite"`) or old (bare NaN/Infinity tokens) alike, with its
    non-finite values as floats; None for a line torn by a crash or a damaged one (see the module's docstring)."""
    try:
        record = load_json(line, max_depth=RECORD_DEPTH)
    except ValueError:
        return None
    iteration = record.get("iter") if isinstance(record, dict) else None
    if not (isinstance(iteration, int) and not isinstance(iteration, bool) and 0 <= iteration < INT_LIMIT):
        return None
    return _unflagged(record) if _sound(record) else None


def _sound(value: Any) -> bool:
    """Integers in [-INT_LIMIT, INT_LIMIT) and text that is UTF-8 (no lone surrogate: evals.csv is written as
    UTF-8), at any depth (a record's depth is bounded when this runs)."""
    if isinstance(value, dict):
        return all(_sound(k) and _sound(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_sound(v) for v in value)
    if isinstance(value, str):
        return value.isascii() or not any("\ud800" <= c <= "\udfff" for c in value)
    return not isinstance(value, int) or -INT_LIMIT <= value < INT_LIMIT


class MetricsScan(NamedTuple):
    records: list[dict[str, Any]]
    damaged: list[int]  # the numbers (from 1) of the lines skipped as damaged


def scan_metrics(path: Path) -> MetricsScan:
    """The records of a metrics.jsonl and the numbers of its damaged lines. Blank lines and a last line torn by
    a crash (unfinished: no newline) are skipped without a word. OSError if the file cannot be read (or is not a
    regular file)."""
    lines = read_regular(path).splitlines(keepends=True)
    records, damaged = [], []
    for number, line in enumerate(lines, 1):
        record = decode_record(line) if line.strip() else None
        if record is not None:
            records.append(record)
        elif line.strip() and (number < len(lines) or line.endswith((b"\n", b"\r"))):
            damaged.append(number)
    return MetricsScan(records, damaged)


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, old or new (see `decode_record`); torn and damaged lines are skipped."""
    return scan_metrics(path).records


def _finite(value: Any) -> float:
    """A record's number, or NaN for anything else (missing, null, text, a bool)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def steady_images_per_s(trains: list[dict[str, Any]]) -> float | None:
    """A run's steady training speed from its train records: images over seconds of the log windows after the first
    one of each start (which holds compile warm-up and autotuning); None when no window is timed."""
    timed = [r for r in trains if _finite(r.get("window_s")) > 0 and math.isfinite(_finite(r.get("images_per_s")))]
    steady = [r for r in timed if not r.get("warmup")] or timed
    seconds = sum(r["window_s"] for r in steady)
    return sum(r["images_per_s"] * r["window_s"] for r in steady) / seconds if seconds > 0 else None


def training_seconds(trains: list[dict[str, Any]]) -> float | None:
    """Seconds of training from a run's train records: their `time` clock starts again at each resume, so the
    last time of each start, summed; None when no record has one."""
    total, last = 0.0, None
    for r in trains:
        t = _finite(r.get("time"))
        if not math.isfinite(t):
            continue
        if last is not None and t < last:
            total += last
        last = t
    return None if last is None else total + last


def damaged_note(path: Path, damaged: list[int], done: str = "skipped") -> str | None:
    """`runs/x/metrics.jsonl: 2 damaged lines skipped (first: line 3)`, or None when no line is damaged."""
    if not damaged:
        return None
    n = len(damaged)
    return f"{path}: {n:,} damaged line{'s' if n != 1 else ''} {done} (first: line {damaged[0]:,})"


def eval_rows_csv(records: Iterable[dict[str, Any]], header: bool = True) -> str:
    """evals.csv's text for the evaluation records among `records` (with the header line if asked)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EVAL_COLUMNS, restval="", extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(r for r in records if r.get("kind") in EVAL_KINDS)
    return buffer.getvalue()


# -- TensorBoard ----------------------------------------------------------------------------------------------

def require_tensorboard() -> Any:
    """torch's SummaryWriter; a RunError (exit code 2) naming the fix when the tensorboard package is missing."""
    from archspec.runtime.request import RunError

    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it; imported first for a plain ImportError)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise RunError(f"--tensorboard needs the tensorboard package, which is not installed: "
                       f"{INSTALL_TENSORBOARD}") from None
    return SummaryWriter


class TensorBoardSink:
    """Scalars of every record as TensorBoard events in `folder`, at step = iteration. A new run removes the
    event files a replaced run left there; a resumed one (`resume_after`: the checkpoint's iteration) tells
    TensorBoard to discard the events logged after that step."""

    def __init__(self, folder: Path, resume_after: int | None = None):
        writer = require_tensorboard()
        if resume_after is None and folder.is_dir():
            for old in folder.glob("events.out.tfevents.*"):
                old.unlink()
        self.writer = writer(log_dir=str(folder), purge_step=None if resume_after is None else resume_after + 1)

    def write(self, record: dict[str, Any]) -> None:
        kind, step = record.get("kind"), record.get("iter")
        if kind == "train":
            tags = TRAIN_TAGS
        elif kind in EVAL_KINDS:
            tags = {field: f"{kind}/{field}" for field in EVAL_TAGS}
        else:
            return
        for field, tag in tags.items():
            value = record.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag, value, global_step=step)
        self.writer.flush()  # someone may be watching the run

    def close(self) -> None:
        self.writer.close()


# -- the log of a run -----------------------------------------------------------------------------------------

class MetricsLog:
    """metrics.jsonl, evals.csv beside it, and TensorBoard events when asked: what the training loop records."""

    def __init__(self, path: Path, tensorboard: bool = False):
        self.path = path
        self.csv_path = path.with_name(EVALS_CSV)
        self.tensorboard = tensorboard
        self.file: TextIO | None = None
        self.csv: TextIO | None = None
        self.board: TensorBoardSink | None = None

    def open(self, keep_until: int | None = None) -> None:
        """Open for appending; with `keep_until` (a resume), first drop records of later iterations (and torn
        lines), rewriting the kept ones strictly. evals.csv is rebuilt from what metrics.jsonl holds."""
        from archspec.lang.files import open_append, remove_stale_temporaries, write_text

        records = read_metrics(self.path) if self.path.exists() else []
        if keep_until is not None and self.path.exists():
            records = [r for r in records if _iteration(r) <= keep_until]
            write_text(self.path, "".join(encode_record(r) + "\n" for r in records))
        remove_stale_temporaries(self.path.parent, [EVALS_CSV])  # of a rebuild that was killed
        write_text(self.csv_path, eval_rows_csv(records))
        if self.tensorboard:
            self.board = TensorBoardSink(self.path.parent / TENSORBOARD_DIR, resume_after=keep_until)
        self.file = open_append(self.path)
        self.csv = open_append(self.csv_path, newline="")

    def write(self, record: dict[str, Any]) -> None:
        assert self.file is not None and self.csv is not None
        self.file.write(encode_record(record) + "\n")
        self.file.flush()
        if record.get("kind") in EVAL_KINDS:
            self.csv.write(eval_rows_csv([record], header=False))
            self.csv.flush()
        if self.board is not None:
            self.board.write(record)

    def close(self) -> None:
        for name in ("file", "csv", "board"):
            sink = getattr(self, name)
            if sink is not None:
                sink.close()
                setattr(self, name, None)


def _iteration(record: dict[str, Any]) -> float:
    value = record.get("iter", 0)
    return value if isinstance(value, (int, float)) else 0


class Progress:
    """The training progress bar: tqdm's, redrawn in place on a terminal; one plain line per log interval
    otherwise (no carriage returns or escape codes, so a redirected stderr reads as a log); nothing when disabled.

        38%|████████▍             | 15,200/40,000 [01:02<01:41, loss 0.6034, lr 0.1, err 21.07%, 3,920 img/s]

    `begin` starts the clock and the bar at the run's (maybe resumed) iteration; `update` moves it once per log
    interval; `message` prints a line above the bar without garbling it; `end` closes it (the train loop calls
    it on every way out, errors and Ctrl-C included)."""

    BAR = "{percentage:3.0f}%|{bar}| {n:,}/{total:,} [{elapsed}<{remaining}{postfix}]"
    LINE = "{percentage:3.0f}% {n:,}/{total:,} [{elapsed}<{remaining}{postfix}]"

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True):
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.started = time.perf_counter()
        self.start_iter = 0
        self.bar: Any = None  # the tqdm bar while one is drawn (enabled, on a terminal, between begin and end)

    def begin(self, iteration: int) -> None:
        self.end()
        self.started, self.start_iter = time.perf_counter(), iteration
        if self.enabled and self.tty:
            from tqdm import tqdm

            # smoothing=0: the rate (so the ETA) is the average since `begin`; redrawn only by `update`
            self.bar = tqdm(total=self.total, initial=min(iteration, self.total), file=self.stream,
                            bar_format=self.BAR, dynamic_ncols=True, smoothing=0, mininterval=0, leave=True)

    def update(self, iteration: int, loss: float, lr: float, err: float, images_per_s: float) -> None:
        if not self.enabled:
            return
        iteration = min(iteration, self.total)
        stats = f"loss {loss:.4f}, lr {lr:.4g}, err {err:.2f}%, {images_per_s:,.0f} img/s"
        if self.tty:
            if self.bar is None:
                self.begin(self.start_iter)
            self.bar.n = iteration
            self.bar.set_postfix_str(stats)  # redraws
            return
        from tqdm import tqdm

        line = tqdm.format_meter(iteration, self.total, time.perf_counter() - self.started,
                                 initial=self.start_iter, bar_format=self.LINE, postfix=stats)
        self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str, always: bool = False) -> None:
        """A line of its own above the progress bar; `always`: also when progress is off (--quiet)."""
        if not (self.enabled or always):
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)  # clears the bar, writes, redraws it below
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        """Close the bar (drawn once more, whole, then a newline); safe to call more than once."""
        if self.bar is not None:
            bar, self.bar = self.bar, None
            bar.close()
            self.stream.flush()
