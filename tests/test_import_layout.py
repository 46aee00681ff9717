"""Issue "A typed core", item 6: the source layout needs no patching at import. A checkout keeps compiler/ and
runtime/ beside archspec/; an install maps exactly those two into the package, and a checkout that is not
installed gets a finder for exactly those two names. So no second op registry (`archspec.archspec.lang.ops`)
and no stray packages (`archspec.tests`, `archspec.benchmarks`) can be imported, installed or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import importlib, sys
if {uninstalled}:
    sys.meta_path[:] = [f for f in sys.meta_path if "Editable" not in getattr(f, "__name__", type(f).__name__)]
sys.path.insert(0, {root!r})
import archspec, archspec.compiler.expand.expander, archspec.runtime.plan
from archspec.cli import main
assert archspec.__path__ == [{root!r} + "/archspec"], archspec.__path__
print("compiler", archspec.compiler.__file__)
print("runtime", archspec.runtime.plan.__file__)
for name in ("archspec.archspec", "archspec.tests", "archspec.benchmarks", "archspec.archspec.lang.ops"):
    try:
        importlib.import_module(name)
        print("stray", name)
    except ImportError:
        pass
"""


@pytest.mark.parametrize("uninstalled", [False, True], ids=["installed", "checkout"])
def test_exactly_compiler_and_runtime_map_into_the_package(uninstalled):
    r = subprocess.run([sys.executable, "-c", PROBE.format(uninstalled=uninstalled, root=str(ROOT))],
                       capture_output=True, text=True, cwd=ROOT / "tests")
    assert r.returncode == 0, r.stderr
    assert f"compiler {ROOT / 'compiler' / '__init__.py'}" in r.stdout
    assert f"runtime {ROOT / 'runtime' / 'plan.py'}" in r.stdout
    assert "stray" not in r.stdout, r.stdout
