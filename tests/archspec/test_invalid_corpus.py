"""The corpus of invalid specs (`tests/archspec/invalid/`): each file holds one deliberate mistake.

For every `NN_name.yaml` the test runs `archspec validate` in-process from the repository root and checks:

- the exit code is 2 and nothing looks like a crash (no traceback, no "internal error");
- stderr equals the golden file `NN_name.expected` exactly (regenerate the goldens with
  `ARCHSPEC_UPDATE_GOLDEN=1 python -m pytest tests/archspec/test_invalid_corpus.py`, then review the diff);
- the first diagnostic has the code and line named by the file's first line, `# expect: E305 line 12`
  (or `# expect: E121 line 3 in support/x.yaml` when the problem is reported in a helper file). This is
  independent of the golden text, so a regenerated golden cannot silently move a diagnostic elsewhere.
  A trailing `(...)` is a note for readers, e.g. where the diagnostic should point once it is improved.

Files under `invalid/support/` are helpers that corpus files extend or import; they are not corpus entries.
Inputs that must not be committed (empty, binary, huge, hostile YAML) are generated in `tmp_path`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from archspec.lang.diagnostics import CODES

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "invalid"
ROOT = HERE.parent.parent
FILES = sorted(CORPUS.glob("*.yaml"))
UPDATE = os.environ.get("ARCHSPEC_UPDATE_GOLDEN", "") not in ("", "0")

EXPECT = re.compile(r"^# expect: (E\d{3}) line (\d+)(?: in (\S+))?(?:\s+\(.*\))?\s*$")
FILE_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+\.yaml$")
HEADLINE = re.compile(r"^(?P<file>\S+?):(?P<line>\d+):(?P<col>\d+): error\[(?P<code>E\d{3})\]: ")

# Pathological inputs must be refused quickly, not after expanding or reading them.
FAST_SECONDS = 2.0


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _expectation(path: Path) -> tuple[str, int, str]:
    """(code, line, file as printed) from the `# expect:` comment on the first line of a corpus file."""
    first = path.read_text(encoding="utf-8").splitlines()[0]
    m = EXPECT.match(first)
    assert m, f"{path.name}: the first line must be `# expect: CODE line N [in support/file.yaml]`, got {first!r}"
    code, line, other = m.group(1), int(m.group(2)), m.group(3)
    where = _rel(CORPUS / other) if other else _rel(path)
    return code, line, where


_RESULTS: dict[tuple[str, ...], object] = {}


def _validate(cli, *args: str):
    """`archspec validate ARGS` from the repository root, run once per argument list (the corpus is static)."""
    key = (os.getcwd(), *args)
    if key not in _RESULTS:
        _RESULTS[key] = cli("validate", *args)
    return _RESULTS[key]


def _headlines(err: str) -> list[re.Match]:
    return [m for m in map(HEADLINE.match, err.splitlines()) if m]


# -- the corpus as a whole ---------------------------------------------------------------------------------


def test_corpus_is_complete():
    assert len(FILES) >= 45, f"the corpus has only {len(FILES)} files"
    numbers = []
    for path in FILES:
        m = FILE_NAME.match(path.name)
        assert m, f"{path.name}: corpus files are named NN_short_name.yaml"
        numbers.append(int(m.group(1)))
        code, _, _ = _expectation(path)
        assert code in CODES, f"{path.name}: {code} is not in archspec.lang.diagnostics.CODES"
    assert len(set(numbers)) == len(numbers), "two corpus files share a number"
    if not UPDATE:
        missing = [p.name for p in FILES if not p.with_suffix(".expected").is_file()]
        assert not missing, f"no golden file for {missing}; run with ARCHSPEC_UPDATE_GOLDEN=1"
    stale = [p.name for p in CORPUS.glob("*.expected") if not p.with_suffix(".yaml").is_file()]
    assert not stale, f"golden files without a corpus file: {stale}"


# -- each corpus file --------------------------------------------------------------------------------------


@pytest.fixture
def in_root(root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI prints paths relative to the working folder; the goldens are written from the repository root."""
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_corpus_golden(path: Path, cli, in_root: Path):
    r = _validate(cli, _rel(path))
    assert r.code == 2, f"exit code {r.code}\nstdout: {r.out}\nstderr: {r.err}"
    assert "Traceback" not in r.err + r.out
    assert "internal error" not in r.err
    assert r.out == ""
    golden = path.with_suffix(".expected")
    if UPDATE:
        golden.write_text(r.err, encoding="utf-8")
        return
    assert golden.is_file(), f"no golden {golden.name}; run with ARCHSPEC_UPDATE_GOLDEN=1"
    assert r.err == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_corpus_first_diagnostic_is_where_expected(path: Path, cli, in_root: Path):
    code, line, where = _expectation(path)
    r = _validate(cli, _rel(path))
    heads = _headlines(r.err)
    assert heads, f"no `file:line:col: error[CODE]` headline in:\n{r.err}"
    first = heads[0]
    got = (first.group("code"), first.group("file"), int(first.group("line")))
    assert got == (code, where, line), f"expected {code} at {where}:{line}, first diagnostic is:\n{r.err}"
    assert r.err.splitlines()[0].startswith(f"{where}:{line}:")


