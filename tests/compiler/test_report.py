"""Printed reports against golden files (`ARCHSPEC_UPDATE_GOLDEN=1` rewrites them) and the CLI around them."""

import json
import os
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("ARCHSPEC_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def in_root(root, monkeypatch):
    monkeypatch.chdir(root)


def test_compile_flops_golden(cli, in_root):
    r = cli("compile", "specs/resnet50.yaml", "--flops")
    assert r.code == 0, r.err
    golden("resnet50_flops.txt", r.out)


def test_compile_layers_golden(cli, in_root):
    r = cli("compile", "cifar_resnet20", "--layers", "--count", "all", "--unit", "flops")
    assert r.code == 0, r.err
    golden("cifar_resnet20_layers.txt", r.out)


def test_ir_text_golden(cli, in_root):
    r = cli("compile", "specs/resnet18.yaml", "--ir")
    assert r.code == 0, r.err
    golden("resnet18_ir.txt", r.out)


def test_table1_golden(cli, in_root):
    r = cli("table", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
    assert r.code == 0, r.err
    golden("table1.md", r.out)
    assert "| FLOPs (multiply-adds) | | 1.81 x 10^9 | 3.66 x 10^9 | 3.86 x 10^9 | 7.57 x 10^9 | 11.28 x 10^9 |" in r.out
    assert "[1x1, 256; 3x3, 256; 1x1, 1024] x 36" in r.out


def test_compile_json(cli, in_root):
    r = cli("compile", "resnet18_tv", "--json")
    d = json.loads(r.out)
    assert d["params"] == 11_689_512 and d["macs"] == 1_814_073_344 and d["layers"] == 18
    assert [s["name"] for s in d["stages"]] == ["conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"]


def test_compile_set_and_input(cli, in_root):
    r = cli("compile", "cifar_resnet", "--set", "n=200", "--json")
    assert json.loads(r.out)["layers"] == 1202
    r = cli("compile", "cifar_resnet20", "--input", "3x64x64", "--json")
    assert json.loads(r.out)["input"] == [3, 64, 64]


@pytest.mark.parametrize("args,fragment", [
    (["compile", "resnet5"], "did you mean `resnet50`?"),
    (["compile", "cifar_resnet", "--set", "n=0"], "--set n: error[E213]: param `n` must be at least 1, got 0"),
    (["compile", "resnet50", "--input", "3x16"], "error[E403]"),
    (["compile", "resnet50", "--count", "most"], "invalid choice"),
])
def test_compile_bad_input_exits_2_with_one_clear_message(cli, in_root, args, fragment):
    r = cli(*args)
    assert r.code == 2
    assert fragment in r.err and "Traceback" not in r.err



def test_compile_does_not_import_torch(cli_process):
    code = ("import sys; from archspec.cli import main; main(['compile', 'resnet152', '--flops']); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
