"""`archspec predict` and `archspec export --with-preprocessing`: images classified as the network was trained
(the recorded mean, sizes and class names), exports that take raw pixels, and one line for what cannot be used."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

import archspec  # noqa: E402
from archspec.runtime import checkpoint  # noqa: E402
from archspec.runtime.preprocess import FILE, read  # noqa: E402


def cifar_image(data: Path, k: int = 3) -> np.ndarray:
    """Image k of the data's test batch, H x W x 3 uint8."""
    batch = pickle.loads((data / "cifar-10-batches-py" / "test_batch").read_bytes(), encoding="bytes")
    return batch[b"data"][k].reshape(3, 32, 32).transpose(1, 2, 0).copy()


def training_mean(data: Path, train: int = 160, val: int = 40) -> torch.Tensor:
    """The per-pixel mean of the run's training split, from the batch files (float64, then float32)."""
    from archspec.runtime.data.common import fixed_order

    folder = data / "cifar-10-batches-py"
    images = np.concatenate([pickle.loads((folder / f"data_batch_{k}").read_bytes(), encoding="bytes")[b"data"]
                             for k in range(1, 6)]).reshape(-1, 3, 32, 32)
    split = np.sort(fixed_order(len(images), "cifar10-split")[val:val + train])  # the split of runtime/data/cifar.py
    return torch.from_numpy(images[split].astype(np.float64).mean(0)).float()


def expected(run: Path, data: Path, img: np.ndarray) -> torch.Tensor:
    """The class probabilities of the run's best.pt on `img`, normalised here: (x - training mean) / 255."""
    model = archspec.build("cifar_resnet20", weights=run / "best.pt").eval()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return model((x - training_mean(data)) * torch.tensor(1 / 255)).softmax(-1)[0]


def test_predict_a_png_as_the_model_sees_it(labelled_run, tmp_path, cli):
    run, data = labelled_run
    img = cifar_image(data)
    Image.fromarray(img).save(tmp_path / "x.png")
    r = cli("predict", run, tmp_path / "x.png", "--top", "10", "--json", "--device", "cpu")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    got = {t["index"]: t["probability"] for t in result["predictions"][0]["top"]}
    want = expected(run, data, img)
    assert sorted(got) == list(range(10)) and max(abs(got[i] - float(want[i])) for i in range(10)) < 1e-6
    assert result["predictions"][0]["top"][0]["index"] == int(want.argmax())
    names = read(run / FILE).classes
    assert [t["name"] for t in result["predictions"][0]["top"]] == [names[t["index"]] for t in
                                                                     result["predictions"][0]["top"]]
    text = cli("predict", run, tmp_path / "x.png", "--top", "2", "--device", "cpu")
    top = int(want.argmax())
    assert text.code == 0 and f"{100 * float(want[top]):.2f}%  {names[top]} ({top})" in text.out
    assert len(text.out.strip().splitlines()) == 3  # the image, then its two classes


def test_a_cifar_batch_and_a_larger_image(labelled_run, tmp_path, cli):
    run, data = labelled_run
    Image.fromarray(cifar_image(data, 5)).save(tmp_path / "five.png")
    Image.fromarray(cifar_image(data, 5)).resize((64, 64), Image.Resampling.NEAREST).save(tmp_path / "big.png")
    batch = data / "cifar-10-batches-py" / "test_batch"
    r = cli("predict", run, tmp_path / "five.png", tmp_path / "big.png", "--cifar-batch", batch, "--index", "5",
            "--json", "--device", "cpu")
    assert r.code == 0, r.err
    png, big, cifar = json.loads(r.out)["predictions"]
    assert png["top"] == cifar["top"] and "label" in cifar and cifar["label"]["name"]
    assert "big.png is 64x64: resized (shorter side to 32, bilinear)" in r.err
    probs = [t["probability"] for t in big["top"]]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6


