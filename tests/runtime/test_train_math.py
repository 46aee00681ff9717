"""The training loop's arithmetic, on CPU: optimizers and their parameter groups (runtime.optim), learning-rate
schedules (runtime.lr_schedule), losses (runtime.losses), the weight EMA (runtime.ema) and mixup/cutmix
(runtime.mixup). Parity with timm and torch's schedulers is in test_train_math_parity.py (parity environment)."""

from __future__ import annotations

import copy
import io
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archspec.runtime.ema import WeightEma
from archspec.runtime.losses import TrainLoss, smooth_one_hot
from archspec.runtime.lr_schedule import lr_at
from archspec.runtime.mixup import (MixCut, beta_sample, box_lam, cutmix_box, cutmix_images, mixed_targets,
                                    mixup_images)
from archspec.runtime.optim import Lamb, build_optimizer, clip_gradients, param_groups


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # (tests/conftest.py)
    yield


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 5))


@pytest.fixture
def no_host_reads(monkeypatch):
    """Fail on any read of a tensor's value into Python (what would be a device sync on a GPU)."""
    def refuse(*_a, **_k):
        raise AssertionError("a tensor value was read back to the host")
    for name in ("item", "tolist", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)


# --- optimizers -------------------------------------------------------------------------------------------------

def test_lamb_first_step_by_hand():
    w0 = torch.tensor([0.5, -1.0, 2.0, 0.25], dtype=torch.float64)
    g = torch.tensor([3.0, -4.0, 0.5, 1.0], dtype=torch.float64)
    lr, wd, eps, clip = 0.1, 0.02, 1e-6, 1.0
    p = nn.Parameter(w0.clone())
    p.grad = g.clone()
    Lamb([p], lr=lr, weight_decay=wd, eps=eps, max_grad_norm=clip).step()
    gc = g / max(1.0, g.norm().item() / clip)  # global clip
    m_hat, v_hat = gc, gc * gc  # first step: bias correction undoes (1 - beta)
    update = m_hat / (v_hat.sqrt() + eps) + wd * w0
    expect = w0 - lr * (w0.norm() / update.norm()) * update
    assert torch.allclose(p.detach(), expect, rtol=1e-12, atol=0)
    assert torch.equal(p.grad, g)  # the clip leaves .grad as it was


def test_lamb_trust_clip_always_adapt_and_undecayed_groups():
    def first_step(wd, **kw):
        p = nn.Parameter(torch.full((4,), 100.0, dtype=torch.float64))
        p.grad = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
        Lamb([p], lr=0.01, weight_decay=wd, eps=0.0, max_grad_norm=None, **kw).step()
        return 100.0 - p.detach()
    # no decay, no adaptation: a plain Adam step of lr x sign(g)
    assert torch.allclose(first_step(0.0), torch.tensor([0.01, -0.01, 0.01, -0.01], dtype=torch.float64))
    # always_adapt: the trust ratio ||w|| / ||update|| = 200 / 2 = 100 scales it
    assert torch.allclose(first_step(0.0, always_adapt=True), 100 * torch.tensor([0.01, -0.01, 0.01, -0.01],
                                                                                  dtype=torch.float64))
    # trust_clip holds the ratio at 1
    assert torch.allclose(first_step(0.0, always_adapt=True, trust_clip=True),
                          torch.tensor([0.01, -0.01, 0.01, -0.01], dtype=torch.float64))


