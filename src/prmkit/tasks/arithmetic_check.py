"""The exact step checker of the built-in arithmetic task: the ground truth for step labels.

A model-written step is judged against the problem's gold states (``meta["states"]``; ``states[i]``
is the quantity after ``i`` operations). The checker keeps a pointer ``k`` to the state the
solution has reached so far (``k = 0`` at the start) and reads each step in order:

1. **Claims.** Every equation in the step (``a op b = c``, chained ``a + b - c = d``, with
   ``$``, units, words and thousands commas around the numbers; ``x``, ``×``, ``·``, ``\\times``
   multiply, ``÷``, ``\\div`` divide) must be *true*, computed exactly with fractions and the
   usual precedence. ``12 + 5 = 17 - 3 = 14`` is false (17 is not 14).
2. **Grounding.** Every number on the computing side of a claim must be a number of the problem
   (start value, operands), a gold state, or a value computed earlier in the solution. A misread
   number that happens to land on a gold value is caught here.
3. **Value.** The last claim of a step must arrive at a gold state ``states[j]``:
   ``j > k`` advances the pointer (``j > k + 1`` means the step merged several operations);
   ``j == k`` restates the current value (correct, no advance); ``j < k`` is correct only when the
   same equation appeared in an earlier step (a repeated step), otherwise it is wrong (the
   solution went back to an earlier value). A value that is no gold state is wrong: wrong
   operation, misread number, or a result carried over from an earlier mistake. Earlier claims
   of a step may compute helper values (``5 - 3 = 2, 12 + 2 = 14``).
4. **Value statements.** A step without equations that ends in ``: N`` (``He buys 5 more: 17``),
   or says ``= N``, states the value ``N``; it is judged like a claim's value (a stated earlier
   value is fine only when it was reached before).
5. **Answer line.** ``The answer is N`` (also ``Answer: N``, ``#### N``, ``\\boxed{N}``) is correct
   when ``N`` equals the final gold state, whether or not every operation was written out.
6. **No claim.** A step with no equation, value statement or answer (restating the question,
   "Let's solve it.") is correct and does not move the pointer.
7. **Unfinished.** With ``require_answer=True`` (default) a solution whose steps are all correct
   but which never states an answer gets its *last* step marked wrong: a trace that stops early or
   runs out of tokens is not a correct trace. Use ``require_answer=False`` for partial prefixes.

Steps after the first wrong step are not judged (``None``). The final answer is the last answer
line anywhere in the trace.

Example:
    >>> from prmkit.tasks.arithmetic import make_problem
    >>> p = make_problem(0, 0, n_steps=2)
    >>> check_steps(p, ["54 * 2 = 116", "116 - 99 = 17"]).first_error
    0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from prmkit.errors import CheckerError
from prmkit.records import LabeledTrace, Problem, Trace
from prmkit.steps import split_steps

__all__ = ["LABEL_SOURCE", "StepCheck", "check_solution", "check_steps", "label_trace"]

LABEL_SOURCE = "exact"

# ----------------------------------------------------------------------------- normalization

_REPLACE = [
    (re.compile(r"\\[()\[\]]|\$\$"), " "),  # LaTeX math delimiters
    (re.compile(r"\\times|\\cdot|[×·∙⋅✕]"), "*"),
    (re.compile(r"\\div|÷|∶"), "/"),
    (re.compile(r"[−–—]"), "-"),  # unicode minus and dashes
    (re.compile(r"\\\$|\$|€|£"), ""),  # currency
    (re.compile(r"(?<=\d),(?=\d{3}(?!\d))"), ""),  # thousands separators: 1,200
    (re.compile(r"(?<=\d)\s*[xX]\s*(?=\d)"), " * "),  # 3 x 4
    (re.compile(r"(?i)(?<=\d)\s+(?:times|multiplied by)\s+(?=\d)"), " * "),
    (re.compile(r"(?i)(?<=\d)\s+divided by\s+(?=\d)"), " / "),
    (re.compile(r"(?i)(?<=\d)\s+plus\s+(?=\d)"), " + "),
    (re.compile(r"(?i)(?<=\d)\s+minus\s+(?=\d)"), " - "),
    (re.compile(r"(?i)\s+(?:equals|is equal to)\s+"), " = "),
    # units between a number and the next operator: "12 apples + 5 apples = 17 apples"
    (re.compile(r"(?<=\d)\s+(?:[A-Za-z']+\s+){0,2}[A-Za-z']+(?=\s*[-+*/=])"), ""),
]
_NUMBER = r"\d+(?:\.\d+)?"
_ANSWER = re.compile(
    rf"(?i)\banswer\s*(?:is\b|:|=)\s*:?\s*(?:[A-Za-z' ]{{0,40}}?\s)?(-?{_NUMBER})"
    r"|\banswer\s*(?:is\b|:|=)"
    rf"|\\boxed\{{\s*(-?{_NUMBER})\s*\}}|####\s*(-?{_NUMBER})"
)
_TOKEN = re.compile(rf"({_NUMBER})|([-+*/=()])|(\s+)|(.)")
_COLON_VALUE = re.compile(rf":\s*(-?{_NUMBER})\s*[A-Za-z' ]{{0,30}}[.!]?\s*$")


def _normalize(text: str) -> str:
    for pattern, repl in _REPLACE:
        text = pattern.sub(repl, text)
    return text


# ----------------------------------------------------------------------------- claims


@dataclass(frozen=True)
class _Claim:
    text: str  # normalized equation, spaces removed (identifies repeats)
    sides: list[Fraction | None]  # value of each side; None = division by zero
    operands: list[Fraction]  # numbers on the computing sides
    malformed: bool = False

    @property
    def true(self) -> bool:
        return (
            not self.malformed
            and None not in self.sides
            and all(s == self.sides[0] for s in self.sides)
        )

    @property
    def value(self) -> Fraction | None:
        return None if self.malformed else self.sides[-1]


class _Parser:
    """Recursive descent over number/operator tokens with the usual precedence."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens, self.pos = tokens, 0

    def parse(self) -> Fraction | None:
        value = self._expr()
        if self.pos != len(self.tokens):
            raise ValueError("trailing tokens")
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> str:
        if self.pos >= len(self.tokens):
            raise ValueError("unexpected end")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _expr(self) -> Fraction | None:
        value = self._term()
        while self._peek() in ("+", "-"):
            op, rhs = self._take(), self._term()
            value = (
                None
                if value is None or rhs is None
                else (value + rhs if op == "+" else value - rhs)
            )
        return value

    def _term(self) -> Fraction | None:
        value = self._unary()
        while self._peek() in ("*", "/"):
            op, rhs = self._take(), self._unary()
            if value is None or rhs is None or (op == "/" and rhs == 0):
                value = None
            else:
                value = value * rhs if op == "*" else value / rhs
        return value

    def _unary(self) -> Fraction | None:
        if self._peek() == "-":
            self._take()
            value = self._unary()
            return None if value is None else -value
        return self._primary()

    def _primary(self) -> Fraction | None:
        token = self._take()
        if token == "(":
            value = self._expr()
            if self._take() != ")":
                raise ValueError("unbalanced parenthesis")
            return value
        if token[0].isdigit():
            return Fraction(token)
        raise ValueError(f"unexpected {token!r}")


