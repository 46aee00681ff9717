"""`--weights` and `archspec.build(weights=...)`: files (.pt, .safetensors), and published weights by name through
torch.hub's and the Hugging Face hub's caches, all offline: the tests seed the caches with files they make."""

import hashlib
import json
import os

import pytest

torch = pytest.importorskip("torch")

import archspec  # noqa: E402
from archspec.runtime import weights as W  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHSPEC_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


def made_state(name, seed=0, **overrides):
    torch.manual_seed(seed)
    return archspec.build(name, **overrides).state_dict()


def same_tensors(a, b):
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def seed_torchvision(monkeypatch, tmp_path, arch, state, tag="IMAGENET1K_V1", publish=None):
    """Put `state` in torch.hub's cache under a name whose hash prefix is the file's own (or `publish`)."""
    raw = tmp_path / "made.pth"
    torch.save(state, raw)
    prefix = publish or hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    name = f"{arch}-{prefix}.pth"
    dest = tmp_path / "torch" / "hub" / "checkpoints" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    raw.rename(dest)
    publish_as(monkeypatch, arch, tag, name)
    return dest


def publish_as(monkeypatch, arch, tag, name):
    """torchvision's record of `arch` `tag` with the file `name` (its own hash prefix)."""
    import dataclasses

    from archspec.runtime import published as P

    records = tuple(dataclasses.replace(p, file=name, default=True) if p.source == "torchvision" and p.file.startswith(arch + "-")
                    and p.tag == tag else p for p in P.PUBLISHED if not (p.source == "torchvision" and p.tag != tag
                                                                         and p.file.startswith(arch + "-")))
    monkeypatch.setattr(P, "PUBLISHED", records)


def test_a_state_dict_file_loads_exactly(tmp_path):
    state = made_state("resnet18_tv", seed=1)
    torch.save(state, tmp_path / "w.pt")
    model = archspec.build("resnet18_tv", weights=tmp_path / "w.pt")
    assert same_tensors(model.state_dict(), state)
    assert model.weights_source.notes == []


def test_safetensors_files_load_exactly_also_when_laid_out_by_hand(tmp_path):
    state = made_state("cifar_resnet20", seed=2)
    W.write_safetensors(tmp_path / "w.safetensors", state)
    assert same_tensors(archspec.build("cifar_resnet20", weights=tmp_path / "w.safetensors").state_dict(), state)
    # a file laid out by hand as the format says: header length, JSON header, the bytes (and __metadata__)
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()
    (tmp_path / "hand.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + t.numpy().tobytes())
    assert torch.equal(W.read_safetensors(tmp_path / "hand.safetensors")["x"], t)


def test_published_torchvision_weights_come_from_torch_hubs_cache(monkeypatch, tmp_path):
    state = made_state("resnet18_tv", seed=3)
    seed_torchvision(monkeypatch, tmp_path, "resnet18", state)
    for source in ("torchvision", "IMAGENET1K_V1", "torchvision:IMAGENET1K_V1", "torchvision:DEFAULT"):
        model = archspec.build("resnet18_tv", weights=source)
        assert same_tensors(model.state_dict(), state), source
    assert "torchvision IMAGENET1K_V1" in W.describe(model.weights_source)
    # the paper's resnet18 is the same network: torchvision's weights serve it too
    assert same_tensors(archspec.build("resnet18", weights="torchvision").state_dict(), state)


def test_a_download_goes_through_torch_hub_with_the_published_hash(monkeypatch, tmp_path):
    monkeypatch.delenv("ARCHSPEC_OFFLINE")
    state = made_state("resnet18_tv", seed=4)
    made = tmp_path / "server.pth"
    torch.save(state, made)
    prefix = hashlib.sha256(made.read_bytes()).hexdigest()[:8]
    publish_as(monkeypatch, "resnet18", "IMAGENET1K_V1", f"resnet18-{prefix}.pth")
    calls = []

    def download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, hash_prefix))
        with open(dst, "wb") as f:
            f.write(made.read_bytes())

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    assert same_tensors(archspec.build("resnet18_tv", weights="torchvision").state_dict(), state)
    assert calls == [(f"https://download.pytorch.org/models/resnet18-{prefix}.pth", prefix)]
    archspec.build("resnet18_tv", weights="torchvision")
    assert len(calls) == 1  # the second time from the cache


