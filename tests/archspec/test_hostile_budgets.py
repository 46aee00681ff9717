"""Issue "Hostile input", findings 18, 21, 22: budgets and verdicts a hostile file could get around (each test
fails on the code before its fix).

18. one legal 860-character `when:` cost 130 ms per copy, multiplied by `repeat` (1,000 copies: 133 s): the work
    of all the expressions of one network is now counted against a budget (E501, at the expression, naming its
    cost and the fix), and each expression text is parsed once, its error too;
21. the schema verdict cache was trusted blindly: an empty file with the right name let `network: 5` through, to
    crash the expander. A verdict now holds an HMAC under a private key of the user's own and is believed only
    if it verifies; and a file the schema never saw gets diagnostics from the expander and the merge, not a crash;
22. (part) an `imports:`/`extends:` naming a folder or a FIFO says what it is, and a near miss never suggests one.
"""

from __future__ import annotations

import os
import stat
import textwrap
import time
from pathlib import Path

import pytest

from archspec.lang.expr import ExprError, evaluate, metered, parse
from archspec.lang.expr import syntax
from limits import time_limit


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------------------------------- 18. expression work


def _terms(unit: str, length: int, tail: str = "") -> str:
    """`unit + unit + ... tail`, as long as fits in `length` characters."""
    count = (length - len(tail)) // (len(unit) + 3)
    return " + ".join([unit] * count) + tail


HEAVY_WHEN = _terms("max([0.5] * 10000)", 860, " > 0")  # legal: every list is within the 10,000-item budget


def _repeat_spec(tmp_path: Path, when: str, count: int) -> Path:
    return write(tmp_path / "mine.yaml", f"""\
        archspec: 1
        extends: archspec:cifar_resnet20.yaml
        network:
          insert_after:
            relu:
              - units:
                  repeat: {count}
                  when: "{when}"
                  op: relu
        """)


def test_a_costly_when_in_a_large_repeat_is_refused_at_its_line_in_seconds(tmp_path, cli):
    """Before: 1,000 copies of an 841-character `when:` ran for 60-130 s, then passed."""
    assert 800 <= len(HEAVY_WHEN) <= 860
    spec = _repeat_spec(tmp_path, HEAVY_WHEN, 1000)
    start = time.perf_counter()
    with time_limit(20, "validate of 1,000 copies of a costly `when:`"):
        r = cli("validate", spec)
    elapsed = time.perf_counter() - start
    assert r.code == 2, r.err
    assert "internal error" not in r.err and "Traceback" not in r.err
    head, *rest = r.err.splitlines()
    assert f"{spec.name}:8:18: error[E501]: " in head, r.err  # at the first character of the `when:`
    assert "2,000,000 steps of work" in head and "steps each time it is computed" in head, head
    assert "has been computed" in head
    assert any("help:" in line and "as a param" in line and "--max-nodes" in line for line in rest), r.err
    assert elapsed < 10, f"refused only after {elapsed:.1f} s"


def test_the_budget_is_for_all_copies_together_and_grows_with_max_nodes(tmp_path, cli):
    """Five copies of the costly `when:` pass the default budget; ten times the node budget lets them through."""
    spec = _repeat_spec(tmp_path, HEAVY_WHEN, 5)
    with time_limit(30, "validate of 5 copies"):
        refused = cli("validate", spec)
        allowed = cli("validate", "--max-nodes", "1000000", spec)
    assert refused.code == 2 and "error[E501]" in refused.err, refused.err
    assert allowed.code == 0, allowed.err


def test_a_long_cheap_when_in_a_large_repeat_still_compiles(tmp_path, cli):
    """The budget is for work, not for length or copies: 1,000 copies of an 850-character chain of comparisons."""
    when = " and ".join(f"n > {i} - 1000 and n < 100 + {i}" for i in range(25))
    assert 800 <= len(when) <= 860
    with time_limit(30, "validate of 1,000 copies of a cheap `when:`"):
        r = cli("validate", _repeat_spec(tmp_path, when, 1000))
    assert r.code == 0, r.err
    assert "1,087 nodes" in r.out