def test_lamb_clips_by_the_global_norm_across_groups():
    def run(max_grad_norm, scale):
        a = nn.Parameter(torch.tensor([1.0, 2.0], dtype=torch.float64))
        b = nn.Parameter(torch.tensor([[0.5, -0.5]], dtype=torch.float64))
        opt = Lamb([{"params": [a]}, {"params": [b], "weight_decay": 0.0}], lr=0.1, max_grad_norm=max_grad_norm)
        for k in range(3):
            a.grad = torch.tensor([3.0, 4.0 + k], dtype=torch.float64) / scale(k)
            b.grad = torch.tensor([[12.0, -1.0 * k]], dtype=torch.float64) / scale(k)
            opt.step()
        return a.detach(), b.detach()

    def norm(k):  # the global norm of step k's gradients
        return math.sqrt(9 + (4 + k) ** 2 + 144 + k * k)
    clipped = run(2.0, lambda k: 1.0)
    by_hand = run(None, lambda k: norm(k) / 2.0)
    for x, y in zip(clipped, by_hand):
        assert torch.allclose(x, y, rtol=1e-12, atol=1e-15)
    assert not torch.allclose(run(None, lambda k: 1.0)[0], clipped[0])


@pytest.mark.parametrize("always_adapt", [False, True])
def test_lamb_minimizes_a_quadratic(always_adapt):
    g = torch.Generator().manual_seed(1)
    a, w_true = torch.randn(16, 4, generator=g), torch.randn(4, generator=g)
    b = a @ w_true
    w = nn.Parameter(torch.full((4,), 0.1))
    opt = Lamb([w], lr=0.02, weight_decay=0.0, always_adapt=always_adapt)

    def loss():
        return ((a @ w - b) ** 2).mean()
    start = loss().item()
    for _ in range(400):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 1e-2 * start
    assert torch.allclose(w.detach(), w_true, atol=0.05)


