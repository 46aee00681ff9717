"""Property: no file a user hands archspec makes it crash, hang or exhaust memory. Weights (.safetensors and
torch.save files), checkpoints (with a checksum recomputed over hostile content, as anyone can) and CIFAR batches
are mutated at random (bytes flipped, cut, header and field values replaced by arbitrary JSON-like trees, shared
and deep nestings); every one is read or refused with a one-line UserError naming the file, within a time and
memory bound. Keeps the "Hostile input" findings 6, 9, 10 and 15 closed for inputs no one wrote down.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits import memory_limit, time_limit

import archspec
from archspec.lang.errors import UserError
from archspec.runtime import checkpoint
from archspec.runtime import weights as W

SPEC = "cifar_resnet20"
EXAMPLES = 60
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# JSON-like values, with the numbers and shapes that broke readers before: huge, negative, fractional, deep
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                   st.sampled_from(["F32", "I32", "BF16", "Q9", "", "__metadata__", "conv1.weight"]))
TREES = st.recursive(LEAVES, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                     max_leaves=20)


@pytest.fixture(scope="module")
def target():
    """A model and its compiled graph, made once: what every file is loaded into."""
    from archspec.compiler.analysis import compile_spec

    class Target(tuple):
        def __repr__(self) -> str:  # (hypothesis prints the arguments of a failing case)
            return f"Target({SPEC})"

    model = archspec.build(SPEC)
    return Target((model, compile_spec(SPEC), {k: v.clone() for k, v in model.state_dict().items()}))


def outcome(path: Path, target) -> str:
    """Load `path` as weights: "loaded", or "refused" with a one-line error naming the file. Anything else (another
    exception, a hang past 20 s, more than 2 GB of memory) fails the test."""
    model, compiled, _ = target
    try:
        with time_limit(20, f"loading {path.name}"), memory_limit(2048, f"loading {path.name}"):
            W.load_into(model, compiled, path)
    except UserError as e:
        text = str(e)
        assert "\n" not in text and str(path) in text, text
        return "refused"
    return "loaded"


def safetensors_bytes(state) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        W.write_safetensors(Path(d) / "w.safetensors", state)
        return (Path(d) / "w.safetensors").read_bytes()


# -- .safetensors ---------------------------------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_safetensors_with_bytes_flipped_or_cut_are_read_or_refused(target, tmp_path, data):
    raw = bytearray(safetensors_bytes(target[2]))
    header_end = 8 + struct.unpack("<Q", bytes(raw[:8]))[0]
    how = data.draw(st.sampled_from(["flip header", "flip length", "cut", "append"]))
    if how == "flip header":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(8, header_end - 1))] = data.draw(st.integers(0, 255))
    elif how == "flip length":
        raw[data.draw(st.integers(0, 7))] = data.draw(st.integers(0, 255))
    elif how == "cut":
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw += bytes(data.draw(st.integers(1, 64)))
    path = tmp_path / "w.safetensors"
    path.write_bytes(bytes(raw))
    result = outcome(path, target)
    assert how == "flip header" or result == "refused", how  # a cut or a grown file never loads


@FUZZ
@given(data=st.data())
def test_safetensors_with_header_fields_replaced_are_read_or_refused(target, tmp_path, data):
    raw = safetensors_bytes(target[2])
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    name = data.draw(st.sampled_from(sorted(k for k in header if k != "__metadata__")))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", None]))
    value = data.draw(TREES)
    if field is None:
        header[name] = value
    else:
        header[name][field] = value
    if data.draw(st.booleans()):
        header[data.draw(st.text(max_size=6))] = data.draw(TREES)
    text = json.dumps(header).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    outcome(path, target)


# -- torch.save files and checkpoints --------------------------------------------------------------------------------

def best_body(target) -> dict:
    model, compiled, state = target
    return {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": dict(state), "iteration": 20,
            "val_err": 50.0, "arch": checkpoint.architecture(compiled, model)}


FIELDS = ["model", "iteration", "val_err", "arch", "arch.name", "arch.graph", "arch.tensors", "arch.graph_sha256",
          "format", "version", "optimizer", "state", "state.iteration", "rng", "window", "recipe"]


@FUZZ
@given(field=st.sampled_from(FIELDS), value=TREES, shared=st.integers(0, 70))
def test_checkpoints_with_a_recomputed_checksum_over_any_content_are_read_or_refused(target, tmp_path, field,
                                                                                       value, shared):
    body = best_body(target)
    node, *rest = field.split(".")
    if shared:  # [x, x] `shared` times over: 2**shared values for a walk that follows each reference
        for _ in range(shared):
            value = [value, value]
    if rest:
        body[node] = dict(body[node]) if isinstance(body.get(node), dict) else {}
        body[node][rest[0]] = value
    else:
        body[node] = value
    if shared <= 20:  # a checksum anyone could compute (beyond that, computing it would be the attack)
        body["sha256"] = checkpoint.content_digest(body)
    else:
        body["sha256"] = "0" * 64
    path = tmp_path / "best.pt"
    torch.save(body, path)
    result = outcome(path, target)
    if field != "format" and (field in ("model", "arch", "arch.tensors", "version") or shared > 20):
        # (another `format` makes it a plain file, whose state_dict under "model" is loaded; nothing else is read)
        assert result == "refused" or field == "arch" and isinstance(value, dict), (field, value)


@FUZZ
@given(data=st.data())
def test_torch_files_with_bytes_flipped_or_cut_are_read_or_refused(target, tmp_path, data):
    path = tmp_path / "best.pt"
    body = best_body(target)
    body["sha256"] = checkpoint.content_digest(body)
    torch.save(body, path)
    raw = bytearray(path.read_bytes())
    if data.draw(st.booleans()):
        raw = raw[:data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 16))):
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(raw))
    outcome(path, target)


# -- CIFAR batches ---------------------------------------------------------------------------------------------------

@FUZZ
@given(key=st.sampled_from([b"labels", b"data", b"other"]), value=TREES, shared=st.integers(0, 64))
def test_cifar_batches_with_any_labels_or_data_are_read_or_refused(tmp_path, key, value, shared):
    import numpy as np

    from archspec.runtime.data import DataError
    from archspec.runtime.data.cifar import _read_batch

    for _ in range(shared):
        value = [value, value]
    batch = {b"labels": [1, 2, 3], b"data": np.zeros((3, 3072), np.uint8), key: value}
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    try:
        with time_limit(20, "reading a CIFAR batch"), memory_limit(2048, "reading a CIFAR batch"):
            images, labels = _read_batch(path)
    except DataError as e:
        assert "\n" not in str(e) and str(path) in str(e)
    else:
        assert key == b"other" or key == b"labels" and not shared
        assert images.shape[0] == labels.shape[0] == 3
