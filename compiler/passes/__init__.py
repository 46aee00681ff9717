"""Analysis passes over the IR graph. Each pass is a small named function `(graph, context) -> None` that writes
into node `meta` and reports problems into `context.diagnostics`; `pipeline.PIPELINE` lists them in order."""
