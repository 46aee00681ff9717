"""The ResNet family against its reference implementations, as a table: for every shipped spec with a torchvision
or timm counterpart, its parameters and MACs beside the reference's (MACs traced with torch.utils.flop_counter),
the largest output difference after loading the reference's state_dict strictly (eval mode, randomised BN
statistics, at 224x224 and at an odd 193x161), and the spec file's length in YAML lines.

Runs in the parity environment (torchvision 0.29.1 beside torch 2.14.1, timm installed with --no-deps):

    python benchmarks/family_parity.py            # Markdown table on stdout
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

import archspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "compiler"))
from test_family_parity import _randomise_statistics as randomise_statistics  # noqa: E402  (the tests' own)
TORCHVISION = ["resnet18_tv", "resnet34_tv", "resnet50_tv", "resnet101_tv", "resnet152_tv", "resnext50_32x4d",
               "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]
TIMM = ["resnet50c", "resnet50d", "resnet50s", "resnet26d", "resnet101d", "seresnet50", "seresnext50_32x4d",
        "resnetv2_50"]


def reference(source: str, name: str) -> torch.nn.Module:
    if source == "timm":
        import timm

        return timm.create_model(name, pretrained=False)
    import torchvision

    return getattr(torchvision.models, name.removesuffix("_tv"))()


def yaml_lines(name: str) -> int:
    """Lines of the spec file that are neither blank nor comments."""
    text = (ROOT / "specs" / f"{name}.yaml").read_text(encoding="utf-8")
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def row(source: str, name: str) -> list[str]:
    torch.manual_seed(0)
    ref = reference(source, name).eval()
    randomise_statistics(ref, 1)
    ours = archspec.build(name).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    diffs = []
    for shape in [(2, 3, 224, 224), (1, 3, 193, 161)]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            diffs.append((ours(x) - ref(x)).abs().max().item())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.zeros(1, 3, 224, 224))
    c = ours.archspec
    ref_params = sum(p.numel() for p in ref.parameters())
    traced = counter.get_total_flops() // 2
    return [name, f"{source} `{name.removesuffix('_tv')}`", f"{c.params:,}", "=" if c.params == ref_params else
            f"{ref_params:,}", f"{c.macs / 1e9:.3f} G", "=" if c.macs == traced else f"{traced / 1e9:.3f} G",
            f"{diffs[0]:.1e}", f"{diffs[1]:.1e}", str(yaml_lines(name))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these specs")
    args = parser.parse_args()
    cases = [("torchvision", n) for n in TORCHVISION] + [("timm", n) for n in TIMM]
    cases = [(s, n) for s, n in cases if not args.names or n in args.names]
    head = ["spec", "reference", "params", "ref params", "MACs (224)", "traced", "max diff 224", "max diff 193x161",
            "YAML lines"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    worst = 0.0
    for source, name in cases:
        cells = row(source, name)
        worst = max(worst, float(cells[6]), float(cells[7]))
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nlargest output difference: {worst:.1e} (tests require <= 1e-5 x the output scale)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
