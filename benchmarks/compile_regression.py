"""`archspec compile SPEC --flops` end to end (a fresh process: interpreter, imports, compile, report), this
checkout against another revision, interleaved in one run so that both see the same machine load.

    python benchmarks/compile_regression.py --against c1ccc37 [--spec specs/resnet152.yaml] [--runs 30]

The other revision is checked out with `git worktree` into a temporary folder (removed afterwards); each side
runs from its own source tree, the schema verdict cache off (ARCHSPEC_NO_CACHE=1) so both do the same work.
Bytecode is cached as in an installed package (each side's .pyc files in a temporary folder, made by one warm-up
run); `--bytecode none` compiles every module from source on every run instead (as with
PYTHONDONTWRITEBYTECODE=1, which this machine's environment sets), which charges each line of source, read or not.
Prints both medians and minimums and their ratio (the typed core's budget: within 5%).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
# run this source tree's archspec, not an installed one
sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", type(f).__name__)]
sys.path.insert(0, {root!r})
from archspec.cli import main
sys.exit(main(["compile", {spec!r}, "--flops"]))
"""


def timed(root: Path, spec: str, pycache: Path | None) -> float:
    env = dict(os.environ, ARCHSPEC_NO_CACHE="1")
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PROBE.format(root=str(root), spec=str(root / spec))], check=True,
                   capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, help="the git revision to compare with (e.g. a commit or main~5)")
    p.add_argument("--spec", default="specs/resnet152.yaml")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--bytecode", choices=["cached", "none"], default="cached",
                   help="cached (as an installed package has it, the default) or none (compile from source each run)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(other), args.against],
                       check=True)
        caches = {side: (Path(tmp) / f"pyc-{side}" if args.bytecode == "cached" else None) for side in ("new", "old")}
        try:
            times: dict[str, list[float]] = {"this checkout": [], args.against: []}
            timed(ROOT, args.spec, caches["new"]), timed(other, args.spec, caches["old"])  # warm-up: the .pyc files
            for _ in range(args.runs):
                times["this checkout"].append(timed(ROOT, args.spec, caches["new"]))
                times[args.against].append(timed(other, args.spec, caches["old"]))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=True)
    for name, ts in times.items():
        print(f"{name:>16}: median {statistics.median(ts):.3f} s, min {min(ts):.3f} s ({len(ts)} runs)")
    new, old = times["this checkout"], times[args.against]
    print(f"ratio (this / {args.against}): median {statistics.median(new) / statistics.median(old):.3f}, "
          f"min {min(new) / min(old):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
