"""The speed and memory options of `archspec train`: activation checkpointing, bf16 and channels_last, torch.compile,
and (on CUDA only) the no-sync fast path and ResNet-1202 at batch 128 on one GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

def cuda(test):
    """A CUDA-only test: marked `cuda` (what gpu_check's `tests` section runs) and skipped without a device."""
    return pytest.mark.cuda(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test))


def metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def same_numbers(a: list[dict], b: list[dict]) -> bool:
    keys = ("kind", "iter", "loss", "lr", "train_err", "err")
    return [tuple(r.get(k) for k in keys) for r in a] == [tuple(r.get(k) for k in keys) for r in b]


def test_checkpointed_activations_train_exactly_the_same(cli, train_args, tmp_path):
    plain, saved = tmp_path / "plain", tmp_path / "saved"
    assert cli(*train_args(plain, iters=20)).code == 0
    r = cli(*train_args(saved, "--checkpoint-activations", iters=20))
    assert r.code == 0, r.err
    assert same_numbers(metrics(plain), metrics(saved))  # recomputation changes nothing, BN statistics included
    a = torch.load(plain / "last.pt", weights_only=True)["model"]
    b = torch.load(saved / "last.pt", weights_only=True)["model"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_and_channels_last_train(cli, train_args, tmp_path):
    r = cli(*train_args(tmp_path / "run", "--bf16", "--channels-last", iters=10))
    assert r.code == 0, r.err
    train = [m for m in metrics(tmp_path / "run") if m["kind"] == "train"]
    assert all(m["loss"] == m["loss"] and m["loss"] < 10 for m in train)  # finite, sane
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["options"]["bf16"] and info["options"]["channels_last"]


@pytest.mark.slow
def test_compiled_training_matches_eager_closely(cli, train_args, tmp_path):
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    assert cli(*train_args(eager, iters=10)).code == 0
    r = cli(*train_args(compiled, "--compile", iters=10))
    assert r.code == 0, r.err
    a, b = metrics(eager), metrics(compiled)
    assert [m["kind"] for m in a] == [m["kind"] for m in b]
    # inductor fuses and reorders float arithmetic: the first window agrees closely, later ones drift a little
    assert abs(a[0]["loss"] - b[0]["loss"]) < 2e-3 * a[0]["loss"]
    assert all(abs(x["loss"] - y["loss"]) < 0.03 * x["loss"] for x, y in zip(a, b))


def test_sync_bn_needs_several_processes_on_cuda(cli, train_args, tmp_path):
    r = cli(*train_args(tmp_path / "run", "--sync-bn", iters=5))
    assert r.code == 2 and "--sync-bn needs several processes on CUDA" in r.err


# -- CUDA only (skipped without a GPU; run them on one before claiming GPU behaviour) --------------------------

@cuda
def test_cuda_training_loop_does_not_synchronise_with_the_host(tmp_path):
    """The real loop (runtime/train.py) over three epochs: after an ordinary step (not a log, evaluation or
    checkpoint point) nothing waits for the GPU: not the batch, the step, the metric sums, nor a new epoch."""
    import warnings

    import archspec
    from archspec.runtime.data import DataConfig, make_data
    from archspec.runtime.recipe import resolve
    from archspec.runtime.train import TrainOptions, _plain_step, train

    device = torch.device("cuda")
    recipe = resolve(archspec.load("cifar_resnet20").recipe, {"iters": 30, "batch_size": 64, "log_interval": 15,
                                                              "eval_interval": 30, "dataset": "synthetic",
                                                              "no_warmup": True}, [])
    data = make_data(DataConfig(name="synthetic", root=None, batch_size=64, seed=0, device=device,
                                augment=recipe.augment, synthetic_size=640, channels_last=True))  # 10 iters/epoch
    done, by_step = [0], {}

    def step(*a):
        out = _plain_step(*a)
        done[0] += 1
        return out

    def record(message, *rest, **kw):
        if "synchroniz" in str(message):
            by_step[done[0]] = by_step.get(done[0], 0) + 1

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = record
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train(archspec.build("cifar_resnet20"), recipe, data,
                  TrainOptions(run_dir=tmp_path, device=device, progress=False, bf16=True, channels_last=True),
                  lambda text: None, step_fn=step)
        finally:
            torch.cuda.set_sync_debug_mode(0)
    expected = {0, 15, 30}  # start-up; the log, evaluation and checkpoint points
    assert done[0] == 30
    assert {k: v for k, v in by_step.items() if k not in expected} == {}, by_step


@cuda
def test_cuda_fast_path_trains_with_bf16_and_channels_last(cli, tmp_path):
    r = cli("train", "cifar_resnet20", "--dataset", "synthetic", "--device", "cuda", "--out", tmp_path / "run",
            "--iters", "40", "--log-interval", "10", "--eval-interval", "40", "--bf16", "--channels-last", "--quiet")
    assert r.code == 0, r.err
    train = [m for m in metrics(tmp_path / "run") if m["kind"] == "train"]
    assert len(train) == 4 and all(m["peak_mem_mb"] > 0 for m in train)
    assert "max allocated on the GPU" in (tmp_path / "run" / "log.txt").read_text()


@cuda
@pytest.mark.slow
def test_resnet1202_trains_at_batch_128_on_one_gpu(cli, tmp_path):
    r = cli("train", "cifar_resnet1202", "--dataset", "synthetic", "--device", "cuda", "--out", tmp_path / "run",
            "--iters", "4", "--log-interval", "2", "--eval-interval", "4", "--batch-size", "128", "--bf16",
            "--channels-last", "--no-warmup", "--quiet")
    assert r.code == 0, r.err
    peak = max(m["peak_mem_mb"] for m in metrics(tmp_path / "run") if m["kind"] == "train")
    assert peak < torch.cuda.get_device_properties(0).total_memory / 2**20
