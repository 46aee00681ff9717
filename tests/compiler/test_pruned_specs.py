"""timm's pruned ECA-ResNets as data (specs/lib/pruned.yaml): each block takes its own widths from the spec's
`block_widths`, each stage its output width from `out_widths`; the stage table lists the blocks that differ, and
lists of the wrong shape are refused where they are given. (Parity with timm: tests/compiler/test_timm_zoo.py.)"""

from __future__ import annotations

import pytest

import archspec
from archspec.compiler.expand import expand
from archspec.compiler.report import stage_descriptions
from archspec.lang.diagnostics import SpecError
from archspec.lang.spec import load_spec

MODELS = ["timm/ecaresnet50d_pruned", "timm/ecaresnet101d_pruned"]


@pytest.mark.parametrize("name", MODELS)
def test_every_block_has_the_widths_its_spec_lists(name):
    c = archspec.compile(name)
    params = c.spec.params
    g = c.graph
    k = 0
    for stage, depth in enumerate(params["depths"]):
        for i in range(depth):
            mid, inner = params["block_widths"][k]
            prefix = f"layer{stage + 1}.{i}"
            assert g.node(f"{prefix}.conv1").attrs["out"] == mid
            assert g.node(f"{prefix}.conv2").attrs["out"] == inner
            assert g.node(f"{prefix}.conv3").attrs["out"] == params["out_widths"][stage]
            k += 1
    assert k == len(params["block_widths"])
    assert g.shape(g.node("fc").inputs[0]) == (params["out_widths"][-1],)


def test_the_eca_kernel_follows_the_unpruned_width():
    """timm remakes 2-D convs, norms and the classifier with pruned widths, not ECA's 1-D conv: its kernel is the
    one of the unpruned stage (4 x widths[at]: 256, 512, 1024, 2048 channels give 5, 5, 5, 7)."""
    g = archspec.compile(MODELS[0]).graph
    kernels = [g.node(f"layer{s}.0.se.conv").attrs["kernel"] for s in (1, 2, 3, 4)]
    unpruned = archspec.compile("timm/ecaresnet50d").graph
    assert kernels == [unpruned.node(f"layer{s}.0.se.conv").attrs["kernel"] for s in (1, 2, 3, 4)]
    assert g.shape("layer1.0.bn3")[0] < unpruned.shape("layer1.0.bn3")[0]  # the kernel is not the pruned width's


def test_the_stage_table_lists_blocks_that_differ_and_counts_alike_ones():
    c = archspec.compile(MODELS[0])
    lines = stage_descriptions(c)["conv2_x"]
    mid, inner = c.spec.params["block_widths"][0]
    assert f"[1x1, {mid}; 3x3, {inner}; 1x1, {c.spec.params['out_widths'][0]}] x 1" in lines
    assert sum(1 for line in lines if line.endswith("] x 1")) == c.spec.params["depths"][0]
    assert stage_descriptions(archspec.compile("timm/ecaresnet50d"))["conv2_x"][-1].endswith("] x 3")


@pytest.mark.parametrize("override, code, where", [
    ("out_widths=[19, 171, 818]", "E206", "--set out_widths"),
    ("out_widths=[19, 171, 0, 2022]", "E213", "--set out_widths"),
    ("attn=squeeze_excite", "E206", "--set attn"),
])
def test_lists_of_the_wrong_shape_are_refused_at_the_set(override, code, where):
    with pytest.raises(SpecError) as e:
        expand(load_spec(MODELS[0], [override]), check_shapes=True)
    d = e.value.diagnostics[0]
    assert (d.code, d.loc.file) == (code, where), str(e.value)
