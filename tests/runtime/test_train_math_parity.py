"""The training arithmetic of runtime.optim, lr_schedule, losses, ema and mixup against the implementations that
define it: timm (Lamb, adaptive_clip_grad, CosineLRScheduler, MultiStepLRScheduler, the label-smoothing, soft-target
and binary cross-entropies, ModelEmaV3, Mixup) and torch's own schedulers as torchvision's recipe chains them.

Run in the parity environment (README: "Parity tests"); skipped where timm cannot be imported."""

from __future__ import annotations

import copy
import math

import numpy
import pytest
import torch
import torch.nn.functional as F
from torch import nn

timm = pytest.importorskip("timm")

from archspec.runtime.ema import WeightEma  # noqa: E402
from archspec.runtime.losses import TrainLoss  # noqa: E402
from archspec.runtime.lr_schedule import lr_at  # noqa: E402
from archspec.runtime.mixup import (MixCut, beta_sample, box_lam, cutmix_box, cutmix_images, mixed_targets,  # noqa
                                    mixup_images)
from archspec.runtime.optim import Lamb, clip_gradients, param_groups  # noqa: E402

pytestmark = pytest.mark.torchvision


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # (tests/conftest.py)
    yield


def small_net(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2),
                         nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def _data(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 3, 12, 12, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(n)]


def _max_diff(a: nn.Module, b: nn.Module) -> float:
    return max((x.double() - y.double()).abs().max().item() for x, y in zip(a.state_dict().values(),
                                                                            b.state_dict().values()))


# --- optimizers -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {},
    {"trust_clip": True},
    {"always_adapt": True},
    {"max_grad_norm": None, "weight_decay": 0.05},
    {"grad_averaging": False, "max_grad_norm": 0.1, "betas": (0.8, 0.99)},
])
def test_lamb_matches_timm_step_for_step(kw):
    from timm.optim import Lamb as TimmLamb

    ours, theirs = small_net(), small_net()
    settings = {"lr": 5e-3, "weight_decay": 0.02, **kw}
    opt_a = Lamb(param_groups(ours, settings["weight_decay"], False), **settings)
    opt_b = TimmLamb(param_groups(theirs, settings["weight_decay"], False), foreach=False, **settings)
    for x, y in _data(12):
        for model, opt in ((ours, opt_a), (theirs, opt_b)):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    diff = _max_diff(ours, theirs)
    print(f"Lamb {kw}: max |ours - timm| after 12 steps = {diff:.3g}")
    assert diff == 0.0


def test_agc_matches_timm():
    from timm.utils.agc import adaptive_clip_grad

    ours, theirs = small_net(), small_net()
    x, y = _data(1)[0]
    for model in (ours, theirs):
        (F.cross_entropy(model(x), y) * 50).backward()
    before = [p.grad.clone() for p in ours.parameters()]
    clip_gradients(ours.parameters(), "agc", 0.01)
    adaptive_clip_grad(theirs.parameters(), clip_factor=0.01)
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert any(not torch.equal(a.grad, g) for a, g in zip(ours.parameters(), before))  # something was clipped


# --- schedules ----------------------------------------------------------------------------------------------------

def _dummy_opt(lr):
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)


@pytest.mark.parametrize("lr,length,warmup,warmup_lr,min_lr", [
    (8e-3, 100, 5, 1e-6, 0.0),  # ResNet strikes back A3
    (5e-3, 300, 5, 1e-6, 1e-5),
    (0.1, 90, 0, 0.0, 0.0),
    (0.1, 90, 0, 0.0, 1e-4),
    (2e-3, 7, 3, 1e-4, 1e-5),
])
def test_cosine_matches_timm_per_epoch(lr, length, warmup, warmup_lr, min_lr):
    from timm.scheduler import CosineLRScheduler

    opt = _dummy_opt(lr)
    sched = CosineLRScheduler(opt, t_initial=length, lr_min=min_lr, warmup_t=warmup, warmup_lr_init=warmup_lr,
                              warmup_prefix=False, t_in_epochs=True)
    worst = 0.0
    for t in range(length + 3):
        sched.step(t)
        ours = lr_at(t, base_lr=lr, kind="cosine", length=length, min_lr=min_lr,
                     warmup_kind="linear" if warmup else None, warmup_lr=warmup_lr, warmup_length=warmup)
        theirs = opt.param_groups[0]["lr"]
        worst = max(worst, abs(ours - theirs) / max(abs(theirs), 1e-300))
        assert ours == theirs, t
    print(f"cosine lr={lr} L={length} W={warmup}: max relative difference {worst:.3g}")


def test_cosine_matches_timm_per_iteration():
    from timm.scheduler import CosineLRScheduler

    opt = _dummy_opt(0.4)
    sched = CosineLRScheduler(opt, t_initial=1000, lr_min=1e-6, warmup_t=50, warmup_lr_init=1e-4, t_in_epochs=False)
    for i in range(1003):
        sched.step_update(i)
        assert lr_at(i, base_lr=0.4, kind="cosine", length=1000, min_lr=1e-6, warmup_kind="linear",
                     warmup_lr=1e-4, warmup_length=50) == opt.param_groups[0]["lr"], i


