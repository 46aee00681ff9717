"""The command line: exit codes, text and JSON output, schema/list/explain, start-up cost. The code catalogue and
the scan of the sources for codes are tests/archspec/test_codes.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.lang.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[2]





# ---------------------------------------------------------------------------------------------- exit codes

def test_valid_spec_exit_0(cli):
    r = cli("validate", "resnet18")
    assert r.code == 0, r.err
    assert re.fullmatch(r"\S*resnet18\.yaml: ok \(resnet18, 82 nodes\)\n", r.out), r.out
    assert r.err == ""


def test_invalid_spec_exit_2_with_location_caret_and_help(cli, bad_spec):
    r = cli("validate", bad_spec)
    assert r.code == 2
    assert r.out == ""
    lines = r.err.splitlines()
    assert re.search(r"bad\.yaml:5:32: error\[E305\]: .*shortcut", lines[0]), lines[0]
    assert lines[1] == " 5 |   - add: {op: add, in: [conv1, shortcut]}"
    assert lines[2] == "   | " + " " * 31 + "^" * len("shortcut")
    assert any(line.startswith("   = help:") for line in lines)


def test_unknown_flag_exit_2_one_line(cli):
    r = cli("validate", "--bogus", "resnet18")
    assert r.code == 2
    assert r.out == ""
    assert len(r.err.strip().splitlines()) == 1
    assert "--bogus" in r.err and r.err.startswith("archspec: error:")


@pytest.mark.parametrize("args", [
    ("validate", "resnet18", "--format", "xml"),
    ("validate", "resnet18", "--max-nodes", "abc"),
    ("validate", "resnet18", "--max-nodes", "0"),
    ("validate",),
    ("frobnicate",),
    (),
    ("schema", "--bogus"),
    ("explain", "E999"),
])
def test_usage_errors_exit_2_one_line(cli, args):
    r = cli(*args)
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert "Traceback" not in r.err


def test_missing_file_exit_2(cli, tmp_path):
    r = cli("validate", tmp_path / "nope.yaml")
    assert r.code == 2
    assert "error[E001]" in r.err


def test_unknown_name_exit_2_with_suggestion(cli):
    r = cli("validate", "resnet5O")
    assert r.code == 2
    assert "error[E123]" in r.err and "did you mean `resnet50`?" in r.err


def test_help_and_version_exit_0(cli):
    r = cli("--help")
    assert r.code == 0 and "validate" in r.out
    r = cli("--version")
    assert r.code == 0 and re.fullmatch(r"archspec \d+\.\d+\.\d+ \(archspec-nn\)\s*", r.out)


def test_internal_error_exit_1_one_line(cli, monkeypatch):
    import archspec.compiler.validate

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.delenv("ARCHSPEC_DEBUG", raising=False)
    monkeypatch.setattr(archspec.compiler.validate, "validate", boom)
    r = cli("validate", "resnet18")
    assert r.code == 1
    assert "internal error" in r.err and "kaboom" in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_set_and_input_options(cli):
    r = cli("validate", "cifar_resnet", "--set", "n=5", "--input", "3x64x64")
    assert r.code == 0, r.err
    assert "cifar_resnet32" in r.out
    r = cli("validate", "cifar_resnet", "--set", "nn=5")
    assert r.code == 2 and "error[E207]" in r.err and "did you mean `n`?" in r.err


def test_max_nodes_option(cli):
    r = cli("validate", "resnet18", "--max-nodes", "10")
    assert r.code == 2 and "error[E500]" in r.err
    assert cli("validate", "resnet18", "--max-nodes", "1000").code == 0


def test_a_bad_spec_is_reported_the_same_by_every_compiling_command(cli, bad_spec, tmp_path):
    """A SpecError is printed as its diagnostics (source line and caret) by `main`, whichever command raised it."""
    expected = cli("validate", bad_spec).err
    for args in (("compile",), ("summary",), ("render", "-o", tmp_path / "x.svg"),
                 ("export", "--onnx", tmp_path / "x.onnx")):
        r = cli(args[0], bad_spec, *args[1:])
        assert (r.code, r.out, r.err) == (2, "", expected), args


def test_table_reports_every_bad_spec(cli, bad_spec, tmp_path):
    other = tmp_path / "other.yaml"
    other.write_text(bad_spec.read_text().replace("shortcut", "elsewhere"))
    r = cli("table", bad_spec, "resnet18", other)
    assert r.code == 2 and r.out == ""
    assert r.err == cli("validate", bad_spec).err + cli("validate", other).err


def test_no_module_imports_the_cli_back():
    """The subcommand modules take what they share from archspec.cmdbase: only the entry points import cli."""
    import ast

    for path in sorted((ROOT / "archspec").glob("*.py")):
        if path.name in ("cli.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            module = node.module if isinstance(node, ast.ImportFrom) else None
            assert module != "archspec.cli" and "archspec.cli" not in names, path.name
            assert not (module == "archspec" and "cli" in names), path.name


# ---------------------------------------------------------------------------------------------- several specs

def test_several_specs_each_reported(cli, bad_spec):
    r = cli("validate", "resnet18", bad_spec, "resnet50")
    assert r.code == 2
    assert "ok (resnet18" in r.out and "ok (resnet50" in r.out
    assert "bad.yaml:5:32: error[E305]" in r.err
    assert "3 specs: 2 valid, 1 invalid" in r.err


def test_several_valid_specs(cli):
    r = cli("validate", "resnet18", "resnet34", "cifar_resnet20")
    assert r.code == 0
    assert len([l for l in r.out.splitlines() if ": ok (" in l]) == 3
    assert "3 specs: 3 valid, 0 invalid" in r.out


# ---------------------------------------------------------------------------------------------- json

def test_json_format_valid(cli):
    r = cli("validate", "resnet18", "cifar_resnet", "--format", "json")
    assert r.code == 0
    data = json.loads(r.out)
    assert [d["spec"] for d in data] == ["resnet18", "cifar_resnet"]
    first = data[0]
    assert first["valid"] is True and first["diagnostics"] == []
    assert first["name"] == "resnet18" and first["nodes"] == 82
    assert first["file"].endswith("resnet18.yaml")
    assert data[1]["name"] == "cifar_resnet20"


def test_json_format_invalid(cli, bad_spec):
    r = cli("validate", bad_spec, "resnet18", "--format", "json")
    assert r.code == 2
    data = json.loads(r.out)  # stdout is pure JSON
    bad, good = data
    assert bad["valid"] is False and good["valid"] is True
    assert bad["file"].endswith("bad.yaml")
    (d,) = bad["diagnostics"]
    assert {k: d[k] for k in ("severity", "code", "line", "col")} == \
        {"severity": "error", "code": "E305", "line": 5, "col": 32}
    assert d["file"].endswith("bad.yaml") and "shortcut" in d["message"]
    assert "name" not in bad and "nodes" not in bad


def test_json_file_is_the_spec_even_when_an_override_fails(cli):
    r = cli("validate", "resnet18", "--set", "foo=1", "--format", "json")
    assert r.code == 2
    (result,) = json.loads(r.out)
    assert result["diagnostics"][0]["code"] == "E207"
    assert result["file"].endswith("resnet18.yaml")


def test_json_notes_for_collapsed_diagnostics(cli, tmp_path):
    path = tmp_path / "many.yaml"
    path.write_text("archspec: 1\ninput: [3, 8, 8]\nblocks:\n  bad:\n    body:\n      - c: {op: relu, in: nothere}\n"
                    "network:\n  - a: {use: bad}\n  - b: {use: bad}\n")
    r = cli("validate", path, "--format", "json")
    (result,) = json.loads(r.out)
    (d,) = result["diagnostics"]
    assert d["code"] == "E305" and d["line"] == 6
    assert any("1 more time" in n["message"] for n in d["notes"])


# ---------------------------------------------------------------------------------------------- schema, list, explain

def test_schema_is_valid_draft_2020_12(cli):
    from jsonschema import Draft202012Validator

    r = cli("schema")
    assert r.code == 0
    schema = json.loads(r.out)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_accepts_shipped_specs_and_rejects_garbage(cli):
    import yaml
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(cli("schema").out))
    for path in sorted((ROOT / "specs").rglob("*.yaml")):
        if path.parent.name == "experiments":  # experiment files, not specs (test_experiment_file.py)
            continue
        errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, (path.name, errors[0].message)
    assert list(validator.iter_errors({"archspec": 1, "netwrok": []}))


def test_list(cli):
    r = cli("list")
    assert r.code == 0
    names = [line.split()[0] for line in r.out.splitlines()]
    assert {"resnet18", "resnet50", "resnet50_tv", "cifar_resnet", "cifar_resnet1202"} <= set(names)
    assert "resnet" not in names and "imagenet" not in names  # libraries and recipes are not specs
    assert len(names) == len(set(names))
    for line in r.out.splitlines():
        assert line.split()[1].endswith(line.split()[0] + ".yaml")


def test_explain(cli):
    r = cli("explain", "E305")
    assert r.code == 0
    assert r.out.splitlines()[0] == f"E305: {CODES['E305']}"  # then its long explanation
    assert cli("explain", "e305").out == r.out


@pytest.mark.parametrize("code", sorted(CODES))
def test_explain_every_code(cli, code):
    r = cli("explain", code)
    assert r.code == 0 and r.out.startswith(code + ": ")


def test_explain_unknown_code(cli):
    r = cli("explain", "E999")
    assert r.code == 2 and "E999" in r.err


# ---------------------------------------------------------------------------------------------- processes

def test_python_dash_m(cli_process, bad_spec):
    r = cli_process("validate", "resnet50")
    assert r.code == 0, r.err
    assert "ok (resnet50" in r.out
    r = cli_process("validate", bad_spec)
    assert r.code == 2 and "error[E305]" in r.err
    r = cli_process("--bogus")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1


def test_schema_to_a_closed_pipe(root):
    proc = subprocess.run(f"{sys.executable} -m archspec schema | head -c 10", shell=True, capture_output=True,
                          text=True, cwd=root, timeout=60)
    assert proc.stdout.startswith("{")
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
    # a closed pipe is not a filesystem problem, nor an internal error (output larger than a pipe's buffer)
    proc = subprocess.run(f"{sys.executable} -m archspec compile resnet152 --layers | head -1", shell=True,
                          capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.stdout.startswith("resnet152") and proc.stderr == ""


def test_validate_imports_neither_torch_nor_networkx(root):
    code = ("import sys; from archspec.cli import main; rc = main(['validate', 'resnet50']); assert rc == 0; "
            "heavy = [m for m in ('torch', 'networkx', 'graphviz') if m in sys.modules]; "
            "assert not heavy, heavy")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_import_archspec_is_cheap(root):
    code = "import sys, archspec; assert 'torch' not in sys.modules and 'networkx' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_the_other_archspec_package_in_the_environment_is_named_in_a_warning(cli, monkeypatch):
    from importlib import metadata

    class Other:
        version = "0.2.5"
        metadata = {"Summary": "A library to query system architecture"}

    real = metadata.distribution
    monkeypatch.setattr(metadata, "distribution", lambda name: Other() if name == "archspec" else real(name))
    r = cli("list")
    assert r.code == 0
    assert r.err.startswith("archspec: warning: this environment also holds the package `archspec` 0.2.5")
    assert "install archspec-nn in a virtual environment of its own" in r.err
    monkeypatch.setattr(metadata, "distribution", real)
    assert cli("list").err == ""


def test_the_distribution_is_archspec_nn_and_the_command_archspec(cli, root):
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert project["name"] == "archspec-nn" and project["scripts"] == {"archspec": "archspec.cli:main"}
    assert cli("--version").out.strip().endswith("(archspec-nn)")
