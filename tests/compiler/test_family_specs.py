"""The ResNet family as data, in the main environment (no torchvision, no timm): every family spec goes through
`list`, `table`, `summary` and `render`, a few train a step; stochastic depth follows timm's linear rule on any
residual spec; stage widths, depths and the stem are params of the paper specs."""

import pytest

import archspec

FAMILY = ["resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
          "resnet50c", "resnet50d", "resnet50s", "resnet26d", "resnet101d", "seresnet50", "seresnext50_32x4d",
          "resnetv2_50", "preact_resnet110", "preact_resnet164", "preact_resnet1001", "wrn28_10"]


def test_list_shows_every_family_spec(cli):
    r = cli("list")
    assert r.code == 0
    assert set(FAMILY) <= {line.split()[0] for line in r.out.splitlines()}


@pytest.mark.parametrize("name", FAMILY)
def test_table_summary_and_render_work_on_every_family_spec(cli, name, tmp_path):
    c = archspec.compile(name)
    table = cli("table", name)
    assert table.code == 0 and f"{c.params / 1e6:.1f} M" in table.out
    # every stage row that repeats a block says how often, and the counts add up to the net's blocks
    rows = {s.name: s.blocks for s in c.stages()}
    assert sum(n for s, n in rows.items() if s.startswith("conv") and s != "conv1") == len(
        [n for n in c.graph.nodes if c.graph.node(n).op == "add"])
    summary = cli("summary", name, "--depth", "1")
    assert summary.code == 0 and f"{c.params:,}" in summary.out
    out = tmp_path / f"{name}.dot"
    render = cli("render", name, "-o", str(out), "--level", "stage")
    assert render.code == 0 and out.read_text().startswith("digraph")


@pytest.mark.parametrize("name, sets", [
    ("resnetv2_50", []), ("seresnet50", ["drop_path_rate=0.2"]),
    ("preact_resnet164", ["n=1", "drop_path_rate=0.5"]), ("wrn28_10", ["depth=10", "widen=1", "dropout=0.3"]),
])
def test_family_specs_train_a_step(cli, name, sets, tmp_path):
    args = ["train", name, "--dataset", "synthetic", "--iters", "2", "--batch-size", "4", "--eval-interval", "2",
            "--views", "1", "--quiet", "--device", "cpu", "--out", str(tmp_path / "run")]
    if not name.startswith(("preact", "wrn")):  # ImageNet nets on small synthetic images, without augmentation
        args += ["--input", "3x64x64", "--recipe", "augment=[]", "--recipe", "dataset.image_size=64",
                 "--recipe", "eval.crop=64", "--recipe", "eval.resize=64"]
    for s in sets:
        args += ["--set", s]
    r = cli(*args)
    assert r.code == 0, r.err
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count('"kind": "val"') == 1


def drop_probs(c):
    """Each residual block's drop-path probability, in order (0 where its drop_path is an identity)."""
    g = c.graph
    return [g.node(n).attrs["p"] if g.node(n).op == "drop_path" else 0.0
            for n in g.nodes if n.endswith(".drop_path")]


@pytest.mark.parametrize("name, sets, blocks", [
    ("resnet50", {}, 16), ("resnet18_tv", {}, 8), ("resnext50_32x4d", {}, 16), ("seresnet50", {}, 16),
    ("resnetv2_50", {}, 16), ("cifar_resnet", {"n": 3}, 9), ("preact_resnet", {"n": 2}, 6),
    ("wrn", {"depth": 16, "widen": 1}, 6),
])
def test_drop_path_rate_is_linear_in_depth_over_the_whole_net(name, sets, blocks):
    assert drop_probs(archspec.compile(name, **sets)) == [0.0] * blocks  # off by default: identities
    probs = drop_probs(archspec.compile(name, drop_path_rate=0.1, **sets))
    assert len(probs) == blocks
    assert probs == pytest.approx([0.1 * k / (blocks - 1) for k in range(blocks)])


def test_drop_path_sits_on_the_residual_branch_before_the_add():
    g = archspec.compile("seresnet50", drop_path_rate=0.1).graph
    for node in g.nodes_in_order():
        if node.op == "add":
            name, branch = node.name, node.inputs[0]
            assert branch.endswith(".drop_path"), name
            (before,) = g.node(branch).inputs
            assert before.endswith(".se.scale")  # timm's order: bn3, se, drop_path, add


def test_drop_path_rate_has_identical_counts_and_lowers_to_droppath_modules():
    plain, dropped = archspec.compile("resnet50"), archspec.compile("resnet50", drop_path_rate=0.1)
    assert (plain.params, plain.macs) == (dropped.params, dropped.macs)
    model = archspec.build("resnet50", drop_path_rate=0.1)
    ps = [m.p for n, m in model.named_modules() if type(m).__name__ == "DropPath"]
    assert len(ps) == 15 and ps[-1] == pytest.approx(0.1)
    assert not [n for n, m in archspec.build("resnet50").named_modules() if type(m).__name__ == "DropPath"]


@pytest.mark.parametrize("rate, fragment", [(1.0, "param `drop_path_rate` must be below 1, got 1.0"),
                                             (-0.1, "param `drop_path_rate` must be at least 0, got -0.1")])