def test_a_costly_expression_in_a_block_used_many_times_is_counted_too(tmp_path, cli):
    """Not only `repeat`: each use of a block computes its expressions again."""
    uses = "\n".join(f"  - u{i}: {{use: unit}}" for i in range(40))
    spec = tmp_path / "uses.yaml"
    spec.write_text("archspec: 1\ninput: [3, 8, 8]\nblocks:\n  unit:\n    body:\n"
                    f"      - r: {{op: relu, when: \"{HEAVY_WHEN}\"}}\nnetwork:\n{uses}\n")
    with time_limit(20, "validate of 40 uses of a block with a costly `when:`"):
        r = cli("validate", spec)
    assert r.code == 2 and "uses.yaml:6:" in r.err and "error[E501]" in r.err, r.err


def test_costly_params_share_one_budget_and_say_so_once(tmp_path, cli):
    """Params and constraints are computed when the spec is loaded, before any expansion: 300 params of 60,000
    steps each (18M in all, ~10 s) are refused at the first one past the spec's budget, with one E501."""
    costly = '"=max([0.5] * 10000) + max([0.5] * 10000) + max([0.5] * 10000)"'
    params = "\n".join(f"  p{i}: {{type: float, default: {costly}}}" for i in range(300))
    spec = tmp_path / "params.yaml"
    spec.write_text(f"archspec: 1\nextends: archspec:cifar_resnet20.yaml\nparams:\n{params}\n")
    started = time.perf_counter()
    with time_limit(30, "validate of 300 costly params"):
        r = cli("validate", spec)
    assert r.code == 2 and r.err.count("error[") == 1 and "error[E501]" in r.err, r.err
    assert "a spec's params and constraints share this budget" in r.err
    assert time.perf_counter() - started < 5


def test_the_shipped_specs_are_far_from_the_budget():
    from archspec.compiler.expand.expander import Expander
    from archspec.lang.spec import load_spec

    expander = Expander(load_spec("cifar_resnet1202"))
    expander.run()
    assert 0 < expander.b.meter.spent * 20 < expander.b.max_work, expander.b.meter.spent


def test_the_meter_names_the_cost_of_the_expression_that_ran_it_out():
    tree = parse("sum([1] * 5000)")
    with metered(50_000):
        for _ in range(4):
            evaluate(tree, {}.__getitem__)
        with pytest.raises(ExprError) as e:
            for _ in range(10):
                evaluate(tree, {}.__getitem__)
    assert e.value.code == "E501" and e.value.offset == 0
    assert "about 10,0" in e.value.message and "each time it is computed" in e.value.message
    with metered(1_000), pytest.raises(ExprError) as first:
        evaluate(tree, {}.__getitem__)
    assert "for the first time" in first.value.message
    assert evaluate(tree, {}.__getitem__) == 5000  # outside `metered`: no budget across evaluations


def test_each_expression_text_is_parsed_once_its_error_too(monkeypatch):
    made = []

    class Counting(syntax._Parser):
        def __init__(self, src: str) -> None:
            made.append(src)
            super().__init__(src)

    monkeypatch.setattr(syntax, "_Parser", Counting)
    syntax.parse.cache_clear()
    good, bad = "n * 2 + 1 if n > 0 else 0", "n * (2 +"
    assert parse(good) is parse(good)
    errors = []
    for _ in range(3):
        with pytest.raises(ExprError) as e:
            parse(bad)
        errors.append(e.value)
    assert made == [good, bad]
    errors[0].offset += 100  # a caller moves an error into the text around it: the next one is not moved
    assert errors[1] is not errors[0] and errors[1].offset == errors[2].offset != errors[0].offset


# ---------------------------------------------------------------------------------------------- 21. verdict cache

NOT_A_LIST = "archspec: 1\ninput: [3, 8, 8]\nnetwork: 5\n"
GOOD = "archspec: 1\ninput: [3, 8, 8]\nnetwork:\n  - c: {op: conv, out: 4, kernel: 1}\n"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ARCHSPEC_CACHE_DIR", str(folder))
    monkeypatch.delenv("ARCHSPEC_NO_CACHE", raising=False)
    return folder


