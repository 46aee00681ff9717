"""`blur_pool` (the anti-aliased downsampling of timm's resnetblur models) end to end: validation, its shape rule
at even and odd sizes against what torch computes, the refusals (a pad mode torch lacks, a kernel out of range, a
reflection wider than the input) at the spec's line, counts (a depthwise conv: k*k MACs per output element, the
filter as buffers, no parameters, no state_dict keys), diagrams, `archspec ops`, and its numbers against a blur
written out here as weighted sums of shifted slices."""

import textwrap

import pytest
import torch
import torch.nn.functional as F

import archspec
from archspec.lang.diagnostics import SpecError
from archspec.lang.ops import ShapeError, node_shape

NET = """\
archspec: 1
name: blur
input: [3, SIZE]
network:
  - conv: {op: conv, out: 16, kernel: 3, pad: 1}
  - aa: {op: blur_pool ATTRS}
  - relu: {op: relu}
  - pool: {op: global_avgpool}
  - flat: {op: flatten}
  - fc: {op: linear, out: 10}
"""

BINOMIAL = {2: [1, 1], 3: [1, 2, 1], 4: [1, 3, 3, 1], 5: [1, 4, 6, 4, 1], 6: [1, 5, 10, 10, 5, 1],
            7: [1, 6, 15, 20, 15, 6, 1]}


def write(tmp_path, attrs="", size="9, 9"):
    path = tmp_path / "blur.yaml"
    path.write_text(textwrap.dedent(NET.replace("SIZE", size).replace(" ATTRS", attrs)), encoding="utf-8")
    return path


def reference_blur(x, kernel=3, stride=2, mode="reflect"):
    """The blur written out: pad every side by ((stride - 1) + (kernel - 1)) // 2, then for each output position
    the weighted sum of the k x k window, weights the outer product of the binomial row divided by its sum."""
    row = torch.tensor(BINOMIAL[kernel], dtype=torch.float64)
    row = row / row.sum()
    p = (stride - 1 + kernel - 1) // 2
    padded = F.pad(x.double(), (p, p, p, p), mode="constant" if mode == "zeros" else mode)
    h, w = padded.shape[-2:]
    ho, wo = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    out = torch.zeros(*x.shape[:2], ho, wo, dtype=torch.float64)
    for i in range(kernel):
        for j in range(kernel):
            window = padded[..., i: i + stride * (ho - 1) + 1: stride, j: j + stride * (wo - 1) + 1: stride]
            out += row[i] * row[j] * window
    return out


def test_blur_pool_validates_compiles_and_counts(tmp_path):
    path = write(tmp_path)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    f = c.facts("aa")
    assert f.shape == (16, 5, 5)  # 9 + 2 - 3 = 8, // 2 + 1
    assert f.params == 0 and f.buffers == 16 * 9  # the filter, one 3x3 copy per channel (non-persistent)
    assert f.macs == 16 * 5 * 5 * 9 and f.extra == 0  # a depthwise 3x3 conv
    assert c.buffers == 16 * 9 and c.depth == 2  # not weighted: conv and fc only
    model = archspec.build(path)
    assert sum(b.numel() for b in model.buffers()) == c.buffers
    assert sum(p.numel() for p in model.parameters()) == c.params
    assert not [k for k in model.state_dict() if k.startswith("aa")]  # nothing to save or load


@pytest.mark.parametrize("kernel", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_the_shape_rule_is_what_torch_computes_at_even_and_odd_sizes(kernel, stride):
    for mode in ("reflect", "replicate", "circular", "constant"):
        attrs = {"kernel": kernel, "stride": stride, "pad_mode": mode}
        for h in range(1, 12):
            for w in (h, h + 1):
                try:
                    expected = reference_blur(torch.zeros(1, 1, h, w), kernel, stride, mode).shape[2:]
                except RuntimeError:  # torch refuses the padding for this size
                    expected = None
                if expected is None or 0 in expected:
                    with pytest.raises(ShapeError):
                        node_shape("blur_pool", attrs, [(2, h, w)], ["x"])
                else:
                    assert node_shape("blur_pool", attrs, [(2, h, w)], ["x"]) == (2, *expected), (attrs, h, w)


def test_a_pad_mode_torch_lacks_and_a_kernel_out_of_range_are_refused_at_the_line(tmp_path):
    (d,) = archspec.validate(write(tmp_path, ", pad_mode: mirror")).diagnostics
    assert d.code == "E103" and d.loc.line == 6 and "mirror" in d.message and '"reflect"' in d.message
    (d,) = archspec.validate(write(tmp_path, ", kernel: 9")).diagnostics
    assert d.code == "E104" and d.loc.line == 6 and "at most 7" in d.message


def test_reflection_wider_than_the_input_is_refused_at_the_line_with_a_way_out(tmp_path):
    with pytest.raises(SpecError) as e:
        archspec.compile(write(tmp_path, ", kernel: 5", size="2, 8"))  # padding 2 on a 2-row input
    (d,) = e.value.diagnostics
    assert d.code == "E401" and d.loc.line == 6
    assert "reflect padding of 2" in d.message and "2x8" in d.message and "pad_mode: replicate" in d.hint
    assert archspec.compile(write(tmp_path, ", kernel: 5, pad_mode: replicate", size="2, 8")).facts("aa").shape \
        == (16, 1, 4)


@pytest.mark.parametrize("attrs, kernel, stride, mode", [
    ("", 3, 2, "reflect"), (", kernel: 5", 5, 2, "reflect"), (", kernel: 4, stride: 1", 4, 1, "reflect"),
    (", pad_mode: zeros", 3, 2, "zeros"), (", pad_mode: constant, kernel: 2", 2, 2, "constant"),
    (", pad_mode: replicate, kernel: 7", 7, 2, "replicate"), (", pad_mode: circular, stride: 3", 3, 3, "circular"),
])
def test_blur_pool_computes_the_binomial_blur(tmp_path, attrs, kernel, stride, mode):
    model = archspec.build(write(tmp_path, attrs)).eval()
    aa = model.get_submodule("aa")
    for size in [(8, 8), (9, 9), (7, 10)]:
        x = torch.randn(2, 16, *size)
        expected = reference_blur(x, kernel, stride, mode)
        got = aa(x)
        assert got.shape == expected.shape
        assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-6), size
    assert archspec.compile(write(tmp_path, attrs)).facts("aa").shape == tuple(model.aa(torch.zeros(1, 16, 9, 9))
                                                                              .shape[1:])


def test_the_filter_follows_the_module_and_the_relu_after_it_may_run_in_place(tmp_path, inplace_gradients_agree):
    model = archspec.build(write(tmp_path)).double()
    assert model.aa.filt.dtype == torch.float64  # a buffer: it moves and casts with the model
    inplace_gradients_agree(write(tmp_path), torch.randn(2, 3, 9, 9))


def test_blur_pool_in_diagrams_and_archspec_ops(cli, tmp_path):
    r = cli("render", write(tmp_path, ", pad_mode: zeros"), "-o", tmp_path / "b.dot", "--level", "layer", "--no-fold")
    assert r.code == 0, r.err
    assert "blur 3x3 /2 (zeros)" in (tmp_path / "b.dot").read_text()
    r = cli("ops", "blur_pool")
    assert r.code == 0 and "kernel" in r.out and "default reflect" in r.out and "replicate" in r.out
