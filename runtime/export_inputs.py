"""What `archspec export` records about a network's inputs, and `--with-preprocessing`.

The preprocessing record (runtime/preprocess.py) comes with the weights: a run's checkpoint holds its own (else its
run folder's preprocessing.json has it), named published weights have theirs. Every export records it (ONNX
metadata_props, TorchScript and torch.export extra files: `archspec.preprocessing` and `archspec.input`); with
`--with-preprocessing` the exported module takes the raw RGB pixels (N, C, H, W; 0..255 as float32, the centre
crop of the recorded size) and normalises them itself, so a plain ONNX runtime needs nothing else.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from archspec.runtime.preprocess import PixelInput, Preprocessing, PreprocessingError, export_metadata


def for_export(model: nn.Module, compiled: Any, source: str | None, weights: Any,
               with_preprocessing: bool) -> tuple[nn.Module, dict[str, str], str | None]:
    """The module to export (behind its normalisation with `with_preprocessing`), the metadata every file
    records, and a line for the user (None when there is nothing to say)."""
    from archspec.runtime.predict import PredictError, known_record

    pre: Preprocessing | None = None
    missing = "without --weights the network is freshly initialised and its inputs are no one's"
    if source is not None:
        try:
            pre, missing = known_record(source, weights, compiled, int(compiled.output_shape[0]))
        except PredictError as e:
            raise PreprocessingError(str(e)) from None
    if not with_preprocessing:
        line = None if pre is None else f"inputs recorded in the metadata: {pre.describe()}"
        return model, export_metadata(pre, applied=False), line
    if pre is None:
        raise PreprocessingError(f"--with-preprocessing needs the inputs the weights were trained with, and {missing}"
                                 ": export a run's checkpoint (for one written before records were kept, `archspec "
                                 "predict RUN IMAGE --data-dir DIR` computes the record), or published weights by "
                                 "name")
    if tuple(pre.input) != tuple(compiled.input_shape):
        shape = "x".join(map(str, pre.input))
        raise PreprocessingError(f"the weights' inputs are {shape} images but {compiled.name} takes "
                                 f"{'x'.join(map(str, compiled.input_shape))} here: add --input {shape}")
    c, h, w = pre.input
    size = (f"resize the shorter side to {pre.resize}, then take the centre {h}x{w}" if pre.resize is not None
            else f"{h}x{w} images")
    line = (f"inputs: raw RGB pixels 0..255 (float32, N x {c} x {h} x {w}; {size}), normalised inside the export "
            f"({pre.describe()})")
    return PixelInput(model, pre), export_metadata(pre, applied=True), line
