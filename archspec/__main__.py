"""`python -m archspec ...` is the `archspec` command."""

from archspec.cli import main

raise SystemExit(main())