def test_step_matches_torch_multistep_and_timm_one_epoch_early():
    from timm.scheduler import MultiStepLRScheduler

    milestones, gamma, lr = [30, 60, 80], 0.1, 0.1
    opt = _dummy_opt(lr)
    torch_sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma)
    for t in range(100):
        assert lr_at(t, base_lr=lr, kind="step", length=90, milestones=milestones, gamma=gamma) == \
            pytest.approx(opt.param_groups[0]["lr"], rel=1e-12, abs=0), t
        opt.step()
        torch_sched.step()
    # timm's MultiStepLRScheduler counts milestone m from t = m - 1 (its documented convention), after its warm-up
    kw = dict(base_lr=lr, kind="step", length=90, milestones=milestones, gamma=gamma, warmup_kind="linear",
              warmup_lr=1e-3, warmup_length=3)
    for prefix in (False, True):
        opt = _dummy_opt(lr)
        timm_sched = MultiStepLRScheduler(opt, decay_t=milestones, decay_rate=gamma, warmup_t=3, warmup_lr_init=1e-3,
                                          warmup_prefix=prefix)
        for t in range(100):
            timm_sched.step(t)
            assert lr_at(t if t < 3 else t + 1, prefix=prefix, **kw) == opt.param_groups[0]["lr"], (prefix, t)


@pytest.mark.parametrize("lr,epochs,warmup,start_factor,min_lr", [
    (0.5, 600, 5, 0.01, 0.0),  # torchvision's ResNet-50 "v2" recipe
    (0.5, 600, 5, 0.01, 1e-5),
    (0.1, 30, 3, 0.1, 0.0),
])
def test_prefixed_linear_warmup_matches_torchvision_scheduler_chain(lr, epochs, warmup, start_factor, min_lr):
    opt = _dummy_opt(lr)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=start_factor, total_iters=warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - warmup, eta_min=min_lr)],
        milestones=[warmup])
    worst_rel = worst_abs = 0.0
    for e in range(epochs):
        theirs = opt.param_groups[0]["lr"]
        ours = lr_at(e, base_lr=lr, kind="cosine", length=epochs, min_lr=min_lr, warmup_kind="linear",
                     warmup_lr=lr * start_factor, warmup_length=warmup, prefix=True)
        worst_abs = max(worst_abs, abs(ours - theirs))
        worst_rel = max(worst_rel, abs(ours - theirs) / theirs if theirs else 0.0)
        opt.step()
        sched.step()
    print(f"torchvision chain lr={lr} epochs={epochs}: max abs {worst_abs:.3g}, max rel {worst_rel:.3g}")
    # torch's LinearLR and CosineAnnealingLR compute each epoch's rate from the last one's (a ratio of cosines),
    # so rounding can build up over the epochs; measured: at most 3.4e-16 absolute, 2.6e-15 relative (600 epochs)
    assert worst_abs <= 1e-14 * lr
    assert worst_rel <= 1e-13


# --- losses -------------------------------------------------------------------------------------------------------

def _logits_and_labels(seed=0, classes=10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, classes, generator=g) * 3, torch.randint(0, classes, (16,), generator=g)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_matches_torch_and_timm(smoothing):
    from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

    logits, y = _logits_and_labels()
    ours = TrainLoss("cross_entropy", 10, smoothing=smoothing)
    assert torch.equal(ours(logits, y), F.cross_entropy(logits, y, label_smoothing=smoothing))
    timm_ls = LabelSmoothingCrossEntropy(smoothing)(logits, y)
    print(f"CE smoothing {smoothing}: |ours - timm LabelSmoothingCrossEntropy| = "
          f"{(ours(logits, y) - timm_ls).abs().item():.3g}")
    assert torch.allclose(ours(logits, y), timm_ls, rtol=1e-6, atol=0)  # another order of the same sums
    soft = mixed_targets(y, 0.37, 10, smoothing)
    assert torch.equal(ours(logits, soft), SoftTargetCrossEntropy()(logits, soft))


@pytest.mark.parametrize("smoothing,threshold", [(0.0, None), (0.1, None), (0.1, 0.2), (0.0, 0.5)])
def test_bce_matches_timm(smoothing, threshold):
    from timm.loss import BinaryCrossEntropy

    logits, y = _logits_and_labels(1)
    ours = TrainLoss("bce", 10, smoothing=smoothing, target_threshold=threshold)
    theirs = BinaryCrossEntropy(smoothing=smoothing, target_threshold=threshold)
    assert torch.equal(ours(logits, y), theirs(logits, y))
    soft = mixed_targets(y, 0.6, 10, smoothing)
    assert torch.equal(ours(logits, soft), theirs(logits, soft))


# --- EMA ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("decay,warmup,power,start", [(0.9, False, 2 / 3, 0), (0.99, True, 2 / 3, 0),
                                                       (0.999, True, 3 / 4, 3), (0.95, False, 2 / 3, 4)])