def _verdict_path(text: str) -> Path:
    from archspec.lang.schema import SchemaChecker

    checker = SchemaChecker(cache=True)
    return checker.cache_dir / checker.digest(text)


def _other_users_verdict(text: str) -> bytes:
    """A well-formed verdict for `text`, sealed with a key that is not this cache's."""
    import hashlib
    import hmac

    from archspec.lang.schema import check

    name = _verdict_path(text).name.encode()
    return hmac.new(os.urandom(32), check._VERDICT_LABEL + name, hashlib.sha256).hexdigest().encode()


@pytest.mark.parametrize("forged", ["empty", "zeros", "other key"])
def test_a_forged_verdict_does_not_let_an_invalid_spec_through(tmp_path, cli, cache, forged):
    """Before: an empty file named by the digest skipped the schema; `network: 5` then crashed (exit 1)."""
    spec = tmp_path / "five.yaml"
    spec.write_text(NOT_A_LIST)
    verdict = _verdict_path(NOT_A_LIST)
    verdict.parent.mkdir(parents=True, exist_ok=True)
    verdict.write_bytes({"empty": b"", "zeros": b"0" * 64, "other key": _other_users_verdict(NOT_A_LIST)}[forged])
    r = cli("validate", spec)
    assert r.code == 2, r.err
    assert "internal error" not in r.err and "Traceback" not in r.err
    assert "five.yaml:3:10: error[E100]: `network` should be a list" in r.err, r.err
    assert not verdict.exists()  # a verdict that does not verify is removed


def test_the_cache_still_answers_and_its_key_is_private(tmp_path, cli, cache, monkeypatch):
    from archspec.lang.schema import check

    checked = []
    real = check.SchemaChecker.check
    monkeypatch.setattr(check.SchemaChecker, "check", lambda self, doc, display: checked.append(display) or
                        real(self, doc, display))
    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD)
    assert cli("validate", spec).code == 0
    assert cli("validate", spec).code == 0
    assert len(checked) == 1, checked  # the second run is a hit
    verdict = _verdict_path(GOOD)
    assert len(verdict.read_bytes()) == 64 and verdict.read_bytes() != b"0" * 64
    key = cache / check.KEY_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_size == 32
    assert "1 entry" in cli("cache").out
    assert cli("cache", "clear").code == 0 and key.exists() and not verdict.exists()


def test_a_key_others_could_read_or_replace_turns_the_cache_off(tmp_path, cli, cache, monkeypatch):
    from archspec.lang.schema import check

    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD)
    assert cli("validate", spec).code == 0
    (cache / check.KEY_NAME).chmod(0o644)
    checked = []
    real = check.SchemaChecker.check
    monkeypatch.setattr(check.SchemaChecker, "check", lambda self, doc, display: checked.append(display) or
                        real(self, doc, display))
    assert cli("validate", spec).code == 0 and cli("validate", spec).code == 0
    assert len(checked) == 2, checked  # no verdict is believed, nor written
    (cache / check.KEY_NAME).unlink()
    (cache / check.KEY_NAME).symlink_to(tmp_path / "elsewhere.key")
    assert cli("validate", spec).code == 0 and len(checked) == 3
    assert not (tmp_path / "elsewhere.key").exists()  # a key is never written through a link


def test_a_fifo_as_a_verdict_never_blocks_nor_counts(tmp_path, cli, cache):
    spec = tmp_path / "five.yaml"
    spec.write_text(NOT_A_LIST)
    verdict = _verdict_path(NOT_A_LIST)
    verdict.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(verdict)
    with time_limit(20, "validate with a FIFO as its verdict"):
        r = cli("validate", spec)
    assert r.code == 2 and "error[E100]" in r.err and "internal error" not in r.err, r.err


UNCHECKED = {
    "network a number": ("network: 5\n", 3),
    "network a string": ("network: abc\n", 3),
    "a body a number": ("blocks: {b: {body: 5}}\nnetwork:\n  - x: {use: b}\n", 3),
    "block params a number": ("blocks: {b: {params: 5, body: [{r: {op: relu}}]}}\nnetwork:\n  - x: {use: b}\n", 3),
    "cases a number": ("network:\n  - x: {cases: 5}\n", 4),
    "when a list": ("network:\n  - x: {op: relu, when: [1]}\n", 4),
    "imports a number": ("imports: 5\nnetwork:\n  - x: {op: relu}\n", 3),
    "extends a number": ("extends: 5\nnetwork:\n  - x: {op: relu}\n", 3),
    "blocks a number": ("blocks: 5\nnetwork:\n  - x: {op: relu}\n", 3),
}


