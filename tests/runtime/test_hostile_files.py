"""Issue "Hostile input", findings 6, 9, 10 and 15: weights, checkpoints and CIFAR batches made to mislead, crash or
exhaust the readers. Every hostile file is made here (nothing large in git), and every case is bounded in time.

- 6/9: a .safetensors file is read with the safetensors library, its header checked whole before any tensor is
  read (dtype, shape, offsets that tile the data exactly, depth, number sizes, names given twice); a tensor marked
  as integers where the model has floating point is refused, not misread.
- 10: a checkpoint's checksum proves nothing about its structure: the fields are checked after it.
- 15: a checkpoint (or a CIFAR batch's labels) whose shared sub-lists would make a walk exponential is refused
  before it is walked; a sparse .safetensors of gigabytes is refused from its header, without being read.
"""

from __future__ import annotations

import io
import json
import pickle
import resource
import shutil
import struct
import time
import zipfile
from pathlib import Path

import pytest
import torch
from limits import time_limit

import archspec
from archspec.runtime import checkpoint

SPEC = "cifar_resnet20"


def one_line_refusal(r, path: Path, *words: str) -> None:
    assert r.code == 2, (r.code, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert str(path) in lines[0] and "internal error" not in lines[0], lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])


# -- .safetensors ---------------------------------------------------------------------------------------------------

def raw_safetensors(path: Path, header: bytes | dict, body: bytes = b"") -> Path:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)
    return path


def conv1_entry(dtype: str = "F32", shape=(16, 3, 3, 3), offsets=None) -> dict:
    n = 4
    for s in shape:
        n *= s
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets or (0, n))}


CONV1_BYTES = 16 * 3 * 3 * 3 * 4


def test_integers_marked_in_a_safetensors_file_are_not_read_as_float_weights(cli, tmp_path):
    state = {k: v.clone() for k, v in archspec.build(SPEC).state_dict().items()}
    from archspec.runtime.weights import write_safetensors

    good = tmp_path / "good.safetensors"
    write_safetensors(good, state)
    assert cli("summary", SPEC, "--weights", str(good)).code == 0
    # the same bytes, the conv's dtype marked I32 in the header (and its offsets unchanged): 9e22 losses before
    header_len = struct.unpack("<Q", good.read_bytes()[:8])[0]
    header = json.loads(good.read_bytes()[8:8 + header_len])
    header["conv1.weight"]["dtype"] = "I32"
    bad = raw_safetensors(tmp_path / "i32.safetensors", json.dumps(header).encode(),
                          good.read_bytes()[8 + header_len:])
    one_line_refusal(cli("summary", SPEC, "--weights", str(bad)), bad, "conv1.weight is int32 in the weights, "
                     "float32 in the model")


CONV = conv1_entry()
HOSTILE_HEADERS = {
    "trailing bytes": (json.dumps({"conv1.weight": CONV}).encode(), bytes(CONV1_BYTES + 16), "16 bytes follow"),
    "overlapping offsets": (json.dumps({"conv1.weight": CONV, "fc.bias": {"dtype": "F32", "shape": [10],
                                        "data_offsets": [8, 48]}}).encode(), bytes(CONV1_BYTES), "offset"),
    "fractional offsets": (b'{"conv1.weight": {"dtype": "F32", "shape": [16, 3, 3, 3], "data_offsets": [0.5, 1728]}}',
                           bytes(CONV1_BYTES), "floating point"),
    "a name given twice": (b'{"conv1.weight": ' + json.dumps(CONV).encode() + b', "conv1.weight": '
                           + json.dumps(CONV).encode() + b"}", bytes(CONV1_BYTES), "names conv1.weight twice"),
    "a negative shape": (json.dumps({"conv1.weight": conv1_entry(shape=(-16, 3, 3, 3), offsets=(0, 1728))}).encode(),
                         bytes(CONV1_BYTES), "-16"),
    "a header nested 100k deep": (b'{"conv1.weight": ' + json.dumps(CONV).encode() + b', "x": ' + b"[" * 100_000
                                  + b"]" * 100_000 + b"}", bytes(CONV1_BYTES), "recursion limit"),
    "a 5,000-digit integer": (b'{"conv1.weight": {"dtype": "F32", "shape": [' + b"9" * 5000
                              + b'], "data_offsets": [0, 1728]}}', bytes(CONV1_BYTES), "out of range"),
    "a shape whose size overflows": (json.dumps({"conv1.weight": conv1_entry(shape=(2**32, 2**32),
                                                                             offsets=(0, 1728))}).encode(),
                                     bytes(CONV1_BYTES), "overflow"),
    "a header longer than the file": (b'{"conv1.weight"', b"", "truncated"),
    "an unknown dtype": (json.dumps({"conv1.weight": conv1_entry(dtype="Q99")}).encode(), bytes(CONV1_BYTES), "Q99"),
}


