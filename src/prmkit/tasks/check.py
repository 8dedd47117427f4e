"""The check stage: exact step labels for traces of the built-in arithmetic task.

Each LabeledTrace keeps the checker's verdicts in ``meta["exact_check"]`` and gets
``meta["final_answer_correct"]``: whether the trace's ``answer`` (the one best-of-N votes on)
equals the problem's answer, so the output feeds
``prmkit eval bon --correct-key final_answer_correct`` directly.

Example:
    >>> cfg = CheckConfig(traces="traces.jsonl", problems="problems.jsonl", out="labeled.jsonl")
    >>> labeled = check_traces(cfg)  # doctest: +SKIP
    >>> print(summarize_check(labeled))  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from prmkit.config import check_ranges, option
from prmkit.errors import CheckerError, ConfigError
from prmkit.records import LabeledTrace, Problem, Trace, iter_records, read_records, write_records

__all__ = ["CheckConfig", "answer_is_correct", "check_traces", "summarize_check"]

_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass
class CheckConfig:
    """Config of ``prmkit check``."""

    traces: str = option("", "Trace records to check (.jsonl or .parquet)")
    problems: str = option("", "the built-in arithmetic problems the traces answer")
    out: str | None = option(
        "labeled.jsonl", "output LabeledTrace file (.jsonl or .parquet; null: write nothing)"
    )
    require_answer: bool = option(
        True, "mark the last step of an otherwise correct trace wrong when it states no answer"
    )

    def __post_init__(self) -> None:
        check_ranges(self)


def answer_is_correct(answer: str | None, gold: str) -> bool:
    """Whether ``answer`` equals ``gold``: as numbers when both are decimals, else as text.

    Example:
        >>> answer_is_correct("14.0", "14"), answer_is_correct("1,200", "1200")
        (True, True)
        >>> answer_is_correct(None, "14"), answer_is_correct("15", "14")
        (False, False)
    """
    if answer is None:
        return False
    pred, ref = answer.strip().replace(",", ""), gold.strip().replace(",", "")
    if _DECIMAL.fullmatch(pred) and _DECIMAL.fullmatch(ref):
        return Fraction(pred) == Fraction(ref)
    return pred == ref


def check_traces(
    cfg: CheckConfig,
    traces: Iterable[Trace] | None = None,
    problems: Iterable[Problem] | None = None,
    *,
    progress: bool = True,
) -> list[LabeledTrace]:
    """Exact-label every trace; write them to ``cfg.out`` (atomically) unless it is ``None``.

    Args:
        cfg: The stage config.
        traces: The traces in memory (``None``: read ``cfg.traces``).
        problems: The problems in memory (``None``: read ``cfg.problems``).
        progress: Show a progress bar (on a terminal).

    Returns:
        One LabeledTrace per trace, in order; ``meta["final_answer_correct"]`` says whether its
        ``answer`` is the problem's.

    Raises:
        ConfigError: no traces or problems given, in memory or as a path.
        CheckerError: a trace names a problem that is not among the problems.
    """
    from tqdm import tqdm

    from prmkit.tasks.arithmetic_check import label_trace

    for key, given in (("traces", traces), ("problems", problems)):
        if given is None and not getattr(cfg, key):
            raise ConfigError(
                f"no {key} file given", got="", expected="a path", fix=f"pass --{key} FILE"
            )
    if problems is None:
        problems = read_records(cfg.problems, Problem)
    source = cfg.problems if cfg.problems else "the problems given"
    if traces is None:
        traces = iter_records(cfg.traces, Trace)
    by_id = {p.id: p for p in problems}
    labeled: list[LabeledTrace] = []
    for trace in tqdm(traces, desc="check", unit="trace", disable=None if progress else True):
        problem = by_id.get(trace.problem_id)
        if problem is None:
            raise CheckerError(
                "trace answers an unknown problem",
                got=trace.problem_id,
                expected=f"a problem id from {source}",
                fix="pass the problems file the traces were generated from",
                where=f"trace {trace.id!r} in {cfg.traces or 'the traces given'}",
            )
        record = label_trace(problem, trace, require_answer=cfg.require_answer)
        record.meta["final_answer_correct"] = answer_is_correct(record.answer, problem.answer)
        labeled.append(record)
    if cfg.out is not None:
        write_records(cfg.out, labeled)
    return labeled


def summarize_check(labeled: list[LabeledTrace]) -> str:
    """Counts for the terminal: traces, all-correct, answer accuracy, first-error histogram."""
    n = len(labeled)
    if not n:
        return "no traces"
    clean = sum(t.first_error == -1 for t in labeled)
    right = sum(bool(t.meta["exact_check"]["answer_correct"]) for t in labeled)
    lucky = sum(t.first_error != -1 and t.meta["exact_check"]["answer_correct"] for t in labeled)
    hist = Counter(t.first_error for t in labeled if t.first_error >= 0)
    lines = [
        f"{n} traces: {clean} with every step correct ({clean / n:.1%}), "
        f"{right} with the correct answer ({right / n:.1%}), "
        f"{lucky} with the correct answer despite a wrong step",
        "first wrong step: "
        + (", ".join(f"step {k}: {v}" for k, v in sorted(hist.items())) or "none"),
    ]
    return "\n".join(lines)
