"""The spec language: YAML with source positions, expressions, values, the JSON Schema, diagnostics, spec
loading and the op registry's data. The bottom layer: it imports nothing else of archspec.
"""

VERSION = "0.1.0"  # archspec's version (`archspec.__version__`); here so that every layer can read it