@pytest.mark.parametrize("case", HOSTILE_HEADERS)
def test_hostile_safetensors_headers_are_one_line_refusals(cli, tmp_path, case):
    header, body, words = HOSTILE_HEADERS[case]
    path = raw_safetensors(tmp_path / "w.safetensors", header, body)
    if case == "a header longer than the file":
        path.write_bytes(struct.pack("<Q", 10_000) + header)
    with time_limit(20, case):
        r = cli("summary", SPEC, "--weights", str(path))
    one_line_refusal(r, path, words)


def test_a_sparse_safetensors_file_of_gigabytes_is_refused_from_its_header_without_being_read(cli, tmp_path):
    size = 6 * 2**30
    header = json.dumps({"conv1.weight": {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}).encode()
    path = tmp_path / "sparse.safetensors"
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + size)  # 6 GB, a few KB on disk
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with time_limit(10, "refusing a sparse 6 GB file"):
        r = cli("summary", SPEC, "--weights", str(path))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    one_line_refusal(r, path, "conv1.weight is 1610612736 in the weights, 16x3x3x3 in the model")
    assert grown_mb < 500, f"memory grew by {grown_mb:.0f} MB: the data was read"


# -- checkpoints with a valid checksum and hostile content -------------------------------------------------------

def best_checkpoint(path: Path, **change) -> Path:
    """A best.pt as training writes it (checksum and all), with `change`d fields (None removes one)."""
    from archspec.compiler.analysis import compile_spec

    model, compiled = archspec.build(SPEC), compile_spec(SPEC)
    body = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "model": model.state_dict(),
            "iteration": 20, "val_err": 50.0, "arch": checkpoint.architecture(compiled, model)}
    for key, value in change.items():
        if value is None:
            body.pop(key)
        elif key == "arch_tensors":
            body["arch"]["tensors"] = value
        else:
            body[key] = value
    body["sha256"] = checkpoint.content_digest(body)
    torch.save(body, path)
    return path


def test_a_whole_checkpoint_loads(cli, tmp_path):
    assert cli("summary", SPEC, "--weights", str(best_checkpoint(tmp_path / "best.pt"))).code == 0


@pytest.mark.parametrize("change, words", [
    ({"arch": "x"}, "`arch` is str 'x', not a mapping"),
    ({"arch_tensors": 5}, "`arch.tensors` is int 5, not a list of [name, shape] pairs"),
    ({"model": "none"}, "`model` is str 'none', not a state_dict"),
    ({"model": None}, "it has no `model`"),
    ({"iteration": -3}, "`iteration` is int -3"),
], ids=["arch-a-string", "tensors-a-number", "model-a-string", "no-model", "negative-iteration"])
def test_checkpoints_with_a_valid_checksum_and_wrong_fields_are_refused(cli, tmp_path, change, words):
    path = best_checkpoint(tmp_path / "best.pt", **change)
    one_line_refusal(cli("summary", SPEC, "--weights", str(path)), path, "is not a checkpoint archspec wrote", words)


