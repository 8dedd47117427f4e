"""Final answers: extraction from a solution, and checking against the gold answer.

* :func:`extract_boxed` takes the content of the last ``\\boxed{...}`` (nested braces kept).
* :func:`extract_answer` finds the final answer of a solution: the last ``\\boxed{}``, else the
  last ``The answer is X`` / ``Answer: X`` line, else ``#### X``; ``None`` when there is none
  (no guessing from the last number unless ``last_number=True`` is asked for).
* :func:`verify_answer` compares a prediction with a gold answer: plain numbers directly (``$``,
  commas and units stripped), anything else through math-verify's ``parse``/``verify`` with a
  timeout. Strict by default: a gold answer math-verify cannot parse, a timeout or an internal
  error raises :class:`~prmkit.errors.CheckerError`. ``lenient=True`` counts such failures in a
  :class:`VerifyStats` and returns False; show ``stats.summary()`` in the run's report.
* :func:`check_answer` picks the right comparison for a problem's task.

The timeout covers one whole check (both parses and the comparison) and is prmkit's own
``SIGALRM`` timer raising a ``BaseException``: math-verify's timeout exception is an ``Exception``
that sympy's ``except Exception`` blocks can swallow, after which the check ran unbounded. Signals
only reach the main thread; in other threads the check runs without a timeout and is counted in
``VerifyStats.untimed``.

Example:
    >>> verify_answer("\\\\frac{1}{2}", "0.5")
    True
    >>> extract_answer("So x = 3.\\n\\nThe answer is $1,200.")
    '1200'
"""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

from prmkit.errors import CheckerError
from prmkit.records import Problem

__all__ = ["VerifyStats", "check_answer", "extract_answer", "extract_boxed", "verify_answer"]

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_LINE = re.compile(r"(?i)\b(?:final\s+)?answer\s*(?:is\b|:|=)\s*:?\s*(.+)")
_HASHES = re.compile(r"####\s*(.+)")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass
class VerifyStats:
    """Counts of one run's answer checks; failures are counted, never hidden.

    Attributes:
        calls: Checks made.
        correct: Checks that returned True.
        no_answer: Predictions with no extractable answer (counted as wrong, not a failure).
        gold_unparsed: Gold answers math-verify could not parse (failures).
        timeouts: math-verify calls that hit the timeout (failures).
        errors: Other math-verify exceptions (failures).
        untimed: math-verify calls made outside the main thread, without a timeout.
    """

    calls: int = 0
    correct: int = 0
    no_answer: int = 0
    gold_unparsed: int = 0
    timeouts: int = 0
    errors: int = 0
    untimed: int = 0

    def add(self, other: VerifyStats) -> None:
        """Add ``other``'s counts to these (e.g. a worker's checks)."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def failures(self) -> int:
        """Checks that could not be decided (gold unparsable, timeout, error)."""
        return self.gold_unparsed + self.timeouts + self.errors

    def summary(self) -> str:
        """One line for reports, e.g. ``answers: 12/20 correct, 3 without answer, 0 failures``."""
        text = (
            f"answers: {self.correct}/{self.calls} correct, {self.no_answer} without answer, "
            f"{self.failures} failures"
        )
        if self.failures:
            text += (
                f" ({self.gold_unparsed} gold unparsed, {self.timeouts} timeouts, "
                f"{self.errors} errors)"
            )
        if self.untimed:
            text += f", {self.untimed} without timeout (not main thread)"
        return text

    def to_dict(self) -> dict[str, int]:
        """The counts as a plain dict (for JSON reports)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced.

    Example:
        >>> extract_boxed("so $\\\\boxed{\\\\frac{1}{2}}$ and not \\\\boxed{x")
        '\\\\frac{1}{2}'
    """
    found = None
    for match in _BOXED.finditer(text):
        depth, start = 1, match.end()
        for pos in range(start, len(text)):
            if text[pos] == "{":
                depth += 1
            elif text[pos] == "}":
                depth -= 1
                if depth == 0:
                    found = text[start:pos].strip()
                    break
    return found


def _clean_line(value: str) -> str:
    value = value.strip().splitlines()[0].strip()
    value = value.strip("$ ").rstrip(".").strip("$ ")
    number = _number_of(value)
    return number if number is not None else value


def _number_of(text: str) -> str | None:
    """``text`` as a plain number string if it is one (``$``, commas, trailing words dropped)."""
    cleaned = re.sub(r"\\[!,; ]|\{,\}", lambda m: "," if m.group() == "{,}" else "", text)
    cleaned = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", cleaned.replace("\\$", "$")).strip()
    cleaned = cleaned.lstrip("$").strip()
    match = re.fullmatch(rf"({_PLAIN_NUMBER.pattern})\s*(?:[A-Za-z%'\s]*)\.?", cleaned)
    if not match:
        return None
    value = Fraction(match.group(1))
    return str(value.numerator) if value.denominator == 1 else match.group(1)


def extract_answer(text: str, *, last_number: bool = False) -> str | None:
    """The final answer stated in a solution, or None.

    Looks for, in order: the last ``\\boxed{}``, the last ``The answer is X`` (``Answer: X``)
    line, ``#### X``; with ``last_number=True`` it then falls back to the last number in the
    text. Plain numbers come back normalized (``$1,200.`` -> ``1200``).
    """
    boxed = extract_boxed(text)
    if boxed is not None:
        number = _number_of(boxed)
        return number if number is not None else boxed
    for pattern in (_ANSWER_LINE, _HASHES):
        matches = list(pattern.finditer(text))
        if matches:
            return _clean_line(matches[-1].group(1))
    if last_number:
        numbers = _NUMBER.findall(re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", text))
        return numbers[-1] if numbers else None
    return None


class _Deadline(BaseException):
    """Raised by the check's own timer. A BaseException, so sympy's ``except Exception`` blocks
    cannot swallow it (math-verify's own TimeoutException is an Exception: when it fired inside
    such a block, the computation went on without any limit)."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`_Deadline` after ``seconds`` of wall time (main thread only)."""

    def expire(signum: int, frame: Any) -> None:
        raise _Deadline

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _math_verify(pred: str, gold: str, timeout_s: int, stats: VerifyStats, lenient: bool) -> bool:
    from math_verify import parse, verify

    timed = threading.current_thread() is threading.main_thread()
    if not timed:
        stats.untimed += 1

    def fail(counter: str, what: str, got: Any) -> bool:
        setattr(stats, counter, getattr(stats, counter) + 1)
        if not lenient:
            raise CheckerError(
                what,
                got=got,
                expected="an answer math-verify can check",
                fix="fix the gold answer, raise timeout_s, or pass lenient=True "
                "to count such cases",
            )
        return False

    try:
        with _deadline(timeout_s) if timed else nullcontext():
            # math-verify's own timeouts are off: one deadline covers the whole check
            gold_parsed = parse(f"${gold}$", parsing_timeout=None, raise_on_error=True)
            pred_parsed = parse(
                pred if "\\boxed" in pred or "$" in pred else f"${pred}$",
                parsing_timeout=None,
                raise_on_error=True,
            )
            same = bool(gold_parsed and pred_parsed) and bool(
                verify(gold_parsed, pred_parsed, timeout_seconds=None, raise_on_error=True)
            )
    except _Deadline:
        return fail("timeouts", f"math-verify timed out after {timeout_s} s", (pred, gold))
    except Exception as exc:  # math-verify raises sympy/latex2sympy errors of many types
        return fail("errors", f"math-verify failed ({type(exc).__name__}: {exc})", (pred, gold))
    if not gold_parsed:
        return fail("gold_unparsed", "math-verify cannot parse the gold answer", gold)
    if not pred_parsed:
        stats.no_answer += 1
    return same