def test_a_spec_with_a_checkpoint_file(labelled_run, tmp_path, cli):
    run, data = labelled_run
    Image.fromarray(cifar_image(data)).save(tmp_path / "x.png")
    by_run = cli("predict", run / "best.pt", tmp_path / "x.png", "--json", "--device", "cpu")
    by_spec = cli("predict", "cifar_resnet20", "--weights", run / "best.pt", tmp_path / "x.png", "--json",
                  "--device", "cpu")
    assert by_run.code == by_spec.code == 0, by_run.err + by_spec.err
    assert json.loads(by_run.out)["predictions"] == json.loads(by_spec.out)["predictions"]


def _one_line(r) -> str:
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    return lines[0]


def test_bad_images_are_one_line(labelled_run, tmp_path, cli):
    run, data = labelled_run
    img = Image.fromarray(cifar_image(data))
    img.convert("L").save(tmp_path / "gray.png")
    img.convert("RGBA").save(tmp_path / "alpha.png")
    (tmp_path / "text.png").write_text("not an image")
    assert "no such image" in _one_line(cli("predict", run, tmp_path / "missing.png"))
    assert "1 channel (grayscale)" in _one_line(cli("predict", run, tmp_path / "gray.png", "--device", "cpu"))
    assert "4 channels" in _one_line(cli("predict", run, tmp_path / "alpha.png", "--device", "cpu"))
    assert "not an image" in _one_line(cli("predict", run, tmp_path / "text.png", "--device", "cpu"))
    assert "name the images" in _one_line(cli("predict", run))
    line = _one_line(cli("predict", run, "--cifar-batch", data / "cifar-10-batches-py" / "test_batch", "--index",
                         "99", "--device", "cpu"))
    assert "--index 99" in line and "0..39" in line


def _old_run(run: Path, dest: Path) -> Path:
    """A copy of `run` as an archspec before the record wrote it: no `preprocessing` in its checkpoints, no
    preprocessing.json."""
    shutil.copytree(run, dest)
    (dest / FILE).unlink()
    for name in ("best.pt", "last.pt"):
        data = checkpoint.load(dest / name)
        for key in ("preprocessing", "format", "version"):
            data.pop(key)
        checkpoint.save(dest / name, data)
    return dest


def test_an_old_checkpoint_says_what_is_missing_and_the_fix_works(labelled_run, tmp_path, cli):
    run, data = labelled_run
    old = _old_run(run, tmp_path / "old")
    Image.fromarray(cifar_image(data)).save(tmp_path / "x.png")
    line = _one_line(cli("predict", old, tmp_path / "x.png", "--device", "cpu"))
    assert "records no preprocessing" in line and "--data-dir" in line and str(data) in line
    line = _one_line(cli("export", "cifar_resnet20", "--weights", old / "best.pt", "--with-preprocessing",
                         "--torchscript", tmp_path / "m.pt"))
    assert "records no preprocessing" in line and not (tmp_path / "m.pt").exists()
    fixed = cli("predict", old, tmp_path / "x.png", "--json", "--device", "cpu", "--data-dir", data)
    new = cli("predict", run, tmp_path / "x.png", "--json", "--device", "cpu")
    assert fixed.code == 0, fixed.err
    assert json.loads(fixed.out)["predictions"] == json.loads(new.out)["predictions"]
    assert (old / FILE).is_file() and "kept it in" in fixed.err
    again = cli("predict", old, tmp_path / "x.png", "--json", "--device", "cpu")  # found in the folder now
    assert again.code == 0 and json.loads(again.out)["predictions"] == json.loads(new.out)["predictions"]


def test_a_plain_state_dict_records_nothing(labelled_run, tmp_path, cli):
    run, data = labelled_run
    torch.save(checkpoint.load(run / "best.pt")["model"], tmp_path / "plain.pt")
    Image.fromarray(cifar_image(data)).save(tmp_path / "x.png")
    line = _one_line(cli("predict", "cifar_resnet20", "--weights", tmp_path / "plain.pt", tmp_path / "x.png"))
    assert "plain state_dict" in line and "records no preprocessing" in line


