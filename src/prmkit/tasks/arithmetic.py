"""The built-in task: seeded multi-step arithmetic word problems with gold worked solutions.

A problem starts from a quantity and applies 2-10 operations (``+``, ``-``, ``*``, exact ``/``),
one sentence each. Its gold solution has one step per operation in the canonical format
``<clause>: <a> <op> <b> = <c>`` and ends with ``The answer is <n>.``; steps are separated by a
blank line (the default of :func:`prmkit.steps.split`).

Problem ``index`` of a run with ``seed`` depends only on ``(seed, index)`` and the generator
settings, so ``generate(n=10)`` is a prefix of ``generate(n=100)``. Every gold state (the quantity
after each operation, and the start) is distinct, so a value names one point of the solution.

Example:
    >>> p = generate(1, seed=0, min_steps=2, max_steps=2)[0]
    >>> p.meta["states"][-1] == int(p.answer)
    True
    >>> gold_solution(p)[-1] == f"The answer is {p.answer}."
    True
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from prmkit.errors import CheckerError, ConfigError
from prmkit.records import Problem

__all__ = [
    "OPS",
    "build_problem",
    "format_number",
    "generate",
    "gold_solution",
    "gold_text",
    "make_problem",
]

OPS: tuple[str, ...] = ("+", "-", "*", "/")
"""Operations the generator can use; ``/`` is exact integer division."""

_NAMES = (
    ("Tom", "He"),
    ("Ana", "She"),
    ("Sam", "He"),
    ("Mia", "She"),
    ("Leo", "He"),
    ("Zoe", "She"),
    ("Ben", "He"),
    ("Eva", "She"),
    ("Max", "He"),
    ("Lily", "She"),
)
_ITEMS = (
    "apples",
    "coins",
    "stickers",
    "marbles",
    "books",
    "cards",
    "shells",
    "pens",
    "stamps",
    "cookies",
)
_CLAUSES: dict[str, tuple[str, ...]] = {
    "+": ("{p} buys {n} more", "{p} finds {n} more", "{p} gets {n} more"),
    "-": ("{p} gives away {n}", "{p} loses {n}", "{p} sells {n}"),
    "*": ("{p} ends up with {n} times as many",),
    "/": ("{p} splits them into {n} equal piles and keeps one pile",),
}
_MAX_TRIES = 200


def format_number(value: int) -> str:
    """Render a gold value as the solution writes it (plain digits, no separators)."""
    return str(value)


def _check_settings(
    ops: Sequence[str],
    min_steps: int,
    max_steps: int,
    start_range: tuple[int, int],
    add_range: tuple[int, int],
    mul_range: tuple[int, int],
    max_value: int,
) -> None:
    bad = [op for op in ops if op not in OPS]
    if not ops or bad:
        raise ConfigError(
            "unknown arithmetic operations",
            got=list(ops),
            expected=f"a non-empty subset of {list(OPS)}",
            fix="e.g. ops=['+', '-']",
        )
    if not 1 <= min_steps <= max_steps:
        raise ConfigError(
            "bad step range",
            got=(min_steps, max_steps),
            expected="1 <= min_steps <= max_steps",
            fix="e.g. min_steps=2 max_steps=10",
        )
    for name, (lo, hi), floor in (
        ("start_range", start_range, 1),
        ("add_range", add_range, 1),
        ("mul_range", mul_range, 2),
    ):
        if not floor <= lo <= hi:
            raise ConfigError(
                f"bad {name}",
                got=(lo, hi),
                expected=f"{floor} <= low <= high",
                fix=f"give {name} as [low, high]",
            )
    if max_value < start_range[1]:
        raise ConfigError(
            "max_value below the start range",
            got=max_value,
            expected=f">= {start_range[1]}",
            fix="raise max_value",
        )


def _apply(
    rng: random.Random,
    op: str,
    state: int,
    add_range: tuple[int, int],
    mul_range: tuple[int, int],
    max_value: int,
) -> tuple[int, int] | None:
    """Pick an operand for ``op`` keeping the state in [1, max_value]; None if impossible."""
    if op == "+":
        hi = min(add_range[1], max_value - state)
        if hi < add_range[0]:
            return None
        n = rng.randint(add_range[0], hi)
        return n, state + n
    if op == "-":
        hi = min(add_range[1], state - 1)
        if hi < add_range[0]:
            return None
        n = rng.randint(add_range[0], hi)
        return n, state - n
    if op == "*":
        hi = min(mul_range[1], max_value // state)
        if hi < mul_range[0]:
            return None
        n = rng.randint(mul_range[0], hi)
        return n, state * n
    divisors = [d for d in range(mul_range[0], mul_range[1] + 1) if state % d == 0]
    if not divisors:
        return None
    n = rng.choice(divisors)
    return n, state // n


def make_problem(
    seed: int,
    index: int,
    *,
    n_steps: int | None = None,
    ops: Sequence[str] = ("+", "-", "*"),
    min_steps: int = 2,
    max_steps: int = 10,
    start_range: tuple[int, int] = (2, 30),
    add_range: tuple[int, int] = (1, 30),
    mul_range: tuple[int, int] = (2, 5),
    max_value: int = 300,
) -> Problem:
    """Build problem ``index`` of the run with ``seed`` (deterministic).

    Args:
        seed: Run seed.
        index: Problem index within the run.
        n_steps: Number of operations; drawn from ``[min_steps, max_steps]`` when None.
        ops: Operations to draw from (each step picks one uniformly among those that fit).
        min_steps: Fewest operations.
        max_steps: Most operations.
        start_range: Inclusive range of the starting quantity.
        add_range: Inclusive range of operands of ``+`` and ``-``.
        mul_range: Inclusive range of operands of ``*`` and ``/``.
        max_value: Largest quantity allowed at any point.

    Returns:
        A :class:`Problem` whose ``meta`` holds ``states`` (``states[i]`` = quantity after ``i``
        operations; ``states[0]`` is the start), ``ops``, ``operands``, ``clauses`` and the seed.
    """
    _check_settings(ops, min_steps, max_steps, start_range, add_range, mul_range, max_value)
    rng = random.Random(f"prmkit-arithmetic:{seed}:{index}")
    steps = n_steps if n_steps is not None else rng.randint(min_steps, max_steps)
    if steps < 1:
        raise ConfigError("bad step count", got=steps, expected=">= 1", fix="set n_steps >= 1")
    for _ in range(_MAX_TRIES):
        start = rng.randint(*start_range)
        states, chosen, operands = [start], [], []
        while len(chosen) < steps:
            options = list(ops)
            rng.shuffle(options)
            for op in options:
                picked = _apply(rng, op, states[-1], add_range, mul_range, max_value)
                if picked is not None and picked[1] not in states:
                    chosen.append(op)
                    operands.append(picked[0])
                    states.append(picked[1])
                    break
            else:
                break  # dead end: no operation fits; restart from a new start value
        if len(chosen) == steps:
            break
    else:
        raise ConfigError(
            "cannot generate a problem with these settings",
            got=list(ops),
            expected="ranges that leave room for the operations",
            fix="widen add_range/max_value or allow more operations",
        )
    name, pronoun = rng.choice(_NAMES)
    item = rng.choice(_ITEMS)
    clauses = [
        rng.choice(_CLAUSES[op]).format(p=pronoun, n=n)
        for op, n in zip(chosen, operands, strict=True)
    ]
    return build_problem(
        start,
        list(zip(chosen, operands, strict=True)),
        id=f"arith-s{seed}-{index}",
        name=name,
        item=item,
        clauses=clauses,
        extra_meta={"seed": seed, "index": index},
    )


def build_problem(
    start: int,
    operations: Sequence[tuple[str, int]],
    *,
    id: str,
    name: str = "Tom",
    pronoun: str = "He",
    item: str = "apples",
    clauses: Sequence[str] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Problem:
    """A problem from an explicit start value and operations (hand-made cases, tests).

    Args:
        start: The starting quantity.
        operations: ``(op, operand)`` pairs, e.g. ``[("+", 5), ("-", 3)]``.
        id: The problem id.
        name: Who owns the quantity.
        pronoun: ``He`` or ``She`` (used in the default clauses).
        item: What is counted (plural).
        clauses: One sentence (without the period) per operation; defaults to the first
            phrasing of each operation.
        extra_meta: More ``meta`` entries.

    Raises:
        ConfigError: an unknown operation, or a division that is not exact.

    Example:
        >>> p = build_problem(12, [("+", 5), ("-", 3)], id="demo")
        >>> p.prompt
        'Tom has 12 apples. He buys 5 more. He gives away 3. How many apples does Tom have now?'
        >>> p.meta["states"]
        [12, 17, 14]
    """
    states = [start]
    for op, n in operations:
        state = states[-1]
        if op not in OPS:
            raise ConfigError(
                "unknown operation", got=op, expected=f"one of {list(OPS)}", fix="use + - * /"
            )
        if op == "/" and (n == 0 or state % n):
            raise ConfigError(
                "division is not exact",
                got=(state, n),
                expected="a divisor of the current value",
                fix="pick a divisor",
            )
        states.append({"+": state + n, "-": state - n, "*": state * n}.get(op, state // (n or 1)))
    if clauses is None:
        clauses = [_CLAUSES[op][0].format(p=pronoun, n=n) for op, n in operations]
    if len(clauses) != len(operations):
        raise ConfigError(
            "one clause per operation needed",
            got=len(clauses),
            expected=str(len(operations)),
            fix="give a clause for each operation",
        )
    prompt = " ".join(
        [
            f"{name} has {start} {item}.",
            *(c + "." for c in clauses),
            f"How many {item} does {name} have now?",
        ]
    )
    meta: dict[str, Any] = {
        "task": "arithmetic",
        **(extra_meta or {}),
        "n_steps": len(operations),
        "start": start,
        "ops": [op for op, _ in operations],
        "operands": [n for _, n in operations],
        "states": states,
        "clauses": list(clauses),
        "name": name,
        "item": item,
    }
    return Problem(id=id, prompt=prompt, answer=format_number(states[-1]), meta=meta)


def generate(n: int, seed: int = 0, *, start_index: int = 0, **settings: Any) -> list[Problem]:
    """``n`` problems (indices ``start_index ..``) of the run with ``seed``.

    ``settings`` are the keyword arguments of :func:`make_problem`.

    Example:
        >>> [p.id for p in generate(2, seed=3)]
        ['arith-s3-0', 'arith-s3-1']
    """
    return [make_problem(seed, i, **settings) for i in range(start_index, start_index + n)]


def _arith_meta(problem: Problem) -> dict[str, Any]:
    meta = problem.meta
    keys = ("states", "ops", "operands", "clauses")
    if meta.get("task") != "arithmetic" or any(k not in meta for k in keys):
        raise CheckerError(
            "not a built-in arithmetic problem",
            got=problem.id,
            expected=f"meta with task='arithmetic' and keys {list(keys)}",
            fix="generate problems with `prmkit problems task=arithmetic`",
        )
    return meta


def gold_solution(problem: Problem) -> list[str]:
    """The gold worked solution as steps: one per operation, then ``The answer is N.``.

    For GSM8K problems: the lines of the reference solution (``meta["gold_steps"]``) and the
    answer line.

    Example:
        ``["He buys 5 more: 12 + 5 = 17", "He gives away 3: 17 - 3 = 14", "The answer is 14."]``
    """
    if problem.meta.get("task") != "arithmetic" and "gold_steps" in problem.meta:
        return [*problem.meta["gold_steps"], f"The answer is {problem.answer}."]
    meta = _arith_meta(problem)
    states = meta["states"]
    steps = [
        f"{clause}: {format_number(states[i])} {op} {format_number(n)} = "
        f"{format_number(states[i + 1])}"
        for i, (clause, op, n) in enumerate(
            zip(meta["clauses"], meta["ops"], meta["operands"], strict=True)
        )
    ]
    return [*steps, f"The answer is {format_number(states[-1])}."]


def gold_text(problem: Problem) -> str:
    """The gold solution as one text, steps separated by a blank line."""
    from prmkit.steps import join_steps

    return join_steps(gold_solution(problem))