def _train_steps(model, opt, n, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(4, 3, 6, 6, generator=g), torch.randint(0, 5, (4,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("name", ["lamb", "adamw", "sgd"])
def test_optimizer_state_dict_resumes_exactly(name):
    o = SimpleNamespace(name=name, lr=0.01, weight_decay=0.05, norm_bias_decay=False, momentum=0.9, nesterov=True,
                        betas=(0.9, 0.999), eps=1e-6, max_grad_norm=1.0, trust_clip=False, always_adapt=False)
    model = small_net()
    opt = build_optimizer(model, o)
    _train_steps(model, opt, 3, seed=1)
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buf)
    _train_steps(model, opt, 3, seed=2)

    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    again = small_net()
    again.load_state_dict(saved["model"])
    opt2 = build_optimizer(again, o)
    opt2.load_state_dict(saved["opt"])
    _train_steps(again, opt2, 3, seed=2)
    for (k, x), y in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(x, y), k
    if name == "lamb":
        assert [grp["step"] for grp in opt2.param_groups] == [6, 6]


def test_lamb_step_and_clipping_read_nothing_back(no_host_reads):
    model = small_net()
    opt = Lamb(param_groups(model, 0.02, False), lr=0.01, max_grad_norm=1.0, trust_clip=True)
    loss = model(torch.randn(2, 3, 6, 6)).square().mean()
    loss.backward()
    for mode in ("norm", "value", "agc"):
        clip_gradients(model.parameters(), mode, 0.5)
    opt.step()


def test_param_groups_split_norms_and_biases_from_weights():
    model = small_net()
    model[0].bias.requires_grad_(False)  # frozen: in no group
    names = {id(p): n for n, p in model.named_parameters()}
    groups = param_groups(model, 0.05, norm_bias_decay=False)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    assert [names[id(p)] for p in groups[0]["params"]] == ["0.weight", "5.weight"]
    assert [names[id(p)] for p in groups[1]["params"]] == ["1.weight", "1.bias", "5.bias"]
    one = param_groups(model, 0.05, norm_bias_decay=True)
    assert len(one) == 1 and one[0]["weight_decay"] == 0.05 and len(one[0]["params"]) == 5
    only_weights = param_groups(nn.Linear(3, 2, bias=False), 0.1, norm_bias_decay=False)
    assert len(only_weights) == 1 and only_weights[0]["weight_decay"] == 0.1


def test_build_optimizer_by_name():
    model = small_net()
    base = dict(lr=0.2, weight_decay=1e-4, norm_bias_decay=False)
    sgd = build_optimizer(model, SimpleNamespace(name="sgd", momentum=0.9, nesterov=True, **base))
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["nesterov"] is True
    assert [g["weight_decay"] for g in sgd.param_groups] == [1e-4, 0.0]
    adamw = build_optimizer(model, SimpleNamespace(name="adamw", betas=[0.8, 0.99], eps=1e-8, **base))
    assert type(adamw) is torch.optim.AdamW and adamw.param_groups[0]["betas"] == (0.8, 0.99)
    lamb = build_optimizer(model, SimpleNamespace(name="lamb", betas=(0.9, 0.999), eps=1e-6, max_grad_norm=None,
                                                  trust_clip=True, always_adapt=True, **base))
    assert type(lamb) is Lamb and lamb.defaults["max_grad_norm"] is None and lamb.param_groups[1]["trust_clip"]
    assert all(g["lr"] == 0.2 for opt in (sgd, adamw, lamb) for g in opt.param_groups)
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(model, SimpleNamespace(name="rmsprop", **base))


def test_clip_gradients_modes():
    w = nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 0.001]]))
    b = nn.Parameter(torch.tensor([1.0, 1.0]))
    w.grad, b.grad = torch.tensor([[0.3, 0.4], [6.0, 8.0]]), torch.tensor([2.0, 0.0])
    saved = (w.grad.clone(), b.grad.clone())
    clip_gradients([w, b], "norm", 1.0)
    assert math.isclose(torch.cat([w.grad.flatten(), b.grad]).norm().item(), 1.0, rel_tol=1e-5)
    w.grad, b.grad = saved[0].clone(), saved[1].clone()
    clip_gradients([w, b], "value", 0.5)
    assert torch.equal(w.grad, torch.tensor([[0.3, 0.4], [0.5, 0.5]])) and torch.equal(b.grad, torch.tensor([.5, 0.]))
    w.grad, b.grad = saved[0].clone(), saved[1].clone()
    clip_gradients([w, b], "agc", 0.1)
    # row 0: grad norm 0.5 <= 0.1 x 5 -> kept; row 1: weight norm floored at 1e-3, grad norm 10 -> 1e-4
    assert torch.allclose(w.grad, torch.tensor([[0.3, 0.4], [6e-5, 8e-5]]), rtol=1e-5)
    # the bias, one unit: grad norm 2 > 0.1 x sqrt(2) -> scaled to that
    assert torch.allclose(b.grad.norm(), torch.tensor(0.1 * math.sqrt(2)), rtol=1e-5)
    with pytest.raises(ValueError, match="unknown mode"):
        clip_gradients([w], "max", 1.0)


# --- learning-rate schedules --------------------------------------------------------------------------------------

def test_step_schedule_counts_milestones_reached():
    lr = [lr_at(t, base_lr=0.1, kind="step", length=64000, milestones=(32000, 48000)) for t in
          (0, 31999, 32000, 47999, 48000, 70000)]
    assert lr == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rel=1e-12)
    prefixed = dict(base_lr=1.0, kind="step", length=10, milestones=(3,), gamma=0.5, warmup_kind="constant",
                    warmup_lr=0.01, warmup_length=2)
    assert [lr_at(t, **prefixed) for t in (1, 2, 3, 4)] == [0.01, 1.0, 0.5, 0.5]
    assert [lr_at(t, prefix=True, **prefixed) for t in (1, 2, 4, 5)] == [0.01, 1.0, 1.0, 0.5]


def test_cosine_schedule_shape():
    kw = dict(base_lr=0.8, kind="cosine", length=100, min_lr=0.1)
    assert lr_at(0, **kw) == 0.8
    assert lr_at(50, **kw) == pytest.approx(0.45, rel=1e-12)
    assert lr_at(25.5, **kw) == pytest.approx(0.1 + 0.35 * (1 + math.cos(math.pi * 0.255)), rel=1e-12)
    assert lr_at(100, **kw) == lr_at(150, **kw) == 0.1
    assert all(lr_at(t, **kw) > lr_at(t + 1, **kw) for t in range(99))


