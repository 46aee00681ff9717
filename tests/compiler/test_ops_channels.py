"""The channel-level ops end to end: `channel_conv` (ECA's 1-D conv across channels), `slice` (a range of channels),
`branch_softmax` (ResNeSt's radix softmax, SK's softmax across paths) and `branch_sum` (the sum of equal chunks of
the channels): validation, shapes and their diagnostics at the spec's line, counts, diagrams, `archspec ops`, and
lowering, checked against plain torch written here (timm parity: test_ops_channels_timm.py and the zoo's ResNeSt
and SKNet models in test_timm_zoo.py)."""

import textwrap

import pytest
import torch
import torch.nn.functional as F

import archspec
from archspec.compiler.analysis import Convention
from archspec.lang.diagnostics import SpecError
from archspec.lang.ops import OPS

# a split-attention block (radix 2) with an ECA gate: every op of the family, at known lines
NET = """\
archspec: 1
name: channels
input: [8, 6, 6]
network:
  - conv: {op: conv, out: 32, kernel: 3, pad: 1}
  - relu: {op: relu}
  - r0: {op: slice, size: 16}
  - r1: {op: slice, in: relu, start: 16, size: 16}
  - gap: {op: add, in: [r0, r1]}
  - pool: {op: global_avgpool}
  - eca: {op: channel_conv, kernel: KERNEL}
  - fc: {op: conv, out: 32, kernel: 1, bias: true}
  - attn: {op: branch_softmax, branches: BRANCHES, groups: GROUPS}
  - a0: {op: slice, size: 16}
  - a1: {op: slice, in: attn, start: 16, size: 16}
  - m0: {op: mul, in: [r0, a0]}
  - m1: {op: mul, in: [r1, a1]}
  - out: {op: add, in: [m0, m1]}
"""


def write(tmp_path, text=NET, kernel=3, branches=2, groups=1, **edits):
    text = text.replace("KERNEL", str(kernel)).replace("BRANCHES", str(branches)).replace("GROUPS", str(groups))
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "channels.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused(path):
    with pytest.raises(SpecError) as e:
        archspec.compile(path)
    (d,) = e.value.diagnostics
    return d


def test_the_family_validates_compiles_and_counts(tmp_path):
    path = write(tmp_path)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    assert [c.facts(n).shape for n in ("r0", "r1", "gap", "eca", "attn", "a1", "out")] == [
        (16, 6, 6), (16, 6, 6), (16, 6, 6), (16, 1, 1), (32, 1, 1), (16, 1, 1), (16, 6, 6)]
    eca = c.facts("eca")
    assert eca.params == 3 and eca.buffers == 0 and eca.macs == 3 * 16 and eca.extra == 0
    assert OPS["channel_conv"].counts({"kernel": 5, "bias": True}, [(64, 7, 7)], (64, 7, 7)).params == 6
    assert OPS["channel_conv"].counts({"kernel": 5, "bias": True}, [(64, 7, 7)], (64, 7, 7)).macs == 5 * 64 * 7 * 7
    for name in ("r0", "r1", "a0", "a1"):  # views: nothing to count, no memory of their own
        f = c.facts(name)
        assert (f.params, f.macs, f.extra, f.extra_flops, f.activation_elements) == (0, 0, 0, 0, 0)
    attn = c.facts("attn")
    assert attn.params == 0 and attn.macs == 0 and attn.extra == attn.extra_flops == 32  # 1 op per element
    assert archspec.compile(path).total(["attn"]) == 0  # not by default
    assert c.total(["eca"], Convention(count="conv", unit="flops")) == 2 * 3 * 16
    assert c.depth == 3  # conv, eca and fc: a 1-D conv counts towards depth like SE's 1x1 convs
    assert c.params == 8 * 9 * 32 + 3 + 16 * 32 + 32


