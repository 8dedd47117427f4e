"""Synthetic step errors for the built-in task: gold solutions with one injected slip.

The FoVer / Math-Shepherd-style route to PRM training data at no sampling cost: take a problem's
gold solution, change one step the way the policy errs, carry the wrong value through the later
steps (each computed correctly from it, as a policy continues after its own mistake) and end with
the answer line of the carried value. The exact checker (:mod:`prmkit.tasks.arithmetic_check`)
labels the result, so every label is the checker's, never a guess.

Slip kinds (what the warmed-up policy gets wrong, most often the first):

* ``result``: the step's arithmetic is false: ``21 - 13 = 10`` (the right result moved by a small
  amount, or one digit changed).
* ``operand``: a misread number, computed correctly: ``21 - 12 = 9``.
* ``operation``: the wrong operation, computed correctly: ``21 + 13 = 34``.
* ``skip``: the step's operation is left out and the clause restates the value before it.

A slip that happens to land on a gold value is drawn again (the checker would call it right).

Example:
    >>> from prmkit.tasks.arithmetic import make_problem
    >>> p = make_problem(0, 1, n_steps=3)
    >>> traces = slip_traces([p], per_problem=2, seed=0)
    >>> [t.first_error >= 0 for t in traces]
    [True, True]
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Problem, Trace
from prmkit.tasks.arithmetic import format_number, gold_solution
from prmkit.tasks.arithmetic_check import label_trace
from prmkit.tasks.prompts import render_prompt

__all__ = ["SLIP_KINDS", "SlipConfig", "slip_solution", "slip_traces"]

SlipKind = Literal["result", "operand", "operation", "skip"]
SLIP_KINDS: tuple[str, ...] = ("result", "operand", "operation", "skip")
_MAX_TRIES = 50


@dataclass
class SlipConfig:
    """How many slipped solutions to make and of which kinds."""

    per_problem: int = option(4, "slipped solutions per problem", ge=0)
    correct_per_problem: int = option(1, "gold (all-correct) solutions per problem", ge=0)
    kinds: list[str] = field(
        default_factory=lambda: ["result", "result", "operand", "operation"],
        metadata={"help": "slip kinds to draw from, uniformly (repeat one to weight it)"},
    )
    seed: int = option(0, "seed of the slips (same seed and problems: same traces)", ge=0)

    def __post_init__(self) -> None:
        check_ranges(self)
        bad = [k for k in self.kinds if k not in SLIP_KINDS]
        if not self.kinds or bad:
            raise ConfigError(
                "unknown slip kinds",
                got=list(self.kinds),
                expected=f"a non-empty list of {list(SLIP_KINDS)}",
                fix="e.g. kinds=[result, operand, operation]",
            )


def _apply(op: str, a: int, b: int) -> int | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b if b and a % b == 0 else None


def _wrong_result(rng: random.Random, right: int) -> int:
    if rng.random() < 0.5 and right >= 10:
        digits = list(str(right))
        i = rng.randrange(len(digits))
        options = [d for d in "0123456789" if d != digits[i] and not (i == 0 and d == "0")]
        digits[i] = rng.choice(options)
        return int("".join(digits))
    return right + rng.choice([-10, -2, -1, 1, 2, 10])


def _slip_step(
    rng: random.Random, kind: str, op: str, a: int, b: int
) -> tuple[str, int, int] | None:
    """``(op, operand, value)`` of the slipped step, or None when this kind does not fit."""
    right = _apply(op, a, b)
    if kind == "result":
        value = _wrong_result(rng, right if right is not None else a)
        return (op, b, value) if value != right and value >= 0 else None
    if kind == "operand":
        b2 = b + rng.choice([-3, -2, -1, 1, 2, 3]) if b > 3 else b + rng.choice([1, 2, 3])
        value = _apply(op, a, b2)
        return (op, b2, value) if value is not None and value >= 0 and b2 != b else None
    if kind == "operation":
        op2 = rng.choice([o for o in ("+", "-", "*") if o != op])
        value = _apply(op2, a, b)
        return (op2, b, value) if value is not None and value >= 0 else None
    return (op, b, a)  # skip: the value stays where it was


def slip_solution(
    problem: Problem, rng: random.Random, kind: str, at: int | None = None
) -> list[str] | None:
    """The gold solution of ``problem`` with one ``kind`` slip at step ``at`` (random if None).

    Later steps apply the problem's operations to the carried wrong value; the answer line states
    the carried result. Returns None when no slip of this kind fits (e.g. every try lands on a
    gold value or makes a division inexact).
    """
    meta = problem.meta
    states, ops, operands = meta["states"], meta["ops"], meta["operands"]
    clauses = meta["clauses"]
    n = len(ops)
    gold = set(states)
    for _ in range(_MAX_TRIES):
        i = rng.randrange(n) if at is None else at
        slipped = _slip_step(rng, kind, ops[i], states[i], operands[i])
        if slipped is None:
            continue
        op, b, value = slipped
        if kind != "skip" and value in gold:
            continue  # lands on a gold value: the checker would count it right
        steps = gold_solution(problem)[:i]
        a = states[i]
        if kind == "skip":
            steps.append(f"{clauses[i]}: {format_number(a)}")
        else:
            steps.append(
                f"{clauses[i]}: {format_number(a)} {op} {format_number(b)} = {format_number(value)}"
            )
        current, ok = value, True
        for j in range(i + 1, n):
            nxt = _apply(ops[j], current, operands[j])
            if nxt is None or nxt < 0:
                ok = False
                break
            steps.append(
                f"{clauses[j]}: {format_number(current)} {ops[j]} {format_number(operands[j])} "
                f"= {format_number(nxt)}"
            )
            current = nxt
        if not ok:
            continue
        steps.append(f"The answer is {format_number(current)}.")
        return steps
    return None


def slip_traces(
    problems: Sequence[Problem],
    per_problem: int = 4,
    seed: int = 0,
    *,
    correct_per_problem: int = 1,
    kinds: Sequence[str] = ("result", "result", "operand", "operation"),
) -> list[LabeledTrace]:
    """Exact-labelled traces: ``per_problem`` slipped and ``correct_per_problem`` gold solutions.

    Ids are ``<problem id>/slip-<n>`` and ``<problem id>/gold-<n>``; ``meta.synthetic`` names the
    slip kind and step (``null`` for gold). The prompt is the problem in its task's template, as
    the policy sees it. The same problems, seed and settings give the same traces.
    """
    cfg = SlipConfig(per_problem, correct_per_problem, list(kinds), seed)
    out: list[LabeledTrace] = []
    for problem in problems:
        rng = random.Random(f"prmkit-slips:{cfg.seed}:{problem.id}")
        prompt = render_prompt(problem)
        made = [(None, gold_solution(problem)) for _ in range(cfg.correct_per_problem)]
        for _ in range(cfg.per_problem):
            kind = rng.choice(cfg.kinds)
            steps = slip_solution(problem, rng, kind)
            if steps is not None:
                made.append((kind, steps))
        for n, (kind, steps) in enumerate(made):
            name = "gold" if kind is None else "slip"
            trace = Trace(
                id=f"{problem.id}/{name}-{n}",
                problem_id=problem.id,
                prompt=prompt,
                steps=steps,
                answer=steps[-1].removeprefix("The answer is ").rstrip("."),
                meta={"synthetic": {"kind": kind}, "segmentation": "double_newline"},
            )
            out.append(label_trace(problem, trace))
    return out
