"""Hardening: no diagnostic misleads. Readable names, honest file messages, range-checked options, an unknown
top-level option, `archspec explain` with no code, out-of-memory builds, descriptions only from the spec's own
files, `export --check` that fails, a short `Result` repr and a bounded schema cache."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.lang.diagnostics import CODES

ROOT = Path(__file__).resolve().parents[2]

TINY = """\
archspec: 1
input: [3, 8, 8]
network:
  - conv1: {op: conv, out: 4, kernel: 3, pad: 1}
  - pool: {op: global_avgpool}
  - flatten: {op: flatten}
  - fc: {op: linear, out: 10}
"""


# ---------------------------------------------------------------------------------------------- 1. messages

def test_invalid_node_name_is_printed_as_written_and_in_words(cli, tmp_path):
    spec = tmp_path / "emoji.yaml"
    spec.write_text(TINY.replace("  - pool:", "  - \U0001F600: {op: relu}\n  - pool:"), encoding="utf-8")
    r = cli("validate", spec)
    assert r.code == 2
    assert "\U0001F600" in r.err.splitlines()[0], r.err
    assert "\\ud83d" not in r.err and "^(" not in r.err and "[A-Za-z" not in r.err
    assert "error[E316]" in r.err and "letters" in r.err


def test_invalid_param_name_in_words(cli, tmp_path):
    spec = tmp_path / "p.yaml"
    spec.write_text(TINY.replace("input:", "params: {\u00e9t\u00e9: 1}\ninput:"), encoding="utf-8")
    r = cli("validate", spec)
    assert r.code == 2
    assert "\u00e9t\u00e9" in r.err and "\\u00e9" not in r.err and "[A-Za-z" not in r.err, r.err


def test_symlink_loop_is_named(cli, tmp_path):
    (tmp_path / "loop1.yaml").symlink_to("loop2.yaml")
    (tmp_path / "loop2.yaml").symlink_to("loop1.yaml")
    r = cli("validate", tmp_path / "loop1.yaml")
    assert r.code == 2
    assert "symlink loop" in r.err, r.err
    assert "no such file" not in r.err and "did you mean" not in r.err


def test_symlinked_library_outside_the_tree_says_symlink(cli, tmp_path):
    outside, proj = tmp_path / "outside", tmp_path / "proj"
    outside.mkdir()
    proj.mkdir()
    (outside / "lib.yaml").write_text("archspec: 1\nparams: {width: 4}\n")
    (proj / "lib.yaml").symlink_to(outside / "lib.yaml")
    (proj / "s.yaml").write_text(TINY.replace("input:", "imports: [lib.yaml]\ninput:"))
    r = cli("validate", proj / "s.yaml")
    assert r.code == 2
    assert "error[E122]" in r.err and "symlink" in r.err, r.err
    assert "outside/lib.yaml" in r.err  # where it points
    assert "copy" in r.err  # the fix


def test_validate_refuses_a_non_positive_node_budget():
    from archspec.compiler.validate import validate

    with pytest.raises(ValueError, match="max_nodes"):
        validate("cifar_resnet20", max_nodes=-1)


@pytest.mark.parametrize("args", [
    ("validate", "cifar_resnet20", "--max-nodes", "-1"),
    ("compile", "cifar_resnet20", "--max-nodes", "-1"),
    ("compile", "cifar_resnet20", "--dtype-bytes", "x"),
])
def test_numeric_options_are_range_checked(cli, args):
    r = cli(*args)
    assert r.code == 2
    assert "steps" not in r.err and ("must be" in r.err or "expected a whole number" in r.err), r.err


def test_unknown_top_level_option_is_named(cli):
    r = cli("--bogus")
    assert r.code == 2
    assert len(r.err.strip().splitlines()) == 1
    assert "--bogus" in r.err and "required" not in r.err, r.err
    assert "validate" in r.err  # the commands are listed


# ---------------------------------------------------------------------------------------------- 2. explain

def test_explain_without_a_code_lists_every_code(cli):
    r = cli("explain")
    assert r.code == 0, r.err
    lines = r.out.strip().splitlines()
    assert lines == [f"{code}: {CODES[code]}" for code in sorted(CODES)]


def test_explain_unknown_op_points_to_ops(cli):
    r = cli("explain", "E300")
    assert r.code == 0 and r.out.startswith(f"E300: {CODES['E300']}")
    assert "archspec ops" in r.out


# ---------------------------------------------------------------------------------------------- 3. memory

@pytest.mark.parametrize("text", [
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not enough memory: you tried to allocate "
    "10800000000 bytes.",
    "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to "
    "allocate 10800000000 bytes. Error code 12 (Cannot allocate memory)",
])
def test_cpu_allocator_failure_is_one_line_exit_2(monkeypatch, capsys, text):
    from archspec import cli, commands

    def fail(args):
        raise RuntimeError(text)

    monkeypatch.setattr(commands, "_cmd_compile", fail)
    code = cli.main(["compile", "cifar_resnet20"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "10.8 GB" in err and "internal error" not in err, err


@pytest.mark.slow
def test_export_of_a_model_too_big_for_memory(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text(TINY.replace("out: 4,", "out: 100000000,"))

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))

    env = dict(os.environ, ARCHSPEC_NO_CACHE="1")
    r = subprocess.run([sys.executable, "-m", "archspec", "export", str(spec), "--torchscript", str(tmp_path / "m.pt")],
                       capture_output=True, text=True, preexec_fn=limit, env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "parameters" in r.stderr and "out:" in r.stderr, r.stderr
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------------------------- 4. description

def test_description_comes_only_from_the_spec_and_what_it_extends(tmp_path):
    import archspec

    (tmp_path / "lib.yaml").write_text("archspec: 1\ndescription: the library's\nparams: {width: 4}\n")
    (tmp_path / "s.yaml").write_text(TINY.replace("input:", "imports: [lib.yaml]\ninput:"))
    assert archspec.load(tmp_path / "s.yaml").description == ""
    (tmp_path / "base.yaml").write_text(TINY.replace("input:", "description: the base's\ninput:"))
    (tmp_path / "child.yaml").write_text("archspec: 1\nextends: base.yaml\nimports: [lib.yaml]\n")
    assert archspec.load(tmp_path / "child.yaml").description == "the base's"


def test_shipped_spec_keeps_its_description():
    import archspec

    assert archspec.load("cifar_resnet20").description.startswith("ResNet-20 for CIFAR-10")


# ---------------------------------------------------------------------------------------------- 5. export

@pytest.mark.slow
def test_export_check_fails_above_the_tolerance(cli, tmp_path):
    pytest.importorskip("onnxruntime")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    ok = cli("export", spec, "--onnx", tmp_path / "a.onnx", "--check")
    assert ok.code == 0, ok.err
    bad = cli("export", spec, "--onnx", tmp_path / "b.onnx", "--check", "--tolerance", "1e-30")
    assert bad.code == 1, bad.err
    assert "difference" in bad.err and "tolerance" in bad.err, bad.err


def test_export_tolerance_is_range_checked(cli, tmp_path):
    r = cli("export", "cifar_resnet20", "--onnx", tmp_path / "a.onnx", "--check", "--tolerance", "-1")
    assert r.code == 2 and "--tolerance" in r.err


def test_export_same_path_twice_writes_nothing(cli, tmp_path):
    r = cli("export", "cifar_resnet20", "--onnx", tmp_path / "m.onnx", "--torchscript", tmp_path / "m.onnx")
    assert r.code == 2
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------------------------------------- 6. repr, cache

def test_result_repr_is_short():
    from archspec.compiler.validate import validate

    result = validate("cifar_resnet110")
    text = repr(result)
    assert len(text) < 300, len(text)
    assert "cifar_resnet110" in text and "ok=True" in text


def test_schema_cache_is_bounded(tmp_path, monkeypatch):
    from archspec.lang.schema import check
    from archspec.lang.yamlsrc import parse

    monkeypatch.setenv("ARCHSPEC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(check, "MAX_CACHE_ENTRIES", 5)
    checker = check.SchemaChecker(cache=True)
    for i in range(12):
        text = TINY.replace("out: 10", f"out: {i + 1}")
        assert checker.check_text(parse(text, "t.yaml"), "t.yaml", text) == []
    assert len(list((tmp_path / "schema-ok").iterdir())) <= 5


def test_cache_command_shows_and_clears(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSPEC_CACHE_DIR", str(tmp_path))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    assert cli("validate", spec).code == 0
    r = cli("cache")
    assert r.code == 0 and str(tmp_path) in r.out and "1 " in r.out, r.out
    r = cli("cache", "clear")
    assert r.code == 0
    assert not list((tmp_path / "schema-ok").glob("*"))
    assert "0 " in cli("cache").out