def test_offline_the_error_names_the_url_and_the_cache_path(cli, tmp_path):
    r = cli("summary", "resnet50_tv", "--weights", "torchvision")
    assert r.code == 2
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet50-11ad3fa6.pth"
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in r.err and str(expected) in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_a_cached_file_with_the_wrong_hash_is_refused(cli, monkeypatch, tmp_path):
    dest = seed_torchvision(monkeypatch, tmp_path, "resnet18", made_state("resnet18_tv"), publish="0badc0de")
    r = cli("summary", "resnet18_tv", "--weights", "torchvision")
    assert r.code == 2
    assert "does not match its published hash" in r.err and "0badc0de" in r.err and str(dest) in r.err


def test_truncated_files_are_refused_in_one_line(cli, tmp_path):
    state = made_state("cifar_resnet20")
    torch.save(state, tmp_path / "w.pt")
    W.write_safetensors(tmp_path / "w.safetensors", state)
    for name in ("w.pt", "w.safetensors"):
        data = (tmp_path / name).read_bytes()
        (tmp_path / ("cut_" + name)).write_bytes(data[: len(data) * 2 // 3])
        r = cli("summary", "cifar_resnet20", "--weights", str(tmp_path / ("cut_" + name)))
        assert r.code == 2, name
        assert "truncated" in r.err and str(tmp_path / ("cut_" + name)) in r.err
        assert len(r.err.strip().splitlines()) == 1


def test_weights_of_another_architecture_name_the_first_mismatch(cli, tmp_path):
    torch.save(made_state("cifar_resnet20"), tmp_path / "w20.pt")
    r = cli("summary", "cifar_resnet32", "--weights", str(tmp_path / "w20.pt"))
    assert r.code == 2
    assert "does not fit cifar_resnet32: layer1.3.conv1.weight 16x16x3x3 is missing from the weights" in r.err
    torch.save(made_state("cifar_resnet20", block="basic", shortcut="B"), tmp_path / "wb.pt")
    r = cli("summary", "cifar_resnet20", "--weights", str(tmp_path / "wb.pt"))
    assert r.code == 2 and "layer2.0.downsample.0.weight 32x16x1x1 in the weights is not in the model" in r.err


def test_a_missing_file_is_exit_2(cli, tmp_path):
    r = cli("summary", "resnet18", "--weights", str(tmp_path / "nowhere.pt"))
    assert r.code == 2 and "no such file" in r.err and "nowhere.pt" in r.err


def test_another_number_of_classes_keeps_the_backbone_and_restarts_the_classifier(tmp_path):
    state = made_state("resnet18_tv", seed=5)
    torch.save(state, tmp_path / "w.pt")
    torch.manual_seed(6)
    model = archspec.build("resnet18_tv", weights=tmp_path / "w.pt", num_classes=10)
    mine = model.state_dict()
    assert all(torch.equal(mine[k], state[k]) for k in mine if not k.startswith("fc."))
    assert mine["fc.weight"].shape == (10, 512)
    assert model.weights_source.notes == [
        "fc starts afresh: it has 10 outputs here, 1000 in the weights; the rest is loaded"]


def test_named_weights_refuse_a_spec_changed_where_it_matters(monkeypatch, tmp_path):
    seed_torchvision(monkeypatch, tmp_path, "resnet50", made_state("resnet50_tv"), tag="IMAGENET1K_V2")
    with pytest.raises(W.WeightsError, match="trained for `layer2.0.conv1 = conv"):
        archspec.build("resnet50_tv", weights="torchvision", stride_on="1x1")
    with pytest.raises(W.WeightsError, match="torchvision publishes no weights for resnet50;"):
        archspec.build("resnet50", weights="torchvision")  # the paper layout strides on the 1x1
    # what does not change the trained network is fine: drop path, zero-init, another classifier
    model = archspec.build("resnet50_tv", weights="torchvision", drop_path_rate=0.1, num_classes=7)
    assert model.get_submodule("fc").out_features == 7


def seed_hub(tmp_path, repo, data, content_address=None):
    """The Hugging Face hub's cache layout: blobs/<sha256>, snapshots/<commit>/FILE -> blob, refs/main."""
    root = tmp_path / "hf" / ("models--" + repo.replace("/", "--"))
    blob = root / "blobs" / (content_address or hashlib.sha256(data).hexdigest())
    blob.parent.mkdir(parents=True)
    blob.write_bytes(data)
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = root / "snapshots" / commit / "model.safetensors"
    snap.parent.mkdir(parents=True)
    os.symlink(os.path.relpath(blob, snap.parent), snap)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return blob


def test_timm_weights_come_from_the_hugging_face_cache_with_their_hash_checked(tmp_path):
    pytest.importorskip("huggingface_hub")
    state = made_state("resnet50d", seed=7)
    W.write_safetensors(tmp_path / "made.safetensors", state)
    seed_hub(tmp_path, "timm/resnet50d.ra2_in1k", (tmp_path / "made.safetensors").read_bytes())
    model = archspec.build("resnet50d", weights="timm")
    assert same_tensors(model.state_dict(), state)
    assert "timm resnet50d.ra2_in1k" in W.describe(model.weights_source)
    with pytest.raises(W.WeightsError, match="there are no timm weights for resnet50_tv"):
        archspec.build("resnet50_tv", weights="timm")


def test_a_timm_file_whose_content_is_not_its_published_hash_is_refused(tmp_path):
    pytest.importorskip("huggingface_hub")
    W.write_safetensors(tmp_path / "made.safetensors", made_state("seresnet50"))
    seed_hub(tmp_path, "timm/seresnet50.a1_in1k", (tmp_path / "made.safetensors").read_bytes(), "ab" * 32)
    with pytest.raises(W.WeightsError, match="does not match its published hash"):
        archspec.build("seresnet50", weights="timm")


def test_timm_weights_offline_and_without_the_hub_client_say_what_to_do(monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    with pytest.raises(W.WeightsError, match="resolve/main/model.safetensors and pass the file: --weights FILE"):
        archspec.build("resnetv2_50", weights="timm")
    import builtins

    real = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name))
                        if name == "huggingface_hub" else real(name, *a, **k))
    with pytest.raises(W.WeightsError, match="pip install huggingface_hub"):
        archspec.build("resnetv2_50", weights="timm")