def test_export_with_preprocessing_takes_raw_pixels(labelled_run, tmp_path, cli):
    run, data = labelled_run
    ts, onnx_file = tmp_path / "m.pt", tmp_path / "m.onnx"
    r = cli("export", "cifar_resnet20", "--weights", run / "best.pt", "--with-preprocessing", "--torchscript", ts,
            *(["--onnx", onnx_file] if _has("onnx") else []))
    assert r.code == 0, r.err
    assert "raw RGB pixels 0..255" in r.out
    pixels = torch.from_numpy(np.stack([cifar_image(data, k) for k in range(4)])).permute(0, 3, 1, 2).float()
    model = archspec.build("cifar_resnet20", weights=run / "best.pt").eval()
    with torch.no_grad():
        want = model((pixels - training_mean(data)) * torch.tensor(1 / 255))
    extra = {"archspec.preprocessing.json": ""}
    scripted = torch.jit.load(str(ts), _extra_files=extra)
    assert torch.allclose(scripted(pixels), want, atol=1e-5)
    assert torch.allclose(scripted(pixels.to(torch.uint8)), want, atol=1e-5)  # uint8 pixels too
    assert json.loads(extra["archspec.preprocessing.json"])["normalize"] == "per_pixel_mean"
    if not _has("onnx"):
        return
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert json.loads(meta["archspec.preprocessing"])["classes"] == list(read(run / FILE).classes)
    assert "normalisation is inside" in meta["archspec.input"]
    if _has("onnxruntime"):
        import onnxruntime

        session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].name == "pixels"
        got = session.run(None, {"pixels": pixels.numpy()})[0]
        assert np.abs(got - want.numpy()).max() < 1e-4


def test_export_without_the_flag_records_the_inputs(labelled_run, tmp_path, cli):
    run, data = labelled_run
    ts = tmp_path / "m.pt"
    r = cli("export", "cifar_resnet20", "--weights", run / "best.pt", "--torchscript", ts)
    assert r.code == 0, r.err
    extra = {"archspec.preprocessing.json": "", "archspec.input.json": ""}
    scripted = torch.jit.load(str(ts), _extra_files=extra)
    pre = read(run / FILE)
    stored = json.loads(extra["archspec.preprocessing.json"])
    assert stored == json.loads(pre.to_text()) and "normalised" in json.loads(extra["archspec.input.json"])
    x = torch.randn(2, 3, 32, 32)
    model = archspec.build("cifar_resnet20", weights=run / "best.pt").eval()
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)  # as today: normalised input
    assert "--with-preprocessing needs" in _one_line(cli("export", "cifar_resnet20", "--with-preprocessing",
                                                         "--torchscript", tmp_path / "fresh.pt"))


def test_published_weights_by_name(monkeypatch, tmp_path, cli):
    """--weights NAME: the published record's resize, crop and mean/std (the file itself stood in for: nothing is
    downloaded in tests)."""
    from archspec.runtime import weights

    fake = archspec.build("resnet18_tv").state_dict()
    monkeypatch.setattr(weights, "_named", lambda source, compiled: weights.Weights(dict(fake), "torchvision test"))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(tmp_path / "p.jpg")
    r = cli("predict", "resnet18_tv", "--weights", "IMAGENET1K_V1", tmp_path / "p.jpg", "--top", "3", "--json",
            "--device", "cpu")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert "shorter side resized to 256, centre 224x224 crop" in result["preprocessing"]
    assert "(0.485, 0.456, 0.406)" in result["preprocessing"] and len(result["predictions"][0]["top"]) == 3
    if result["classes"] == "unknown":  # no torchvision or timm here: said once, indices shown
        assert r.err.count("class names unknown") == 1 and "nothing is downloaded" in r.err


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
