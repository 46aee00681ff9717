"""A library imported by a spec gives it params, blocks, recipes and constraints, never its name or description."""

import textwrap

import archspec


def test_an_imported_librarys_name_is_not_the_spec_name(tmp_path):
    """Before: a spec without `name:` was called by the name its library gives itself."""
    (tmp_path / "lib.yaml").write_text(textwrap.dedent("""\
    archspec: 1
    name: my_block_library
    description: Blocks for small nets.
    params: {width: 8}
    """), encoding="utf-8")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(textwrap.dedent("""\
    archspec: 1
    imports: [lib.yaml]
    input: [3, 8, 8]
    network:
      - conv: {op: conv, out: =width, kernel: 3, pad: 1}
    """), encoding="utf-8")
    loaded = archspec.load(spec)
    assert loaded.name == "tiny" and loaded.description == ""
    assert archspec.compile(spec).params == 8 * 3 * 9  # the library's params still count