def _runs(text: str) -> list[list[str]]:
    """Maximal runs of number/operator tokens (white space skipped, anything else ends a run)."""
    runs: list[list[str]] = [[]]
    for match in _TOKEN.finditer(text):
        number, op, space, other = match.groups()
        if space:
            continue
        if other is not None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(number or op)
    return [run for run in runs if run]


def _trim(run: list[str]) -> list[str]:
    """Drop dangling operators and unbalanced parentheses at the ends of a run."""
    while run and run[-1] in ("+", "-", "*", "/", "("):
        run = run[:-1]
    while run and run[0] in ("+", "*", "/", ")"):
        run = run[1:]
    while run and run[0] == "(" and run.count("(") > run.count(")"):
        run = run[1:]
    while run and run[-1] == ")" and run.count(")") > run.count("("):
        run = run[:-1]
    return run


def _parse_claims(text: str) -> tuple[list[_Claim], Fraction | None]:
    """Equations of a normalized step, and a value stated as ``= N`` with nothing before it."""
    claims: list[_Claim] = []
    stated: Fraction | None = None
    for raw in _runs(text):
        run = _trim(raw)
        if "=" not in run:
            continue
        sides: list[list[str]] = [[]]
        for token in run:
            if token == "=":
                sides.append([])
            else:
                sides[-1].append(token)
        while sides and not sides[0]:
            sides = sides[1:]
        if len(sides) == 1 and len(sides[0]) == 1 and sides[0][0][0].isdigit():
            stated = Fraction(sides[0][0])  # "Total = 17"
            continue
        key = "".join(run)
        try:
            if len(sides) < 2 or any(not side for side in sides):
                raise ValueError("empty side")
            values = [_Parser(side).parse() for side in sides]
        except (ValueError, ZeroDivisionError):
            claims.append(_Claim(text=key, sides=[], operands=[], malformed=True))
            continue
        computing = sides[:-1] if len(sides[-1]) == 1 else sides
        operands = [Fraction(t) for side in computing for t in side if t[0].isdigit()]
        claims.append(_Claim(text=key, sides=values, operands=operands))
    return claims, stated