def test_linear_warmup_with_and_without_prefix():
    kw = dict(base_lr=1.0, kind="cosine", length=20, warmup_kind="linear", warmup_lr=0.1, warmup_length=4)
    assert [lr_at(t, **kw) for t in (0, 2, 3.5)] == pytest.approx([0.1, 0.55, 0.1 + 3.5 * 0.9 / 4], rel=1e-12)
    plain_cosine = dict(base_lr=1.0, kind="cosine", length=20)
    assert lr_at(4, **kw) == lr_at(4, **plain_cosine) < 1.0  # timm: the warm-up covers the start of the cosine
    assert lr_at(4, prefix=True, **kw) == 1.0  # torchvision: the cosine starts after it
    assert lr_at(12, prefix=True, **kw) == pytest.approx(0.5, rel=1e-12)  # half way through 16
    assert lr_at(20, prefix=True, **kw) == 0.0


def test_constant_warmup_and_bad_arguments():
    kw = dict(base_lr=0.1, kind="step", length=100, milestones=(50,), warmup_kind="constant", warmup_lr=0.01,
              warmup_length=10)
    assert [lr_at(t, **kw) for t in (0, 9.9, 10, 50)] == pytest.approx([0.01, 0.01, 0.1, 0.01])
    with pytest.raises(ValueError, match="schedule kind"):
        lr_at(0, base_lr=0.1, kind="poly", length=10)
    with pytest.raises(ValueError, match="length > 0 after the warm-up"):
        lr_at(0, base_lr=0.1, kind="cosine", length=5, warmup_kind="linear", warmup_length=5, prefix=True)
    with pytest.raises(ValueError, match="increasing"):
        lr_at(0, base_lr=0.1, kind="step", length=5, milestones=(3, 2))


# --- losses -------------------------------------------------------------------------------------------------------

def test_smooth_one_hot():
    t = smooth_one_hot(torch.tensor([2, 0]), 4, 0.2)
    assert t.dtype == torch.float32 and t.shape == (2, 4)
    assert torch.allclose(t[0], torch.tensor([0.05, 0.05, 0.85, 0.05])) and torch.allclose(t.sum(1), torch.ones(2))


def test_cross_entropy_hard_and_soft_targets():
    g = torch.Generator().manual_seed(3)
    logits, y = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randint(0, 5, (6,), generator=g)
    logp = logits.log_softmax(1)
    nll, uniform = -logp[torch.arange(6), y], -logp.mean(1)
    by_hand = (0.9 * nll + 0.1 * uniform).mean().float()
    loss = TrainLoss("cross_entropy", 5, smoothing=0.1)
    assert torch.allclose(loss(logits.float(), y), by_hand, rtol=1e-5)
    soft = smooth_one_hot(y, 5, 0.1)
    assert torch.allclose(loss(logits.float(), soft), by_hand, rtol=1e-5)
    mixed = mixed_targets(y, 0.3, 5, 0.0)
    assert torch.allclose(loss(logits.float(), mixed), (0.3 * -logp[torch.arange(6), y] + 0.7 *
                                                        -logp[torch.arange(6), y.flip(0)]).mean().float(), rtol=1e-5)
    assert loss(logits.half(), y).dtype == torch.float32


