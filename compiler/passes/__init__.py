"""Analysis passes over the IR graph. Each pass is a small named function `(graph, context) -> None` that writes
into the nodes' `Facts` and reports problems into `context.diagnostics`; `pipeline.PIPELINE` lists them in order,
with the facts each needs and provides."""