@pytest.mark.parametrize("case", sorted(UNCHECKED))
def test_a_file_the_schema_never_saw_gets_diagnostics_not_a_crash(tmp_path, cli, monkeypatch, case):
    """Defence in depth: even with the schema check skipped (as a forged verdict did), no internal error."""
    from archspec.lang.schema import check

    monkeypatch.setattr(check.SchemaChecker, "check_text", lambda self, doc, display, text: [])
    body, line = UNCHECKED[case]
    spec = tmp_path / "s.yaml"
    spec.write_text("archspec: 1\ninput: [3, 8, 8]\n" + body)
    r = cli("validate", spec)
    assert r.code == 2, r.err
    assert "internal error" not in r.err and "Traceback" not in r.err
    first = r.err.splitlines()[0]
    assert f"s.yaml:{line}:" in first and "error[E100]" in first, r.err


# ---------------------------------------------------------------------------------------------- 22. folders, FIFOs


def _importing(tmp_path: Path, key: str, target: str) -> Path:
    if key == "imports":
        return write(tmp_path / "s.yaml", f"""\
            archspec: 1
            imports: [{target}]
            input: [3, 8, 8]
            network:
              - c: {{op: conv, out: 4, kernel: 1}}
            """)
    return write(tmp_path / "s.yaml", f"archspec: 1\nextends: {target}\n")


@pytest.mark.parametrize("key", ["imports", "extends"])
def test_a_folder_named_as_a_spec_file_says_so(tmp_path, cli, key):
    """Before: `which is a folder`, with the help `name a .yaml file` (which one?)."""
    (tmp_path / "lib.yaml").mkdir()
    (tmp_path / "lib.yaml" / "blocks.yaml").write_text("archspec: 1\nparams: {w: 4}\n")
    (tmp_path / "lib.yaml" / "notes.txt").write_text("not a spec\n")
    r = cli("validate", _importing(tmp_path, key, "lib.yaml"))
    assert r.code == 2, r.err
    assert f"error[E120]: `{key}` names lib.yaml, which is a folder, not a spec file" in r.err, r.err
    assert "help: name a .yaml file in it (`blocks.yaml`)" in r.err, r.err


@pytest.mark.parametrize("key", ["imports", "extends"])
def test_a_fifo_named_as_a_spec_file_says_so_without_blocking(tmp_path, cli, key):
    """Before: `not a regular file (a FIFO, a socket or a device)`: which of them?"""
    os.mkfifo(tmp_path / "pipe.yaml")
    with time_limit(20, f"validate of a spec whose `{key}` is a FIFO"):
        r = cli("validate", _importing(tmp_path, key, "pipe.yaml"))
    assert r.code == 2, r.err
    assert f"`{key}` names pipe.yaml, which is not a regular file but a named pipe (FIFO)" in r.err, r.err
    assert "a pipe is read only as the spec itself" in r.err


def test_a_near_miss_never_suggests_a_fifo_or_a_folder(tmp_path, cli):
    """Before: `imports: [fifo]` beside the FIFO fifo.yaml: "did you mean `fifo.yaml`?", which is refused in turn."""
    os.mkfifo(tmp_path / "fifo.yaml")
    (tmp_path / "fifi.yaml").mkdir()
    (tmp_path / "fifa.yaml").write_text("archspec: 1\nparams: {w: 4}\n")
    with time_limit(20, "validate of a near miss beside a FIFO"):
        r = cli("validate", _importing(tmp_path, "imports", "fifo"))
    assert r.code == 2 and "which does not exist" in r.err, r.err
    help_line = next(line for line in r.err.splitlines() if "help:" in line)
    assert "fifo.yaml" not in help_line and "fifi.yaml" not in help_line, help_line
    assert "fifa.yaml" in help_line, help_line
