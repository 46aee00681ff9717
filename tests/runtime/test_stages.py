"""Activation checkpointing by stage (runtime.stages): one set of modules, reached by every conversion."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402


class CountingBN(nn.BatchNorm2d):
    """A batch norm that counts its calls: stands in for SyncBatchNorm, which needs several CUDA processes."""

    calls = 0

    def forward(self, x):  # noqa: D401
        CountingBN.calls += 1
        return super().forward(x)


def convert(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d in the tree by a CountingBN, as convert_sync_batchnorm replaces them."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = CountingBN(child.num_features)
            new.load_state_dict(child.state_dict())
            setattr(module, name, new)
        else:
            convert(child)
    return module


def _checkpointed(name: str = "cifar_resnet20"):
    import archspec
    from archspec.runtime.stages import checkpoint_stages

    return checkpoint_stages(archspec.build(name))


def test_stages_call_the_modules_of_the_tree_after_a_conversion():
    model = convert(_checkpointed())
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 19 and all(isinstance(m, CountingBN) for m in norms)
    CountingBN.calls = 0
    model.train()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert CountingBN.calls >= 19  # the converted modules ran (the old stages called the replaced ones)


def test_sync_batchnorm_conversion_reaches_every_stage():
    model = nn.SyncBatchNorm.convert_sync_batchnorm(_checkpointed())
    synced = [m for m in model.modules() if isinstance(m, nn.SyncBatchNorm)]
    assert len(synced) == 19
    model.eval()  # eval() reaches them: SyncBatchNorm in eval mode runs on the CPU
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_to_and_eval_reach_what_the_stages_run():
    import archspec

    torch.manual_seed(0)
    plain = archspec.build("cifar_resnet20")
    model = convert(_checkpointed())
    model.load_state_dict(plain.state_dict())
    model.double().eval()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    assert torch.allclose(model(x), plain.double().eval()(x))  # float64 everywhere: no dtype mismatch


def test_running_statistics_are_counted_once():
    import archspec
    from archspec.runtime.stages import RunningStats, checkpoint_stages

    torch.manual_seed(0)
    plain = archspec.build("cifar_resnet20")
    model = checkpoint_stages(archspec.build("cifar_resnet20"))
    model.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32)
    plain.train()(x).sum().backward()
    stats = RunningStats(model)
    out = model.train()(x)
    saved = stats.snapshot()
    out.sum().backward()
    counted_twice = [m.num_batches_tracked.item() for m in stats.norms]
    stats.restore(saved)
    assert max(counted_twice) == 2  # recomputation ran batch norm again...
    for a, b in zip(plain.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)  # ...and the statistics are what one forward pass makes


def test_a_module_not_lowered_by_archspec_is_refused():
    from archspec.runtime.stages import checkpoint_stages

    with pytest.raises(ValueError, match="lowered by archspec"):
        checkpoint_stages(torch.fx.symbolic_trace(nn.Linear(2, 2)))
