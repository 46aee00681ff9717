"""Published ImageNet weights, one record per file: where it is, how it is checked, which shipped specs it fits,
and the inputs it was trained and evaluated with. `--weights torchvision`, `--weights IMAGENET1K_V1` and
`--weights timm` are looked up here (runtime/weights.py fetches and loads them)."""

from __future__ import annotations

from dataclasses import dataclass

from archspec.lang.errors import UserError
from archspec.runtime.published_timm import ZOO_WEIGHTS

TORCHVISION_URL = "https://download.pytorch.org/models/"
HF_URL = "https://huggingface.co/{repo}/resolve/main/model.safetensors"


@dataclass(frozen=True)
class Published:
    """One published weights file."""
    source: str              # "torchvision" or "timm"
    tag: str                 # torchvision's IMAGENET1K_V1/V2, timm's pretrained tag (ra2_in1k, ...)
    file: str                # torchvision: the file in torch.hub's cache; timm: the Hugging Face repo
    specs: tuple[str, ...]   # the shipped specs whose structure it was trained for
    normalize: str = "imagenet"
    crop: int = 224          # the evaluation's centre crop ...
    resize: int = 256        # ... of an image resized to this (the crop divided by its crop_pct)
    default: bool = True     # what `torchvision` or `timm` alone means for these specs

    @property
    def url(self) -> str:
        return TORCHVISION_URL + self.file if self.source == "torchvision" else HF_URL.format(repo=self.file)

    @property
    def sha256_prefix(self) -> str | None:
        """torchvision's files carry the start of their SHA-256 in their names (timm's are checked against the
        hub's content address instead)."""
        if self.source != "torchvision":
            return None
        return self.file.rsplit("-", 1)[1].split(".", 1)[0]

    @property
    def origin(self) -> str:
        if self.source == "torchvision":
            return f"torchvision {self.tag} ({self.file})"
        return f"timm {self.file.split('/', 1)[1]} (model.safetensors)"


def _tv(arch: str, files: dict[str, str], specs: tuple[str, ...] = ()) -> list[Published]:
    """torchvision's files for `arch`: its DEFAULT is V2 where there is one; every V2 file (and resnext101_64x4d's
    only one) is evaluated at a 232 resize, the others at 256 (torchvision 0.29's ResNet weights)."""
    has_v2 = "IMAGENET1K_V2" in files
    return [Published("torchvision", tag, f"{arch}-{sha}.pth", specs or (arch,),
                      resize=232 if tag == "IMAGENET1K_V2" or arch == "resnext101_64x4d" else 256,
                      default=tag == "IMAGENET1K_V2" or not has_v2) for tag, sha in files.items()]


# the timm-named specs at the top level (resnet50d, seresnet50, ...) take the zoo's file for the same model
TOP_LEVEL_TIMM = ("resnet50c", "resnet50d", "resnet50s", "resnet26d", "resnet101d", "seresnet50", "seresnext50_32x4d",
                  "resnetv2_50")


PUBLISHED: tuple[Published, ...] = (
    *_tv("resnet18", {"IMAGENET1K_V1": "f37072fd"}, ("resnet18", "resnet18_tv")),
    *_tv("resnet34", {"IMAGENET1K_V1": "b627a593"}, ("resnet34", "resnet34_b", "resnet34_tv")),
    *_tv("resnet50", {"IMAGENET1K_V1": "0676ba61", "IMAGENET1K_V2": "11ad3fa6"}, ("resnet50_tv",)),
    *_tv("resnet101", {"IMAGENET1K_V1": "63fe2227", "IMAGENET1K_V2": "cd907fc2"}, ("resnet101_tv",)),
    *_tv("resnet152", {"IMAGENET1K_V1": "394f9c45", "IMAGENET1K_V2": "f82ba261"}, ("resnet152_tv",)),
    *_tv("resnext50_32x4d", {"IMAGENET1K_V1": "7cdf4587", "IMAGENET1K_V2": "1a0047aa"}),
    *_tv("resnext101_32x8d", {"IMAGENET1K_V1": "8ba56ff5", "IMAGENET1K_V2": "110c445d"}),
    *_tv("resnext101_64x4d", {"IMAGENET1K_V1": "173b62eb"}),
    *_tv("wide_resnet50_2", {"IMAGENET1K_V1": "95faca4d", "IMAGENET1K_V2": "9ba9bcbe"}),
    *_tv("wide_resnet101_2", {"IMAGENET1K_V1": "32ee1156", "IMAGENET1K_V2": "d733dc28"}),
    # timm's default pretrained weights for every model of the zoo that has them (runtime/published_timm.py), which
    # also fit the top-level spec of the same name
    *(Published("timm", tag, f"timm/{model}.{tag}", (f"timm/{model}",) + ((model,) if model in TOP_LEVEL_TIMM else ()),
                normalize, crop, resize)
      for model, tag, normalize, crop, resize in ZOO_WEIGHTS),
)


class PublishedError(UserError):
    """Named weights that do not exist for a spec; one line with what does."""


def is_named(source: str) -> bool:
    """Whether `source` names published weights (`torchvision`, `torchvision:TAG`, `IMAGENET1K_V2`, `timm`, ...)
    rather than a file."""
    return source.split(":", 1)[0] in ("torchvision", "timm") or source in ("IMAGENET1K_V1", "IMAGENET1K_V2")


def parse(source: str) -> tuple[str, str]:
    """A named source as (kind, tag): `IMAGENET1K_V2` is ("torchvision", "IMAGENET1K_V2"), `timm` ("timm", "")."""
    kind, _, tag = source.partition(":")
    return ("torchvision", kind) if kind in ("IMAGENET1K_V1", "IMAGENET1K_V2") else (kind, tag)


def of_spec(spec: str, kind: str) -> list[Published]:
    return [p for p in PUBLISHED if p.source == kind and spec in p.specs]


def find(source: str, spec: str) -> Published:
    """The published file `source` means for the shipped spec `spec`, or a PublishedError saying what there is."""
    kind, tag = parse(source)
    files = of_spec(spec, kind)
    if not files:
        with_any = sorted({s for p in PUBLISHED if p.source == kind for s in p.specs})
        if kind == "torchvision":
            raise PublishedError(f"torchvision publishes no weights for {spec}; specs with them: {', '.join(with_any)} "
                                 "(the paper-layout resnet50, resnet101 and resnet152 stride on the first 1x1; their "
                                 "_tv twins take torchvision's weights)")
        shown = ", ".join(with_any[:12]) + (f" and {len(with_any) - 12} more (`archspec list`)" if len(with_any) > 12
                                             else "")
        raise PublishedError(f"there are no timm weights for {spec}; specs with them: {shown}")
    if tag in ("", "DEFAULT"):
        return next(p for p in files if p.default)
    for p in files:
        if p.tag == tag:
            return p
    if kind == "timm":
        raise PublishedError(f"timm:{tag}: archspec knows {files[0].file} for {spec}; give `timm`, or download the "
                             "weights you want and pass the file")
    raise PublishedError(f"torchvision has no {tag} weights for {spec}: it has {', '.join(p.tag for p in files)}")