def test_bce_smoothing_threshold_and_soft_targets():
    g = torch.Generator().manual_seed(4)
    logits, y = torch.randn(4, 3, generator=g), torch.tensor([0, 2, 1, 1])
    target = torch.full((4, 3), 0.1 / 3).scatter_(1, y.view(-1, 1), 0.9 + 0.1 / 3)
    by_hand = -(target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)).mean()
    assert torch.allclose(TrainLoss("bce", 3, smoothing=0.1)(logits, y), by_hand, rtol=1e-6)
    hard = F.binary_cross_entropy_with_logits(logits, F.one_hot(y, 3).float())
    assert torch.allclose(TrainLoss("bce", 3, smoothing=0.1, target_threshold=0.2)(logits, y), hard)
    mixed = mixed_targets(y, 0.7, 3, 0.1)
    assert torch.allclose(TrainLoss("bce", 3, smoothing=0.1)(logits, mixed),
                          F.binary_cross_entropy_with_logits(logits, mixed))
    assert torch.allclose(TrainLoss("bce", 3, target_threshold=0.5)(logits, mixed),
                          F.binary_cross_entropy_with_logits(logits, (mixed > 0.5).float()))


def test_loss_refusals():
    with pytest.raises(ValueError, match="unknown loss"):
        TrainLoss("mse", 3)
    with pytest.raises(ValueError, match="not \\(batch, 3\\)"):
        TrainLoss("bce", 3)(torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="do not fit"):
        TrainLoss("cross_entropy", 3)(torch.zeros(2, 3), torch.zeros(3, 3))


# --- EMA ----------------------------------------------------------------------------------------------------------

def test_ema_decay_rule():
    ema = WeightEma(nn.Linear(2, 2), 0.99)
    assert [ema.decay_at(s) for s in (1, 2, 3)] == [0.0, 0.99, 0.99]
    warm = WeightEma(nn.Linear(2, 2), 0.99, warmup=True, start=10)
    assert warm.decay_at(11) == 0.0 and warm.due(11)
    assert all(warm.due(s) and warm.decay_at(s) == 0.0 for s in range(1, 11))  # it follows the weights until start
    assert warm.decay_at(12) == pytest.approx(1 - 2 ** (-2 / 3))
    assert warm.decay_at(10 ** 6) == 0.99
    every = WeightEma(nn.Linear(2, 2), 0.9, every=4, start=2)
    assert [s for s in range(1, 16) if every.due(s)] == [1, 2, 6, 10, 14]
    assert [every.decay_at(s) for s in (1, 2, 6, 10)] == [0.0, 0.0, 0.0, 0.9]


def test_ema_update_arithmetic_and_buffers():
    model = small_net()
    ema = WeightEma(model, 0.75)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _train_steps(model, opt, 1, seed=5)
    ema.update(model, 1)  # the first update copies
    for k, v in model.state_dict().items():
        assert torch.equal(ema.state_dict()[k], v), k
    before = copy.deepcopy(ema.state_dict())
    _train_steps(model, opt, 1, seed=6)
    ema.update(model, 2)
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.allclose(ema.state_dict()[k], 0.75 * before[k] + 0.25 * v, rtol=1e-6, atol=1e-7), k
        else:
            assert torch.equal(ema.state_dict()[k], v), k  # BN's batch counter
    assert ema.state_dict()["1.num_batches_tracked"].item() == 2