def test_ema_matches_timm_model_ema_v3(decay, warmup, power, start):
    from timm.utils import ModelEmaV3

    model = small_net()
    ours = WeightEma(model, decay, warmup=warmup, warmup_power=power, start=start)
    theirs = ModelEmaV3(model, decay=decay, use_warmup=warmup, warmup_power=power, update_after_step=start)
    assert [ours.decay_at(s) for s in range(1, 60)] == [theirs.get_decay(s) for s in range(1, 60)]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for step, (x, y) in enumerate(_data(10, seed=3), start=1):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        ours.update(model, step)
        theirs.update(model, step=step)
    diff = _max_diff(ours.module, theirs.module)
    print(f"EMA decay {decay} warmup {warmup} start {start}: max |ours - timm| after 10 steps = {diff:.3g}")
    assert diff == 0.0
    assert _max_diff(ours.module, model) > 0  # an average, not a copy


# --- mixup / cutmix -----------------------------------------------------------------------------------------------

class _TorchDrawnRandom:
    """numpy.random as timm's Mixup calls it, its draws taken from a torch generator as MixCut takes them."""

    def __init__(self, g):
        self.g = g

    def rand(self):
        return float(torch.rand((), dtype=torch.float64, generator=self.g))

    def beta(self, a, b):
        assert a == b
        return beta_sample(a, self.g)

    def randint(self, low, high, size=None):
        assert low == 0 and size is None
        return int(torch.randint(low, high, (), generator=self.g))


class _Numpy:
    def __init__(self, random):
        self.random = random

    def __getattr__(self, name):
        return getattr(numpy, name)


def test_mixup_target_matches_timm():
    from timm.data.mixup import mixup_target

    _, y = _logits_and_labels(2)
    for lam in (1.0, 0.9, 0.5, 0.123):
        for smoothing in (0.0, 0.1):
            assert torch.equal(mixed_targets(y, lam, 10, smoothing), mixup_target(y, 10, lam, smoothing))


def test_mix_batch_matches_timm_for_a_given_lam_and_box(monkeypatch):
    import timm.data.mixup as tm

    x = torch.randn(6, 3, 17, 13, generator=torch.Generator().manual_seed(5))
    for lam in (0.9, 0.5, 0.31, 0.02):
        g = torch.Generator().manual_seed(int(lam * 100))
        monkeypatch.setattr(tm, "np", _Numpy(_TorchDrawnRandom(g)))
        monkeypatch.setattr(tm.Mixup, "_params_per_batch", lambda self, lam=lam: (lam, False))
        theirs = x.clone()
        assert tm.Mixup(mixup_alpha=1.0, label_smoothing=0.0, num_classes=10)._mix_batch(theirs) == lam
        assert torch.equal(mixup_images(x, lam), theirs)
        for seed in range(8):  # boxes inside the image and clipped at its edges
            monkeypatch.setattr(tm.Mixup, "_params_per_batch", lambda self, lam=lam: (lam, True))
            g.manual_seed(seed)
            theirs = x.clone()
            their_lam = tm.Mixup(cutmix_alpha=1.0, mixup_alpha=0.0)._mix_batch(theirs)
            box = cutmix_box(17, 13, lam, g.manual_seed(seed))
            assert torch.equal(cutmix_images(x, box), theirs) and box_lam(box, 17, 13) == their_lam


@pytest.mark.parametrize("mixup_alpha,cutmix_alpha,prob,switch_prob,smoothing", [
    (0.1, 1.0, 1.0, 0.5, 0.1),  # ResNet strikes back A1/A2
    (0.2, 0.0, 1.0, 0.5, 0.0),
    (0.0, 1.0, 0.8, 0.5, 0.1),
    (0.8, 1.0, 0.5, 0.3, 0.1),
])
def test_mixcut_matches_timm_mixup_end_to_end(monkeypatch, mixup_alpha, cutmix_alpha, prob, switch_prob, smoothing):
    import timm.data.mixup as tm

    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(9))
    y = torch.randint(0, 10, (8,), generator=torch.Generator().manual_seed(9))
    theirs_g = torch.Generator()
    monkeypatch.setattr(tm, "np", _Numpy(_TorchDrawnRandom(theirs_g)))
    theirs = tm.Mixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=prob, switch_prob=switch_prob,
                      mode="batch", correct_lam=True, label_smoothing=smoothing, num_classes=10)
    ours = MixCut(mixup_alpha, cutmix_alpha, prob, switch_prob, smoothing, classes=10)
    kinds = {(lam == 1.0, cut) for lam, cut in (ours.draw(torch.Generator().manual_seed(s)) for s in range(20))}
    expected = {(False, mixup_alpha == 0.0), (False, cutmix_alpha > 0.0)} | ({(True, False)} if prob < 1 else set())
    assert kinds >= expected  # the seeds cover every kind of batch
    for seed in range(20):
        ox, ot = ours(x, y, torch.Generator().manual_seed(seed))
        theirs_g.manual_seed(seed)
        tx, tt = theirs(x.clone(), y)
        assert torch.equal(ox, tx) and torch.equal(ot, tt), seed