def test_export_loads_named_weights(cli, monkeypatch, tmp_path):
    state = made_state("resnet18_tv", seed=8)
    seed_torchvision(monkeypatch, tmp_path, "resnet18", state)
    r = cli("export", "resnet18_tv", "--weights", "IMAGENET1K_V1", "--program", str(tmp_path / "m.pt2"))
    assert r.code == 0, r.err
    assert "weights: torchvision IMAGENET1K_V1" in r.out
    program = torch.export.load(str(tmp_path / "m.pt2"))
    assert torch.equal(program.state_dict["layer1.0.conv1.weight"], state["layer1.0.conv1.weight"])


def test_train_fine_tunes_from_weights_and_records_them(cli, tmp_path):
    state = made_state("cifar_resnet20", seed=9)
    torch.save(state, tmp_path / "w.pt")
    run = tmp_path / "run"
    r = cli("train", "cifar_resnet20", "--weights", str(tmp_path / "w.pt"), "--set", "num_classes=7",
            "--dataset", "synthetic", "--iters", "2", "--batch-size", "4", "--eval-interval", "2", "--device", "cpu",
            "--quiet", "--out", str(run))
    assert r.code == 0, r.err
    info = json.loads((run / "run.json").read_text())
    assert info["weights"]["source"] == str(tmp_path / "w.pt")
    assert info["weights"]["sha256"] == hashlib.sha256((tmp_path / "w.pt").read_bytes()).hexdigest()
    assert info["weights"]["notes"] == ["fc starts afresh: it has 7 outputs here, 10 in the weights; the rest is loaded"]
    assert "weights: " in (run / "log.txt").read_text()
    from archspec.runtime import checkpoint

    trained = checkpoint.load(run / "last.pt")["model"]
    fresh = made_state("cifar_resnet20", seed=123, num_classes=7)
    k = "layer2.1.conv1.weight"  # two small steps from the file, far from any fresh initialisation
    assert (trained[k] - state[k]).abs().max() < 0.1 * (fresh[k] - state[k]).abs().max()
    # resuming takes the run's own weights: --weights is refused there
    r = cli("train", "--resume", "--out", str(run), "--weights", str(tmp_path / "w.pt"))
    assert r.code == 2 and "--weights starts a run" in r.err


