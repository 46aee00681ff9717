"""benchmarks/gpu_check.py where pytest is not installed (a GPU box with archspec but not its `test` extra): only
the `tests` section needs pytest, and it says so; the other sections run. Every process of the check (torchrun's
too) gets a `sitecustomize` that makes `import pytest` fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "benchmarks" / "gpu_check.py"

BLOCKER = '''\
import sys


class _NoPytest:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pytest", "_pytest"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoPytest())
'''


@pytest.fixture
def without_pytest(tmp_path: Path) -> dict[str, str]:
    """The environment of a process (and of its children) in which `import pytest` fails."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", "import pytest"], capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "No module named 'pytest'" in r.stderr
    return env


def run_sections(sections: str, env: dict[str, str], out: Path) -> dict:
    r = subprocess.run([sys.executable, str(CHECK), "--device", "cpu", "--quick", "--only", sections, "--out",
                        str(out)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    results = json.loads((out / "gpu_check.json").read_text())["results"]
    assert r.returncode == (1 if any(v["ok"] is False for v in results.values()) else 0), r.stderr
    return results


def test_train_cli_runs_without_pytest(without_pytest, tmp_path):
    """Before: `ModuleNotFoundError: No module named 'pytest'` (its CIFAR files came from a pytest conftest)."""
    results = run_sections("train_cli", without_pytest, tmp_path / "out")
    assert results["train_cli"]["ok"] is True, results["train_cli"].get("error")


@pytest.mark.slow
def test_ddp_runs_without_pytest(without_pytest, tmp_path):
    results = run_sections("ddp", without_pytest, tmp_path / "out")
    assert results["ddp"]["ok"] is True, results["ddp"].get("error")


def test_the_tests_section_says_it_needs_pytest(without_pytest):
    code = ("import runpy, torch\n"
            f"check = runpy.run_path({str(CHECK)!r})\n"
            "try:\n"
            "    check['cuda_tests'](torch.device('cuda'))\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=without_pytest, cwd=ROOT,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("the `tests` section runs the CUDA-marked tests with pytest, which is not installed "
                                "here: pip install pytest (or the `test` extra: pip install -e '.[test]'), or leave "
                                "the section out with --only")


def test_every_cuda_only_test_is_selected_by_the_tests_section():
    """The `tests` section runs `pytest -m cuda`: a CUDA-only test that is only skipped without CUDA (not marked)
    would never run on a lent GPU. Every test whose skip condition asks for CUDA carries the `cuda` mark."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-m", "cuda", "-p", "no:cacheprovider",
                        "tests/runtime/test_speed_paths.py", "tests/compiler/test_ops_drop_path.py",
                        "tests/runtime/test_bench.py"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    selected = {line.split("::")[-1] for line in r.stdout.splitlines() if "::" in line}  # (addopts has -q)
    for test in ("test_cuda_training_loop_does_not_synchronise_with_the_host",
                 "test_cuda_fast_path_trains_with_bf16_and_channels_last",
                 "test_on_cuda_the_mask_comes_from_the_device_generator"):
        assert test in selected, r.stdout
