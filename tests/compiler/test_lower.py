"""Lowering: the module's names, initialisation, counts and every intermediate shape agree with the compiler,
and it computes what hand-written PyTorch ResNets compute."""

import copy
import importlib.util
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch.fx.passes.shape_prop import ShapeProp  # noqa: E402

import archspec  # noqa: E402
from archspec.compiler.analysis import compile_spec  # noqa: E402
from archspec.compiler.lower import SubsamplePad, lower  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))


def reference_models():
    spec = importlib.util.spec_from_file_location("reference_models", ROOT / "benchmarks" / "reference_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref():
    return reference_models()


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_lowers_with_the_compilers_counts_and_shapes(name):
    c = compile_spec(name)
    model = lower(c)
    assert sum(p.numel() for p in model.parameters()) == c.params
    assert sum(b.numel() for b in model.buffers()) == c.buffers
    model.eval()
    ShapeProp(model).propagate(torch.zeros(1, *c.input_shape))
    seen = set()
    for node in model.graph.nodes:
        ir_name = node.meta.get("archspec_name")
        if ir_name is not None:
            assert tuple(node.meta["tensor_meta"].shape[1:]) == c.facts(ir_name).shape, ir_name
            seen.add(ir_name)
    # every op has a tensor of the compiler's shape; identity shortcuts are aliases and make no node
    assert seen == {n.name for n in c.graph.nodes_in_order() if n.op not in ("input", "identity")}


def test_parameter_names_follow_the_spec():
    model = archspec.build("resnet50_tv")
    names = dict(model.named_parameters())
    assert "layer1.0.conv1.weight" in names and "layer4.2.bn3.bias" in names
    assert "layer2.0.downsample.0.weight" in names and "layer2.0.downsample.1.weight" in names
    assert "fc.weight" in names and not any(n.startswith("node") for n in names)
    assert type(model.layer1).__name__ == "Block" and model.layer1._get_name() == "stack"
    assert "layer1_0_conv1" in model.code  # the generated forward is readable


def test_option_a_shortcuts_have_no_parameters():
    c = compile_spec("cifar_resnet56")
    model = lower(c)
    pads = [m for m in model.modules() if isinstance(m, SubsamplePad)]
    assert len(pads) == 2 and all(sum(p.numel() for p in m.parameters()) == 0 for m in pads)
    assert c.params == lower(compile_spec("cifar_plain56")).archspec.params


def test_initialisation_is_he_normal_with_unit_bn():
    torch.manual_seed(0)
    model = archspec.build("resnet50_tv")
    w = model.layer3[0].conv2.weight if hasattr(model.layer3, "__getitem__") else model.layer3._modules["0"].conv2.weight
    fan_out = w.shape[0] * w.shape[2] * w.shape[3]
    assert abs(w.std().item() - math.sqrt(2 / fan_out)) / math.sqrt(2 / fan_out) < 0.05
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in bns)


@pytest.mark.parametrize("name,last", [("resnet50_tv", "bn3"), ("resnet18_tv", "bn2"), ("cifar_resnet20", "bn2")])
def test_zero_init_residual_zeroes_the_last_bn_of_each_branch(name, last):
    model = archspec.build(name, zero_init_residual=True)
    zeroed = {n for n, p in model.named_parameters() if n.endswith(".weight") and torch.all(p == 0)}
    assert zeroed and all(n.endswith(f"{last}.weight") for n in zeroed)
    assert len(zeroed) == sum(1 for n, _ in model.named_parameters() if n.endswith(f".{last}.weight"))


def _copy_in_order(src, dst):
    """Copy parameters and buffers position by position (the hand-written twin names them differently)."""
    a, b = list(src.state_dict().values()), dst.state_dict()
    assert len(a) == len(b)
    dst.load_state_dict({k: v.clone() for k, v in zip(b, a)})


def test_cifar_resnet_matches_a_hand_written_option_a_resnet(ref):
    ours = archspec.build("cifar_resnet20")
    theirs = ref.cifar_resnet(3)
    _copy_in_order(theirs, ours)
    x = torch.randn(4, 3, 32, 32)
    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert torch.allclose(ours(x), theirs(x), atol=1e-5)


