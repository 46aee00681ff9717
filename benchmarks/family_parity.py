"""The ResNet family against its reference implementations, as a table: for every shipped spec with a torchvision
or timm counterpart (the torchvision-layout specs, the timm-named specs at the top level, and the whole timm zoo
in specs/timm/), its parameters and MACs beside the reference's (MACs traced with torch.utils.flop_counter), the
largest output difference after loading the reference's state_dict strictly (eval mode, randomised norm
statistics, at 224x224 and at an odd size), and the spec file's length in YAML lines; then the zoo's YAML lines
by family (model files, and the family specs and libraries they share).

Runs in the parity environment (torchvision 0.29.1 beside torch 2.14.1, timm installed with --no-deps):

    python benchmarks/family_parity.py                # Markdown table on stdout (the zoo's big models take minutes)
    python benchmarks/family_parity.py timm/resnet50d # only these specs
    python benchmarks/family_parity.py --lines        # only the YAML-lines table (no torch work)
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
from test_timm_zoo import ODD, _randomise_norms as randomise_statistics  # noqa: E402  (the tests' own)
TORCHVISION = ["resnet18_tv", "resnet34_tv", "resnet50_tv", "resnet101_tv", "resnet152_tv", "resnext50_32x4d",
               "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]
TIMM = ["resnet50c", "resnet50d", "resnet50s", "resnet26d", "resnet101d", "seresnet50", "seresnext50_32x4d",
        "resnetv2_50"]
ZOO = sorted(f"timm/{p.stem}" for p in (ROOT / "specs" / "timm").glob("*.yaml"))
FAMILIES = {"res2n": "res2net", "resnest": "resnest", "skres": "sknet", "resnetv2": "resnetv2"}


def family(name: str) -> str:
    """timm's module of a zoo model (resnet, resnetv2, res2net, resnest, sknet)."""
    stem = name.removeprefix("timm/")
    return next((f for prefix, f in FAMILIES.items() if stem.startswith(prefix)), "resnet")


def reference(source: str, name: str) -> torch.nn.Module:
    if source == "timm":
        import timm

        return timm.create_model(name.removeprefix("timm/"), pretrained=False)
    import torchvision

    return getattr(torchvision.models, name.removesuffix("_tv"))()


def yaml_lines(name: str) -> int:
    """Lines of the spec file that are neither blank nor comments."""
    return file_lines(ROOT / "specs" / f"{name}.yaml")


def file_lines(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def lines_by_family() -> list[str]:
    """The zoo's YAML, by timm module: models, lines of their own files, and the shared files they build on."""
    shared = {"resnet": ["timm/family/resnet.yaml", "lib/resnet.yaml", "timm/family/resnet_pruned.yaml",
                         "lib/pruned.yaml"],
              "resnetv2": ["timm/family/resnetv2.yaml", "lib/preact.yaml"],
              "res2net": ["lib/res2net.yaml"], "resnest": ["lib/resnest.yaml"], "sknet": ["lib/sknet.yaml"]}
    out = ["| family | models | their YAML lines (mean) | shared family spec and libraries (lines) |",
           "|---|---|---|---|"]
    for fam, files in shared.items():
        names = [n for n in ZOO if family(n) == fam]
        if not names:
            continue
        own = sum(yaml_lines(n) for n in names)
        libs = ", ".join(f"{f} ({file_lines(ROOT / 'specs' / f)})" for f in files if (ROOT / "specs" / f).is_file())
        out.append(f"| {fam} | {len(names)} | {own} ({own / len(names):.1f}) | {libs} |")
    total = sum(yaml_lines(n) for n in ZOO)
    out.append(f"| all | {len(ZOO)} | {total} ({total / max(len(ZOO), 1):.1f}) | |")
    return out


def row(source: str, name: str) -> list[str]:
    torch.manual_seed(0)
    ref = reference(source, name).eval()
    randomise_statistics(ref, 1)
    ours = archspec.build(name).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    diffs = []
    for shape in [(1, 3, 224, 224), ODD]:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))
        with torch.no_grad():
            diffs.append((ours(x) - ref(x)).abs().max().item())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        ref(torch.zeros(1, 3, 224, 224))
    c = ours.archspec
    ref_params = sum(p.numel() for p in ref.parameters())
    traced = counter.get_total_flops() // 2
    return [name, f"{source} `{name.removesuffix('_tv').removeprefix('timm/')}`", f"{c.params:,}", "=" if c.params == ref_params else
            f"{ref_params:,}", f"{c.macs / 1e9:.3f} G", "=" if c.macs == traced else f"{traced / 1e9:.3f} G",
            f"{diffs[0]:.1e}", f"{diffs[1]:.1e}", str(yaml_lines(name))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only these specs")
    parser.add_argument("--lines", action="store_true", help="only the zoo's YAML lines by family")
    args = parser.parse_args()
    if args.lines:
        print("\n".join(lines_by_family()))
        return 0
    cases = [("torchvision", n) for n in TORCHVISION] + [("timm", n) for n in TIMM + ZOO]
    cases = [(s, n) for s, n in cases if not args.names or n in args.names]
    head = ["spec", "reference", "params", "ref params", "MACs (224)", "traced", "max diff 224",
            f"max diff {ODD[2]}x{ODD[3]}", "YAML lines"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    worst = 0.0
    for source, name in cases:
        cells = row(source, name)
        worst = max(worst, float(cells[6]), float(cells[7]))
        print("| " + " | ".join(cells) + " |", flush=True)
    print(f"\nlargest output difference: {worst:.1e} (the zoo's test requires <= 1e-4 x the output scale)\n")
    print("\n".join(lines_by_family()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
