"""Diagrams: structure, not pixels. Box and edge counts per level, shapes on edges, collapsed runs, valid SVG from
the real `dot`, and what happens without `dot`."""

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec.compiler.analysis import compile_spec
from archspec.compiler.render import picture, render_graph

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz `dot` is not installed (CI installs it)")


def counts(name, level, **kw):
    p = picture(compile_spec(name), level, **kw)
    return len(p.boxes), len(p.edges), sum(e["skip"] for e in p.edges.values())


def test_stage_level_is_table1():
    p = picture(compile_spec("resnet50"), "stage")
    assert list(p.boxes) == ["input", "conv1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "head"]
    assert p.boxes["conv4_x"].lines[1] == "[1x1, 256; 3x3, 256; 1x1, 1024] x 6"
    assert [(a, b, e["shape"]) for (a, b), e in p.edges.items()][1] == ("conv1", "conv2_x", (64, 112, 112))


def test_layer_level_resnet18_counts():
    # 8 basic blocks: conv1, conv2, add (+ a projection in 3 of them), and input, stem conv, pool, avgpool,
    # flatten, fc; skip edges: 5 identity shortcuts + 3 projections (in and out)
    assert counts("resnet18", "layer") == (8 * 3 + 3 + 6, 8 * 3 + 5 + 3 * 2 + 2 + 3, 5 + 3 * 2)
    # unfolded: every op but the identity aliases
    c = compile_spec("resnet18")
    ops = sum(1 for n in c.graph.nodes_in_order() if n.op != "identity")
    assert counts("resnet18", "layer", fold=False)[0] == ops


def test_block_level_collapses_runs_of_identical_blocks():
    p = picture(compile_spec("resnet50"), "block")
    collapsed = {b.lines[0] for b in p.boxes.values() if b.kind == "block"}
    assert collapsed == {"bottleneck 64 x 2", "bottleneck 128 x 3", "bottleneck 256 x 5", "bottleneck 512 x 2"}
    assert sorted(p.clusters) == [f"cluster_layer{i}.0" for i in range(1, 5)]
    never = picture(compile_spec("resnet50"), "block", collapse=10**9)
    assert len(never.clusters) == 16 and not any(b.kind == "block" for b in never.boxes.values())


def test_resnet1202_block_level_is_small():
    p = picture(compile_spec("cifar_resnet1202"), "block")
    collapsed = [b.lines[0] for b in p.boxes.values() if b.kind == "block"]
    assert collapsed == ["basic 16 x 200", "basic 32 x 199", "basic 64 x 199"]
    assert len(p.boxes) < 30 and len(p.clusters) == 2


def test_skip_edges_are_marked_and_shapes_label_edges():
    p = picture(compile_spec("cifar_resnet20"), "layer")
    skips = [(a, b) for (a, b), e in p.edges.items() if e["skip"]]
    assert ("layer2.0.downsample", "layer2.0.add") in skips  # option A zero-pad feeds the add
    assert p.boxes["layer2.0.downsample"].skip
    assert p.edges[("conv1", "layer1.0.conv1")]["shape"] == (16, 32, 32)


@needs_dot
@pytest.mark.parametrize("name,level", [("resnet18", "layer"), ("resnet50", "block"), ("resnet50", "stage"),
                                        ("cifar_resnet1202", "block"), ("cifar_resnet1202", "stage")])
def test_svg_from_dot_is_valid_and_complete(name, level):
    c = compile_spec(name)
    p = picture(c, level)
    svg = render_graph(c, level).pipe(format="svg")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    groups = [g.get("class") for g in root.iter(f"{ns}g")]
    assert groups.count("node") == len(p.boxes) + (1 if level != "stage" else 0)  # + the legend
    assert groups.count("edge") == len(p.edges)
    text = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert re.search(r"\d+x\d+x\d+", text)  # shapes on edges
    assert f"{c.params:,} params" in text  # the title


def test_cli_render_formats(cli, tmp_path):
    for ext in ([".dot", ".svg", ".png", ".pdf"] if HAS_DOT else [".dot"]):
        out = tmp_path / f"r{ext}"
        r = cli("render", "resnet18", "-o", out, "--annotate", "macs,params")
        assert r.code == 0, r.err
        data = out.read_bytes()
        assert {".dot": b"digraph", ".svg": b"<svg", ".png": b"\x89PNG", ".pdf": b"%PDF"}[ext] in data[:400]


def test_cli_layer_level_over_budget_refuses_with_a_suggestion(cli, tmp_path):
    r = cli("render", "cifar_resnet1202", "--level", "layer", "-o", tmp_path / "x.svg")
    assert r.code == 2 and "--level block" in r.err and len(r.err.strip().splitlines()) == 1
    assert not (tmp_path / "x.svg").exists()
    r = cli("render", "cifar_resnet1202", "--level", "layer", "-o", tmp_path / "x.dot")
    assert r.code == 0 and (tmp_path / "x.dot").read_text().startswith("digraph")


def test_cli_without_dot(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` here
    r = cli("render", "resnet18", "-o", tmp_path / "x.svg")
    assert r.code == 2 and "apt-get install graphviz" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("render", "resnet18", "-o", tmp_path / "x.dot")
    assert r.code == 0 and (tmp_path / "x.dot").exists()


@pytest.mark.parametrize("args,fragment", [
    (["-o", "x.jpeg"], "cannot tell the format"),
    (["-o", "x.svg", "--annotate", "flops"], "--annotate"),
    (["-o", "x.svg", "--level", "module"], "invalid choice"),
])
def test_cli_render_bad_flags(cli, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    r = cli("render", "resnet18", *args)
    assert r.code == 2 and fragment in r.err


def test_python_api_returns_a_digraph():
    import graphviz

    dg = archspec.render("resnet34", level="stage", direction="LR")
    assert isinstance(dg, graphviz.Digraph)
    assert "rankdir=LR" in dg.source and "conv3_x" in dg.source


@pytest.mark.parametrize("args", [["render", "resnet18", "-o", "{tmp}/x.dot"], ["table", "resnet18", "resnet34"],
                                  ["summary", "resnet50"]])
def test_commands_that_need_no_torch_do_not_import_it(tmp_path, args):
    import subprocess
    import sys

    argv = [a.format(tmp=tmp_path) for a in args]
    code = (f"import sys; from archspec.cli import main; rc = main({argv!r}); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