def _show(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):g}"


# ----------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class StepCheck:
    """The verdict on one solution.

    Attributes:
        correct: Per step: True, False, or None (not judged: after the first error).
        reasons: Per step: why it was judged so (readable, for debugging and reports).
        first_error: Index of the first wrong step, -1 if none.
        final_answer: The number of the last answer line (``The answer is N``), None if none.
        answer_correct: Whether ``final_answer`` equals the gold answer.
        states_reached: The gold-state index the solution had reached after each judged step.
    """

    correct: list[bool | None]
    reasons: list[str]
    first_error: int
    final_answer: str | None
    answer_correct: bool
    states_reached: list[int] = field(default_factory=list)

    @property
    def labels(self) -> list[float | None]:
        """1.0 / 0.0 per judged step, None after the first error."""
        return [None if c is None else float(c) for c in self.correct]


def _gold(problem: Problem) -> tuple[list[Fraction], list[Fraction], set[Fraction]]:
    meta = problem.meta
    if meta.get("task") != "arithmetic" or "states" not in meta or "operands" not in meta:
        raise CheckerError(
            "the exact checker needs a built-in arithmetic problem",
            got=problem.id,
            expected="meta with task='arithmetic', 'states' and 'operands'",
            fix="generate problems with `prmkit problems task=arithmetic`",
        )
    states = [Fraction(s) for s in meta["states"]]
    operands = [Fraction(n) for n in meta["operands"]]
    return states, operands, set(states) | set(operands)


def _find_answer(text: str) -> tuple[str | None, bool, str]:
    """(number or None, whether an answer line is present, text with the answer removed)."""
    matches = list(_ANSWER.finditer(text))
    if not matches:
        return None, False, text
    last = matches[-1]
    number = next((g for g in last.groups() if g is not None), None)
    return number, True, text[: last.start()] + " " + text[last.end() :]


def check_steps(problem: Problem, steps: list[str], *, require_answer: bool = True) -> StepCheck:
    """Judge each step of a solution to a built-in arithmetic problem (rules in the module doc).

    Args:
        problem: A problem from :mod:`prmkit.tasks.arithmetic` (``meta["states"]`` etc.).
        steps: The solution's steps, e.g. ``prmkit.steps.split_steps(text)``.
        require_answer: Mark the last step wrong when an otherwise correct solution never states
            an answer. Turn off to judge a partial solution (a prefix).

    Raises:
        CheckerError: ``problem`` is not a built-in arithmetic problem.

    Example:
        >>> from prmkit.tasks.arithmetic import gold_solution, make_problem
        >>> p = make_problem(0, 1)
        >>> check_steps(p, gold_solution(p)).first_error
        -1
    """
    states, operands, grounded = _gold(problem)
    final = states[-1]
    k = 0
    seen_claims: set[str] = set()
    reached_values: set[Fraction] = {states[0]}
    correct: list[bool | None] = []
    reasons: list[str] = []
    reached: list[int] = []
    final_answer: str | None = None
    answered = False
    first_error = -1

    for step in steps:
        number, has_answer, body = _find_answer(_normalize(step))
        if has_answer:
            answered = True
            final_answer = None if number is None else _show(Fraction(number))
        if first_error >= 0:
            correct.append(None)
            reasons.append("not judged (after the first error)")
            continue
        ok, why, k = _judge(
            body, number, has_answer, states, operands, grounded, k, seen_claims, reached_values
        )
        correct.append(ok)
        reasons.append(why)
        reached.append(k)
        if not ok:
            first_error = len(correct) - 1

    if require_answer and first_error < 0 and not answered and correct:
        correct[-1] = False
        reasons[-1] = "unfinished: the solution ends without a final answer line"
        first_error = len(correct) - 1
    answer_correct = final_answer is not None and Fraction(final_answer) == final
    return StepCheck(
        correct=correct,
        reasons=reasons,
        first_error=first_error,
        final_answer=final_answer,
        answer_correct=answer_correct,
        states_reached=reached,
    )


