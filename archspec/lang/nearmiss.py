"""Did-you-mean with bounded work: the near misses of a misspelt name among many names, found in time that does
not grow with the square of the names.

`closest` says what is close (an edit distance, `edits`, and difflib's ratio) and scores every name it is
given, tens of microseconds each. A spec with thousands of unknown names among thousands of near-miss names
(`itme_00001` read where `item_00000` ... `item_19999` are defined) made that quadratic: 20,000 took three
minutes. Here the work is counted in *units* (one unit: a comparison of two ten-letter names; longer names count
more, by the letter pairs compared; passing over 100 names to sort them out by length costs one) and bounded:

- only names whose length lets them be close are compared (`closest`'s own rule: a few letters more or less, or
  three quarters of the letters shared);
- one unknown name gets at most `PER_NAME` units of comparisons. When more names could be close, those nearest
  to it in sorted order (sharing its first letters) and in the sorted order of the reversed names (sharing its
  last letters) are compared, alternately. Among fewer names the hint is the one `closest` gives;
- the names looked up while one spec is loaded (`searching()`, opened by `load_spec`), or while it is expanded
  (opened by the expander), share `PER_SPEC` units. After that no more hints are looked for, and the next
  lookup says so once, in its hint.

`suggest` and `did_you_mean` are bounded so; `closest` is the measure itself.

Standard library only; `archspec.lang.diagnostics` gives these names too (`did_you_mean`, `suggest`, `edits`).
"""

from __future__ import annotations

import bisect
import math
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, Sized

__all__ = ["PER_NAME", "PER_SPEC", "Budget", "active", "closest", "did_you_mean", "edits", "searching", "suggest"]

UNIT_PAIRS = 100      # letter pairs compared in one unit (two ten-letter names)
SCAN = 100            # names passed over (by length, case and prefix) in one unit
PER_NAME = 400        # units of comparisons for one unknown name
PER_SPEC = 100_000    # units for all the unknown names of one spec's loading, or of its expansion (a few seconds)


class Budget:
    """The units left for the near misses of one stretch of work (`searching`), and whether the lookup that
    found them spent has been told (`notice`, once)."""

    __slots__ = ("left", "total", "told")

    def __init__(self, units: float = PER_SPEC) -> None:
        self.left = self.total = units
        self.told = False

    @property
    def spent(self) -> bool:
        return self.left <= 0

    def charge(self, units: float) -> None:
        self.left -= units

    def notice(self) -> str | None:
        """The words that say hints stopped: the first time it is asked once the budget is spent, else None."""
        if not self.spent or self.told:
            return None
        self.told = True
        return (f"no more did-you-mean hints from here on: near misses are looked for in at most {self.total:,} "
                "comparisons of names in one spec, and this one used them up")


_ACTIVE: ContextVar[Budget | None] = ContextVar("archspec_near_miss_budget", default=None)


def active() -> Budget:
    """The budget of the enclosing `searching` block, or one of `PER_SPEC` units for a lookup outside any."""
    return _ACTIVE.get() or Budget()


@contextmanager
def searching(units: float = PER_SPEC) -> Iterator[Budget]:
    """The lookups inside the block share one budget: the enclosing block's if there is one, else a new one of
    `units`. (Usable as a decorator: each call of the function gets its own.)"""
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    budget = Budget(units)
    token = _ACTIVE.set(budget)
    try:
        yield budget
    finally:
        _ACTIVE.reset(token)


def did_you_mean(word: str, choices: Iterable[str] | Callable[[], Iterable[str]], *, what: str = "",
                 budget: Budget | None = None) -> str | None:
    """`did you mean `x`?` or, with nothing close, the list of choices when it is short; once the budget is spent,
    the list when it is short, else, once, the words that say hints stopped. `choices` may be a function giving
    them: it is called only when there is budget left."""
    budget = budget or active()
    if budget.spent:
        if isinstance(choices, Sized) and 0 < len(choices) <= 12:
            pool = sorted(set(choices))  # (a handful: no search needed)
            return f"{what or 'choices'}: " + ", ".join(f"`{c}`" for c in pool)
        return budget.notice()
    pool = sorted(set(choices() if callable(choices) else choices))
    close = suggest(word, pool, budget=budget)
    if close:
        return f"did you mean `{close[0]}`?"
    if pool and len(pool) <= 12:
        return f"{what or 'choices'}: " + ", ".join(f"`{c}`" for c in pool)
    return None


