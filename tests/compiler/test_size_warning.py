"""The `check_size` pass: a network no machine could hold compiles with a warning that gives the figures."""

import textwrap

import archspec


def spec(tmp_path, out, fc=10):
    path = tmp_path / "big.yaml"
    path.write_text(textwrap.dedent(f"""\
    archspec: 1
    name: big
    input: [3, 32, 32]
    network:
      - conv: {{op: conv, out: {out}, kernel: 3, pad: 1}}
      - pool: {{op: global_avgpool}}
      - flat: {{op: flatten}}
      - fc: {{op: linear, out: {fc}}}
    """), encoding="utf-8")
    return path


def test_a_typo_in_a_width_is_warned_about_with_the_figures(tmp_path):
    c = archspec.compile(spec(tmp_path, 100_000_000))
    (w,) = c.warnings
    assert w.severity == "warning" and w.code == "E600" and w.loc.line == 5
    assert w.message.startswith("the activations of one sample take 382 GiB") and "`conv`" in w.message


def test_parameters_beyond_any_machine_are_warned_about(tmp_path):
    c = archspec.compile(spec(tmp_path, 16, fc=20_000_000_000))
    (w,) = c.warnings
    assert w.code == "E600" and w.loc.line == 8
    assert w.message.startswith(f"{c.params:,} parameters (") and "`fc` alone" in w.message


def test_real_networks_get_no_warning(tmp_path):
    assert archspec.compile("cifar_resnet", n=200).warnings == []  # ResNet-1202
    assert archspec.compile("resnet152").warnings == []
    assert archspec.compile(spec(tmp_path, 4096)).warnings == []


def test_compile_prints_the_warning_and_still_succeeds(cli, tmp_path):
    r = cli("compile", spec(tmp_path, 100_000_000))
    assert r.code == 0
    assert "warning[E600]: the activations of one sample take 382 GiB" in r.err
    assert "activations" in r.out
