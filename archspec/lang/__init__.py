"""The spec language: YAML with source positions, expressions, values, the JSON Schema, diagnostics, spec
loading and the op registry's data. The bottom layer: it imports nothing else of archspec.
"""

VERSION = "0.1.0"  # archspec's version (`archspec.__version__`); here so that every layer can read it
# The name pip knows this project by. `archspec` on the public index is another, older project (CPU
# micro-architecture detection, a dependency of conda and spack) that also installs a Python package `archspec`;
# the import name and the command stay `archspec`, the distribution is published as archspec-nn.
DISTRIBUTION = "archspec-nn"


def install_hint(extra: str) -> str:
    """The pip command that installs an optional extra, e.g. `pip install 'archspec-nn[train]'`, and its form in a
    source checkout."""
    return f"pip install '{DISTRIBUTION}[{extra}]' (in a checkout: pip install -e '.[{extra}]')"