def pickle_text(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def torch_file(path: Path, pickled: bytes) -> Path:
    """A torch.save zip archive whose data.pkl is `pickled` (hand-made: torch.save itself cannot write these)."""
    buffer = io.BytesIO()
    torch.save({}, buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name in src.namelist():
            dst.writestr(name, pickled if name.endswith("data.pkl") else src.read(name))
    path.write_bytes(out.getvalue())
    return path


def checkpoint_pickle(model: bytes) -> bytes:
    """{"format": ..., "version": 2, "sha256": "0"*64, "model": <model>} as protocol-2 pickle opcodes."""
    return (b"\x80\x02}" + pickle_text("format") + pickle_text(checkpoint.FORMAT) + b"s" + pickle_text("version")
            + b"K" + bytes([checkpoint.VERSION]) + b"s" + pickle_text("sha256") + pickle_text("0" * 64) + b"s"
            + pickle_text("model") + model + b"s.")


def test_a_checkpoint_nested_200k_deep_is_refused_before_it_is_walked(cli, tmp_path):
    n = 200_000
    path = torch_file(tmp_path / "deep.pt", checkpoint_pickle(b"]" * n + b"a" * (n - 1)))
    with time_limit(20, "a deep checkpoint"):
        r = cli("summary", SPEC, "--weights", str(path))
    one_line_refusal(r, path, "more than 32 levels deep")


def test_a_checkpoint_of_shared_sub_lists_is_refused_before_an_exponential_walk(cli, tmp_path):
    # [x, x] sixty times over: 2**60 values for a walk that follows every reference, in 1.7 KB of pickle
    # [x, x] sixty times over with the pickle memo (BINPUT/BINGET) sharing each level: 2**60 values for a walk
    # that follows every reference, in 1.7 KB
    body = b"K\x00"
    for level in range(60):
        body = b"](" + body + b"q" + bytes([level]) + b"h" + bytes([level]) + b"e"
    path = torch_file(tmp_path / "dag.pt", checkpoint_pickle(body))
    assert path.stat().st_size < 4096
    with time_limit(20, "a checkpoint of shared sub-lists"):
        r = cli("summary", SPEC, "--weights", str(path))
    one_line_refusal(r, path, "more than")


def test_a_resume_from_a_last_pt_with_wrong_fields_is_refused_and_the_run_is_untouched(cli, stopped_run, tmp_path):
    run = stopped_run(tmp_path / "run")
    data = torch.load(run / "last.pt", weights_only=True)
    data.pop("sha256")
    data["state"]["iteration"] = "twenty"
    data["sha256"] = checkpoint.content_digest(data)
    torch.save(data, run / "last.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".archspec.lock"}
    r = cli("train", "--resume", "--out", str(run), "--device", "cpu", "--quiet")
    one_line_refusal(r, run / "last.pt", "`state.iteration` is str 'twenty'")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != ".archspec.lock"}
    assert after == before


# -- CIFAR batches ---------------------------------------------------------------------------------------------

def test_cifar_labels_made_of_shared_sub_lists_are_refused_before_numpy_walks_them(cli, cifar_dir, tmp_path):
    data = shutil.copytree(cifar_dir / "cifar-10-batches-py", tmp_path / "cifar" / "cifar-10-batches-py")
    batch = pickle.loads((data / "data_batch_1").read_bytes())
    nested: list = [0, 0]
    for _ in range(60):
        nested = [nested, nested]  # 2**61 integers for a walk that follows each reference
    batch[b"labels"] = [nested] * len(batch[b"labels"])
    (data / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    started = time.monotonic()
    with time_limit(60, "a CIFAR batch of shared sub-lists"):
        r = cli("train", SPEC, "--data-dir", str(data), "--out", str(tmp_path / "run"), "--device", "cpu",
                "--iters", "1", "--batch-size", "8", "--quiet")
    assert time.monotonic() - started < 15  # (the reader's own except clause would swallow the time limit)
    one_line_refusal(r, data / "data_batch_1", "its labels are not", "integers (one per image)")
    assert not (tmp_path / "run").exists()
