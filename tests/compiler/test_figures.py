"""The figures archspec must reproduce (REFERENCE.md): exact where torchvision publishes them, within 2% of the
paper's rounded Table 1, and the CIFAR parameter counts of Table 6."""

import pytest

import archspec

TORCHVISION = {  # params, published GFLOPS (conv+fc multiply-adds, v1.5 layout)
    18: (11_689_512, "1.814"), 34: (21_797_672, "3.664"), 50: (25_557_032, "4.089"),
    101: (44_549_160, "7.801"), 152: (60_192_808, "11.514"),
}
PAPER_GFLOPS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}
CIFAR = {3: "0.27M", 5: "0.46M", 7: "0.66M", 9: "0.85M", 18: "1.7M", 200: "19.4M"}


@pytest.mark.parametrize("depth", sorted(TORCHVISION))
def test_torchvision_layout_params_and_macs_are_exact(depth):
    c = archspec.compile(f"resnet{depth}_tv")
    params, gflops = TORCHVISION[depth]
    assert c.params == params
    assert f"{c.macs / 1e9:.3f}" == gflops  # to the last published digit
    assert c.depth == depth


@pytest.mark.parametrize("depth", sorted(PAPER_GFLOPS))
def test_paper_layout_macs_within_two_percent_of_table1(depth):
    c = archspec.compile(f"resnet{depth}")
    assert abs(c.macs / 1e9 - PAPER_GFLOPS[depth]) / PAPER_GFLOPS[depth] < 0.02
    assert c.params == TORCHVISION[depth][0]  # same parameter shapes as torchvision: only strides move
    assert c.depth == depth


def test_paper_and_torchvision_layouts_differ_only_for_bottlenecks():
    assert archspec.compile("resnet18").macs == archspec.compile("resnet18_tv").macs
    assert archspec.compile("resnet50").macs < archspec.compile("resnet50_tv").macs


def _paper_round(params: int) -> str:
    m = params / 1e6
    return f"{m:.2f}M" if m < 1 else f"{m:.1f}M"


@pytest.mark.parametrize("n", sorted(CIFAR))
def test_cifar_family_matches_table6(n):
    res = archspec.compile("cifar_resnet", n=n)
    plain = archspec.compile("cifar_plain", n=n)
    assert _paper_round(res.params) == CIFAR[n]
    assert res.depth == plain.depth == 6 * n + 2
    assert plain.params == res.params  # option A adds no parameters
    assert res.name == f"cifar_resnet{6 * n + 2}"
    assert res.output_shape == (10,)


@pytest.mark.parametrize("option,extra_convs", [("a", 0), ("b", 3), ("c", 16)])
def test_resnet34_shortcut_options(option, extra_convs):
    c = archspec.compile(f"resnet34_{option}")
    projections = [n.name for n in c.graph.nodes_in_order() if n.op == "conv" and ".downsample." in n.name]
    assert len(projections) == extra_convs
    base = archspec.compile("resnet34_a")
    assert (c.params > base.params) == (extra_convs > 0)
    assert c.depth == 34


def test_counting_conventions_are_consistent():
    conv = archspec.compile("resnet50_tv")
    everything = archspec.compile("resnet50_tv", count="all")
    flops = archspec.compile("resnet50_tv", unit="flops")
    assert everything.total() == conv.macs + conv.extra > conv.macs
    assert archspec.compile("resnet50_tv", count="all", unit="flops").total() == 2 * conv.macs + sum(
        conv.facts(n).extra_flops for n in conv.graph)
    assert flops.total() == 2 * conv.macs
    assert conv.buffers == sum(2 * conv.shape(n.name)[0] + 1 for n in conv.graph.nodes_in_order() if n.op == "bn")


def test_stage_table_matches_table1_layout():
    c = archspec.compile("resnet50")
    rows = [(s.name, s.output, s.blocks) for s in c.stages()]
    assert rows == [("conv1", (64, 112, 112), 0), ("conv2_x", (256, 56, 56), 3), ("conv3_x", (512, 28, 28), 4),
                    ("conv4_x", (1024, 14, 14), 6), ("conv5_x", (2048, 7, 7), 3), ("head", (1000,), 0)]
    assert sum(s.params for s in c.stages()) == c.params
    assert sum(s.macs for s in c.stages()) == c.macs
