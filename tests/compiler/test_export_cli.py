"""`archspec summary` and `archspec export`: numbers from the compiler, files written whole or not at all."""

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec.compiler.report import summary_rows  # noqa: E402


def test_summary_rows_describe_the_lowered_module():
    c = archspec.compile("resnet50_tv")
    model = archspec.build("resnet50_tv")
    modules = dict(model.named_modules())
    leaves = [r for r in summary_rows(c, max_depth=9) if r["leaf"]]
    for row in leaves:
        if row["type"][0].isupper():  # a module, not a function call
            assert type(modules[row["name"]]).__name__ == row["type"], row["name"]
            assert sum(p.numel() for p in modules[row["name"]].parameters()) == row["params"]
    containers = [r for r in summary_rows(c, max_depth=9) if not r["leaf"]]
    assert {r["name"] for r in containers} <= set(modules)
    assert sum(r["params"] for r in leaves) == c.params


def test_summary_cli(cli):
    r = cli("summary", "resnet18_tv", "--depth", "2", "--batch", "8")
    assert r.code == 0, r.err
    assert "layer1 (stack)" in r.out and "0 (basic)" in r.out and "conv1 (Conv2d)" in r.out
    assert "[8, 512, 7, 7]" in r.out and "total params: 11,689,512" in r.out
    assert "(Conv2d)" not in [line for line in r.out.splitlines() if line.startswith("    ")]  # depth 2 only


def test_summary_rejects_a_bad_depth(cli):
    r = cli("summary", "resnet18", "--depth", "0")
    assert r.code == 2 and "--depth" in r.err and len(r.err.strip().splitlines()) == 1


def test_export_onnx_torchscript_and_program(cli, tmp_path):
    pytest.importorskip("onnx")
    onnx_file, ts_file, prog = tmp_path / "m.onnx", tmp_path / "m.pt", tmp_path / "m.pt2"
    r = cli("export", "cifar_resnet20", "--onnx", onnx_file, "--torchscript", ts_file, "--program", prog, "--check")
    assert r.code == 0, r.err
    import onnx

    onnx.checker.check_model(onnx.load(str(onnx_file)))
    if "onnxruntime max" in r.out:
        diff = float(r.out.split("onnxruntime max |difference| ")[1].split()[0])
        assert diff < 1e-4
    scripted = torch.jit.load(str(ts_file))
    assert scripted(torch.randn(5, 3, 32, 32)).shape == (5, 10)  # the batch axis is not fixed
    program = torch.export.load(str(prog))
    assert program.module()(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt", "m.pt2"]  # no temp files left


def test_export_with_weights_uses_them(cli, tmp_path):
    model = archspec.build("cifar_resnet20")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    r = cli("export", "cifar_resnet20", "--weights", tmp_path / "w.pt", "--torchscript", tmp_path / "m.pt")
    assert r.code == 0, r.err
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)


@pytest.mark.parametrize("content,fragment", [
    (b"not a checkpoint", "not a file written by torch.save"),
    (b"", "not a file written by torch.save"),
])
def test_export_with_bad_weights_is_one_line_exit_2(cli, tmp_path, content, fragment):
    (tmp_path / "w.pt").write_bytes(content)
    dest = tmp_path / "m.pt"
    r = cli("export", "cifar_resnet20", "--weights", tmp_path / "w.pt", "--torchscript", dest)
    assert r.code == 2 and fragment in r.err and len(r.err.strip().splitlines()) == 1
    assert not dest.exists()


def test_export_with_weights_of_another_model(cli, tmp_path):
    torch.save(archspec.build("cifar_resnet32").state_dict(), tmp_path / "w.pt")
    r = cli("export", "cifar_resnet20", "--weights", tmp_path / "w.pt", "--torchscript", tmp_path / "m.pt")
    assert r.code == 2 and "w.pt does not fit cifar_resnet20" in r.err
    assert "layer1.3.conv1.weight 16x16x3x3 in the weights is not in the model (and 71 more)" in r.err


def test_export_keeps_an_existing_file_when_it_fails(cli, tmp_path):
    dest = tmp_path / "m.pt"
    dest.write_bytes(b"previous good file")
    (tmp_path / "w.pt").write_bytes(b"junk")
    r = cli("export", "cifar_resnet20", "--weights", tmp_path / "w.pt", "--torchscript", dest)
    assert r.code == 2 and dest.read_bytes() == b"previous good file"


def test_export_needs_a_target(cli):
    r = cli("export", "cifar_resnet20")
    assert r.code == 2 and "--onnx" in r.err
