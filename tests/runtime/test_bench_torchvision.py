"""`archspec bench` against real twins: torchvision's and timm's models measured beside the shipped specs with the
same settings, the ratio on the archspec rows, and the twin refused where a --set made another network.

torchvision imports only beside torch 2.14.1: these run in the parity environment (.ci/run) and are skipped where
torchvision cannot be imported."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

pytestmark = pytest.mark.torchvision

TINY = ("--input", "3x64x64", "--batch-size", "2", "--warmup", "1", "--steps", "2", "--quiet", "--json")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):  # (tests/conftest.py)
    yield


def test_torchvision_twin_measured_beside_the_spec(cli):
    r = cli("bench", "resnet18_tv", "--set", "num_classes=10", "--channels-last", *TINY)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["twins"] == {"resnet18_tv": "torchvision resnet18"}
    rows = data["rows"]
    assert [(x["model"], x["mode"]) for x in rows] == [("archspec", "infer"), ("torchvision resnet18", "infer"),
                                                       ("archspec", "train"), ("torchvision resnet18", "train")]
    for ours, twin in zip(rows[::2], rows[1::2]):
        assert ours["params"] == twin["params"] == 11_181_642  # the twin was built with the spec's 10 classes
        assert ours["ratio"] == round(ours["images_per_s"] / twin["images_per_s"], 3)


def test_timm_twin_and_a_named_one(cli):
    r = cli("bench", "timm/resnet18", "--mode", "infer", *TINY)
    assert r.code == 0, r.err
    assert json.loads(r.out)["twins"] == {"timm/resnet18": "timm resnet18"}
    r = cli("bench", "resnet50", "--twin", "torchvision:resnet50", "--mode", "infer", *TINY)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["twins"] == {"resnet50": "torchvision resnet50"} and data["rows"][0]["ratio"] > 0


def test_no_twin_for_another_network_or_an_unknown_name(cli):
    r = cli("bench", "resnet18_tv", "--set", "stem_width=32", "--mode", "infer", *TINY)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["twins"]["resnet18_tv"].startswith("unavailable: --set stem_width=32 makes another network")
    assert [x["model"] for x in data["rows"]] == ["archspec"]
    r = cli("bench", "resnet18_tv", "--twin", "torchvision:resnet19", *TINY)
    assert r.code == 2 and r.err.strip() == "archspec: error: --twin torchvision:resnet19: torchvision has no model " \
                                            "named resnet19"
