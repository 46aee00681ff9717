"""The README's training examples run as written: each line of its Training block, in a shell whose home holds
CIFAR-10 in the real python-pickle format (5 x 10,000 training images, so the recipe's 45k/5k split fits; a
smaller test batch keeps evaluation short on a CPU)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]


def training_block() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Training"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_block_is_what_this_test_expects():
    lines = training_block()
    assert [line.split()[1] for line in lines] == ["train", "train", "eval", "export", "predict", "plot"]
    assert all("--data-dir" not in line for line in lines[1:])  # the run folder remembers the data


@pytest.mark.slow
def test_readme_training_examples_run_as_written(tmp_path, write_cifar):
    home = tmp_path / "home"
    write_cifar(home / "data", per_batch=10_000, test_images=2_000)
    env = {**os.environ, "HOME": str(home), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    for line in training_block():
        r = subprocess.run(["bash", "-c", line], cwd=home, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{line}\n{r.stderr}"
        outputs.append(r)
    run = home / "runs" / "cifar_resnet20"
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["data_dir"] == str((home / "data").resolve())
    assert "nothing left to do" in outputs[1].stderr
    test = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert test["kind"] == "test" and f"error {test['err']:.2f}%" in outputs[2].stdout
    assert (home / "r20.onnx").stat().st_size > 100_000
    assert "test_batch[3] (label " in outputs[4].stdout and "%" in outputs[4].stdout  # the run's inputs, top 5
    assert (home / "curves.png").read_bytes()[:4] == b"\x89PNG"
