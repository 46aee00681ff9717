"""`archspec diff A B`: exit codes (0 equal, 1 different, 2 invalid input), --json, --level, --set/--set-a/--set-b."""

from __future__ import annotations

import json

import pytest



def strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)




def test_a_spec_against_itself_exits_0(cli):
    r = cli("diff", "resnet18", "specs/resnet18.yaml")
    assert r.code == 0, r.err
    assert "equal: the same ops" in r.out and r.err == ""


def test_different_specs_exit_1(cli):
    r = cli("diff", "resnet34_b", "resnet34_c")
    assert r.code == 1, r.err
    assert "different: 13 blocks changed" in r.out and r.err == ""


def test_set_applies_to_both_sides(cli):
    r = cli("diff", "resnet34", "resnet34_c", "--set", "shortcut=C")
    assert r.code == 0, r.out + r.err


def test_set_a_and_set_b(cli):
    r = cli("diff", "specs/cifar_resnet.yaml", "specs/cifar_resnet.yaml", "--set-a", "n=3", "--set-b", "n=5",
            "--json")
    assert r.code == 1, r.err
    d = strict_json(r.out)
    assert (d["a"]["name"], d["b"]["name"]) == ("cifar_resnet20", "cifar_resnet32")
    assert d["totals"]["layers"]["delta"] == 12
    r = cli("diff", "cifar_resnet", "cifar_resnet", "--set", "n=3", "--set-b", "n=3")
    assert r.code == 0, r.out + r.err


def test_broken_spec_exits_2_with_located_diagnostics(cli, bad_spec):
    r = cli("diff", "resnet18", bad_spec)
    assert r.code == 2 and r.out == ""
    lines = r.err.splitlines()
    assert "bad.yaml:5:32: error[E305]" in lines[0] and "shortcut" in lines[0]
    assert lines[1] == " 5 |   - add: {op: add, in: [conv1, shortcut]}"  # the source line, then a caret


def test_the_same_broken_spec_on_both_sides_is_diagnosed_once(cli, bad_spec):
    r = cli("diff", bad_spec, bad_spec)
    assert r.code == 2 and r.out == ""
    assert r.err.count("error[E305]") == 1


def test_missing_file_exits_2_in_one_line(cli, tmp_path):
    r = cli("diff", tmp_path / "nowhere.yaml", "resnet18")
    assert r.code == 2 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "no such file" in r.err


def test_bad_flags_exit_2(cli):
    assert cli("diff", "resnet18", "resnet34", "--level", "op").code == 2
    assert cli("diff", "resnet18").code == 2
    r = cli("diff", "resnet18", "resnet18", "--set-a", "no_such_param=1")
    assert r.code == 2 and "no_such_param" in r.err


@pytest.mark.parametrize("level", ["stage", "block", "layer"])
def test_json_at_each_level(cli, level):
    r = cli("diff", "resnet34_b", "resnet34_c", "--json", "--level", level)
    assert r.code == 1, r.err
    d = strict_json(r.out)
    assert d["equal"] is False and d["level"] == level
    assert [s["name"] for s in d["stages"]][:2] == ["conv1", "conv2_x"]
    assert ("blocks" in d) == (level != "stage") and ("nodes" in d) == (level == "layer")
    if level != "stage":
        first = d["blocks"][0]
        assert first["name"] == "layer1.0" and first["changes"][0]["kind"] == "replaced"
        assert [o["op"] for o in first["changes"][0]["after"]] == ["conv", "bn"]


@pytest.mark.parametrize("level", ["stage", "block", "layer"])
def test_text_at_each_level(cli, level):
    r = cli("diff", "resnet50", "resnet50_tv", "--level", level)
    assert r.code == 1, r.err
    assert "total" in r.out and "3.86 G -> 4.09 G" in r.out
    assert ("changes by block" in r.out) == (level != "stage")
    assert ("~ bn1, relu1  shape" in r.out) == (level == "block")  # the layer level gives each op its row
    assert ("~ bn1    shape" in r.out) == (level == "layer")


def test_equal_json(cli):
    r = cli("diff", "cifar_resnet20", "cifar_resnet", "--json", "--level", "layer")
    assert r.code == 0, r.err
    d = strict_json(r.out)
    assert d["equal"] is True and d["blocks"] == [] and d["nodes"] == []
    assert d["totals"]["params"]["delta"] == 0


def test_flops_unit(cli):
    r = cli("diff", "resnet50", "resnet50_tv", "--unit", "flops", "--json", "--level", "stage")
    macs = strict_json(cli("diff", "resnet50", "resnet50_tv", "--json", "--level", "stage").out)
    assert strict_json(r.out)["totals"]["macs"]["delta"] == 2 * macs["totals"]["macs"]["delta"]
    assert "FLOPs" in cli("diff", "resnet50", "resnet50_tv", "--unit", "flops").out


def test_exit_codes_in_a_real_process(cli_process, bad_spec):
    assert cli_process("diff", "resnet18", "resnet18").code == 0
    assert cli_process("diff", "resnet18", "resnet34").code == 1
    assert cli_process("diff", "resnet18", bad_spec).code == 2