def test_ops_are_structural_and_slice_is_a_view():
    names = ("channel_conv", "slice", "branch_softmax", "branch_sum")
    assert [OPS[n].structural for n in names] == [True, True, True, True]
    assert [OPS[n].view for n in names] == [False, True, False, False]
    assert [OPS[n].weighted for n in names] == [True, False, False, False]
    assert not OPS["branch_sum"].residual  # a sum of chunks of one input, not a shortcut's merge


@pytest.mark.parametrize("kernel", [2, 4])
def test_an_even_kernel_is_refused_at_its_line(tmp_path, kernel):
    d = refused(write(tmp_path, kernel=kernel))
    assert d.code == "E314" and d.loc.line == 11
    assert f"odd kernel to keep the channels, got {kernel}" in d.message
    assert f"`kernel: {kernel - 1}`" in d.hint and f"`kernel: {kernel + 1}`" in d.hint


def test_a_slice_past_the_channels_is_refused_with_the_channels_there_are(tmp_path):
    d = refused(write(tmp_path, **{"start: 16, size: 16}\n  - gap": "start: 20, size: 16}\n  - gap"}))
    assert d.code == "E401" and d.loc.line == 8
    assert "channels 20:36 runs past the 32 channels" in d.message
    assert "the input has 32 channels" in d.hint and "`size: 12`" in d.hint
    d = refused(write(tmp_path, **{"start: 16, size: 16}\n  - gap": "start: 40, size: 16}\n  - gap"}))
    assert d.loc.line == 8 and "`start: 16`" in d.hint  # a start beyond the channels: move the start


def test_a_slice_needs_its_size(tmp_path):
    (d,) = archspec.validate(write(tmp_path, **{"r0: {op: slice, size: 16}": "r0: {op: slice}"})).diagnostics
    assert d.code == "E313" and d.loc.line == 7 and "`size`" in d.message


