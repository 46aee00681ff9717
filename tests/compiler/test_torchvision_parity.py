"""Parity with torchvision's ResNets: identical state_dict keys and shapes, strict loading, equal outputs.

torchvision imports only beside torch 2.14.1, so these run in the parity environment (.ci/run makes one;
see the README) and are skipped where torchvision cannot be imported.
"""

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import archspec  # noqa: E402

pytestmark = pytest.mark.torchvision
DEPTHS = [18, 34, 50, 101, 152]


@pytest.mark.parametrize("depth", DEPTHS)
def test_torchvision_layout_is_interchangeable_with_torchvision(depth):
    torch.manual_seed(depth)
    tv = getattr(torchvision.models, f"resnet{depth}")().eval()
    ours = archspec.build(f"resnet{depth}_tv").eval()
    theirs_sd, ours_sd = tv.state_dict(), ours.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    assert all(ours_sd[k].shape == theirs_sd[k].shape for k in theirs_sd)
    ours.load_state_dict(theirs_sd, strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (ours(x) - tv(x)).abs().max().item() < 1e-5


@pytest.mark.parametrize("depth", DEPTHS)
def test_paper_layout_loads_torchvision_weights(depth):
    tv = getattr(torchvision.models, f"resnet{depth}")()
    ours = archspec.build(f"resnet{depth}")
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    ours.eval(), tv.eval()
    with torch.no_grad():
        same = (ours(x) - tv(x)).abs().max().item() < 1e-5
    assert same == (depth < 50)  # only bottlenecks move their stride


@pytest.mark.parametrize("depth", DEPTHS)
def test_counts_equal_torchvision(depth):
    tv = getattr(torchvision.models, f"resnet{depth}")()
    c = archspec.compile(f"resnet{depth}_tv")
    assert c.params == sum(p.numel() for p in tv.parameters())
    assert c.buffers == sum(b.numel() for b in tv.buffers())
