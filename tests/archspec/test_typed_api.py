"""Issue "A typed core", item 3: Python values cross the API as values. `archspec.load/compile/build(spec, **params)`
turned keywords into `name=value` text that the `--set` reader parsed again: `n="0x10"` arrived as 16, `p="on"` as
True, `p="=1+1"` became an expression. Text is parsed only at the command line now; and the compiler takes typed
requests, never an argparse Namespace."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import archspec
from archspec.lang.diagnostics import SpecError

ROOT = Path(__file__).resolve().parents[2]


def refusal(**params) -> str:
    with pytest.raises(SpecError) as e:
        archspec.compile("cifar_resnet20", **params)
    return str(e.value)


def test_values_are_taken_as_they_are():
    assert archspec.compile("cifar_resnet20", n=5).params == archspec.compile("cifar_resnet20", n=5).params
    assert archspec.compile("cifar_resnet20", n=5).params != archspec.compile("cifar_resnet20").params
    # a tuple is a list, as the language holds it
    assert archspec.compile("resnet18", depths=(2, 2, 2, 2)).params == archspec.compile("resnet18").params


def test_text_is_never_read_as_yaml():
    text = refusal(n="0x10")  # YAML read this as 16
    assert text.startswith("n='0x10': error[E213]: param `n` must be a whole number"), text
    assert "must be a whole number" in refusal(n="5")
    assert "must be one of A, B, C" in refusal(shortcut="on")  # YAML read this as true


def test_text_is_never_read_as_an_expression():
    text = refusal(shortcut="=1+1")
    assert "error[E207]: the value given for `shortcut` holds text that a spec reads as an expression ('=1+1')" \
        in text
    assert "expression" in refusal(depths=[3, "${n}", 3])


def test_the_command_line_still_reads_text(cli):
    assert cli("compile", "cifar_resnet20", "--set", "n=5").code == 0
    r = cli("compile", "cifar_resnet20", "--set", "n==2+3")
    assert r.code == 0 and "ResNet" in r.out


def test_the_compiler_and_runtime_never_read_argparse():
    for folder in ("compiler", "runtime"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text())
            names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
            mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert "argparse" not in names | mods, path


def test_export_takes_a_typed_request(tmp_path):
    from archspec.compiler.analysis import compile_spec
    from archspec.compiler.export import ExportRequest, export_all

    with pytest.raises(TypeError):
        ExportRequest(str(tmp_path / "m.onnx"))  # keywords only
    lines = list(export_all(compile_spec("cifar_resnet20"), ExportRequest(torchscript=str(tmp_path / "m.pt"))))
    assert len(lines) == 1 and "TorchScript" in lines[0] and (tmp_path / "m.pt").is_file()
