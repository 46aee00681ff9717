"""The preprocessing record (runtime/preprocess.py): what a run's checkpoints and folder say its inputs must be,
exactly (the training split's mean image, bit for bit), checked when read, and its forms."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archspec.runtime import checkpoint  # noqa: E402
from archspec.runtime.data.common import fixed_order  # noqa: E402
from archspec.runtime.preprocess import (FILE, KINDS, Preprocessing, PreprocessingError, from_published,  # noqa: E402
                                         of_stored, of_text, problem, read)



def names(data: Path) -> list[str]:
    """The class names the data's batches.meta holds (written by the labelled_run fixture)."""
    meta = pickle.loads((data / "cifar-10-batches-py" / "batches.meta").read_bytes(), encoding="bytes")
    return [n.decode() for n in meta[b"label_names"]]


def training_mean(data: Path, train: int = 160, val: int = 40) -> torch.Tensor:
    """The per-pixel mean of the run's training split, computed here from the batch files (float64, then float32)."""
    folder = data / "cifar-10-batches-py"
    images = np.concatenate([pickle.loads((folder / f"data_batch_{k}").read_bytes(), encoding="bytes")[b"data"]
                             for k in range(1, 6)]).reshape(-1, 3, 32, 32)
    order = fixed_order(len(images), "cifar10-split")  # the split every run shares (runtime/data/cifar.py)
    split = np.sort(order[val:val + train])
    return torch.from_numpy(images[split].astype(np.float64).mean(0)).float()


def test_checkpoints_and_the_run_folder_hold_the_exact_training_mean(labelled_run):
    run, data = labelled_run
    want = training_mean(data)
    for name in ("best.pt", "last.pt"):
        record = checkpoint.load(run / name)["preprocessing"]
        assert torch.equal(record["mean"], want), name  # bit for bit: the mean the model was trained against
        assert torch.equal(record["scale"], torch.full((3, 1, 1), 1 / 255))
        assert record["input"] == [3, 32, 32] and record["normalize"] == "per_pixel_mean"
        assert record["resize"] is None and record["images"] == [32, 32] and record["classes"] == names(data)
    folder = read(run / FILE)
    assert torch.equal(folder.mean, want) and folder.classes == tuple(names(data)) and folder.num_classes == 10
    text = json.loads((run / FILE).read_text())
    assert text["mean"]["shape"] == [3, 32, 32] and text["mean_01"] == [round(v, 6) for v in (want.double().mean(
        dim=(1, 2)) / 255).tolist()]
    assert "160 train images" in text["source"]


def test_the_record_normalises_as_training_did(labelled_run):
    run, data = labelled_run
    pre = read(run / FILE)
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(pre.normalise(x), (x.float() - training_mean(data)) * torch.tensor(1 / 255))


def test_forms_round_trip_exactly(labelled_run):
    run, _ = labelled_run
    pre = of_stored(checkpoint.load(run / "best.pt")["preprocessing"], "best.pt")
    back = of_text(pre.to_text(), "x.json")
    assert torch.equal(back.mean, pre.mean) and torch.equal(back.scale, pre.scale)
    assert back.as_json() == pre.as_json() and of_stored(pre.stored(), "x").as_json() == pre.as_json()
    assert len((run / FILE).read_bytes()) < 30_000  # the mean image as base64 float32, not 3072 decimal numbers


def test_a_damaged_record_in_a_checkpoint_is_refused_in_one_line(labelled_run, tmp_path):
    run, _ = labelled_run
    data = checkpoint.load(run / "best.pt")
    data["preprocessing"]["scale"] = -data["preprocessing"]["scale"]
    data.pop("format"), data.pop("version")
    checkpoint.save(tmp_path / "bad.pt", data)  # a valid checksum: the content check must catch it
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load(tmp_path / "bad.pt")
    assert "`preprocessing`" in str(e.value) and "\n" not in str(e.value)


def test_a_checkpoint_without_a_record_still_loads(labelled_run, tmp_path):
    run, _ = labelled_run
    data = checkpoint.load(run / "best.pt")
    for key in ("preprocessing", "format", "version"):
        data.pop(key)
    checkpoint.save(tmp_path / "old.pt", data)
    assert "preprocessing" not in checkpoint.load(tmp_path / "old.pt")


def _record(**changes) -> dict:
    pre = Preprocessing(input=(3, 32, 32), normalize="per_channel", mean=torch.full((3, 1, 1), 120.0),
                        scale=torch.full((3, 1, 1), 0.02), num_classes=10)
    return {**pre.stored(), **changes}


@pytest.mark.parametrize("changes, words", [
    ({"format": "other"}, "format"),
    ({"version": 2}, "version 2"),
    ({"input": [3, 32]}, "`input`"),
    ({"normalize": "zscore"}, "`normalize`"),
    ({"mean": torch.full((3, 16, 16), 1.0)}, "smaller than the 32x32 input"),
    ({"mean": torch.full((3, 1, 1), float("nan"))}, "NaN"),
    ({"scale": torch.zeros(3, 1, 1)}, "positive"),
    ({"scale": torch.ones(3, 1, 1, dtype=torch.float64)}, "float32"),
    ({"classes": ["a"] * 11}, "`classes`"),
    ({"resize": 0}, "`resize`"),
    ({"channels": "BGR"}, "`channels`"),
])
def test_problems_are_named(changes, words):
    assert problem(_record()) is None
    found = problem(_record(**changes))
    assert found is not None and words in found
    with pytest.raises(PreprocessingError, match="damaged"):
        of_stored(_record(**changes), "x.pt")


def test_a_damaged_file_is_one_line(tmp_path):
    (tmp_path / FILE).write_text('{"format": "archspec-preprocessing", ')
    with pytest.raises(PreprocessingError) as e:
        read(tmp_path / FILE)
    assert "not valid JSON" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / FILE).write_text(json.dumps({**of_text(Preprocessing(
        input=(3, 8, 8), normalize="none", mean=torch.zeros(3, 1, 1), scale=torch.full((3, 1, 1), 1 / 255)).to_text(),
        "x").as_json(), "mean": {"shape": [3, 8, 8], "dtype": "float32", "base64": "AAAA"}}))
    with pytest.raises(PreprocessingError, match="`mean`"):
        read(tmp_path / FILE)


def test_published_weights_give_their_fixed_inputs():
    from archspec.runtime.published import find

    pre = from_published(find("IMAGENET1K_V1", "resnet18_tv"), 3, 1000)
    assert pre.input == (3, 224, 224) and pre.resize == 256 and pre.normalize == "imagenet" and pre.normalize in KINDS
    mean, std = pre.channel_stats()
    assert mean == [0.485, 0.456, 0.406] and std == [0.229, 0.224, 0.225]
    timm = from_published(find("timm", "timm/resnetv2_101"), 3, 1000)  # inception's 0.5 / 0.5, resize 235
    assert timm.channel_stats() == ([0.5] * 3, [0.5] * 3) and (timm.resize, timm.input) == (235, (3, 224, 224))


def test_a_mean_image_larger_than_the_input_is_centre_cropped():
    mean = torch.arange(3 * 6 * 6, dtype=torch.float32).view(3, 6, 6)
    pre = Preprocessing(input=(3, 4, 4), normalize="per_pixel_mean", mean=mean, scale=torch.full((3, 1, 1), 0.5),
                        images=(6, 6))
    assert torch.equal(pre.mean_at(4, 4), mean[:, 1:5, 1:5])
    x = torch.full((1, 3, 4, 4), 255, dtype=torch.uint8)
    assert torch.equal(pre.normalise(x), (255 - mean[:, 1:5, 1:5])[None] * 0.5)
