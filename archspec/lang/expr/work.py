"""The work expressions do, counted across evaluations, so that many cheap-looking evaluations cannot add up to
minutes.

One expression is bounded by its length, its nesting and the size of its values, yet a legal 860-character
`when:` made of `max([0.5] * 10000)` terms walks about a million items each time it is computed (130 ms), and an
expression is computed again in every copy of a `repeat` and every use of a block: 1,000 copies took 133 s.
So the evaluator charges a `Meter` for what it does, in *steps*: one per node of the tree (three per function
call, which costs as much), and one per item an operation builds, compares, searches or walks (counted through nested lists, as `sizes` measures them); the
meter refuses (E501) once the steps of all the evaluations it has seen pass its limit.

`metered(limit)` opens a meter for the evaluations of a stretch of work (an expansion opens one sized by its node
budget). It is held in a `ContextVar`: set for the extent of a `with`, and only there; an evaluation outside
any `metered` block counts against a meter of its own without a limit.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from archspec.lang.codes import TOO_MUCH_EXPR_WORK
from archspec.lang.expr.syntax import ExprError

__all__ = ["WORK_HINT", "Meter", "active_meter", "metered"]

WORK_HINT = ("an expression is computed again for every copy of a `repeat` and every use of a block: compute the "
             "costly part once, as a param (`params: {ok: =...}`), and read the param here; `--max-nodes` raises "
             "the budget")


class Meter:
    """Steps spent by expression evaluations, against a limit (None: none), and what each expression cost."""

    __slots__ = ("limit", "spent", "hint", "_trees", "_current")

    def __init__(self, limit: int | None = None, hint: str = WORK_HINT) -> None:
        self.limit = limit
        self.hint = hint
        self.spent = 0
        self._trees: dict[int, list[Any]] = {}  # id(tree) -> [tree (kept alive), evaluations done, steps of those]
        self._current: tuple[tuple, int] | None = None  # the evaluation under way: its tree, the steps before it

    def spend(self, steps: int) -> None:
        """Charge `steps`; E501 once the limit is passed."""
        self.spent += steps
        if self.limit is not None and self.spent > self.limit:
            raise self.over()

    def begin(self, tree: tuple) -> tuple[tuple, int] | None:
        """An evaluation of `tree` starts; returns what `end` restores (an evaluation may start inside another)."""
        previous, self._current = self._current, (tree, self.spent)
        return previous

    def end(self, previous: tuple[tuple, int] | None, finished: bool) -> None:
        """The evaluation `begin` started is over; a finished one counts towards its expression's cost."""
        if finished and self._current is not None:
            tree, start = self._current
            entry = self._trees.setdefault(id(tree), [tree, 0, 0])
            entry[1] += 1
            entry[2] += self.spent - start
        self._current = previous

    def over(self) -> ExprError:
        """E501, at the start of the expression under way, with what it costs and how often it was computed."""
        tree, start = self._current if self._current is not None else ((), self.spent)
        _, done, steps = self._trees.get(id(tree), (None, 0, 0))
        if done:
            cost = (f"this one takes about {steps // done:,} steps each time it is computed, and has been computed "
                    f"{done:,} time{'s' if done != 1 else ''}")
        else:
            cost = f"this one had taken {self.spent - start:,} of them, computed for the first time"
        return ExprError(TOO_MUCH_EXPR_WORK, f"the expressions of one network may take {self.limit:,} steps of work "
                         f"in all; {cost}", 0, 1, hint=self.hint)


_ACTIVE: ContextVar[Meter | None] = ContextVar("archspec_expression_meter", default=None)


def active_meter() -> Meter:
    """The meter of the enclosing `metered` block, or a new one without a limit."""
    return _ACTIVE.get() or Meter()


@contextmanager
def metered(limit: int, hint: str = WORK_HINT) -> Iterator[Meter]:
    """Every evaluation inside the block counts against one meter of `limit` steps (`hint`: the fix E501 gives)."""
    meter = Meter(limit, hint)
    token = _ACTIVE.set(meter)
    try:
        yield meter
    finally:
        _ACTIVE.reset(token)
