"""`archspec sweep --backend ray` against a local Ray instance that the sweep starts: the same run folders and
sweep.json as a local sweep. Ray is in the `test` extra (and CI installs it): skipped only where it cannot be
imported. Without Ray, `--backend ray` names the extra to install."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiny_sweep import FLAGS, experiment, info  # tests/ is on pytest's pythonpath


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archspec", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed (pip install -e '.[ray]')")
def test_a_sweep_on_a_local_ray_instance_makes_the_same_folders(cifar_dir, tmp_path):
    path = experiment(tmp_path, f"grid:\n  spec: tiny.yaml\n  set: {{width: [4, 8]}}\ntrain: {{iters: 10, {FLAGS}}}\n")
    out = tmp_path / "sweep"
    r = run(["sweep", str(path), "--out", str(out), "--data-dir", str(cifar_dir), "--device", "cpu", "--backend", "ray",
             "--cpus-per-run", "1"], env={"RAY_ADDRESS": ""})
    assert r.returncode == 0, r.stderr[-3000:] + r.stdout
    assert "as Ray tasks (a local instance" in r.stderr and "2 runs: 2 finished" in r.stdout
    for width in (4, 8):
        run_dir = out / f"tiny-width={width}" / "seed0"
        assert info(run_dir)["status"] == "finished" and (run_dir / "best.pt").is_file()
        assert "(Ray, " in (run_dir.parent / "seed0.log").read_text()   # the task ran it
    record = json.loads((out / "sweep.json").read_text())
    assert [p["key"] for p in record["points"]] == ["tiny-width=4", "tiny-width=8"]
    assert "--backend ray" in record["command"]


def test_without_ray_the_backend_names_the_extra(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n\nclass _NoRay:\n    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ray':\n            raise ModuleNotFoundError(name=name)\n\n"
        "sys.meta_path.insert(0, _NoRay())\n")
    path = experiment(tmp_path, "grid: {spec: tiny.yaml}\n")
    r = run(["sweep", str(path), "--out", str(tmp_path / "out"), "--backend", "ray"],
            env={"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "--backend ray needs Ray, which is not installed here: pip install 'archspec-nn[ray]'" in r.stderr
    assert not Path(tmp_path / "out").exists()