@pytest.mark.parametrize("branches, groups, multiple", [(3, 1, 3), (2, 3, 6), (5, 2, 10)])
def test_branches_and_groups_that_do_not_divide_the_channels_are_refused(tmp_path, branches, groups, multiple):
    d = refused(write(tmp_path, branches=branches, groups=groups))
    assert d.code == "E401" and d.loc.line == 13
    assert f"32 channels do not split into {branches} branches x {groups} groups" in d.message
    up = -(-32 // multiple) * multiple
    assert f"a multiple of {multiple} channels" in d.hint and f"e.g. {up}" in d.hint


def test_a_vector_input_is_refused(tmp_path):
    text = NET.replace("  - eca:", "  - flat: {op: flatten}\n  - eca:")
    d = refused(write(tmp_path, text))
    assert d.code == "E401" and "channel_conv expects a C x H x W feature map" in d.message


def test_labels_in_diagrams_and_archspec_ops(cli, tmp_path):
    r = cli("render", write(tmp_path, groups=2), "-o", tmp_path / "c.dot", "--level", "layer", "--no-fold")
    assert r.code == 0, r.err
    dot = (tmp_path / "c.dot").read_text()
    assert "conv1d k3" in dot and "channels 0:16" in dot and "channels 16:32" in dot
    assert "softmax over 2 branches, 2 groups" in dot
    assert OPS["branch_softmax"].text({"branches": 1, "groups": 1}) == "sigmoid (1 branch)"
    r = cli("ops", "channel_conv")
    assert r.code == 0 and r.out.startswith("channel_conv: 1-D convolution across the channels")
    assert "counts towards depth" in r.out
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == ["kernel", "bias"]  # no `pad`: it keeps C
    r = cli("ops", "slice")
    assert r.code == 0 and "start              int >= 0               default 0" in r.out
    assert "size               int >= 1               required" in r.out
    r = cli("ops", "branch_softmax")
    assert r.code == 0 and "branches           int >= 1               required" in r.out
    assert "groups             int >= 1               default 1" in r.out


# -- lowering, against plain torch -------------------------------------------------------------------------------

def channel_conv_reference(x, weight, bias=None):
    """Output channel c at each position: sum over j of w[j] * x[c + j - p], zero outside the channels."""
    k = weight.numel()
    p = (k - 1) // 2
    padded = F.pad(x, (0, 0, 0, 0, p, p))
    out = sum(weight.flatten()[j] * padded[:, j:j + x.shape[1]] for j in range(k))
    return out + bias if bias is not None else out


def branch_softmax_reference(x, branches, groups):
    """Input channel g*R*C' + r*C' + c, softmax over r, to output channel r*G*C' + g*C' + c (by loops)."""
    if branches == 1:
        return torch.sigmoid(x)
    width = x.shape[1] // (branches * groups)
    out = torch.empty_like(x)
    for g in range(groups):
        for c in range(width):
            picked = [g * branches * width + r * width + c for r in range(branches)]
            e = torch.exp(x[:, picked])
            for r in range(branches):
                out[:, r * groups * width + g * width + c] = e[:, r] / e.sum(1)
    return out


@pytest.mark.parametrize("kernel, bias, shape", [(3, False, (64, 1, 1)), (5, True, (12, 3, 4)), (1, False, (7, 2, 2)),
                                                  (9, False, (4, 1, 1))])
def test_channel_conv_is_a_conv1d_along_the_channels(kernel, bias, shape):
    from archspec.compiler.ops import lowering_of

    module = lowering_of("channel_conv").module({"kernel": kernel, "bias": bias}, shape)
    assert isinstance(module, torch.nn.Conv1d)
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == (
        {"weight": (1, 1, kernel), "bias": (1,)} if bias else {"weight": (1, 1, kernel)})
    torch.nn.init.normal_(module.weight)
    x = torch.randn(2, *shape)
    y = module(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, channel_conv_reference(x, module.weight.detach(), module.bias), rtol=1e-5,
                               atol=1e-6)
    if shape[1:] == (1, 1):  # ECA's own arithmetic: the pooled vector as one 1-channel sequence
        eca = F.conv1d(x.view(2, 1, -1), module.weight, module.bias, padding=(kernel - 1) // 2).view(2, -1, 1, 1)
        torch.testing.assert_close(y, eca)


@pytest.mark.parametrize("branches, groups, shape", [(2, 1, (8, 1, 1)), (4, 2, (24, 1, 1)), (2, 3, (12, 2, 3)),
                                                     (1, 1, (5, 1, 1)), (3, 1, (9, 2, 2))])
def test_branch_softmax_permutes_groups_major_to_branch_major(branches, groups, shape):
    from archspec.compiler.ops import lowering_of

    module = lowering_of("branch_softmax").module({"branches": branches, "groups": groups}, shape)
    assert not list(module.parameters()) and not list(module.buffers())
    x = torch.randn(3, *shape)
    y = module(x)
    torch.testing.assert_close(y, branch_softmax_reference(x, branches, groups))
    if branches > 1:  # the weights of each (group, channel) across the branches sum to 1
        per_branch = y.unflatten(1, (branches, -1)).sum(1)
        torch.testing.assert_close(per_branch, torch.ones_like(per_branch))


def test_the_built_network_computes_what_torch_does(tmp_path, inplace_gradients_agree):
    path = write(tmp_path, groups=2)
    x = torch.randn(2, 8, 6, 6)
    model, _ = inplace_gradients_agree(path, x)  # slices of a ReLU run in place: autograd still agrees
    model.eval()
    assert "torch.narrow(relu, 1, 0, 16)" in model.code and "torch.narrow(relu, 1, 16, 16)" in model.code
    assert sum(p.numel() for p in model.parameters()) == archspec.compile(path).params
    assert set(model.state_dict()) == {"conv.weight", "eca.weight", "fc.weight", "fc.bias"}
    torch.nn.init.normal_(model.eca.weight)
    with torch.no_grad():
        h = torch.relu(F.conv2d(x, model.conv.weight, padding=1))
        r0, r1 = h[:, :16], h[:, 16:]
        s = channel_conv_reference((r0 + r1).mean((2, 3), keepdim=True), model.eca.weight)
        a = branch_softmax_reference(F.conv2d(s, model.fc.weight, model.fc.bias), 2, 2)
        expected = r0 * a[:, :16] + r1 * a[:, 16:]
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


RESIDUAL = """\
archspec: 1
name: eca_res
input: [16, 8, 8]
blocks:
  eca_basic:                # the ops directly in a residual block's body, which Table 1 describes
    body:
      - conv1: {op: conv, out: 32, kernel: 3, pad: 1}
      - mid: {op: slice, start: 8, size: 16}
      - pool: {op: global_avgpool}
      - eca: {op: channel_conv, kernel: 3}
      - attn: {op: branch_softmax, branches: 2}
      - scale: {op: mul, in: [mid, attn]}
      - add: {op: add, in: [scale, input]}
network:
  - layer1: {use: eca_basic, repeat: 2, stage: conv2_x}
"""


def test_table_1_describes_a_block_holding_the_ops(cli, tmp_path):
    r = cli("table", write(tmp_path, RESIDUAL))
    assert r.code == 0, r.err
    assert "| [3x3, 32] x 1" in r.out  # the block by its 2-D conv; the 1-D conv is not read as one


# -- branch_sum: timm's SplitAttn (radix BRANCHES, cardinality GROUPS) as one fixed list of items, whatever the radix

SPLAT = """\
archspec: 1
name: splat
input: [8, 6, 6]
network:
  - conv: {op: conv, out: =16 * BRANCHES, kernel: 3, pad: 1, groups: =GROUPS * BRANCHES}
  - act0: {op: relu}
  - gap: {op: branch_sum, branches: BRANCHES}
  - pool: {op: global_avgpool}
  - fc1: {op: conv, out: 8, kernel: 1, groups: GROUPS, bias: true}
  - act1: {op: relu}
  - fc2: {op: conv, out: =16 * BRANCHES, kernel: 1, groups: GROUPS, bias: true}
  - rsoftmax: {op: branch_softmax, branches: BRANCHES, groups: GROUPS}
  - scale: {op: mul, in: [act0, rsoftmax]}
  - merged: {op: branch_sum, branches: BRANCHES}
"""


@pytest.mark.parametrize("branches", [1, 2, 4])
def test_branch_sum_gives_a_chunk_of_the_channels_and_counts_as_add(tmp_path, branches):
    path = write(tmp_path, SPLAT, branches=branches)
    assert archspec.validate(path).ok
    c = archspec.compile(path, count="all")
    assert c.facts("act0").shape == (16 * branches, 6, 6) and c.facts("rsoftmax").shape == (16 * branches, 1, 1)
    assert c.facts("gap").shape == c.facts("merged").shape == (16, 6, 6)
    for name in ("gap", "merged"):  # branches - 1 ops per output element, as an add of that many inputs
        f = c.facts(name)
        assert (f.params, f.buffers, f.macs) == (0, 0, 0)
        assert f.extra == f.extra_flops == (branches - 1) * 16 * 6 * 6
        assert f.activation_elements == 16 * 6 * 6  # a new tensor, not a view
    assert archspec.compile(path).total(["gap", "merged"]) == 0  # not by default
    assert OPS["branch_sum"].counts({"branches": 3}, [(96, 7, 7)], (32, 7, 7)).extra == 2 * 32 * 7 * 7
    assert c.depth == 3  # conv, fc1, fc2


@pytest.mark.parametrize("branches, channels, up", [(3, 32, 33), (5, 32, 35), (6, 64, 66)])
def test_branches_that_do_not_divide_the_channels_are_refused_at_the_line(tmp_path, branches, channels, up):
    text = SPLAT.replace("gap: {op: branch_sum, branches: BRANCHES}", f"gap: {{op: branch_sum, branches: {branches}}}")
    d = refused(write(tmp_path, text, branches=channels // 16))
    assert d.code == "E401" and d.loc.line == 7
    assert f"branch_sum: {channels} channels do not split into {branches} equal branches" in d.message
    assert f"a multiple of {branches} channels, e.g. {up}" in d.hint and "`branches`" in d.hint


def test_branch_sum_of_a_vector_is_refused(tmp_path):
    text = SPLAT.replace("  - pool: {op: global_avgpool}", "  - pool: {op: global_avgpool}\n  - flat: {op: flatten}")
    text = text.replace("  - fc1:", "  - s: {op: branch_sum, branches: 2}\n  - fc1:")
    d = refused(write(tmp_path, text, branches=2))
    assert d.code == "E401" and d.loc.line == 10 and "branch_sum expects a C x H x W feature map" in d.message


def test_branch_sum_labels_and_archspec_ops(cli, tmp_path):
    r = cli("render", write(tmp_path, SPLAT, branches=4), "-o", tmp_path / "s.dot", "--level", "layer", "--no-fold")
    assert r.code == 0, r.err
    assert "sum of 4 branches" in (tmp_path / "s.dot").read_text()
    assert OPS["branch_sum"].text({"branches": 1}) == "identity (1 branch)"
    r = cli("ops", "branch_sum")
    assert r.code == 0 and r.out.startswith("branch_sum: the sum of `branches` equal contiguous chunks")
    assert "branches           int >= 1               required" in r.out
    assert [line.split()[0] for line in r.out.splitlines()[1:]] == ["branches"]


def branch_sum_reference(x, branches):
    """Output channel c: the sum over r of input channel r * C + c (by loops)."""
    width = x.shape[1] // branches
    return sum(x[:, r * width:(r + 1) * width] for r in range(branches))


@pytest.mark.parametrize("branches, groups", [(1, 1), (1, 4), (2, 1), (2, 2), (4, 2)])
def test_split_attention_of_any_radix_computes_what_torch_does(tmp_path, inplace_gradients_agree, branches, groups):
    path = write(tmp_path, SPLAT, branches=branches, groups=groups)
    x = torch.randn(2, 8, 6, 6)
    model, _ = inplace_gradients_agree(path, x)  # act0 has two readers; for 1 branch gap and merged are aliases
    model.eval()
    assert ("unflatten" in model.code) == (branches > 1)  # 1 branch: the op is its input, nothing in the forward
    assert sum(p.numel() for p in model.parameters()) == archspec.compile(path).params
    for m in (model.fc1, model.fc2):
        torch.nn.init.normal_(m.weight), torch.nn.init.normal_(m.bias)
    with torch.no_grad():
        h = torch.relu(F.conv2d(x, model.conv.weight, padding=1, groups=groups * branches))
        s = branch_sum_reference(h, branches).mean((2, 3), keepdim=True)
        s = F.conv2d(torch.relu(F.conv2d(s, model.fc1.weight, model.fc1.bias, groups=groups)), model.fc2.weight,
                     model.fc2.bias, groups=groups)
        a = branch_softmax_reference(s, branches, groups)
        expected = sum(h[:, r * 16:(r + 1) * 16] * a[:, r * 16:(r + 1) * 16] for r in range(branches))
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


def test_branch_sum_lowers_to_a_sum_over_the_chunks():
    from archspec.compiler.ops import lowering_of

    lowering = lowering_of("branch_sum")
    assert lowering.module is None and not lowering.overwritable  # 1 branch aliases its input: never overwritten
    x = torch.randn(3, 12, 2, 5)
    for branches in (1, 2, 3, 4, 6, 12):
        graph = torch.fx.Graph()
        node = lowering.function(graph, {"branches": branches}, [graph.placeholder("x")], False)
        graph.output(node)
        y = torch.fx.GraphModule(torch.nn.Module(), graph)(x)
        assert y.shape == (3, 12 // branches, 2, 5)
        torch.testing.assert_close(y, branch_sum_reference(x, branches))
