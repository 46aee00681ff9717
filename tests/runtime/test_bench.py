"""`archspec bench`: rows per mode and batch with sane figures, CSV and JSON, a twin measured beside the spec and the
ratio, which twin a shipped spec has and when there is none, and bad flags refused in one line (exit 2)."""

from __future__ import annotations

import csv
import json
import sys

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec.runtime import bench as bench_module  # noqa: E402
from archspec.runtime.bench import BenchRequest, bench, percentile  # noqa: E402
from archspec.runtime.bench_report import CSV_FIELDS, table  # noqa: E402
from archspec.runtime.twins import Twin, known_twin, twin_for  # noqa: E402

TINY = ("--warmup", "1", "--steps", "3", "--quiet")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # (tests/conftest.py)
    yield


def one_line_error(r) -> bool:
    return r.code == 2 and r.out == "" and len(r.err.strip().splitlines()) == 1 and r.err.startswith("archspec: error:")


def test_rows_for_each_mode_and_batch_with_sane_figures():
    result = bench(BenchRequest(specs=("cifar_resnet20",), batch_sizes=(1, 3), device="cpu", warmup=1, steps=3))
    assert [(r["mode"], r["batch"]) for r in result.rows] == [("infer", 1), ("infer", 3), ("train", 1), ("train", 3)]
    for r in result.rows:
        assert r["model"] == "archspec" and r["spec"] == "cifar_resnet20" and r["input"] == "3x32x32"
        assert r["steps"] == 3 and r["images_per_s"] > 0 and r["params"] == 269_722
        assert 0 < r["latency_median_ms"] <= r["latency_p90_ms"]
        assert r["ratio"] is None
    assert result.twins["cifar_resnet20"].startswith("unavailable: no torchvision or timm model")
    assert result.settings["steps"] == 3 and result.settings["warmup"] == 1


def test_default_batch_is_the_recipe_batch_and_seconds_bound_the_steps():
    result = bench(BenchRequest(specs=("cifar_resnet20",), modes=("infer",), device="cpu", warmup=0, seconds=0.05))
    (row,) = result.rows
    assert row["batch"] == archspec.load("cifar_resnet20").recipe["batch_size"] == 128
    assert row["steps"] >= 1 and result.settings["seconds"] == 0.05 and result.settings["steps"] is None


def test_a_twin_is_measured_with_the_same_settings_and_the_ratio_printed():
    seen = []

    def hook(name, compiled):
        seen.append((name, compiled.params))
        return Twin("hand copy", archspec.build("cifar_resnet20"))

    result = bench(BenchRequest(specs=("cifar_resnet20",), batch_sizes=(2,), device="cpu", warmup=1, steps=2,
                                channels_last=True), twin_hook=hook)
    assert seen == [("cifar_resnet20", 269_722)]
    assert [(r["model"], r["mode"]) for r in result.rows] == [("archspec", "infer"), ("hand copy", "infer"),
                                                              ("archspec", "train"), ("hand copy", "train")]
    for ours, twin in zip(result.rows[::2], result.rows[1::2]):
        assert twin["ratio"] is None and twin["params"] == ours["params"]
        assert ours["ratio"] == round(ours["images_per_s"] / twin["images_per_s"], 3) > 0
    text = table(result)
    assert "twin of cifar_resnet20: hand copy" in text and "archspec/twin" in text
    assert f"{result.rows[0]['ratio']:.2f}x" in text


def test_rounds_alternate_the_order_and_keep_each_fastest():
    lines = []
    result = bench(BenchRequest(specs=("cifar_resnet20",), batch_sizes=(2,), modes=("infer",), device="cpu",
                                warmup=0, steps=1, rounds=3), log=lines.append,
                   twin_hook=lambda name, compiled: Twin("copy", archspec.build("cifar_resnet20")))
    assert [line.split()[2] for line in lines] == ["archspec", "copy", "copy", "archspec", "archspec", "copy"]
    seen = {m: [float(line.split(": ")[2].split()[0].replace(",", "")) for line in lines if line.split()[2] == m]
            for m in ("archspec", "copy")}
    assert [r["model"] for r in result.rows] == ["archspec", "copy"] and result.settings["rounds"] == 3
    assert [r["images_per_s"] for r in result.rows] == pytest.approx([max(seen["archspec"]), max(seen["copy"])],
                                                                     rel=1e-3, abs=0.06)
    assert "the fastest of 3 rounds in alternating order" in table(result).splitlines()[0]


def test_csv_and_json_hold_the_same_rows(cli, tmp_path):
    out = tmp_path / "bench.csv"
    r = cli("bench", "cifar_resnet20", "--batch-size", "2,4", "--mode", "infer", "--csv", out, "--json", *TINY)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["settings"]["device"] == "cpu" and data["settings"]["bf16"] is False
    assert "resident set" in data["memory"]
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == CSV_FIELDS
    assert [(int(c["batch"]), float(c["images_per_s"])) for c in rows] == \
        [(j["batch"], j["images_per_s"]) for j in data["rows"]]
    assert all(c["device"] == "cpu" and c["compile"] == "False" and c["ratio"] == "" for c in rows)


