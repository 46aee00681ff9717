"""Property: no change to a param of a shipped spec is a silent no-op. Every mutation of a param's name (a typo,
in a child spec file, in a library of one's own that a child imports, or with `--set`) or of its value (each other choice, a flipped bool, a number moved, a list
changed) either changes the network that is built (its nodes, ops, attributes and edges) or is refused with a
located diagnostic. A change that builds the same network while saying `ok` would be a setting silently ignored.
"""

from __future__ import annotations

import json
import random
import textwrap

import pytest

from archspec.compiler.expand import expand
from archspec.lang.diagnostics import SpecError
from archspec.lang.spec import load_spec

SPECS = ["cifar_resnet20", "cifar_plain20", "resnet18", "resnet34_a", "resnet50", "resnet50d", "resnet50s",
         "seresnext50_32x4d", "preact_resnet110", "wrn28_10", "resnetv2_50", "plain18"]
BLOCKS = ["basic", "bottleneck", "plain_basic", "plain_bottleneck", "preact_basic", "preact_bottleneck"]


def signature(spec) -> tuple:
    exp = expand(spec)
    return tuple((n.name, n.op, json.dumps(n.attrs, sort_keys=True, default=str), tuple(n.inputs))
                 for n in exp.nodes.values())


def other_values(decl, value) -> list:
    """Values of the param's type other than `value`."""
    if decl.choices:
        return [c for c in decl.choices if c != value]
    if decl.type == "template":
        return [b for b in BLOCKS if b != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1] + ([value * 2] if value > 1 else []) + ([value - 1] if value > 0 else [])
    if isinstance(value, float):
        return [round(value + 0.1, 6), value / 2 if value else 0.05]
    if isinstance(value, str):
        return [value + "x"]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [[value[0] + 1] + value[1:], value[:-1], value + [value[-1]]]
    return []


def typos(name: str, rng: random.Random) -> list[str]:
    """A dropped, a doubled and a swapped character, and one replaced."""
    i = rng.randrange(len(name))
    j = min(i + 1, len(name) - 1)
    swapped = name[:i] + name[j] + name[i] + name[j + 1:] if j > i else name + "s"
    out = {name[:i] + name[i + 1:], name[:i] + name[i] * 2 + name[i:], swapped,
           name[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz_") + name[i + 1:]}
    return sorted(t for t in out if t != name and t and (t[0].isalpha() or t[0] == "_"))


def outcome(ref, overrides: list[str], base: tuple) -> str:
    try:
        sig = signature(load_spec(ref, overrides))
    except SpecError as e:
        assert all(d.loc is not None for d in e.diagnostics), e
        return "refused"
    return "changed" if sig != base else "SILENT"


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
def test_no_value_mutation_of_a_param_is_a_silent_no_op(name):
    spec = load_spec(name)
    base = signature(spec)
    seen = {"refused": 0, "changed": 0}
    silent = []
    for param, entry in spec.param_table.entries.items():
        for value in other_values(entry.decl, spec.params.get(param)):
            text = value if isinstance(value, str) else json.dumps(value)
            result = outcome(name, [f"{param}={text}"], base)
            if result == "SILENT":
                silent.append(f"--set {param}={text}")
            else:
                seen[result] += 1
    assert not silent, f"{name}: these build the same network and say ok: {silent}"
    assert seen["changed"] >= 3  # the fuzzer does reach the network (a mutation that refuses all proves nothing)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECS)
def test_no_name_mutation_of_a_param_is_a_silent_no_op(name, tmp_path):
    rng = random.Random(name)
    spec = load_spec(name)
    base = signature(spec)
    silent = []
    for param in spec.param_table.names():
        value = spec.params.get(param)
        if value is None:
            continue
        text = json.dumps(value)
        for typo in typos(param, rng):
            if typo in spec.params:
                continue
            if outcome(name, [f"{typo}={text}"], base) == "SILENT":
                silent.append(f"--set {typo}")
            child = tmp_path / f"{typo}.yaml"
            child.write_text(textwrap.dedent(f"""\
                archspec: 1
                extends: "archspec:{name}.yaml"
                params: {{{typo}: {text}}}
                """))
            if outcome(child, [], base) == "SILENT":
                silent.append(f"{typo}: in a child spec")
            library = tmp_path / f"lib_{typo}.yaml"  # the same typo in a library of one's own, imported beside
            library.write_text(f"archspec: 1\nparams: {{{typo}: {text}}}\n")
            importer = tmp_path / f"imports_{typo}.yaml"
            importer.write_text(f'archspec: 1\nextends: "archspec:{name}.yaml"\nimports: [{library.name}]\n')
            if outcome(importer, [], base) == "SILENT":
                silent.append(f"{typo}: in an imported library")
    assert not silent, f"{name}: these typos are silently accepted: {silent}"


def test_a_typo_in_the_spec_that_declares_the_params_is_refused(tmp_path, specs_dir):
    """The spec's own file (here a copy of resnet50.yaml) misspells a library param: E214 with the near miss."""
    text = (specs_dir / "resnet50.yaml").read_text().replace("lib/resnet.yaml", "archspec:lib/resnet.yaml") \
        .replace("recipes/imagenet.yaml", "archspec:recipes/imagenet.yaml")
    for typo in ("stride_onn", "shortcut_", "blocks"):
        original = {"stride_onn": "stride_on", "shortcut_": "shortcut", "blocks": "block"}[typo]
        mutated = text.replace(f"\n  {original}:", f"\n  {typo}:", 1)
        assert mutated != text
        path = tmp_path / f"{typo}.yaml"
        path.write_text(mutated)
        with pytest.raises(SpecError) as e:
            signature(load_spec(path))
        d = e.value.diagnostics[0]  # (settings that only the misspelled param's reader read follow it)
        assert d.code == "E214" and d.loc.line == mutated.splitlines().index(
            next(l for l in mutated.splitlines() if l.startswith(f"  {typo}:"))) + 1
        assert f"did you mean `{original}`?" in d.hint, d
        assert all(x.code == "E214" for x in e.value.diagnostics)
