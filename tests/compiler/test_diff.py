"""compiler/diff/: the architectural diff of two compiled specs.

The printed diffs are golden files; regenerate them after a change to the spec library with

    ARCHSPEC_UPDATE_GOLDEN=1 python -m pytest tests/compiler/test_diff.py

The other tests check the same diffs through their data, independently of the golden text, so a regenerated
golden cannot silently hide a wrong diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import archspec
from archspec.compiler.diff import LEVELS, relative

GOLDEN = Path(__file__).parent / "golden"

# The golden cases: (golden file, CLI arguments).
CASES = {
    "diff_resnet34_b_c.txt": ["resnet34_b", "resnet34_c"],
    "diff_resnet34_b_c_layer.txt": ["resnet34_b", "resnet34_c", "--level", "layer"],
    "diff_resnet50_tv.txt": ["resnet50", "resnet50_tv"],
    "diff_cifar_resnet_n3_n5.txt": ["specs/cifar_resnet.yaml", "specs/cifar_resnet.yaml", "--set-a", "n=3",
                                    "--set-b", "n=5"],
    "diff_cifar_resnet_n3_n5_stage.txt": ["cifar_resnet", "cifar_resnet", "--set-a", "n=3", "--set-b", "n=5",
                                          "--level", "stage"],
}


@pytest.fixture
def in_root(root, monkeypatch):
    monkeypatch.chdir(root)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, cli, in_root):
    r = cli("diff", *CASES[name])
    assert r.code == 1, r.err
    path = GOLDEN / name
    if os.environ.get("ARCHSPEC_UPDATE_GOLDEN"):
        path.write_text(r.out, encoding="utf-8")
    assert path.is_file(), f"no golden {name}; run with ARCHSPEC_UPDATE_GOLDEN=1"
    assert r.out == path.read_text(encoding="utf-8")


def by_name(groups):
    return {g.name: g for g in groups}


# ---------------------------------------------------------------------------------------- resnet34 B vs C

IDENTITY_BLOCKS = (["layer1.0", "layer1.1", "layer1.2", "layer2.1", "layer2.2", "layer2.3"]
                   + [f"layer3.{i}" for i in range(1, 6)] + ["layer4.1", "layer4.2"])


@pytest.fixture(scope="module")
def b_vs_c():
    return archspec.diff("resnet34_b", "resnet34_c")


def test_option_c_projects_every_identity_shortcut(b_vs_c):
    assert not b_vs_c.equal
    groups = by_name(b_vs_c.groups)
    assert list(groups) == IDENTITY_BLOCKS  # the projection blocks (layerN.0 for N > 1) are the same in B and C
    for name, g in groups.items():
        assert g.status == "changed" and g.residual
        [change] = g.changes  # one change per block: its shortcut, not three nodes
        assert (change.kind, change.name) == ("replaced", f"{name}.downsample")
        assert [o.op for o in change.before] == ["identity"]
        assert [o.op for o in change.after] == ["conv", "bn"]
        assert [o.name for o in change.after] == [f"{name}.downsample.0", f"{name}.downsample.1"]
        conv = change.after[0]
        assert conv.attrs["kernel"] == 1 and conv.attrs["out"] == conv.shape[0]
        assert g.params[1] - g.params[0] == sum(o.params for o in change.after) > 0


def test_totals_and_stages_match_the_compiled_specs(b_vs_c):
    a, b = archspec.compile("resnet34_b"), archspec.compile("resnet34_c")
    d = b_vs_c.to_dict()
    assert d["totals"]["params"] == {"a": a.params, "b": b.params, "delta": b.params - a.params,
                                     "relative": (b.params - a.params) / a.params}
    assert d["totals"]["macs"]["delta"] == b.macs - a.macs > 0
    assert sum(s["params"]["delta"] for s in d["stages"]) == b.params - a.params
    assert sum(s["macs"]["delta"] for s in d["stages"]) == b.macs - a.macs
    assert sum(g["params"]["delta"] for g in d["blocks"]) == b.params - a.params
    stages = {s["name"]: s for s in d["stages"]}
    assert stages["conv2_x"]["summary"] == "3 blocks changed"
    assert stages["conv4_x"]["summary"] == "5 blocks changed"
    assert stages["head"]["params"]["delta"] == 0 and stages["head"]["summary"] == ""


def test_identical_blocks_collapse_onto_the_first_of_their_run(b_vs_c):
    same = {g.name: g.same_as for g in b_vs_c.groups}
    assert same["layer1.0"] is None and same["layer1.1"] == same["layer1.2"] == "layer1.0"
    assert same["layer2.1"] is None and same["layer2.3"] == "layer2.1"  # widths differ between stages
    assert same["layer3.5"] == "layer3.1" and same["layer4.2"] == "layer4.1"
    text = b_vs_c.format("block")
    assert "~ layer3.2 .. layer3.5 (4 blocks): same as layer3.1" in text
    assert "~ layer4.2: same as layer4.1" in text
    assert "downsample  identity -> conv[out=64, kernel=1] + bn" in text
    assert text.count("identity -> conv") == 4  # one per run, not one per block


# ---------------------------------------------------------------------------------- resnet50 vs resnet50_tv

def test_stride_placement_moves_the_stride_in_three_blocks():
    d = archspec.diff("resnet50", "resnet50_tv")
    assert [g.name for g in d.groups] == ["layer2.0", "layer3.0", "layer4.0"]
    for g in d.groups:
        changes = {relative(c.name, g.name): c for c in g.changes}
        assert changes["conv1"].attrs == {"stride": (2, 1)}
        assert changes["conv2"].attrs == {"stride": (1, 2)}
        assert changes["conv2"].shape is None  # the block's output keeps its size
        c, h, w = changes["conv1"].shape[0]
        assert changes["conv1"].shape == ([c, h, w], [c, 2 * h, 2 * w])
        assert changes["bn1"].shape == changes["relu1"].shape == changes["conv1"].shape
        assert not changes["bn1"].attrs and changes["bn1"].kind == "changed"
        assert g.params[0] == g.params[1] and g.total[1] > g.total[0]
    d = d.to_dict()
    assert d["totals"]["params"]["delta"] == 0 and d["totals"]["macs"]["delta"] > 0


# ------------------------------------------------------------------------------------ cifar_resnet n=3 vs n=5

def test_more_blocks_per_stage_are_blocks_added():
    d = archspec.diff("cifar_resnet", "cifar_resnet", set_a={"n": 3}, set_b={"n": 5})
    assert [(g.name, g.status) for g in d.groups] == [
        (f"layer{s}.{i}", "added") for s in (1, 2, 3) for i in (3, 4)]
    for g in d.groups:
        [change] = g.changes  # the whole block, its shortcut included
        assert change.kind == "added" and change.name == g.name and change.template == "basic"
        assert not change.before and all(o.name.startswith(g.name + ".") for o in change.after)
    assert [g.same_as for g in d.groups] == [None, "layer1.3", None, "layer2.3", None, "layer3.3"]
    data = d.to_dict("stage")
    assert data["totals"]["layers"] == {"a": 20, "b": 32, "delta": 12, "relative": 0.6}
    assert [s["blocks"] for s in data["stages"] if s["name"].startswith("conv") and s["name"] != "conv1"] == \
        [{"a": 3, "b": 5}] * 3
    assert data["a"]["overrides"] == {"n": 3} and data["b"]["overrides"] == {"n": 5}
    n3, n5 = archspec.compile("cifar_resnet", n=3), archspec.compile("cifar_resnet", n=5)
    assert data["totals"]["params"]["delta"] == n5.params - n3.params


# ------------------------------------------------------------------------------------------ small specs

SMALL = """\
archspec: 1
input: [3, 32, 32]
network:
  - conv1: {{op: conv, out: {width}, kernel: 3, pad: 1}}
  - bn1: {{op: bn}}
  - relu: {{op: relu}}
{extra}  - pool: {{op: global_avgpool}}
  - flatten: {{op: flatten}}
  - fc: {{op: linear, out: {classes}}}
