"""`str(SpecError)` from the Python API is what the command line prints for the same spec: headline, source line,
caret, notes and help (one renderer, `diagnostics.render_text`)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import archspec

CORPUS = Path(__file__).resolve().parent / "invalid"


def raised(function, spec: Path) -> archspec.SpecError:
    with pytest.raises(archspec.SpecError) as info:
        function(spec)
    return info.value


@pytest.mark.parametrize("name, functions", [
    ("14_undefined_reference", (archspec.compile, archspec.build)),      # a caret and a help line
    ("44_in_channels_forward_reference", (archspec.compile, archspec.build)),   # a note too
    ("32_param_cycle", (archspec.load, archspec.compile, archspec.build)),      # found while loading
])
def test_str_of_the_error_is_what_the_cli_prints(cli, name, functions):
    """Before: `str(e)` was the headlines alone; the source line, caret, notes and help were lost."""
    spec = CORPUS / f"{name}.yaml"
    printed = cli("compile", spec).err
    assert " | " in printed and "^" in printed and "= help: " in printed
    for function in functions:
        assert str(raised(function, spec)) + "\n" == printed, function.__name__


def test_every_diagnostic_is_rendered(cli, tmp_path):
    spec = tmp_path / "two.yaml"
    spec.write_text("archspec: 1\ninput: [3, 32, 32]\nnetwork:\n  - a: {op: frobnicate}\n  - b: {op: convv}\n")
    text = str(raised(archspec.compile, spec))
    assert text.count("error[E300]") == 2 and text + "\n" == cli("compile", spec).err


def test_an_error_without_its_sources_still_gives_notes_and_help(bad_spec):
    from archspec.lang.diagnostics import SpecError

    error = raised(archspec.compile, bad_spec)
    bare = SpecError(error.diagnostics)
    assert str(bare).splitlines() == [line for line in str(error).splitlines() if " | " not in line]
    assert "= help: " in str(bare)
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.diagnostics == error.diagnostics
