"""The timm ResNet zoo as data (specs/timm/): every shipped model against timm's own, in the parity environment.

For each spec `timm/NAME`: timm's `NAME` (random init, then its norms' weights and statistics moved far from their
initial values) has exactly the spec's state_dict keys in the same order, loads into the archspec model with
strict=True, and both give the same eval outputs (relative difference <= 1e-4 of the largest logit) at 224x224
(128x128 for the heaviest, see BIG) and at an odd size; parameter and buffer counts equal timm's, and the spec's
MACs at 224 equal what a trace of timm's model counts (torch.utils.flop_counter reports 2 x multiply-adds).

Also: which of the 122 models timm registers for its ResNet modules ship, and which do not yet (an exact list,
empty now, so that it cannot go stale).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

import archspec  # noqa: E402

pytestmark = pytest.mark.torchvision
ZOO_DIR = Path(__file__).resolve().parents[2] / "specs" / "timm"
ZOO = sorted(p.stem for p in ZOO_DIR.glob("*.yaml"))
MODULES = ("resnet", "resnetv2", "res2net", "resnest", "sknet")
# the models of those modules that do not ship yet (none: the two pruned ECA-ResNets, whose widths timm rewrites
# from a pruning file, are lib/pruned.yaml's `pruned_stack` with the widths as data)
NOT_YET: set[str] = set()
ODD = (1, 3, 129, 97)  # odd sizes (timm's anti-aliased models need 1 mod 32): ceil-mode pools, padding at edges
# outputs are compared at 224x224, except for the zoo's heaviest models (more than BIG multiply-adds at 224: the
# ResNet-200s and up, the wide ResNeXts and BiT x2-x4), compared at SMALL x SMALL to keep CI's CPU time in bounds;
# benchmarks/family_parity.py compares every model at 224
BIG = 12_000_000_000
SMALL = 128


def timm_models() -> list[str]:
    return sorted(n for m in MODULES for n in timm.list_models(module=m) if n != "test_resnet")


def _randomise_norms(model, seed: int) -> None:
    """Every norm's affine weights (and BN's running statistics) far from their initial values, so that an eval
    forward tests them and no residual branch is zeroed by zero_init_last."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            name = type(m).__name__
            if "Norm" not in name:
                continue
            for pname, p in m.named_parameters(recurse=False):
                if pname == "weight":
                    p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.5)
                else:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            if getattr(m, "running_mean", None) is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)


def test_the_shipped_models_are_timms_and_the_missing_ones_are_listed():
    registered = set(timm_models())
    assert len(registered) == 122
    assert set(ZOO) <= registered, sorted(set(ZOO) - registered)
    assert registered - set(ZOO) == NOT_YET


@pytest.mark.parametrize("name", ZOO)
def test_model_matches_timm(name):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False).eval()
    _randomise_norms(reference, 1)
    ours = archspec.build(f"timm/{name}").eval()
    theirs = reference.state_dict()
    if name.startswith("resnetv2"):
        # timm registers a pre-activation block's `downsample` before the `norm1` whose output it reads; a spec
        # writes it after (the keys are the same, and loading by name does not care about their order)
        assert sorted(ours.state_dict()) == sorted(theirs)
    else:
        assert list(ours.state_dict()) == list(theirs)
    ours.load_state_dict(theirs, strict=True)
    c = archspec.compile(f"timm/{name}")
    assert c.params == sum(p.numel() for p in reference.parameters())
    assert c.buffers == sum(b.numel() for b in reference.buffers())
    side = 224 if c.macs <= BIG else SMALL
    for shape in [(1, 3, side, side), ODD]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            expected, got = reference(x), ours(x)
        assert got.shape == expected.shape
        scale = max(1.0, expected.abs().max().item())
        assert (got - expected).abs().max().item() <= 1e-4 * scale, (name, shape)
    del ours, theirs
    # the MACs at 224, traced on the meta device (shapes only: the count needs no arithmetic)
    reference.to("meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        reference(torch.zeros(1, 3, 224, 224, device="meta"))
    assert 2 * c.macs == counter.get_total_flops()
    del reference
    gc.collect()


def test_named_weights_are_timms_default_pretrained_files():
    """`--weights timm` for a zoo spec is timm's default pretrained file for that model, with the normalisation,
    crop and resize of its pretrained config (the resize is floor(crop / crop_pct), as timm's eval transform)."""
    import math

    from archspec.runtime.published import PUBLISHED, find

    expected = {}
    for name in timm_models():
        cfg = timm.models.get_pretrained_cfg(name)
        if cfg is not None and cfg.hf_hub_id:
            crop = cfg.input_size[-1]
            expected[name] = (cfg.hf_hub_id, "inception" if tuple(cfg.mean) == (0.5, 0.5, 0.5) else "imagenet",
                              crop, math.floor(crop / cfg.crop_pct))
    zoo = {p.specs[0].removeprefix("timm/"): (p.file, p.normalize, p.crop, p.resize)
           for p in PUBLISHED if p.source == "timm" and p.specs[0].startswith("timm/")}
    assert zoo == expected
    for name in ZOO:
        if name in expected:
            assert find("timm", f"timm/{name}").file == expected[name][0]
    # the timm-named specs at the top level (resnet50d, seresnet50, ...) take the same files
    from archspec.runtime.published import TOP_LEVEL_TIMM

    for name in TOP_LEVEL_TIMM:
        p = find("timm", name)
        assert (p.file, p.normalize, p.crop, p.resize) == expected[name], p
