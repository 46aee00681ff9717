"""Ops a user adds without forking: the example plugin in tests/plugins (`layer_scale`, a learnable scale per
channel) registered through real entry points (a .dist-info folder on the path, as pip writes one), then used by a
spec from the command line: validated against the schema built with it, compiled and counted, drawn, listed by
`archspec ops`, built and run. A broken plugin is one line naming it and the fix (exit 2); ARCHSPEC_NO_PLUGINS=1
turns plugins off."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "archspec_layer_scale"
ENTRY_POINTS = """\
[archspec.ops]
layer_scale = archspec_layer_scale.ops

[archspec.lowerings]
layer_scale = archspec_layer_scale.lowering
"""
SPEC = """\
archspec: 1
name: scaled
input: [3, 8, 8]
network:
  - conv: {op: conv, out: 16, kernel: 3, pad: 1}
  - ls: {op: layer_scale, init: 0.5}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""


def install(site: Path, entry_points: str = ENTRY_POINTS, name: str = "archspec_layer_scale") -> None:
    """What `pip install` leaves: the package and a dist-info folder whose entry_points.txt names it."""
    shutil.copytree(PLUGIN, site / name)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def run(site: Path, *args: str, env: dict | None = None, code: str | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
               **(env or {})}
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "archspec", *args]
    return subprocess.run(command, capture_output=True, text=True, env=environ, timeout=300)


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (tmp_path / "scaled.yaml").write_text(SPEC)
    return site


def test_a_plugin_op_is_listed_validated_compiled_counted_and_drawn(site, tmp_path):
    install(site)
    spec = str(tmp_path / "scaled.yaml")
    r = run(site, "ops")
    assert r.returncode == 0, r.stderr
    assert "layer_scale: a learnable scale per channel" in r.stdout
    assert "plugin layer_scale (from archspec_layer_scale): layer_scale" in r.stdout
    r = run(site, "validate", spec)
    assert r.returncode == 0 and ": ok (scaled, 5 nodes)" in r.stdout, r.stdout + r.stderr
    r = run(site, "compile", spec)
    assert r.returncode == 0, r.stderr
    # conv 3*16*9 + bn-free; layer_scale 16 gammas; fc 16*10 + 10
    assert f"{3 * 16 * 9 + 16 + 16 * 10 + 10:,}" in r.stdout
    r = run(site, "render", spec, "-o", str(tmp_path / "s.dot"), "--level", "layer")
    assert r.returncode == 0, r.stderr
    assert "scale x0.5" in (tmp_path / "s.dot").read_text()
    r = run(site, "schema")
    assert r.returncode == 0 and '"op_layer_scale"' in r.stdout


def test_a_plugin_op_builds_and_computes_what_it_says(site, tmp_path):
    install(site)
    code = textwrap.dedent(f"""
        import torch, archspec
        model = archspec.build({str(tmp_path / 'scaled.yaml')!r}).eval()
        ls = model.get_submodule("ls")
        assert type(ls).__name__ == "LayerScale" and torch.all(ls.gamma == 0.5), ls
        x = torch.randn(2, 3, 8, 8)
        conv = model.get_submodule("conv")
        with torch.no_grad():
            torch.nn.init.normal_(ls.gamma)
            want = model.get_submodule("fc")((conv(x) * ls.gamma.view(1, -1, 1, 1)).mean((2, 3)))
            assert torch.allclose(model(x), want, atol=1e-6)
        print(sorted(model.state_dict()))
    """)
    r = run(site, code=code)
    assert r.returncode == 0, r.stderr
    assert "'ls.gamma'" in r.stdout


def test_a_plugin_op_is_checked_like_a_builtin_op(site, tmp_path):
    install(site)
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("init: 0.5", "init: -1"))
    r = run(site, "validate", str(bad))
    assert r.returncode == 2
    assert "bad.yaml:6" in r.stderr and "init" in r.stderr and "at least 0" in r.stderr


def test_without_the_plugin_the_op_is_unknown(site, tmp_path):
    install(site)
    r = run(site, "validate", str(tmp_path / "scaled.yaml"), env={"ARCHSPEC_NO_PLUGINS": "1"})
    assert r.returncode == 2 and "layer_scale" in r.stderr


@pytest.mark.parametrize("broken, command, message", [
    ("[archspec.ops]\nbroken = archspec_layer_scale.missing\n", "compile",
     "op plugin `broken` (archspec_layer_scale.missing"),
    ("[archspec.ops]\nrelu = archspec_layer_scale.clash\n", "compile",
     "defines `relu`, which is one of archspec's own ops"),
    # compiling needs no lowering; showing the torch modules does
    ("[archspec.ops]\nlayer_scale = archspec_layer_scale.ops\n", "summary",
     "which no `archspec.lowerings` entry point lowers"),
])
def test_a_broken_plugin_is_one_line_naming_it_and_the_fix(site, tmp_path, broken, command, message):
    install(site, broken)
    (site / "archspec_layer_scale" / "clash.py").write_text(
        "from archspec.lang.ops.elementwise import OPS as _own\nOPS = [o for o in _own if o.name == 'relu']\n")
    r = run(site, command, str(tmp_path / "scaled.yaml"))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "ARCHSPEC_NO_PLUGINS=1" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
