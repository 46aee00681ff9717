"""Registry of the subcommands that live beside their implementations (compile, render, train, ...).

Each entry is a function that adds its subparser; it must not import heavy modules at registration time.
"""

from __future__ import annotations

from typing import Any, Callable

REGISTER: list[Callable[[Any], None]] = []