def test_eval_takes_weights_instead_of_a_checkpoint(cli, tmp_path):
    torch.save(made_state("cifar_resnet20"), tmp_path / "w.pt")
    r = cli("eval", "cifar_resnet20", "--weights", str(tmp_path / "w.pt"), "--dataset", "synthetic", "--device",
            "cpu", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["images"] == 256 and "weights: " in r.err
    r = cli("eval", "cifar_resnet20", "--dataset", "synthetic", "--device", "cpu")
    assert r.code == 2 and "give exactly one of --checkpoint FILE" in r.err


def image_folder(root, classes=("daisy", "rose", "tulip"), per_class=(4, 2)):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, n in zip(("train", "val"), per_class):
        for c in classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                pixels = torch.randint(0, 256, (72, 96, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(pixels).save(root / split / c / f"{i}.jpg")
    return root


def test_named_weights_bring_the_inputs_they_expect(cli, monkeypatch, tmp_path):
    pytest.importorskip("PIL")
    seed_torchvision(monkeypatch, tmp_path, "resnet18", made_state("resnet18_tv", seed=10))
    folder = image_folder(tmp_path / "flowers")
    run = tmp_path / "run"
    r = cli("train", "resnet18_tv", "--weights", "torchvision", "--set", "num_classes=3", "--dataset",
            "imagenet_folder", "--data-dir", str(folder), "--iters", "1", "--batch-size", "4", "--views", "1",
            "--workers", "0", "--device", "cpu", "--quiet", "--out", str(run))
    assert r.code == 0, r.err
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["dataset"]["normalize"] == "imagenet"
    assert (recipe["eval"]["resize"], recipe["eval"]["crop"]) == (256, 224)  # torchvision's V1 evaluation
    log = (run / "log.txt").read_text()
    assert "dataset.normalize=imagenet" in log and "fc starts afresh" in log
    seed_torchvision(monkeypatch, tmp_path, "resnet18", made_state("resnet18_tv", seed=12, num_classes=3))
    r = cli("eval", "resnet18_tv", "--weights", "IMAGENET1K_V1", "--set", "num_classes=3", "--dataset",
            "imagenet_folder", "--data-dir", str(folder), "--views", "1", "--workers", "0", "--device", "cpu")
    assert r.code == 0, r.err
    assert "recipe: dataset.normalize=imagenet, as the IMAGENET1K_V1 weights expect" in r.err
    # what the user sets wins
    from archspec.runtime.plan import resolve_recipe, weights_recipe

    base = archspec.load("resnet18_tv").recipe
    mine = resolve_recipe(base, {"dataset": "imagenet_folder"}, ["dataset.normalize=none"])
    kept, notes = weights_recipe(mine, "torchvision", "resnet18_tv", base, {"dataset": "imagenet_folder"},
                                 ["dataset.normalize=none"])
    assert kept.data["dataset"]["normalize"] == "none" and notes == []
    assert W.expected_inputs("timm", "resnetv2_50", "cifar10") == {"dataset.normalize": "inception"}
    assert W.expected_inputs(str(tmp_path / "any.pt"), "resnet18_tv", "imagenet_folder") == {}


def test_the_fixed_normalisations_are_those_the_weights_were_trained_with():
    from archspec.runtime.data.common import normalizer

    x = torch.tensor([[[[255]], [[0]], [[128]]]], dtype=torch.uint8)
    got = normalizer("imagenet", None, None, 0, torch.device("cpu"), "train")(x).flatten()
    expected = (torch.tensor([1.0, 0.0, 128 / 255]) - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225])
    assert torch.allclose(got, expected, atol=1e-6)
    got = normalizer("inception", None, None, 0, torch.device("cpu"), "train")(x).flatten()
    assert torch.allclose(got, torch.tensor([1.0, -1.0, 128 / 127.5 - 1]), atol=1e-6)


def test_a_conv_classifier_head_starts_afresh_too(tmp_path):
    torch.save(made_state("resnetv2_50", seed=11), tmp_path / "v2.pt")
    model = archspec.build("resnetv2_50", weights=tmp_path / "v2.pt", num_classes=10)
    assert model.weights_source.notes == [
        "head.fc starts afresh: it has 10 outputs here, 1000 in the weights; the rest is loaded"]
    assert model.get_submodule("head.fc").weight.shape == (10, 2048, 1, 1)


def test_eval_and_export_refuse_a_classifier_that_would_be_random(cli, tmp_path):
    torch.save(made_state("cifar_resnet20"), tmp_path / "w.pt")
    for args in (["eval", "cifar_resnet20", "--dataset", "synthetic", "--device", "cpu"],
                 ["export", "cifar_resnet20", "--program", str(tmp_path / "m.pt2")]):
        r = cli(*args, "--set", "num_classes=7", "--weights", str(tmp_path / "w.pt"))
        assert r.code == 2, args
        assert "has 10 outputs in fc, and this cifar_resnet20 7" in r.err and "archspec train --weights" in r.err
        assert len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt2").exists()


def test_a_runs_checkpoint_fine_tunes_to_other_classes_but_not_to_another_network(cli, tmp_path):
    run = tmp_path / "run"
    base = ["--dataset", "synthetic", "--iters", "2", "--batch-size", "4", "--eval-interval", "2", "--device", "cpu",
            "--quiet"]
    assert cli("train", "cifar_resnet20", "--set", "num_classes=7", *base, "--out", str(run)).code == 0
    r = cli("train", "cifar_resnet20", "--weights", str(run / "best.pt"), *base, "--out", str(tmp_path / "ft"))
    assert r.code == 0, r.err
    assert "fc starts afresh: it has 10 outputs here, 7 in the weights" in (tmp_path / "ft" / "log.txt").read_text()
    r = cli("summary", "cifar_plain20", "--set", "num_classes=7", "--weights", str(run / "best.pt"))
    assert r.code == 2 and "holds cifar_resnet20, not cifar_plain20" in r.err


def test_common_wrappers_and_ddp_prefixes_are_unwrapped_and_said(tmp_path):
    state = made_state("cifar_resnet20", seed=13)
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "w.pt")
    model = archspec.build("cifar_resnet20", weights=tmp_path / "w.pt")
    assert same_tensors(model.state_dict(), state)
    assert model.weights_source.notes == ["read the state_dict under 'state_dict' and its keys without DDP's "
                                          "`module.` prefix"]
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "bad.pt")
    with pytest.raises(archspec.lang.errors.UserError, match=r"holds no state_dict .*save one with torch.save"):
        archspec.build("cifar_resnet20", weights=tmp_path / "bad.pt")
