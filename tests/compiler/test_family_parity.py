"""The ResNet family beyond the paper, as data, against the reference models: torchvision's ResNeXt and Wide
ResNet, timm's ResNet-C/D/S stems and shortcuts, its squeeze-and-excitation nets and its pre-activation ResNetV2.

Each shipped spec loads the reference's state_dict strictly and computes the same outputs, with non-trivial BN
statistics, at 224x224 and at an odd size; its parameter and buffer counts equal the reference's, and its MACs
equal what a trace of the reference counts (torch.utils.flop_counter, which reports 2 x multiply-adds).
Runs in the parity environment (.ci/run), where torchvision imports and timm is installed with
`pip install --no-deps timm`; the timm cases are skipped where timm is missing.
"""

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archspec  # noqa: E402

pytestmark = pytest.mark.torchvision
TORCHVISION = ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]
TIMM = ["resnet50c", "resnet50d", "resnet50s", "resnet26d", "resnet101d", "seresnet50", "seresnext50_32x4d",
        "resnetv2_50"]
# timm registers a pre-activation block's `downsample` before `norm1`, whose output it reads; a spec can only name
# an item's inputs above it, so there the same keys come in another order (loading by name does not care)
KEY_ORDER_DIFFERS = {"resnetv2_50"}
CASES = [("torchvision", n) for n in TORCHVISION] + [("timm", n) for n in TIMM]


def reference_model(source, name):
    if source == "timm":
        timm = pytest.importorskip("timm")
        return timm.create_model(name, pretrained=False)
    return getattr(torchvision.models, name)()


def _randomise_statistics(model, seed):
    """Weights and BN running statistics far from their initial values, so that an eval forward tests them."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.fixture(scope="module", params=CASES, ids=[name for _, name in CASES])
def pair(request):
    source, name = request.param
    torch.manual_seed(0)
    reference = reference_model(source, name).eval()
    _randomise_statistics(reference, 1)
    ours = archspec.build(name).eval()
    return name, reference, ours


def test_state_dict_loads_strictly_and_outputs_agree(pair):
    name, reference, ours = pair
    theirs = reference.state_dict()
    if name in KEY_ORDER_DIFFERS:
        assert sorted(ours.state_dict()) == sorted(theirs)
    else:
        assert list(ours.state_dict()) == list(theirs)
    ours.load_state_dict(theirs, strict=True)
    for shape in [(2, 3, 224, 224), (1, 3, 193, 161)]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            expected, got = reference(x), ours(x)
        assert (got - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item()), (name, shape)


def test_counts_equal_the_reference_and_a_trace(pair):
    name, reference, _ = pair
    c = archspec.compile(name)
    assert c.params == sum(p.numel() for p in reference.parameters())
    assert c.buffers == sum(b.numel() for b in reference.buffers())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(torch.zeros(1, 3, 224, 224))
    assert 2 * c.macs == counter.get_total_flops()


@pytest.mark.parametrize("name", ["resnet50", "resnetv2_50", "seresnet50"])
def test_drop_path_rate_is_timms_linear_rule(name):
    """`--set drop_path_rate=0.1` gives each block the probability timm's `drop_path_rate=0.1` gives it."""
    timm = pytest.importorskip("timm")
    reference = timm.create_model(name, pretrained=False, drop_path_rate=0.1)
    theirs = [float(getattr(b.drop_path, "drop_prob", 0.0)) for b in reference.modules() if hasattr(b, "drop_path")]
    ours = archspec.build(name, drop_path_rate=0.1)
    blocks = [m for n, m in ours.named_modules() if n and hasattr(m, "conv1")]
    got = [b.drop_path.p if hasattr(b, "drop_path") else 0.0 for b in blocks]  # the first block has none
    assert len(got) == len(theirs) == 16
    assert got == pytest.approx(theirs, abs=1e-7)
