"""Issue "Hostile input", the gaps the audit of issues 20 and 21 left (notes/issue20_21_audit.md, "Gaps"); each
test fails on the code before its fix:

G6. a FIFO whose writer holds it open without writing blocked `validate`, given as the spec or found by name
    through ARCHSPEC_PATH;
G7. spec text reached the terminal raw (ESC, BEL, OSC sequences) through an E206 constraint `message:`, E101
    unknown keys and attributes, a param's `doc:` (E213 help, `explain --origin`) and `--set` values in E213;
G11. Markdown tables escaped `|` and HTML but not link or image syntax;
G12. when stderr's reader went away early, an invalid spec exited 0 (validate) or 1 (compile), not 2.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from limits import time_limit

ESC, BEL = "\x1b", "\x07"
TITLE = "\x1b]0;PWNED\x07"  # an OSC sequence that sets the terminal's title
TITLE_SHOWN = "\\x1b]0;PWNED\\x07"


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def raw_free(text: str) -> bool:
    return ESC not in text and BEL not in text


# ---------------------------------------------------------------------------------------------- G6. FIFOs

@pytest.fixture
def held_fifo(tmp_path):
    """Make a FIFO and hold it open for writing (and reading, so that opening it does not wait) without writing:
    a reader of it sees neither data nor an end of file."""
    made = []

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        made.append(os.open(path, os.O_RDWR | os.O_NONBLOCK))
        return path

    yield make
    for fd in made:
        os.close(fd)


@pytest.mark.parametrize("name", ["evil", "resnet18"])
def test_a_fifo_found_by_name_through_archspec_path_is_refused_without_waiting(tmp_path, cli, held_fifo, monkeypatch,
                                                                              name):
    """Before: `validate evil` waited for ever on p/evil.yaml; a FIFO named like a shipped spec must not be
    skipped for the shipped one either."""
    held_fifo(tmp_path / "p" / f"{name}.yaml")
    monkeypatch.setenv("ARCHSPEC_PATH", str(tmp_path / "p"))
    with time_limit(20, f"validate {name} with a FIFO in ARCHSPEC_PATH"):
        r = cli("validate", name)
    assert r.code == 2, r.err
    [line] = r.err.strip().splitlines()[:1]
    assert f"error[E123]: `{name}` names " in line and f"{name}.yaml (found through ARCHSPEC_PATH), which is not a " \
        "regular file but a named pipe (FIFO)" in line, r.err
    assert "help: a spec found by its name must be a regular .yaml file" in r.err


def test_a_fifo_found_by_name_with_no_writer_says_what_it_is(tmp_path, cli, monkeypatch):
    """Before: `the spec file is empty` (E004), as if it were a file."""
    (tmp_path / "p").mkdir()
    os.mkfifo(tmp_path / "p" / "evil.yaml")
    monkeypatch.setenv("ARCHSPEC_PATH", str(tmp_path / "p"))
    with time_limit(20, "validate evil with a FIFO in ARCHSPEC_PATH"):
        r = cli("validate", "evil")
    assert r.code == 2 and "which is not a regular file but a named pipe (FIFO)" in r.err and "E004" not in r.err


def test_a_fifo_given_as_the_spec_with_an_idle_writer_is_an_error_after_the_pipe_timeout(tmp_path, cli, held_fifo,
                                                                                        monkeypatch):
    fifo = held_fifo(tmp_path / "f.yaml")
    monkeypatch.setenv("ARCHSPEC_PIPE_TIMEOUT", "1")
    start = time.monotonic()
    with time_limit(20, "validate of a FIFO whose writer is idle"):
        r = cli("validate", str(fifo))
    assert time.monotonic() - start < 10
    assert r.code == 2, r.err
    first = r.err.splitlines()[0]
    assert first.endswith("f.yaml: error[E001]: this is a pipe, and its writer sent no end of file within 1 s"), first
    assert "ARCHSPEC_PIPE_TIMEOUT" in r.err


def test_the_pipe_timeout_holds_by_default_and_a_bad_value_is_named(tmp_path, cli, monkeypatch):
    from archspec.lang import yamlsrc

    monkeypatch.delenv("ARCHSPEC_PIPE_TIMEOUT", raising=False)
    assert yamlsrc.pipe_timeout() == yamlsrc.PIPE_TIMEOUT == 10
    monkeypatch.setenv("ARCHSPEC_PIPE_TIMEOUT", "soon")
    os.mkfifo(tmp_path / "f.yaml")
    fd = os.open(tmp_path / "f.yaml", os.O_RDWR | os.O_NONBLOCK)
    try:
        with time_limit(20, "validate of a FIFO with a bad ARCHSPEC_PIPE_TIMEOUT"):
            r = cli("validate", str(tmp_path / "f.yaml"))
    finally:
        os.close(fd)
    assert r.code == 2 and "ARCHSPEC_PIPE_TIMEOUT must be a number of seconds above 0, got `soon`" in r.err, r.err


def test_a_fifo_whose_writer_sends_the_spec_is_read(tmp_path, cli):
    """The pipe keeps working as a pipe: a writer that sends the spec and closes is read at once."""
    import threading

    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    text = "archspec: 1\ninput: [3, 8, 8]\nnetwork:\n  - c: {op: conv, out: 4, kernel: 1}\n"

    def writer():
        with open(fifo, "w") as f:  # waits for the reader
            time.sleep(0.3)
            f.write(text)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    with time_limit(20, "validate of a FIFO with a writer"):
        r = cli("validate", str(fifo))
    t.join(5)
    assert r.code == 0 and "ok (f, 1 nodes)" in r.out, r.err


# ---------------------------------------------------------------------------------------------- G7. raw spec text

def test_a_constraint_message_is_printed_escaped(tmp_path, cli):
    spec = write(tmp_path / "cmsg.yaml", r"""
        archspec: 1
        params: {n: 1}
        constraints:
          - {check: "=n > 5", message: "too small \e]0;PWNED\a\e[2K"}
        input: [3, 8, 8]
        network:
          - c: {op: conv, out: 4, kernel: 1}
        """)
    r = cli("validate", spec)
    assert r.code == 2 and raw_free(r.err), repr(r.err)
    assert f"error[E206]: too small {TITLE_SHOWN}\\x1b[2K" in r.err.splitlines()[0]


def test_unknown_keys_and_attributes_are_printed_escaped(tmp_path, cli):
    spec = write(tmp_path / "key.yaml", r"""
        archspec: 1
        input: [3, 8, 8]
        "\e]0;PWNED\a": 1
        network:
          - c: {op: conv, out: 4, kernel: 1, "\e[2Jx": 3}
        """)
    r = cli("validate", spec)
    assert r.code == 2 and raw_free(r.err), repr(r.err)
    assert f"error[E101]: unknown top-level key `{TITLE_SHOWN}`" in r.err
    assert "error[E101]: unknown attribute `\\x1b[2Jx` of op `conv`" in r.err


DOC_SPEC = r"""
    archspec: 1
    params:
      n: {type: int, min: 1, default: 1, doc: "blocks \e]0;PWNED\a per stage"}
    input: [3, 8, 8]
    network:
      - c: {op: conv, out: =n * 4, kernel: 1}
    """


def test_a_param_doc_is_printed_escaped_in_help(tmp_path, cli):
    r = cli("validate", write(tmp_path / "doc.yaml", DOC_SPEC), "--set", "n=abc")
    assert r.code == 2 and raw_free(r.err), repr(r.err)
    assert f"help: `n` is int, at least 1 (blocks {TITLE_SHOWN} per stage)" in r.err


@pytest.mark.parametrize("name", [None, "n"])
def test_a_param_doc_is_printed_escaped_by_explain_origin(tmp_path, cli, name):
    r = cli("explain", "--origin", write(tmp_path / "doc.yaml", DOC_SPEC), *([name] if name else []))
    assert r.code == 0, r.err
    assert raw_free(r.out), repr(r.out)
    assert f"int, at least 1 (blocks {TITLE_SHOWN} per stage); default 1" in r.out


def test_a_set_value_is_echoed_escaped(tmp_path, cli):
    r = cli("validate", write(tmp_path / "doc.yaml", DOC_SPEC), "--set", f"n={TITLE}")
    assert r.code == 2 and raw_free(r.err), repr(r.err)
    assert f"param `n` must be a whole number, got `{TITLE_SHOWN}`" in r.err


TAG_SPEC = """\
    archspec: 1
    params: {tag: {type: str, default: "a"}}
    input: [3, 8, 8]
    network:
      - c: {op: conv, out: 4, kernel: 1, when: "=tag != 'zz'"}
    """


@pytest.mark.parametrize("command", ["compile", "table", "diff"])
def test_a_set_value_in_a_reports_title_is_escaped(tmp_path, cli, command):
    """A string param read only by a `when:` reaches the title line (`tag  (tag.yaml; tag=...)`) unchecked."""
    spec = str(write(tmp_path / "tag.yaml", TAG_SPEC))
    r = cli(command, *([spec] * (2 if command == "diff" else 1)), "--set", f"tag={TITLE}")
    assert r.code == 0, r.err
    assert raw_free(r.out) and "tag=\\x1b]0;PWNED" in r.out.replace("\\\\", "\\"), r.out


def test_the_escaping_is_also_what_python_sees_and_json_stays_faithful(tmp_path, cli):
    import archspec
    from archspec.lang.diagnostics import SpecError

    spec = write(tmp_path / "doc.yaml", DOC_SPEC)
    with pytest.raises(SpecError) as e:
        archspec.compile(spec, n=TITLE)
    assert raw_free(str(e.value)) and TITLE_SHOWN in str(e.value)
    assert any(TITLE in d.message for d in e.value.diagnostics)  # the text as it was; printing escapes it
    r = cli("validate", "--format", "json", spec, "--set", f"n={TITLE}")
    assert r.code == 2 and raw_free(r.out)  # JSON's own escapes (\u001b)
    [result] = json.loads(r.out)
    assert f"got `{TITLE}`" in result["diagnostics"][0]["message"]


def test_a_source_line_with_a_bidi_override_is_quoted_escaped_with_the_caret_in_place(tmp_path, cli):
    """A character that reorders the line on screen (U+202E) is shown as its escape, and the caret still points
    at the word it underlines."""
    spec = tmp_path / "bidi.yaml"
    spec.write_text("archspec: 1\ninput: [3, 8, 8]\nnetwork:\n"
                    "  - c: {op: conv, out: 4, kernel: 1, note: \"\u202eab\", bogus: 1}\n", encoding="utf-8")
    r = cli("validate", spec)
    assert r.code == 2 and "\u202e" not in r.err, r.err
    lines = r.err.splitlines()
    i = next(i for i, line in enumerate(lines) if "unknown attribute `bogus`" in line)
    source, caret = lines[i + 1], lines[i + 2]
    assert "\\u202eab" in source
    start = caret.index("^")
    assert source[start:start + 5] == "bogus" and caret.count("^") == 5, (source, caret)


# ---------------------------------------------------------------------------------------------- G11. Markdown

def _unescaped(text: str, i: int) -> bool:
    """Is the character at `i` not escaped by a backslash (an even number of them before it)?"""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 0


def test_table_escapes_links_images_and_emphasis_from_the_spec(tmp_path, cli):
    spec = write(tmp_path / "md.yaml", """\
        archspec: 1
        name: "[click](javascript:alert(1)) ![i](http://evil/x.png)"
        input: [3, 8, 8]
        network:
          - conv1: {op: conv, out: 4, kernel: 3, pad: 1, stage: "*bold* _it_ `code` [r][x] a\\\\|b"}
        """)
    r = cli("table", str(spec))
    assert r.code == 0, r.err
    header, _, row = r.out.splitlines()[:3]
    assert header == "| stage | output size | [click\\](javascript:alert(1)) ![i\\](http://evil/x.png) |", header
    cell = row.split(" | ")[0][2:]
    assert cell == "\\*bold\\* \\_it\\_ \\`code\\` [r\\][x] a\\\\\\|b", cell
    for text in (header, cell):  # no `](` or `][` that could close a link's text, no active `*`, `_` or backtick
        for m in re.finditer(r"\]\s*[(\[]|[*`]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])", text):
            assert not _unescaped(text, m.start()), (text, m.start())
    assert all(line.replace("\\|", "").count("|") == 4 for line in r.out.splitlines()[:3])


def test_table_keeps_its_own_brackets_and_names_as_they_were(cli):
    """The paper's `[3x3, 64; 3x3, 64] x 2` and a stage `conv2_x` need no escapes: they make no link and no
    emphasis."""
    r = cli("table", "resnet18")
    assert r.code == 0, r.err
    assert "| conv2_x | 56x56 | 3x3 max pool, stride 2<br>[3x3, 64; 3x3, 64] x 2 |" in r.out


# ---------------------------------------------------------------------------------------------- G12. broken pipes

@pytest.fixture(scope="module")
def many_errors(tmp_path_factory) -> Path:
    """A spec with 1,500 dangling references: about 300 KiB of diagnostics, more than a pipe holds."""
    lines = ["archspec: 1", "input: [3, 8, 8]", "network:"]
    lines += [f"  - c{i}: {{op: conv, out: 4, kernel: 1, in: missing_{i}}}" for i in range(1500)]
    path = tmp_path_factory.mktemp("pipes") / "many.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("args, merged", [(["validate"], True), (["compile"], True),
                                          (["validate", "--format", "json"], False)])
def test_an_invalid_spec_exits_2_when_the_reader_leaves_early(many_errors, root, args, merged):
    """Before: `archspec validate bad 2>&1 | head -1` exited 0, compile 1 (a BrokenPipeError in the error's
    printing escaped)."""
    proc = subprocess.Popen([sys.executable, "-m", "archspec", *args, str(many_errors)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merged else subprocess.DEVNULL)
    first = proc.stdout.read(200)
    proc.stdout.close()  # the reader goes away, as `| head -c 200` does
    assert proc.wait(timeout=120) == 2, first
    assert b"E305" in first if merged else b'"valid": false' in first


def test_a_valid_spec_read_by_a_reader_that_leaves_still_exits_0(root):
    """The other side: a result cut short by its reader (`archspec compile ... --layers | head -1`) is no failure."""
    proc = subprocess.Popen([sys.executable, "-m", "archspec", "compile", "resnet152", "--layers"], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc.stdout.read(100)
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