def suggest(word: str, choices: Iterable[str], *, limit: int = 1, budget: Budget | None = None) -> list[str]:
    """`closest(word, choices, limit=limit)`, comparing only as many names as the budget allows (`PER_NAME` at
    most): the same among fewer names, the nearest by first or last letters among more, nothing once the
    budget is spent."""
    budget = budget or active()
    if budget.spent:
        return []
    pool = sorted(set(choices))
    budget.charge(math.ceil(len(pool) / SCAN))
    allowed = 1 if len(word) <= 4 else 2 if len(word) <= 8 else 3
    lw, lowered = len(word), word.lower()
    # the names `closest` would compare at all (its test of lengths, before it measures anything)
    near = [c for c in pool if abs(len(c) - lw) <= allowed or 2 * min(len(c), lw) >= 0.75 * (len(c) + lw)]
    # what `closest` finds without comparing: the same name in another case, a name the word starts with or that
    # starts with it (the longest, the first of those in order)
    kept = [c for c in near if len(c) == lw and c.lower() == lowered]
    prefixed = [c for c in pool if (len(c) >= 3 and word.startswith(c)) or (lw >= 4 and c.startswith(word))]
    kept += sorted(prefixed, key=lambda c: -len(c))[:limit]
    return closest(word, _compared(word, near, budget) + kept, limit=limit)


# -- what is close (every name given is scored) --------------------------------------------------------------------

def closest(word: str, choices: Iterable[str], *, limit: int = 1) -> list[str]:
    """Close matches for a misspelt name, best first, scoring every name (`suggest` bounds the work). Close is:
    the same name in another case; a name within a few typing slips (`edits`: letters added, dropped, changed or
    swapped; more in longer words, never half the letters); a name sharing three quarters of its letters, in
    order, with the word (`resnet_blocks.yaml` and `blocks.yaml`); else a name the word starts with or that starts
    with it (`paddding`, `bott`). Nothing when none is genuinely close: a far-fetched guess (`frobnicate` ->
    `concat`) is worse than none."""
    from difflib import SequenceMatcher

    pool = sorted(set(choices))
    lowered = {c.lower(): c for c in pool}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return [lowered[word.lower()]]
    allowed = 1 if len(word) <= 4 else 2 if len(word) <= 8 else 3
    close = []
    for c in pool:
        near_length = abs(len(c) - len(word)) <= allowed
        if not near_length and 2 * min(len(c), len(word)) < 0.75 * (len(c) + len(word)):
            continue  # neither test can pass: too many letters apart (cheap, before the quadratic measures)
        slips = edits(word.lower(), c.lower()) if near_length else allowed + 1
        matcher = SequenceMatcher(None, word, c)
        shared = matcher.ratio() if matcher.quick_ratio() >= 0.75 or slips <= allowed else 0.0
        if (slips <= allowed and 2 * slips <= max(len(word), len(c))) or shared >= 0.75:
            close.append((slips, -shared, c))
    if close:
        close.sort(key=lambda t: t[2], reverse=True)  # of equally near names, the last (`conv3`: `conv2`)
        close.sort(key=lambda t: t[:2])
        return [c for *_, c in close[:limit]]
    # a stuttered or truncated word: `paddding` for `pad`, `bott` for `bottleneck`
    prefixed = [c for c in pool if (len(c) >= 3 and word.startswith(c)) or (len(word) >= 4 and c.startswith(word))]
    return sorted(prefixed, key=lambda c: -len(c))[:limit]


def edits(a: str, b: str) -> int:
    """The number of single-letter insertions, deletions, substitutions and swaps of neighbours from `a` to `b`."""
    if len(a) > 64 or len(b) > 64:  # names are short; a long word is close to nothing
        return abs(len(a) - len(b)) + 64
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y))
            if before is not None and i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                current[j] = min(current[j], before[j - 2] + 1)
        before, previous = previous, current
    return previous[len(b)]


def _cost(word: str, name: str) -> float:
    return max(1.0, len(word) * len(name) / UNIT_PAIRS)


def _compared(word: str, near: list[str], budget: Budget) -> list[str]:
    """The names of `near` (sorted) to compare with `word`: all of them if the budget allows, else those nearest
    to it by their first letters and by their last ones, alternately, as far as it allows; charged."""
    allowance = min(PER_NAME, budget.left)
    costs = [_cost(word, c) for c in near]
    if sum(costs) <= allowance:
        budget.charge(sum(costs))
        return near
    budget.charge(math.ceil(len(near) / SCAN))  # (sorting the reversed names)
    ends = sorted(c[::-1] for c in near)
    by_end = [e[::-1] for e in ends]
    i, j = bisect.bisect_left(near, word), bisect.bisect_left(ends, word[::-1])
    frontiers = [(near, i, 1), (near, i - 1, -1), (by_end, j, 1), (by_end, j - 1, -1)]
    chosen: dict[str, None] = {}
    spent = 0.0
    while frontiers and spent < allowance:
        still = []
        for names, at, step in frontiers:
            if not 0 <= at < len(names):
                continue
            name = names[at]
            if name not in chosen:
                cost = _cost(word, name)
                if spent + cost > allowance:
                    continue
                chosen[name] = None
                spent += cost
            still.append((names, at + step, step))
        frontiers = still
    budget.charge(spent)
    return list(chosen)
