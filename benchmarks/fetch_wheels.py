"""Download the wheels archspec needs besides torch, for a GPU machine without internet.

A GPU box often has torch (and numpy) but not jsonschema, networkx, pyyaml, graphviz or safetensors, and no way to
fetch them.
Run this where pip can reach the package index; it fills `.wheels/` (ignored by git) with wheels for the target
Python and platform. Carry the repository, `.wheels/` included, to the GPU box and run there:

    python -m pip install --no-index --find-links .wheels jsonschema networkx pyyaml graphviz safetensors
    PYTHONPATH=. python benchmarks/gpu_check.py --out gpu-check

(or `pip install --no-index --find-links .wheels --no-build-isolation -e . --no-deps` after the first line, for
the `archspec` command). Options: --python 3.12 --platform manylinux_2_28_x86_64 (the box's), --dest DIR.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# what pyproject.toml asks for, torch and numpy aside (a GPU image has them), with what they need in turn
PACKAGES = ["jsonschema", "jsonschema-specifications", "referencing", "rpds-py", "attrs", "typing-extensions",
            "networkx", "pyyaml", "graphviz", "safetensors"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=f"{sys.version_info.major}.{sys.version_info.minor}",
                   help="the GPU box's Python, e.g. 3.12 (default: this one)")
    p.add_argument("--platform", action="append", default=None, help="pip platform tags (default: manylinux x86-64)")
    p.add_argument("--dest", type=Path, default=ROOT / ".wheels")
    args = p.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--implementation", "cp",
           "--python-version", args.python, "-d", str(args.dest)]
    for tag in args.platform or PLATFORMS:
        cmd += ["--platform", tag]
    result = subprocess.run(cmd + PACKAGES)
    if result.returncode != 0:
        print("fetch_wheels: pip could not download every wheel (see above); check --python and --platform",
              file=sys.stderr)
        return 2
    print(f"wheels in {args.dest}: " + ", ".join(sorted(w.name for w in args.dest.glob("*.whl"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
