"""The runtime layer (installed as archspec.runtime): training and evaluating compiled networks, run folders,
checkpoints, data sources and metrics. It imports the compiler and the spec language, never the application."""
