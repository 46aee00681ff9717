"""Pre-activation ResNets and Wide ResNets for CIFAR: the depths and parameter counts their papers publish.

He et al. 2016 ("Identity Mappings", Table 3 and section 4) and Zagoruyko and Komodakis 2016 (Table 3) count the
weights of conv and linear layers; BN's scale and shift are left out (ResNet-1001: 10.19 M without them, 10.33 M
with). Both figures are checked against a rounding to the 0.1 M the papers print.
"""

import pytest

import archspec

PUBLISHED = [  # spec, weighted depth, parameters in millions as published
    ("preact_resnet110", 110, 1.7),
    ("preact_resnet164", 164, 1.7),
    ("preact_resnet1001", 1001, 10.2),
    ("wrn28_10", None, 36.5),
]


def conv_and_linear_weights(c):
    return sum(c.facts(n).params for n in c.graph.nodes if c.graph.node(n).op in ("conv", "linear"))


@pytest.mark.parametrize("name, depth, millions", PUBLISHED)
def test_published_depth_and_parameters(name, depth, millions):
    c = archspec.compile(name)
    assert round(conv_and_linear_weights(c) / 1e6, 1) == millions
    if depth is not None:
        assert c.depth == depth
    assert c.output_shape == (10,)


def test_pre_activation_means_bn_and_relu_before_every_conv_and_nothing_after_the_add():
    g = archspec.compile("preact_resnet164").graph
    for node in g.nodes_in_order():
        name = node.name
        if node.op == "conv" and name != "conv1" and not name.endswith(".downsample.conv"):
            (producer,) = node.inputs
            assert g.node(producer).op == "relu", name
        if node.op == "add":
            readers = [v for v in g.successors(name)]
            assert all(g.node(r).op in ("bn", "add", "identity") or ".downsample" in r for r in readers), name


def test_wide_resnet_family_follows_its_params():
    c = archspec.compile("wrn", depth=16, widen=8)
    assert c.name == "wrn16_8"
    assert [s.output[0] for s in c.stages() if s.name.startswith("conv") and s.name != "conv1"] == [128, 256, 512]
    with pytest.raises(archspec.SpecError):
        archspec.compile("wrn", depth=27)


def test_wide_resnet_dropout_sits_between_the_convs():
    c = archspec.compile("wrn28_10", dropout=0.3)
    drops = [n for n in c.graph.nodes if c.graph.node(n).op == "dropout"]
    assert len(drops) == 12 and all(c.graph.node(n).attrs["p"] == 0.3 for n in drops)
    assert not [n for n in archspec.compile("wrn28_10").graph.nodes if n.endswith(".drop")]
