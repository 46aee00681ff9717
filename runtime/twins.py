"""The torchvision or timm model with the architecture of a shipped spec: the twin `archspec bench` measures beside
it, with the same settings, in the same run.

Which spec has which twin is not restated here: it is what runtime/published.py already knows (each published
weights file names the shipped specs whose structure it was trained for: torchvision's resnet50 fits resnet50_tv,
timm's resnet50d fits resnet50d and timm/resnet50d), plus every spec of timm's zoo (specs/timm/NAME is timm's NAME,
with or without published weights). A twin is built only where its package imports, only for the spec as shipped
(a `--set` other than num_classes makes another network) and only when its parameter count equals the spec's;
otherwise the reason is given in words and the spec is measured alone. A twin the user names
(`--twin torchvision:NAME`) is built or refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archspec.runtime.request import RunError

KINDS = ("torchvision", "timm")
# the params a --set may change and the twin stay the twin: the classifier's size (the twin is built with it)
SAME_NETWORK = ("num_classes",)


@dataclass(frozen=True)
class Twin:
    """A model to measure beside a spec: its label (`torchvision resnet50`) and the module."""
    label: str
    module: Any


def known_twin(spec_name: str) -> tuple[str, str] | None:
    """(package, model name) of the published model with the architecture of the shipped spec `spec_name`, or None.
    torchvision is preferred where both publish one (the _tv specs are its layout)."""
    from archspec.runtime.published import PUBLISHED, TOP_LEVEL_TIMM

    for p in PUBLISHED:
        if p.source == "torchvision" and spec_name in p.specs:
            return "torchvision", p.file.rsplit("-", 1)[0]  # resnet50-11ad3fa6.pth: resnet50
    if spec_name.startswith("timm/"):
        return "timm", spec_name.split("/", 1)[1]
    if spec_name in TOP_LEVEL_TIMM:
        return "timm", spec_name
    return None


def parse_choice(text: str) -> str:
    """--twin: auto, none, torchvision:NAME or timm:NAME (ValueError with what it takes otherwise)."""
    if text in ("auto", "none"):
        return text
    kind, sep, name = text.partition(":")
    if not sep or kind not in KINDS or not name or not name.replace("_", "").replace(".", "").isalnum():
        raise ValueError("expected auto, none, torchvision:NAME or timm:NAME (e.g. torchvision:resnet50), got "
                         f"{text!r}")
    return text


def twin_for(choice: str, spec_name: str, params: int, classes: int | None,
             overrides: tuple[str, ...] = ()) -> Twin | str:
    """The twin to measure beside `spec_name` (`params` parameters, `classes` outputs, built with the --set
    `overrides`) as `choice` asks (auto, none, KIND:NAME), or the reason there is none. A named twin that cannot be
    built is a RunError."""
    if choice == "none":
        return "none asked (--twin none)"
    if choice != "auto":
        kind, name = choice.split(":", 1)
        made = _build(kind, name, classes)
        if isinstance(made, str):
            raise RunError(f"--twin {choice}: {made}")
        return Twin(f"{kind} {name}", made)
    found = known_twin(spec_name)
    if found is None:
        return (f"unavailable: no torchvision or timm model is known to have the architecture of {spec_name} "
                "(--twin torchvision:NAME or --twin timm:NAME measures one you choose)")
    kind, name = found
    changed = [o for o in overrides if o.split("=", 1)[0].strip() not in SAME_NETWORK]
    if changed:
        return (f"unavailable: --set {changed[0]} makes another network than {spec_name}, whose twin is {kind} {name} "
                "(--twin KIND:NAME measures one you choose)")
    made = _build(kind, name, classes)
    if isinstance(made, str):
        return f"unavailable: {made}"
    theirs = sum(p.numel() for p in made.parameters())
    if theirs != params:
        return (f"unavailable: {kind} {name} has {theirs:,} parameters and {spec_name} here {params:,} (a --set or "
                "--input made another network)")
    return Twin(f"{kind} {name}", made)


def _build(kind: str, name: str, classes: int | None) -> Any:
    """torchvision's or timm's model `name`, freshly initialised, with `classes` outputs; or why it cannot be."""
    try:
        package = __import__(kind)
    except Exception as e:  # noqa: BLE001 - missing, or built for another torch (torchvision's operators)
        first = str(e).splitlines()[0][:120] if str(e) else ""
        return (f"{kind} is not importable here ({type(e).__name__}: {first}); its {name} would be the twin "
                f"(pip install {kind}, beside a torch it supports)")
    extra = {} if classes is None else {"num_classes": classes}
    try:
        if kind == "torchvision":
            return package.models.get_model(name, **extra)
        return package.create_model(name, pretrained=False, **extra)
    except (ValueError, RuntimeError, KeyError) as e:
        if "nknown model" in str(e):
            return f"{kind} has no model named {name}"
        return f"{kind} could not build {name}: {type(e).__name__}: {e}"