def verify_answer(
    pred: str | None,
    gold: str,
    *,
    timeout_s: int = 5,
    lenient: bool = False,
    stats: VerifyStats | None = None,
) -> bool:
    """Whether the predicted answer equals the gold answer.

    Args:
        pred: The predicted answer (bare, e.g. ``"0.5"``, or a text with ``\\boxed{}``);
            None counts as no answer.
        gold: The gold answer (bare LaTeX or a number).
        timeout_s: Timeout of the whole check (parses and comparison), in seconds.
        lenient: Count undecidable checks in ``stats`` and return False instead of raising.
        stats: Counters to update (a fresh one is used when None).

    Raises:
        CheckerError: (strict mode) the gold answer cannot be parsed, math-verify timed out or
            failed.

    Example:
        >>> verify_answer("$1,200", "1200"), verify_answer("\\\\boxed{x^2}", "x^{2}")
        (True, True)
    """
    stats = stats if stats is not None else VerifyStats()
    stats.calls += 1
    if pred is None or not pred.strip():
        stats.no_answer += 1
        return False
    pred_number, gold_number = _number_of(pred), _number_of(gold)
    if pred_number is not None and gold_number is not None:
        ok = Fraction(pred_number) == Fraction(gold_number)
    else:
        ok = _math_verify(pred, gold, timeout_s, stats, lenient)
    stats.correct += ok
    return ok


def check_answer(
    problem: Problem,
    solution: str,
    *,
    timeout_s: int = 5,
    lenient: bool = False,
    stats: VerifyStats | None = None,
) -> bool:
    """Whether a solution text reaches the problem's gold answer.

    The answer is taken with :func:`extract_answer` (``\\boxed{}``, ``The answer is X``,
    ``#### X``) and compared with :func:`verify_answer`.
    """
    return verify_answer(
        extract_answer(solution), problem.answer, timeout_s=timeout_s, lenient=lenient, stats=stats
    )
