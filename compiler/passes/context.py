"""What every pass receives: where to put diagnostics (each pointing at the node's YAML)."""

from __future__ import annotations

from dataclasses import dataclass, field

from archspec.compiler.ir import Graph
from archspec.lang.diagnostics import Diagnostic


@dataclass
class PassContext:
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, g: Graph, node: str, code: str, message: str, hint: str | None = None) -> None:
        """A diagnostic at the node's YAML line, with notes naming the block instances it sits in."""
        from archspec.compiler.graph_checks import node_diagnostic

        n = g.node(node)
        self.diagnostics.append(node_diagnostic(code, node, message, hint, n.loc, n.scope, g.blocks))
