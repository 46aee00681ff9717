"""A lower bound on the nodes a `repeat` will make, known before it runs (so that `repeat: 10**9` is refused at
once rather than after minutes): the smallest number of nodes one copy of an item or a block can make.
"""

from __future__ import annotations

from archspec.compiler.expand.model import Build
from archspec.lang.schema import ITEM_KEYS
from archspec.lang.yamlsrc import LocDict


def min_size(b: Build, body: LocDict) -> int:
    """A lower bound on the nodes one copy of `body` makes, without evaluating anything."""
    if "op" in body:
        return 1
    if "items" in body and isinstance(body["items"], list):  # a repeat of several items: each copy makes them all
        return sum(_item_size(b, item) for item in body["items"])
    if "cases" in body:
        sizes = [min_size(b, a) for a in body["cases"] if isinstance(a, LocDict)]
        return min(sizes) if sizes else 0
    use = body.get("use")
    if not isinstance(use, str) or use.startswith("="):
        return 1
    return template_size(b, use, ())


def template_size(b: Build, tname: str, stack: tuple[str, ...]) -> int:
    if tname in b.size_memo:
        return b.size_memo[tname]
    template = b.spec.blocks.get(tname)
    if template is None or tname in stack or not isinstance(template.get("body"), list):
        return 1
    b.size_memo[tname] = 1  # while it is computed: a block that uses itself (refused later, E311) counts 1
    b.size_memo[tname] = max(1, sum(_item_size(b, item, tname) for item in template["body"]))
    return b.size_memo[tname]


def _item_size(b: Build, item: object, tname: str | None = None) -> int:
    """A lower bound on the nodes one item of a body makes (0 if `when:` may exclude it)."""
    if not isinstance(item, LocDict):
        return 0
    body = item if any(k in ITEM_KEYS for k in item) else next(iter(item.values()), None)
    if not isinstance(body, LocDict) or "when" in body:
        return 0
    n = body.get("repeat", 1)
    n = n if isinstance(n, int) and not isinstance(n, bool) else 1
    inner = min_size(b, body) if tname is None or body.get("use") != tname else 1
    return max(0, n) * inner