def test_drop_path_rate_out_of_range_is_a_spec_error(rate, fragment):
    with pytest.raises(archspec.SpecError) as e:
        archspec.compile("resnet50", drop_path_rate=rate)
    assert fragment in str(e.value)


def test_drop_path_rate_on_a_plain_net_says_why(cli):
    r = cli("compile", "plain34", "--set", "drop_path_rate=0.1")
    assert r.code == 2
    assert "a plain block has no residual branch to drop" in r.err


def test_stage_widths_depths_and_stem_are_params_of_the_paper_specs():
    wide = archspec.compile("resnet50_tv", widths=[64 * 2, 128 * 2, 256 * 2, 512 * 2])
    assert wide.output_shape == (1000,)
    assert [s.output[0] for s in wide.stages() if s.name.startswith("conv") and s.name != "conv1"] == [
        512, 1024, 2048, 4096]
    deeper = archspec.compile("resnet50", depths=[3, 4, 23, 3])
    reference = archspec.compile("resnet101")
    assert (deeper.params, deeper.macs) == (reference.params, reference.macs)
    # the deep stem by a param: the torchvision ResNet-50 becomes timm's resnet50c (same graph, same counts)
    stem = archspec.compile("resnet50_tv", stem="deep")
    c = archspec.compile("resnet50c")
    assert (stem.params, stem.macs, sorted(stem.graph.nodes)) == (c.params, c.macs, sorted(c.graph.nodes))
    assert archspec.compile("resnet18", stem_width=32).graph.node("conv1").attrs["out"] == 32


def test_the_paper_table_still_reads_like_the_paper():
    from archspec.compiler.report import stage_descriptions

    rows = stage_descriptions(archspec.compile("resnet50"))
    assert rows["conv1"] == ["7x7, 64, stride 2"]
    assert rows["conv3_x"] == ["[1x1, 128; 3x3, 128; 1x1, 512] x 4"]
    v2 = stage_descriptions(archspec.compile("resnetv2_50"))
    assert v2["conv1"] == ["7x7, 64, stride 2", "3x3 max pool, stride 2"]
    assert v2["conv4_x"] == ["[1x1, 256; 3x3, 256; 1x1, 1024] x 6"]


def test_a_pre_activation_blocks_first_bn_is_drawn_in_its_block():
    from archspec.compiler.render import layer_picture

    boxes = layer_picture(archspec.compile("resnetv2_50")).boxes
    owner = {m: name for name, box in boxes.items() for m in box.members}
    assert owner["stem.pool"] == "stem.pool" and boxes["stem.pool"].members == ["stem.pool"]
    assert owner["stages.0.blocks.0.act1"] == "stages.0.blocks.0.norm1"
    deep = layer_picture(archspec.compile("resnet50d")).boxes
    assert "bn1" in deep["conv1.6"].members  # leaving a block still folds: the stem's last conv takes its BN


def test_table_gives_each_stage_size_of_every_column():
    from archspec.compiler.report import markdown_table

    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in markdown_table([archspec.compile("resnetv2_50"), archspec.compile("resnet50_tv")]).splitlines()}
    assert rows["conv1"] == "56x56 / 112x112" and rows["conv2_x"] == "56x56"


def test_drop_path_rate_refuses_stacks_that_do_not_know_their_place(tmp_path):
    spec = tmp_path / "mini.yaml"
    spec.write_text("archspec: 1\nname: mini\nimports: [archspec:lib/resnet.yaml]\ninput: [3, 32, 32]\n"
                    "network:\n  - conv1: {op: conv, out: 16, kernel: 3, pad: 1}\n"
                    "  - layer1: {use: stack, width: 16, blocks: 2}\n"
                    "  - layer2: {use: stack, width: 32, blocks: 2, stride: 2}\n")
    assert archspec.compile(spec).params > 0  # no stochastic depth: nothing to place
    with pytest.raises(archspec.SpecError, match="drop_path_rate needs each stack's place in the whole net"):
        archspec.compile(spec, drop_path_rate=0.2)
    spec.write_text(spec.read_text().replace("blocks: 2}", "blocks: 2, total: 4}").replace(
        "blocks: 2, stride: 2}", "blocks: 2, stride: 2, first: 2, total: 4}"))
    assert drop_probs(archspec.compile(spec, drop_path_rate=0.3)) == pytest.approx([0.0, 0.1, 0.2, 0.3])


@pytest.mark.parametrize("name, sets, fragment", [
    ("resnet50", {"widths": [64, 128]}, "4 entries each, got 2 and 4"),
    ("resnet18", {"depths": [2, 2, 2, 2, 2]}, "4 entries each, got 4 and 5"),
    ("cifar_resnet", {"widths": [16, 32]}, "3 entries, got 2"),
])
def test_stage_lists_of_the_wrong_length_say_so(name, sets, fragment):
    with pytest.raises(archspec.SpecError, match=fragment):
        archspec.compile(name, **sets)


def test_compile_and_table_name_the_set_values(cli):
    r = cli("compile", "resnet50", "--set", "depths=[3,4,23,3]")
    assert r.code == 0 and r.out.splitlines()[0] == "resnet50  (specs/resnet50.yaml; depths=[3, 4, 23, 3])"
    r = cli("table", "resnet50", "--set", "stem=deep")
    assert r.out.splitlines()[0] == "| stage | output size | resnet50 (stem=deep) |"
    assert "3x3, 32, stride 2" in r.out