@pytest.mark.parametrize("name", ["14_undefined_reference", "08_unknown_op", "21_extends_cycle"])
def test_corpus_json_format(name: str, cli, in_root: Path):
    path = CORPUS / f"{name}.yaml"
    code, line, where = _expectation(path)
    r = cli("validate", "--format", "json", _rel(path))
    assert r.code == 2
    assert "Traceback" not in r.err + r.out
    results = json.loads(r.out)
    assert isinstance(results, list) and len(results) == 1
    result = results[0]
    assert result["valid"] is False
    assert result["spec"] == _rel(path)
    first = result["diagnostics"][0]
    assert (first["code"], first["file"], first["line"]) == (code, where, line)
    assert first["severity"] == "error" and isinstance(first["col"], int) and first["message"]
    # the JSON and the text report list the same diagnostics
    text = _validate(cli, _rel(path))
    heads = _headlines(text.err)
    assert [(d["code"], d["file"], d["line"], d["col"]) for d in result["diagnostics"]] == [
        (h.group("code"), h.group("file"), int(h.group("line")), int(h.group("col"))) for h in heads]


@pytest.mark.parametrize("name", ["33_repeat_billion", "26_alias_inside_own_anchor", "28_overflow_power",
                                  "29_overflow_multiply", "34_block_recursion", "80_expression_work_budget"])
def test_corpus_budgets_are_fast(name: str, cli, in_root: Path):
    start = time.perf_counter()
    r = cli("validate", _rel(CORPUS / f"{name}.yaml"))
    elapsed = time.perf_counter() - start
    assert r.code == 2
    assert elapsed < FAST_SECONDS, f"{name} took {elapsed:.2f}s"


def test_corpus_nested_repeat_budget_is_fast(cli, in_root: Path):
    start = time.perf_counter()
    r = cli("validate", "--max-nodes", "100000", _rel(CORPUS / "69_nested_repeat_budget.yaml"))
    elapsed = time.perf_counter() - start
    assert r.code == 2 and "error[E500]" in r.err
    assert elapsed < FAST_SECONDS, f"took {elapsed:.2f}s"


def test_python_tag_is_never_executed(cli, in_root: Path, tmp_path: Path):
    marker = tmp_path / "pwned"
    spec = tmp_path / "tag.yaml"
    spec.write_text(f"archspec: 1\ndescription: !!python/object/apply:os.system ['touch {marker}']\n"
                    "input: [3, 32, 32]\nnetwork:\n  - fc: {op: linear, out: 10}\n", encoding="utf-8")
    r = cli("validate", spec)
    assert r.code == 2 and "error[E008]" in r.err
    assert not marker.exists()


# -- generated inputs (never committed) ------------------------------------------------------------------


def _billion_laughs() -> str:
    lines = ["archspec: 1", "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("network: *a8")
    return "\n".join(lines) + "\n"


def _write_huge(path: Path) -> None:
    """A 50 MB file, written sparsely: a valid-looking head, then a hole up to the size."""
    with path.open("wb") as f:
        f.write(b"archspec: 1\nname: huge\ninput: [3, 32, 32]\nnetwork:\n")
        f.truncate(50 * 1024 * 1024)


GENERATED = {
    # name: (content or writer, expected code, must be fast)
    "empty": (b"", "E004", False),
    "only_comments": (b"# a spec with nothing in it\n\n   # indented comment\n", "E004", False),
    "binary": (os.urandom(200) + b"\x00" + os.urandom(200), "E003", False),
    "latin1": ("archspec: 1\ndescription: caf\u00e9 au lait\n".encode("latin-1"), "E003", False),
    "huge_50mb": (_write_huge, "E002", True),
    "billion_laughs": (_billion_laughs().encode(), "E009", True),
    "deep_flow_lists": (b"archspec: 1\nmeta: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "E010", True),
    "top_level_list": (b"- archspec: 1\n- network: [{fc: {op: linear, out: 10}}]\n", "E100", False),
    "two_documents": (b"archspec: 1\nname: one\n---\narchspec: 1\nname: two\n", "E005", False),
}


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_invalid_input(name: str, cli, tmp_path: Path):
    content, code, fast = GENERATED[name]
    path = tmp_path / f"{name}.yaml"
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    start = time.perf_counter()
    r = cli("validate", path)
    elapsed = time.perf_counter() - start
    assert r.code == 2, f"exit code {r.code}\n{r.err}"
    assert "Traceback" not in r.err + r.out
    assert "internal error" not in r.err
    heads = r.err.splitlines()
    assert heads and f"error[{code}]" in heads[0], r.err
    assert str(path.name) in heads[0]
    if fast:
        assert elapsed < FAST_SECONDS, f"{name} took {elapsed:.2f}s"


def test_generated_latin1_points_at_the_byte(cli, tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("archspec: 1\ndescription: caf\u00e9\n".encode("latin-1"))
    r = cli("validate", path)
    assert r.code == 2
    assert ":2:17: error[E003]: byte 0xe9 is not valid UTF-8" in r.err


def test_generated_json_for_binary_file(cli, tmp_path: Path):
    path = tmp_path / "blob.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    r = cli("validate", "--format", "json", path)
    assert r.code == 2
    (result,) = json.loads(r.out)
    assert result["valid"] is False and result["diagnostics"][0]["code"] == "E003"