def test_ema_resumes_exactly_and_reads_nothing_back(monkeypatch):
    model = small_net()
    start = copy.deepcopy(model)
    ema = WeightEma(model, 0.9, warmup=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    snapshots = []
    g = torch.Generator().manual_seed(7)
    for step in range(1, 7):
        x, y = torch.randn(4, 3, 6, 6, generator=g), torch.randint(0, 5, (4,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        snapshots.append(copy.deepcopy(model.state_dict()))
        ema.update(model, step)
        if step == 3:
            saved = copy.deepcopy(ema.state_dict())
    resumed = WeightEma(start, 0.9, warmup=True)
    resumed.load_state_dict(saved)
    for step in (4, 5, 6):
        start.load_state_dict(snapshots[step - 1])
        if step == 6:
            monkeypatch.setattr(torch.Tensor, "item", lambda *_: (_ for _ in ()).throw(AssertionError("host read")))
            monkeypatch.setattr(torch.Tensor, "__bool__", lambda *_: (_ for _ in ()).throw(AssertionError("read")))
        resumed.update(start, step)
    monkeypatch.undo()
    for k, v in ema.state_dict().items():
        assert torch.equal(resumed.state_dict()[k], v), k


# --- mixup / cutmix -----------------------------------------------------------------------------------------------

def batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(6, 3, 8, 10, generator=g), torch.randint(0, 4, (6,), generator=g)


def test_mixcut_with_prob_zero_is_the_identity_with_smoothed_targets():
    x, y = batch()
    out, t = MixCut(1.0, 1.0, prob=0.0, smoothing=0.1, classes=4)(x, y, torch.Generator().manual_seed(0))
    assert out is x and torch.equal(t, smooth_one_hot(y, 4, 0.1))


def test_mixcut_is_reproducible_from_the_generator_and_leaves_global_rngs_alone():
    x, y = batch()
    mix = MixCut(0.8, 1.0, smoothing=0.1, classes=4)
    state = torch.get_rng_state()
    runs = [mix(x, y, torch.Generator().manual_seed(s)) for s in (11, 11, 12)]
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][1], runs[2][1])
    assert torch.allclose(runs[0][1].sum(1), torch.ones(6))


def test_mixcut_chooses_cutmix_or_mixup_by_switch_prob():
    x, y = batch(1)
    for seed in range(5):
        out, t = MixCut(0.5, 1.0, switch_prob=1.0, classes=4)(x, y, torch.Generator().manual_seed(seed))
        changed = (out != x)
        # cutmix: every changed pixel comes from the reversed batch; the target weight is the kept share
        assert torch.equal(out[changed], x.flip(0)[changed])
        kept = 1 - changed[0, 0].float().mean().item() if changed.any() else 1.0
        assert t[0, y[0]].item() >= kept - 1e-6
        out, t = MixCut(0.5, 1.0, switch_prob=0.0, classes=4)(x, y, torch.Generator().manual_seed(seed))
        lam = (t * F.one_hot(y, 4)).sum(1)[0].item() if y[0] != y[-1] else None
        if lam is not None:
            assert torch.allclose(out, mixup_images(x, lam), atol=1e-5)


def test_beta_draws():
    g = torch.Generator().manual_seed(0)
    draws = torch.tensor([beta_sample(1.0, g) for _ in range(4000)])
    assert abs(draws.mean().item() - 0.5) < 0.02 and abs(draws.var().item() - 1 / 12) < 0.01
    small = torch.tensor([beta_sample(0.1, g) for _ in range(2000)])
    assert torch.isfinite(small).all() and ((small < 0.05) | (small > 0.95)).float().mean() > 0.6


def test_cutmix_box_and_images():
    g = torch.Generator().manual_seed(2)
    for lam in (0.0, 0.3, 0.9, 0.999):
        for _ in range(20):
            y0, y1, x0, x1 = cutmix_box(8, 10, lam, g)
            assert 0 <= y0 <= y1 <= 8 and 0 <= x0 <= x1 <= 10
            assert y1 - y0 <= int(8 * math.sqrt(1 - lam)) and x1 - x0 <= int(10 * math.sqrt(1 - lam))
    assert cutmix_box(8, 10, 1.0, g)[:2] in {(y, y) for y in range(9)}
    x, _ = batch()
    keep = x.clone()
    box = (2, 5, 1, 9)
    out = cutmix_images(x, box)
    assert torch.equal(x, keep) and torch.equal(out[:, :, 2:5, 1:9], x.flip(0)[:, :, 2:5, 1:9])
    out[:, :, 2:5, 1:9] = x[:, :, 2:5, 1:9]
    assert torch.equal(out, x)
    assert box_lam(box, 8, 10) == 1 - 24 / 80
    assert torch.equal(mixup_images(x, 0.25), x * 0.25 + x.flip(0) * 0.75)