def _judge(
    body: str,
    answer: str | None,
    has_answer: bool,
    states: list[Fraction],
    operands: list[Fraction],
    grounded: set[Fraction],
    k: int,
    seen_claims: set[str],
    reached_values: set[Fraction],
) -> tuple[bool, str, int]:
    """Judge one step; return (correct, reason, new state pointer)."""
    claims, stated = _parse_claims(body)
    if not claims and stated is None and not has_answer:
        match = _COLON_VALUE.search(body)
        if match:
            stated = Fraction(match.group(1))
    helpers: set[Fraction] = set()
    used: set[Fraction] = set()  # numbers the step's equations computed with
    notes: list[str] = []
    for i, claim in enumerate(claims):
        last = i == len(claims) - 1
        if claim.malformed:
            return False, f"malformed equation {claim.text!r}", k
        if None in claim.sides:
            return False, f"division by zero in {claim.text!r}", k
        if not claim.true:
            shown = " vs ".join(_show(s) for s in claim.sides)
            return False, f"false claim {claim.text!r} ({shown})", k
        loose = [n for n in claim.operands if n not in grounded and n not in helpers]
        if loose:
            return (
                False,
                (
                    f"{claim.text!r} uses {_show(loose[0])}, which is neither a number "
                    f"of the problem nor a value found so far"
                ),
                k,
            )
        used.update(claim.operands)
        value = claim.sides[-1]
        j = states.index(value) if value in states else -1
        if j > k and not _follows_gold(used, states, operands, j):
            return (
                False,
                (
                    f"{claim.text!r} lands on {_show(value)} (state {j}) without the gold "
                    f"operations that lead there (wrong operation, right value by chance)"
                ),
                k,
            )
        if j > k:
            notes.append(f"{claim.text} reaches state {j}" + (" (merged)" if j > k + 1 else ""))
            k = j
            reached_values.add(value)
        elif j == k:
            notes.append(f"{claim.text} restates state {k}")
        elif j >= 0 and claim.text in seen_claims:
            notes.append(f"{claim.text} repeats an earlier step")
        elif last:
            expected = _show(states[k + 1]) if k + 1 < len(states) else _show(states[k])
            if j >= 0:
                return (
                    False,
                    (
                        f"{claim.text!r} goes back to {_show(value)} (state {j}); "
                        f"expected {expected}"
                    ),
                    k,
                )
            return False, f"{claim.text!r} arrives at {_show(value)}; expected {expected}", k
        else:
            helpers.add(value)
            notes.append(f"{claim.text} computes a helper value")
        seen_claims.add(claim.text)
    if stated is not None:
        j = states.index(stated) if stated in states else -1
        if j > k:
            notes.append(f"states {_show(stated)} (state {j})")
            k = j
            reached_values.add(stated)
        elif j == k or (j >= 0 and stated in reached_values):
            notes.append(f"restates {_show(stated)}")
        else:
            expected = _show(states[min(k + 1, len(states) - 1)])
            return False, f"states {_show(stated)}; expected {expected}", k
    if has_answer:
        if answer is None:
            return False, "answer line without a number", k
        value = Fraction(answer)
        if value != states[-1]:
            if value in states:
                return (
                    False,
                    (
                        f"answers {_show(value)}, the value after "
                        f"{states.index(value)} of {len(states) - 1} operations; "
                        f"expected {_show(states[-1])}"
                    ),
                    k,
                )
            return False, f"answers {_show(value)}; expected {_show(states[-1])}", k
        notes.append(f"answers {_show(value)}")
        k = len(states) - 1
    return True, "; ".join(notes) or "no claim", k


def _follows_gold(
    used: set[Fraction], states: list[Fraction], operands: list[Fraction], j: int
) -> bool:
    """Whether ``used`` holds some gold state ``states[a]`` and the operands of ops ``a..j-1``."""
    return any(
        states[a] in used and all(operands[t] in used for t in range(a, j)) for a in range(j)
    )


def check_solution(problem: Problem, text: str, *, require_answer: bool = True) -> StepCheck:
    """Split ``text`` at blank lines (:func:`prmkit.steps.split_steps`) and check the steps."""
    return check_steps(problem, split_steps(text), require_answer=require_answer)


def label_trace(problem: Problem, trace: Trace, *, require_answer: bool = True) -> LabeledTrace:
    """Exact-check ``trace`` into a :class:`LabeledTrace` (``label_source="exact"``).

    ``meta["exact_check"]`` keeps the per-step reasons, the extracted final answer and whether it
    is correct; ``answer`` is filled from the answer line when the trace has none.
    """
    if trace.problem_id != problem.id:
        raise CheckerError(
            "trace and problem do not match",
            got=trace.problem_id,
            expected=f"problem_id {problem.id!r}",
            fix="pair each trace with the problem it answers",
        )
    result = check_steps(problem, trace.steps, require_answer=require_answer)
    fields: dict[str, Any] = trace.trace_fields()
    fields["meta"] = {
        **trace.meta,
        "exact_check": {
            "final_answer": result.final_answer,
            "answer_correct": result.answer_correct,
            "reasons": result.reasons,
        },
    }
    if fields["answer"] is None:
        fields["answer"] = result.final_answer
    return LabeledTrace(
        **fields, labels=result.labels, first_error=result.first_error, label_source=LABEL_SOURCE
    )