def test_imagenet_resnet_matches_the_hand_written_twin_in_training_too(ref):
    """In-place ReLU and add must not change gradients: compare them with the hand-written model's."""
    ours = archspec.build("resnet18_tv")
    theirs = ref.ImageNetResNet(18)
    assert list(ours.state_dict()) == list(theirs.state_dict())  # torchvision's names, in its order
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 64, 64)
    for m in (ours, theirs):
        m.train()
        m(x).square().mean().backward()
    for (n, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5, rtol=1e-4), n


def test_scripting_tracing_and_export_give_the_same_outputs():
    model = archspec.build("cifar_resnet20").eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        assert torch.allclose(torch.jit.script(model)(x), want, atol=1e-6)
        assert torch.allclose(torch.jit.trace(model, x)(x), want, atol=1e-6)
        program = torch.export.export(model, (x,))
        assert torch.allclose(program.module()(x), want, atol=1e-6)


def test_channels_last_and_bf16_autocast():
    model = archspec.build("cifar_resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
        cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
        assert torch.allclose(cl(x.to(memory_format=torch.channels_last)), want, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x)
        assert got.dtype == torch.bfloat16
        assert (got.float() - want).abs().max() < 0.1 * want.abs().max() + 0.05


@pytest.mark.slow
def test_torch_compile_forward_and_backward():
    model = archspec.build("cifar_resnet20")
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(model)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(compiled(x), model(x), atol=1e-4)
    model.train()
    compiled(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert archspec.compiled_of(compiled).name == "cifar_resnet20"


def test_the_compiled_graph_stays_reachable():
    model = archspec.build("resnet34_tv", input="3x128x128")
    c = archspec.compiled_of(model)
    assert model.archspec is c and c.input_shape == (3, 128, 128)
    assert c.facts("layer4.2.add").shape == (512, 4, 4)
    assert archspec.compiled_of(copy.deepcopy(model)) is c


def test_deepcopy_keeps_the_compiled_spec_blocks_and_attributes():
    """Before: a deep copy (as EMA and SWA make) had no `model.archspec`, printed as `GraphModule` and lost its
    block containers; `weights_source` was dropped too."""
    model = archspec.build("cifar_resnet20").eval()
    model.weights_source = "a file"
    twin = copy.deepcopy(model)
    assert twin.archspec is model.archspec and archspec.compiled_of(twin) is model.archspec
    assert twin.weights_source == "a file" and str(twin) == str(model) and type(twin).__name__ == "cifar_resnet20"
    assert twin.get_parameter("layer1.0.conv1.weight") is not model.get_parameter("layer1.0.conv1.weight")  # a copy, not the same parameters
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(twin(x), model(x))
    assert copy.deepcopy(twin).archspec is model.archspec


def test_pickle_round_trip_keeps_the_compiled_spec():
    """Before: an unpickled model (pickle, torch.save) had `compiled_of(model) is None`."""
    import io
    import pickle

    model = archspec.build("cifar_resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        want = model(x)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for back in (pickle.loads(pickle.dumps(model)), torch.load(buffer, weights_only=False)):
        back.eval()
        compiled = archspec.compiled_of(back)
        assert compiled is not None and back.archspec is compiled and compiled.params == model.archspec.params
        assert str(back) == str(model) and back.code == model.code
        origins = [n.meta.get("archspec_name") for n in model.graph.nodes]
        assert [n.meta.get("archspec_name") for n in back.graph.nodes] == origins  # runtime.stages reads these
        with torch.no_grad():
            assert torch.equal(back(x), want)
        assert archspec.compiled_of(copy.deepcopy(back)) is compiled


def test_the_languages_list_of_colliding_names_covers_the_installed_torch():
    """archspec/lang/names.py holds, without importing torch, every attribute of the modules lowering makes."""
    import torch.fx as fx
    import torch.nn as nn

    from archspec.compiler.lower import Block, Network
    from archspec.lang.names import MODULE_ATTRIBUTES

    module = fx.GraphModule(nn.Module(), fx.Graph())
    attributes = set(dir(Network)) | set(dir(Block)) | set(vars(module)) | set(vars(nn.Module()))
    missing = sorted(a for a in attributes if not a.startswith("__") and a not in MODULE_ATTRIBUTES)
    assert not missing, f"add these to MODULE_ATTRIBUTES in archspec/lang/names.py: {missing}"
