"""`archspec predict`: the top classes of images, using the preprocessing the model was trained with. The work is
in the runtime (`archspec.runtime.predict`, `archspec.runtime.predict_images`); a refusal is one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from archspec import flags
from archspec.cmdbase import EXIT_OK, Commands, add_weights_arg

command = Commands()


@command
def _register_predict(sub: Any) -> None:
    p = sub.add_parser("predict", help="classify images with a trained run, a checkpoint or published weights "
                       "(top-k classes, using the recorded preprocessing)")
    p.add_argument("model", metavar="RUN|CHECKPOINT|SPEC",
                   help="a run folder (its best.pt, else its last.pt), a run's checkpoint, or with --weights the "
                   "spec (a file or a shipped spec's name)")
    p.add_argument("images", nargs="*", type=Path, metavar="IMAGE", help="PNG or JPEG files")
    add_weights_arg(p, "the weights, for a SPEC")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="with --weights: override a param of the spec (repeatable)")
    p.add_argument("--input", dest="input_shape", metavar="CxHxW", help="with --weights: the input shape")
    p.add_argument("--top", type=flags.POSITIVE, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="for a checkpoint written before preprocessing was recorded: the run's dataset, to compute "
                   "the record from its training split")
    p.add_argument("--cifar-batch", type=Path, default=None, metavar="FILE",
                   help="classify images of a CIFAR-10 or CIFAR-100 batch file (data_batch_N, test_batch; train, test) too")
    p.add_argument("--index", dest="indices", type=flags.NON_NEGATIVE, action="append", default=[], metavar="I",
                   help="with --cifar-batch: the image to classify (repeatable; default 0)")
    p.set_defaults(run=_cmd_predict)
    _intermixed(p)


def _intermixed(p: Any) -> None:
    """Let the images come before, between and after the options (`archspec predict resnet50_tv --weights
    torchvision cat.jpg dog.jpg --top 3`): argparse stops taking positionals at the first option otherwise."""
    if not isinstance(p, argparse.ArgumentParser):
        return  # (the stand-in of a command that is not being run)

    class Intermixed(type(p)):  # type: ignore[misc, valid-type]
        _inside = False

        def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
            if self._inside:  # (parse_known_intermixed_args calls back here)
                return super().parse_known_args(args, namespace)
            self._inside = True
            try:
                return self.parse_known_intermixed_args(args, namespace)
            finally:
                self._inside = False

    p.__class__ = Intermixed


def _cmd_predict(args: argparse.Namespace) -> int:
    from archspec.runtime.predict import PredictRequest, as_text, predict

    request = PredictRequest(model=args.model, images=list(args.images), weights=args.weights,
                             overrides=args.overrides, input_shape=args.input_shape, top=args.top,
                             device=args.device, data_dir=args.data_dir, cifar_batch=args.cifar_batch,
                             indices=list(args.indices))
    result = predict(request, args.sources)
    if args.json:
        print(json.dumps(result, allow_nan=False))
    else:
        import sys

        print(f"{result['model']} ({result['weights']}); inputs: {result['preprocessing']}", file=sys.stderr)
        print(as_text(result))
    return EXIT_OK