"""


def small(tmp_path: Path, name: str, width: int = 16, classes: int = 10, extra: str = "") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SMALL.format(width=width, classes=classes, extra=extra))
    return path


def test_a_spec_against_itself_is_equal(tmp_path):
    spec = small(tmp_path, "same")
    d = archspec.diff(spec, spec)
    assert d.equal and d.groups == [] and d.nodes == []
    assert "equal:" in d.format() and "changes by block" not in d.format()
    data = json.loads(json.dumps(d.to_dict("layer"), allow_nan=False))
    assert data["equal"] is True and data["blocks"] == [] and data["nodes"] == []


def test_attribute_changes_and_their_effects_on_ops_outside_blocks(tmp_path):
    d = archspec.diff(small(tmp_path, "a"), small(tmp_path, "b", width=32, classes=100))
    groups = by_name(d.groups)
    assert list(groups) == ["conv1", "bn1", "relu", "pool", "flatten", "fc"]  # input untouched
    assert groups["conv1"].changes[0].attrs == {"out": (16, 32)}
    assert groups["fc"].changes[0].attrs == {"out": (10, 100)}
    assert groups["relu"].changes[0].shape == ([16, 32, 32], [32, 32, 32])
    assert groups["flatten"].changes[0].shape == ([16], [32]) and not groups["flatten"].changes[0].attrs
    assert not any(g.residual for g in d.groups)
    assert "~ fc" in d.format() and "out 10 -> 100" in d.format()


def test_an_op_added_rewires_its_consumer(tmp_path):
    extra = "  - drop: {op: dropout, p: 0.5}\n"
    d = archspec.diff(small(tmp_path, "a"), small(tmp_path, "b", extra=extra))
    changes = {c.name: c for c in d.changes}
    assert set(changes) == {"drop", "pool"}
    assert changes["drop"].kind == "added" and [o.op for o in changes["drop"].after] == ["dropout"]
    assert changes["pool"].inputs == (["relu"], ["drop"])
    nodes = {n["name"]: n for n in d.to_dict("layer")["nodes"]}
    assert nodes["drop"]["status"] == "added" and nodes["pool"]["inputs"] == {"a": ["relu"], "b": ["drop"]}
    reverse = archspec.diff(small(tmp_path, "b", extra=extra), small(tmp_path, "a"))
    assert {c.name: c.kind for c in reverse.changes} == {"drop": "removed", "pool": "changed"}


def test_json_levels_and_strictness(b_vs_c):
    keys = {level: set(b_vs_c.to_dict(level)) for level in LEVELS}
    assert "blocks" not in keys["stage"] and "nodes" not in keys["stage"]
    assert "blocks" in keys["block"] and "nodes" not in keys["block"]
    assert {"blocks", "nodes"} <= keys["layer"]
    nodes = b_vs_c.to_dict("layer")["nodes"]
    assert {n["status"] for n in nodes} == {"added", "removed"}  # identities removed, convs and BNs added
    assert len([n for n in nodes if n["status"] == "removed"]) == len(IDENTITY_BLOCKS)
    text = json.dumps(b_vs_c.to_dict("layer"), allow_nan=False)  # no NaN or Infinity: relative of 0 is null
    assert '"relative": null' in text
    with pytest.raises(ValueError, match="level"):
        b_vs_c.format("op")


def test_levels_print_more_as_they_go_down(b_vs_c):
    stage, block, layer = (b_vs_c.format(level) for level in LEVELS)
    assert "changes by block" not in stage and "total" in stage
    assert "layer1.0" in block and "downsample.0" not in block
    assert "+ downsample.0  conv[out=64, kernel=1]" in layer and "- downsample    identity" in layer
    assert len(stage.splitlines()) < len(block.splitlines()) < len(layer.splitlines())


def test_diff_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys, archspec; archspec.diff('resnet34_b', 'resnet34_c').format(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_specs_compiled_under_different_conventions_diff_under_any_one():
    from archspec.compiler.analysis import Convention, compile_spec
    from archspec.compiler.diff import diff_compiled

    a = compile_spec("resnet50", unit="flops")
    b = compile_spec("resnet50_tv", count="all")
    macs = diff_compiled(a, b, Convention())
    assert macs.a.total() == a.macs and macs.b.total() == b.macs
    flops = diff_compiled(a, b, Convention(unit="flops"))
    assert [g.total for g in flops.groups] == [(2 * x, 2 * y) for x, y in (g.total for g in macs.groups)]
    assert flops.to_dict()["convention"] == {"count": "conv", "unit": "flops"}
    assert diff_compiled(a, b).b.convention == b.convention  # by default, the one `b` is shown in
