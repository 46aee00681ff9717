"""The compiler layer (installed as archspec.compiler): expansion of a resolved spec into primitive nodes, the
networkx IR and its passes, lowering to PyTorch, reports, diagrams and export. It imports the spec language,
never the runtime or the application."""
