"""archspec: neural-network architectures as YAML specs, validated, compiled to a shape-checked DAG, lowered to
PyTorch, trained and drawn.

    import archspec
    result = archspec.validate("resnet50")          # diagnostics, never exceptions
    spec = archspec.load("specs/cifar_resnet.yaml", n=200)
    net = archspec.compile("resnet50")              # net.graph is a networkx.DiGraph; net.params, net.macs
    model = archspec.build("resnet50_tv")           # a torch.nn.Module with torchvision's parameter names
    print(archspec.diff("resnet34_b", "resnet34_c").format())   # what option C changes, block by block

Importing archspec is cheap: torch, networkx and graphviz are imported only by the functions that need them.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from archspec.lang import VERSION as __version__


def _map_checkout() -> None:
    """In a source checkout, compiler/ and runtime/ sit beside archspec/; an install (normal or editable) maps them
    into the package as archspec.compiler and archspec.runtime itself. For a checkout that is not installed
    (`python -m archspec` in the repository), map exactly those two names to those two folders, after every other
    finder, so that an install's own mapping wins and nothing else of the checkout (tests/, benchmarks/, archspec/
    itself) becomes importable under `archspec.`."""
    import importlib.util
    import sys
    from importlib.abc import MetaPathFinder

    root = Path(__file__).resolve().parent.parent
    folders = {f"archspec.{name}": root / name for name in ("compiler", "runtime")}
    if (Path(__file__).parent / "compiler").is_dir() or not all((f / "__init__.py").is_file()
                                                                 for f in folders.values()):
        return  # an installed package, or not this project's checkout
    if any(getattr(f, "archspec_checkout", None) == root for f in sys.meta_path):
        return

    class CheckoutFinder(MetaPathFinder):
        archspec_checkout = root

        def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
            folder = folders.get(fullname)
            if folder is None:
                return None  # subpackages are found through the package's own __path__
            return importlib.util.spec_from_file_location(fullname, folder / "__init__.py",
                                                          submodule_search_locations=[str(folder)])

    sys.meta_path.append(CheckoutFinder())


_map_checkout()


def _overrides(overrides: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments as param values: passed as Python values (never turned into text and parsed again)."""
    return dict(overrides)


@contextmanager
def _quoting() -> Iterator[Any]:
    """The text of the spec files read inside, which a SpecError raised there quotes: `str(e)` is then what the
    command line prints for it (source lines, carets, notes, help)."""
    from archspec.lang.diagnostics import Sources, SpecError

    sources = Sources()
    try:
        yield sources
    except SpecError as e:
        e.quoting(sources)
        raise


def load(path_or_name: str | Path, **overrides: Any):
    """The resolved spec (params computed, constraints checked); raises archspec.SpecError if invalid."""
    from archspec.lang.spec import load_spec

    with _quoting() as sources:
        return load_spec(path_or_name, _overrides(overrides), sources=sources)


def validate(path_or_name: str | Path, **overrides: Any):
    """A `validate.Result`: `.ok`, `.diagnostics` (each with code, message and file:line:col)."""
    from archspec.compiler.validate import validate as run

    return run(path_or_name, _overrides(overrides))


def compile(path_or_name: str | Path, *, input: str | None = None, count: str = "conv", unit: str = "macs",
            **overrides: Any):
    """The compiled spec: `.graph` (a networkx.DiGraph whose nodes carry `meta` with shape, params, MACs),
    `.params`, `.macs`, `.depth`, `.stages()`, `.to_dict()`. Raises archspec.SpecError if invalid.

    `input` overrides the input shape ("3x299x299"); `count` is "conv" (conv+linear multiply-adds, the paper's
    convention) or "all"; `unit` is "macs" or "flops" (2 x MACs). Other keywords override params, as Python
    values (`n=5`, `depths=(2, 2, 2, 2)`, `shortcut="B"`): text is taken as text, never parsed (only `--set` on
    the command line reads text).
    """
    from archspec.compiler.analysis import compile_spec

    with _quoting() as sources:
        return compile_spec(path_or_name, _overrides(overrides), input, count=count, unit=unit, sources=sources)


def build(path_or_name: str | Path, *, input: str | None = None, weights: str | Path | None = None,
          **overrides: Any):
    """The spec as a `torch.nn.Module` (a torch.fx.GraphModule; `print(model.code)` shows its forward).

    Parameters are named as in the spec (`layer1.0.conv1.weight`) and initialised as in the paper;
    `model.archspec` (or `archspec.compiled_of(model)`) is the compiled graph with its shapes, params and MACs.
    `weights` loads a state_dict file (.pt, .pth, .safetensors, or a run's checkpoint) or published weights by
    name: "torchvision" (or "IMAGENET1K_V1", "torchvision:IMAGENET1K_V2") for the specs with torchvision's
    layout, "timm" for the timm-named ones. With another `num_classes` the classifier starts afresh.
    """
    from archspec.compiler.lower import build as run

    with _quoting() as sources:
        model = run(path_or_name, _overrides(overrides), input, sources=sources)
    if weights is not None:
        from archspec.runtime.weights import load_into

        model.weights_source = load_into(model, model.archspec, weights)
    return model


def render(path_or_name: str | Path, *, level: str = "block", direction: str = "TB", fold: bool = True,
           annotate: tuple[str, ...] = (), collapse: int = 2, legend: bool = True, input: str | None = None,
           **overrides: Any):
    """The architecture diagram as a `graphviz.Digraph` (`.source`, `.pipe(format="svg")`, `.render(...)`).

    `level` is "stage" (Table 1), "block" (residual blocks as clusters) or "layer" (every op).
    """
    from archspec.compiler.analysis import compile_spec
    from archspec.compiler.render import render_graph

    with _quoting() as sources:
        c = compile_spec(path_or_name, _overrides(overrides), input, sources=sources)
    return render_graph(c, level, fold=fold, collapse=collapse or 10**9, direction=direction, annotate=annotate,
                        legend=legend)


def diff(a: str | Path, b: str | Path, *, input: str | None = None, count: str = "conv", unit: str = "macs",
         set_a: dict[str, Any] | None = None, set_b: dict[str, Any] | None = None, **overrides: Any):
    """What changes from spec `a` to spec `b`, after expansion: `.equal`, `.groups` (the changes by residual
    block), `.stages` (params and MACs before and after), `.format(level)` and `.to_dict(level)`, where level is
    "stage", "block" or "layer". Raises archspec.SpecError if either spec is invalid.

    Keyword overrides apply to both sides, `set_a` and `set_b` to one:
    `archspec.diff("cifar_resnet", "cifar_resnet", set_a={"n": 3}, set_b={"n": 5})`.
    """
    from archspec.compiler.analysis import compile_spec
    from archspec.compiler.diff import diff_compiled

    with _quoting() as sources:
        sides = [compile_spec(ref, _overrides({**overrides, **(own or {})}), input, count=count, unit=unit,
                              sources=sources) for ref, own in ((a, set_a), (b, set_b))]
    return diff_compiled(*sides)


def compiled_of(model: Any):
    """The compiled spec behind a module made by `archspec.build` (also through copies and torch.compile)."""
    from archspec.compiler.lower import compiled_of as find

    return find(model)


def __getattr__(name: str) -> Any:
    if name == "SpecError":
        from archspec.lang.diagnostics import SpecError

        return SpecError
    raise AttributeError(f"module 'archspec' has no attribute {name!r}")
