"""What every pass receives: options, and where to put diagnostics (each pointing at the node's YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field
import networkx as nx

from archspec.lang.diagnostics import Diagnostic


@dataclass
class PassContext:
    count: str = "conv"  # conv: conv+linear multiply-adds only; all: also BN, ReLU, add, pooling
    dtype_bytes: int = 4  # activation memory per element
    diagnostics: list[Diagnostic] = field(default_factory=list)
    warnings: list[Diagnostic] = field(default_factory=list)  # reported, but the spec still compiles

    def error(self, g: nx.DiGraph, node: str, code: str, message: str, hint: str | None = None) -> None:
        """A diagnostic at the node's YAML line, with notes naming the block instances it sits in."""
        from archspec.compiler.graph_checks import node_diagnostic

        data = g.nodes[node]
        self.diagnostics.append(node_diagnostic(code, node, message, hint, data["loc"], data["scope"],
                                                g.graph.get("blocks", {})))