def test_the_table_is_the_default_output(cli):
    r = cli("bench", "cifar_resnet20", "--batch-size", "2", "--mode", "train", *TINY)
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("archspec bench on cpu")
    assert "fp32, contiguous, eager; 1 warm-up steps, 3 timed" in lines[0]
    assert any(line.split()[:4] == ["cifar_resnet20", "archspec", "train", "2"] for line in lines)
    assert r.err == ""  # --quiet: no progress lines


def test_progress_lines_go_to_stderr(cli):
    r = cli("bench", "cifar_resnet20", "--batch-size", "2", "--mode", "infer", "--warmup", "0", "--steps", "1")
    assert r.code == 0 and r.err.startswith("bench: cifar_resnet20 archspec infer batch 2: ")


def test_which_shipped_specs_have_twins():
    assert known_twin("resnet50_tv") == ("torchvision", "resnet50")
    assert known_twin("resnet18") == ("torchvision", "resnet18")  # basic blocks: the paper's layout is torchvision's
    assert known_twin("resnext50_32x4d") == ("torchvision", "resnext50_32x4d")
    assert known_twin("timm/resnet50") == ("timm", "resnet50")
    assert known_twin("resnet50d") == ("timm", "resnet50d")
    assert known_twin("resnet50") is None  # the paper's bottleneck strides on its first 1x1
    assert known_twin("cifar_resnet20") is None


def test_no_twin_without_its_package_or_for_another_network(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` fails
    why = twin_for("auto", "resnet50_tv", 25_557_032, 1000)
    assert why.startswith("unavailable: torchvision is not importable here") and "resnet50" in why
    why = twin_for("auto", "resnet50_tv", 25_557_032, 1000, ("stride_on=1x1",))
    assert why.startswith("unavailable: --set stride_on=1x1 makes another network than resnet50_tv")
    assert twin_for("none", "resnet50_tv", 25_557_032, 1000) == "none asked (--twin none)"


def test_percentile_interpolates_between_ranks():
    assert percentile([0.004, 0.001, 0.003, 0.002], 50) == pytest.approx(2.5)
    assert percentile([0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.009, 0.010, 0.011], 90) == \
        pytest.approx(10.0)
    assert percentile([0.007], 90) == pytest.approx(7.0)


# -- refusals -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--batch-size", "1,,2"], "expected whole numbers >= 1 separated by commas"),
    (["--batch-size", "0,4"], "batch sizes must be >= 1"),
    (["--batch-size", "4,4"], "a batch size is given twice"),
    (["--mode", "eval"], "invalid choice: 'eval'"),
    (["--steps", "2", "--seconds", "1"], "not allowed with argument"),
    (["--steps", "0"], "--steps: must be a whole number >= 1"),
    (["--compile", "--warmup", "0"], "--compile with --warmup 0 would time the compilation"),
    (["--twin", "keras:resnet"], "expected auto, none, torchvision:NAME or timm:NAME"),
    (["--device", "tpu"], "unknown device 'tpu': use cpu or cuda"),
])
def test_bad_flags_are_one_line_and_exit_2(cli, flags, says):
    r = cli("bench", "cifar_resnet20", *flags, "--quiet")
    assert one_line_error(r), (r.code, r.err)
    assert says in r.err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(cli):
    r = cli("bench", "cifar_resnet20", "--device", "cuda")
    assert one_line_error(r) and "CUDA is not available on this machine: use --device cpu" in r.err


def test_compile_where_torch_compile_cannot_run(cli, monkeypatch):
    monkeypatch.setattr(bench_module, "compile_problem", lambda device: "--compile: torch.compile does not support "
                        "Python 3.99 with torch 9 here: leave --compile out")
    r = cli("bench", "cifar_resnet20", "--compile")
    assert one_line_error(r) and "leave --compile out" in r.err


def test_a_named_twin_goes_with_one_spec(cli):
    r = cli("bench", "cifar_resnet20", "cifar_resnet32", "--twin", "timm:resnet18")
    assert one_line_error(r) and "names the twin of one spec, and 2 are given" in r.err


def test_a_batch_that_cannot_train_is_refused_before_measuring(cli):
    r = cli("bench", "resnet18_tv", "--input", "3x32x32", "--batch-size", "4,1", *TINY)  # 1x1 last map at batch 1
    assert one_line_error(r) and "cannot train at batch 1: batch norm sees one value per channel" in r.err


def test_too_big_for_memory_is_the_out_of_memory_line(cli):
    r = cli("bench", "cifar_resnet20", "--batch-size", "10000000000", "--mode", "infer", *TINY)
    assert one_line_error(r) and "out of memory: could not allocate" in r.err


def test_a_bad_spec_is_its_diagnostic(cli, bad_spec):
    r = cli("bench", bad_spec, "--quiet")
    assert r.code == 2 and "error[E305]" in r.err


# -- CUDA only ------------------------------------------------------------------------------------------------------

@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bench_in_bf16_and_channels_last():
    result = bench(BenchRequest(specs=("cifar_resnet20",), batch_sizes=(64,), device="cuda", bf16=True,
                                channels_last=True, warmup=3, steps=10))
    assert "max_memory_allocated" in result.memory
    for r in result.rows:
        assert r["images_per_s"] > 0 and 0 < r["latency_median_ms"] <= r["latency_p90_ms"]
        assert r["peak_mem_mb"] > 0
