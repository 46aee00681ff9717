"""The code catalogue: each diagnostic code declared once, in `archspec.lang.codes`, as a named constant with its
meaning; sources name codes by those constants, never as "E305" literals; every code is reported somewhere or reserved.
"""

from __future__ import annotations

import ast
import copy
import json
import pickle
import re
from collections import Counter
from pathlib import Path

import pytest

from archspec.lang import codes, diagnostics
from archspec.lang.codes import CODES, Code, code
from archspec.lang.diagnostics import Diagnostic, Loc

ROOT = Path(__file__).resolve().parents[2]
SOURCE_FOLDERS = ("archspec", "compiler", "runtime")
DECLARATIONS = "archspec/lang/codes.py"  # the one file that writes codes as literals
EXPLANATIONS = "archspec/lang/explanations.py"  # explains codes; naming one there is not reporting it

# Source files that still write diagnostic codes as string literals ("E305") rather than the constants of
# archspec.lang.codes, while they are being rewritten. Take each off once it uses the constants; a folder (ending in
# "/") stands for every file in it. Every other source file must name its codes by their constants.
CODE_LITERALS_STILL_ALLOWED: tuple[str, ...] = ()  # every source file names its codes by constant


def declared() -> dict[str, Code]:
    """Every constant of archspec.lang.codes that is a code, by name, in the order written."""
    return {name: value for name, value in vars(codes).items() if isinstance(value, Code)}


def sources() -> dict[str, ast.Module]:
    """Every source file of the three packages, parsed, by its path from the repository root."""
    out = {}
    for folder in SOURCE_FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out[path.relative_to(ROOT).as_posix()] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def literals(tree: ast.Module) -> list[tuple[str, int]]:
    """(code, line) for each string constant that is exactly a code (`"E305"`), dict keys and tuples included;
    prose that mentions a code (docstrings, messages) is not a literal code."""
    return [(node.value, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"E\d{3}", node.value)]


def names_read(tree: ast.Module) -> set[str]:
    """The names the file reads: `UNKNOWN_OP` and `codes.UNKNOWN_OP` both read UNKNOWN_OP (an import alone does not)."""
    return ({node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
            | {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)})


def still_allowed(path: str) -> bool:
    """Whether `path` is on CODE_LITERALS_STILL_ALLOWED, itself or in a folder on it."""
    return any(path == entry or (entry.endswith("/") and path.startswith(entry))
               for entry in CODE_LITERALS_STILL_ALLOWED)


# ---------------------------------------------------------------------------------------------- the declarations

def test_every_constant_declares_its_own_code_and_the_catalogue_is_made_of_them():
    constants = declared()
    assert len(constants) > 60  # the walk itself works
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", name) for name in constants)
    twice = {c: [n for n, v in constants.items() if v == c] for c, k in Counter(constants.values()).items() if k > 1}
    assert not twice, f"a code declared by two constants: {twice}"
    assert list(CODES) == list(constants.values())  # in the order declared, nothing else
    assert all(CODES[c] == c.summary for c in constants.values())
    assert diagnostics.CODES is CODES  # importable from diagnostics, as before


def test_catalogue_codes_are_well_formed():
    assert all(re.fullmatch(r"E\d{3}", c) for c in CODES)
    assert all(isinstance(v, str) and v and v == v.strip() for v in CODES.values())
    assert type(CODES) is dict and all(type(v) is str for v in CODES.values())


def test_a_malformed_declaration_is_refused():
    with pytest.raises(ValueError, match="three digits"):
        code("E30", "an unknown op")
    with pytest.raises(ValueError, match="one-line meaning"):
        code("E999", " padded ")


def test_a_code_is_its_string_wherever_a_string_was_used():
    c = codes.UNDEFINED_NODE
    assert c == "E305" and hash(c) == hash("E305") and {"E305": 1}[c] == 1
    assert str(c) == f"{c}" == "E305" and repr(c) == "'E305'" and type(str(c)) is str
    assert c.summary == CODES["E305"] and not c.reserved
    d = Diagnostic(c, "`x` is not defined", Loc("a.yaml", 3, 5))
    assert d == Diagnostic("E305", "`x` is not defined", Loc("a.yaml", 3, 5))
    assert d.headline() == "a.yaml:3:5: error[E305]: `x` is not defined"
    assert json.loads(json.dumps(d.as_dict()))["code"] == "E305"
    for copied in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c)):  # SpecError crosses processes pickled
        assert copied == c and copied.summary == c.summary and isinstance(copied, Code)
    with pytest.raises(AttributeError):
        c.summary = "something else"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- the sources

def test_no_code_literals_outside_the_declarations():
    trees = sources()
    assert sorted({c for c, _ in literals(trees[DECLARATIONS])}) == sorted(CODES)  # the scan itself works
    by_code = {str(v): n for n, v in declared().items()}
    found = [f"{path}:{line}: \"{c}\" (write {by_code.get(c, 'a constant of archspec.lang.codes')})"
             for path, tree in trees.items() if path != DECLARATIONS and not still_allowed(path)
             for c, line in literals(tree)]
    assert not found, "codes written as literals:\n" + "\n".join(found)


def test_the_files_still_allowed_literals_exist():
    for entry in CODE_LITERALS_STILL_ALLOWED:
        path = ROOT / entry
        assert path.is_dir() if entry.endswith("/") else path.is_file(), f"{entry} is gone: take it off the list"


def test_every_code_literal_left_is_in_the_catalogue():
    missing = {f"{path}:{line}": c for path, tree in sources().items() for c, line in literals(tree) if c not in CODES}
    assert not missing


def test_every_code_is_reported_somewhere_or_reserved():
    constants = declared()
    used: dict[str, list[str]] = {}
    for path, tree in sources().items():
        if path in (DECLARATIONS, EXPLANATIONS):
            continue
        codes_here = {str(constants[n]) for n in names_read(tree) & constants.keys()}
        if still_allowed(path):
            codes_here |= {c for c, _ in literals(tree)}
        for c in codes_here:
            used.setdefault(c, []).append(path)
    unused = [f"{n} ({c})" for n, c in constants.items() if c not in used and not c.reserved]
    assert not unused, f"codes reported nowhere (report them, or declare them with reserved=True): {unused}"
    reserved_but_used = {f"{n} ({c})": used[c] for n, c in constants.items() if c in used and c.reserved}
    assert not reserved_but_used, f"codes marked reserved that are reported: {reserved_but_used}"
    assert len(used) > 60


def test_codes_in_docs_are_in_the_catalogue():
    text = (ROOT / "docs" / "spec-format.md").read_text()
    for c in set(re.findall(r"\bE\d{3}\b", text)):
        assert c in CODES, c
