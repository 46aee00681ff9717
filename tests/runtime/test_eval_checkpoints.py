"""What `archspec eval --checkpoint` takes and says, and what `archspec train` says with nothing to train:
a run folder stands for its best.pt (else its last.pt), an exported network is named as such, and the result
says which iteration (and epoch) the checkpoint is from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


@pytest.fixture
def trained(finished_run: Path) -> Path:
    assert (finished_run / "best.pt").is_file() and (finished_run / "last.pt").is_file()
    return finished_run


EVAL = ("--device", "cpu", "--json")


def test_train_with_nothing_to_train_says_to_give_a_spec(cli):
    """Before: `archspec train` said "give the run folder to resume: --out RUN", as if resuming were the point."""
    r = cli("train")
    assert r.code == 2
    assert r.err.strip() == ("archspec: error: say what to train: `archspec train SPEC` (a spec file, or a shipped "
                             "spec's name: `archspec list`), or continue a run with `archspec train --resume --out RUN`")
    r = cli("train", "--resume")
    assert r.code == 2 and r.err.strip() == ("archspec: error: --resume continues the run in a folder: name it "
                                             "(`archspec train --resume --out RUN`)")


def test_a_run_folder_is_evaluated_through_its_best_checkpoint(cli, trained):
    """Before: `--checkpoint RUN` was refused ("is a folder; name a file")."""
    r = cli("eval", "--checkpoint", trained, *EVAL)
    assert r.code == 0, r.err
    assert f"evaluating {trained / 'best.pt'}: the run's best checkpoint" in r.err
    by_folder = json.loads(r.out)
    by_file = json.loads(cli("eval", "--checkpoint", trained / "best.pt", *EVAL).out)
    assert by_folder["err"] == by_file["err"] and by_folder["checkpoint"] == str(trained / "best.pt")


def test_the_result_says_the_iteration_and_epoch_of_the_checkpoint(cli, trained):
    """Before: nothing said which iteration best.pt is from."""
    info = json.loads((trained / "run.json").read_text())
    r = cli("eval", "--checkpoint", trained / "best.pt", *EVAL)
    result = json.loads(r.out)
    assert result["iteration"] == 20 and result["epoch"] == round(20 / info["iters_per_epoch"], 2)
    r = cli("eval", "--checkpoint", trained / "best.pt", "--device", "cpu")
    assert r.code == 0 and r.out.startswith(f"cifar_resnet20 (iteration 20, epoch {result['epoch']:g}) on test (")
    # a plain state_dict does not say: no iteration, and none printed
    plain = trained.parent / "plain.pt"
    torch.save(torch.load(trained / "best.pt", weights_only=True)["model"], plain)
    r = cli("eval", "cifar_resnet20", "--checkpoint", plain, "--data-dir", json.loads(
        (trained / "run.json").read_text())["data_dir"], "--train-size", "1000", "--val-size", "200", *EVAL)
    assert r.code == 0, r.err
    assert json.loads(r.out)["iteration"] is None and json.loads(r.out)["epoch"] is None


def test_a_run_folder_without_best_falls_back_to_last_or_says_what_is_missing(cli, trained):
    (trained / "best.pt").unlink()
    r = cli("eval", "--checkpoint", trained, *EVAL)
    assert r.code == 0, r.err
    assert f"evaluating {trained / 'last.pt'}: {trained} has no best.pt" in r.err
    assert json.loads(r.out)["iteration"] == 20
    (trained / "last.pt").unlink()
    r = cli("eval", "--checkpoint", trained, *EVAL)
    assert r.code == 2 and r.out == ""
    assert r.err.strip() == (f"archspec: error: {trained} has neither best.pt nor last.pt, though its run.json "
                             f"records a checkpoint at iteration 20: restore {trained / 'last.pt'}, or give a "
                             "checkpoint file")
    r = cli("eval", "--checkpoint", trained.parent, *EVAL)  # a folder that is no run's
    assert r.code == 2 and f"{trained.parent} is a folder but not a run folder" in r.err


def _exports(folder: Path) -> dict[str, Path]:
    """Small files of each exported kind: ONNX's protobuf opening, a TorchScript module, a torch.export program."""
    onnx = folder / "model.onnx"
    onnx.write_bytes(b"\x08\x0a\x12\x07pytorch\x1a\x062.13.0" + bytes(64))
    named_otherwise = folder / "model.bin"
    named_otherwise.write_bytes(onnx.read_bytes())
    module = torch.nn.Linear(3, 2)
    script = folder / "model_ts.pt"
    torch.jit.save(torch.jit.script(module), str(script))
    program = folder / "model.pt2"
    torch.export.save(torch.export.export(module, (torch.randn(1, 3),)), str(program))
    return {"an ONNX export": onnx, "an ONNX export ": named_otherwise, "a TorchScript export": script,
            "a torch.export program": program}


def test_an_exported_network_is_named_and_what_to_give_instead(cli, tmp_path):
    """Before: `--checkpoint model.onnx` got "is not in a run folder" (and with a spec, "not a file written by
    torch.save")."""
    for kind, path in _exports(tmp_path).items():
        for spec in ([], ["cifar_resnet20"]):
            r = cli("eval", *spec, "--checkpoint", path, *EVAL)
            assert r.code == 2 and r.out == ""
            assert r.err.strip() == (
                f"archspec: error: {path} is {kind.strip()}, which cannot be evaluated as a checkpoint: give the "
                "checkpoint it was exported from (a run folder, or its best.pt or last.pt), or a state_dict file "
                "with its spec (`archspec eval SPEC --checkpoint FILE`)"), r.err
        r = cli("eval", "--weights", path, *EVAL)
        assert r.code == 2 and f"{path} is {kind.strip()}, which cannot be loaded as weights: give the " \
            "checkpoint or state_dict file it was exported from" in r.err


def test_checkpoints_and_state_dicts_are_not_taken_for_exports(trained, tmp_path):
    from archspec.compiler.export import export_format

    plain = tmp_path / "plain.onnx"  # a state_dict, however named
    torch.save({"w": torch.zeros(2)}, plain)
    safetensors = tmp_path / "w.safetensors"
    from archspec.runtime.weights import write_safetensors
    write_safetensors(safetensors, {"w": torch.zeros(2)})
    for path in (trained / "best.pt", trained / "last.pt", plain, safetensors, trained / "run.json", trained):
        assert export_format(path) is None, path
