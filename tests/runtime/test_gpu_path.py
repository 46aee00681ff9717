"""What review found broken or slow in the GPU path, shown on the CPU where the CPU can show it: random
generators per process, real errors kept real, augmentation of one's own share, one host read per pixel-sum
pass, batches in the model's layout, DDP's options, evaluation (compiled, inference mode, one shape), honest
images/s and peaks, and no checkpoint read on a NaN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


# -- 3. random generators: this GPU's only, and each process's own ------------------------------------------------

def test_rng_state_saves_only_this_device(monkeypatch):
    from archspec.runtime import checkpoint

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: pytest.fail("every visible GPU's state saved"))
    state = checkpoint.rng_state(torch.device("cpu"))
    assert set(state) == {"torch"}


def test_rng_state_of_another_world_size_resumes_with_a_note():
    from archspec.runtime import checkpoint

    class TwoRanks:
        rank, world, active = 1, 2, True

    saved = {"torch": torch.get_rng_state(), "ranks": [{"torch": torch.get_rng_state()}] * 3}
    note = checkpoint.set_rng_state(saved, torch.device("cpu"), TwoRanks())
    assert note and "3 process(es), this run has 2" in note
    torch.manual_seed(5)
    mine = torch.get_rng_state()
    torch.manual_seed(6)
    saved = {"torch": torch.get_rng_state(), "ranks": [{"torch": torch.get_rng_state()}, {"torch": mine}]}
    assert checkpoint.set_rng_state(saved, torch.device("cpu"), TwoRanks()) is None
    assert torch.equal(torch.get_rng_state(), mine)  # rank 1 got its own state back


# -- 4. eval: a real error is not "the checkpoint does not fit" ---------------------------------------------------

def test_eval_reports_a_runtime_error_as_what_it_is(cli, train_args, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=5)).code == 0
    import archspec.runtime.evaluate as ev

    def broken(*a, **kw):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(ev, "evaluate", broken)
    r = cli("eval", "--checkpoint", run / "last.pt", "--device", "cpu")
    assert r.code == 1 and "illegal memory access" in r.err and "does not fit" not in r.err

    def out_of_memory(*a, **kw):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(ev, "evaluate", out_of_memory)
    r = cli("eval", "--checkpoint", run / "last.pt", "--device", "cpu")
    assert r.code == 2 and "ran out of memory" in r.err and "--batch-size" in r.err


# -- 5. under DDP each process augments only its own share ---------------------------------------------------------

def _cifar(cifar_dir: Path, shard=(0, 1), channels_last=False):
    from archspec.runtime.data import DataConfig, make_data

    return make_data(DataConfig(name="cifar10", root=cifar_dir, batch_size=16, seed=3, device=torch.device("cpu"),
                                train_size=1000, val_size=200, shard=shard, channels_last=channels_last,
                                augment=[{"op": "pad_crop", "pad": 4}, {"op": "hflip"}]))


def test_each_process_augments_only_its_share(cifar_dir, monkeypatch):
    import archspec.runtime.data.memory as memory

    seen = []
    real = memory._pad_crop
    monkeypatch.setattr(memory, "_pad_crop", lambda x, *a: (seen.append(x.shape[0]), real(x, *a))[1])
    whole = next(_cifar(cifar_dir).train_iter(7))
    halves = [next(_cifar(cifar_dir, shard=(r, 2)).train_iter(7)) for r in (0, 1)]
    assert seen == [16, 8, 8]  # was 16, 16, 16: every process augmented the global batch
    assert torch.equal(torch.cat([h[0] for h in halves]), whole[0])  # and still gets exactly its rows
    assert torch.equal(torch.cat([h[1] for h in halves]), whole[1])


# -- 6. the per-pixel-mean pass reads the device once ------------------------------------------------------------

def test_pixel_sums_read_the_device_once(monkeypatch):
    from archspec.runtime.data.common import pixel_sums as _pixel_sums

    reads = []
    real = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **kw: (reads.append(1), real(self, *a, **kw))[1])
    images = torch.randint(0, 256, (2000, 3, 8, 8), dtype=torch.uint8)
    total, total_sq = _pixel_sums(images)
    assert len(reads) == 2  # the sum and the sum of squares, once each (was twice per 256-image chunk)
    assert torch.equal(total, images.double().sum(0)) and torch.equal(total_sq, (images.double() ** 2).sum(0))


# -- 7. channels_last batches come from the data layer, not from two copies in the loop ----------------------------

def test_channels_last_batches_are_made_in_that_layout(cifar_dir):
    plain = next(_cifar(cifar_dir).train_iter(3))[0]
    cl = next(_cifar(cifar_dir, channels_last=True).train_iter(3))[0]
    assert cl.is_contiguous(memory_format=torch.channels_last) and plain.is_contiguous()
    assert torch.equal(plain, cl)
    assert cl.contiguous(memory_format=torch.channels_last).data_ptr() == cl.data_ptr()  # the loop's: no copy


# -- 8. DDP without a buffer broadcast per forward, gradients as bucket views -------------------------------------

def test_ddp_options(monkeypatch):
    import torch.distributed as tdist

    from archspec.runtime.distributed import Dist, average_buffers, wrap

    store = tdist.HashStore()
    tdist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        ddp = wrap(model, Dist(0, 2), torch.device("cpu"))  # "2 processes" only to make wrap() wrap
        assert ddp.gradient_as_bucket_view
        assert not getattr(ddp, "forward_sync_buffers", getattr(ddp, "broadcast_buffers", True))
        model[1].running_mean.fill_(3.0)
        average_buffers(model, Dist(0, 1))  # alone: nothing to average
        assert torch.all(model[1].running_mean == 3.0)
    finally:
        tdist.destroy_process_group()


# -- 9. evaluation: compiled with --compile, in inference mode, one batch shape -----------------------------------

class Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3 * 32 * 32, 10)
        self.shapes, self.inference = [], []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        self.inference.append(torch.is_inference_mode_enabled())
        return self.fc(x.flatten(1))


def test_evaluation_pads_the_last_batch_and_runs_in_inference_mode(cifar_dir):
    from archspec.runtime.evaluate import evaluate

    data = _cifar(cifar_dir)
    model = Recorder()
    result = evaluate(model, data, "val", batch_size=64)  # 200 images: 64, 64, 64 and 8 padded to 64
    assert set(model.shapes) == {(64, 3, 32, 32)} and len(model.shapes) == 4
    assert all(model.inference) and result["images"] == 200
    unpadded = sum(torch.nn.functional.cross_entropy(model(x), y, reduction="sum").item()
                   for x, y in data.eval_iter("val", 64)) / 200
    assert abs(result["loss"] - unpadded) < 1e-5  # the padding's outputs are dropped


def test_compiled_runs_evaluate_compiled(cifar_dir, tmp_path, monkeypatch):
    import archspec.runtime.train as loop
    from archspec.runtime.recipe import resolve
    from archspec.runtime.train import TrainOptions, train

    compiled = []

    class Compiled(torch.nn.Module):  # stands in for torch.compile's wrapper (compiling is slow on a CPU)
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            compiled.append(inner)

        def forward(self, x):
            return self.inner(x)

    evaluated = []
    real_eval = loop.evaluate
    monkeypatch.setattr(torch, "compile", Compiled)
    monkeypatch.setattr(loop, "evaluate", lambda model, *a, **kw: (evaluated.append(model), real_eval(model, *a,
                                                                                                       **kw))[1])
    recipe = resolve(None, {"iters": 4, "log_interval": 2, "eval_interval": 4, "batch_size": 16, "train_size": 1000,
                            "val_size": 200}, [])
    train(Recorder(), recipe, _cifar(cifar_dir), TrainOptions(run_dir=tmp_path, device=torch.device("cpu"),
                                                              progress=False, compile=True), lambda s: None)
    assert evaluated and all(isinstance(m, Compiled) for m in evaluated)


# -- 10. images/s without warm-up or evaluation; a peak per window ----------------------------------------------

def test_summary_speed_leaves_out_the_warm_up_window(tmp_path):
    from archspec.runtime.measures import run_summary as _summary

    records = [{"kind": "train", "iter": 10, "images_per_s": 10.0, "window_s": 50.0, "warmup": True,
                "peak_mem_mb": 900.0},
               {"kind": "train", "iter": 20, "images_per_s": 1000.0, "window_s": 1.0, "peak_mem_mb": 500.0},
               {"kind": "train", "iter": 30, "images_per_s": 2000.0, "window_s": 1.0, "peak_mem_mb": 600.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    s = _summary(tmp_path, {"best_val_err": None}, 30, 0.0, torch.device("cpu"))
    assert s["images_per_s"] == 1500.0  # was the mean of all windows, compile warm-up included: 1003
    assert s["peak_mem_mb"] >= 900.0


def test_train_records_mark_the_first_window_and_time_only_steps(cli, train_args, tmp_path):
    run = tmp_path / "run"
    assert cli(*train_args(run, iters=20)).code == 0
    train = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in train if r["kind"] == "train"]
    assert train[0].get("warmup") is True and not any(r.get("warmup") for r in train[1:])
    assert all(r["window_s"] > 0 for r in train)


# -- 11. a NaN does not make every process read the whole checkpoint ---------------------------------------------

def test_divergence_after_a_checkpoint_reads_no_checkpoint(cli, train_args, tmp_path, monkeypatch):
    from archspec.runtime import checkpoint

    monkeypatch.setattr(checkpoint, "load", lambda *a, **kw: pytest.fail("read the checkpoint to name an iteration"))
    r = cli(*train_args(tmp_path / "run", "--lr", "1e12", "--recipe",
                        "schedule.warmup={lr: 0.01, until_train_error: 0.0, max_iters: 20}", iters=60))
    assert r.code == 3 and "(iteration 20)" in r.err
