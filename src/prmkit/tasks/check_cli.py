"""``prmkit check``: exact-check traces of built-in arithmetic problems into LabeledTraces.

Each LabeledTrace keeps the checker's verdicts in ``meta["exact_check"]`` and gets
``meta["final_answer_correct"]``: whether the trace's ``answer`` (the one best-of-N votes on)
equals the problem's answer, so the output feeds
``prmkit eval bon --correct-key final_answer_correct`` directly.

Example:
    prmkit check --traces traces.jsonl --problems problems.jsonl --out labeled.jsonl
    prmkit check traces=traces.jsonl problems=problems.jsonl out=labeled.jsonl require_answer=false
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from prmkit.cli import add_config_arguments, stage_config
from prmkit.config import option
from prmkit.errors import CheckerError, ConfigError
from prmkit.records import LabeledTrace, Problem, Trace, iter_records, read_records, write_records

__all__ = ["CheckConfig", "add_arguments", "answer_is_correct", "label_file", "run"]

_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass
class CheckConfig:
    """Config of ``prmkit check``."""

    traces: str = option("", "Trace records to check (.jsonl or .parquet)")
    problems: str = option("", "the built-in arithmetic problems the traces answer")
    out: str = option("labeled.jsonl", "output LabeledTrace file (.jsonl or .parquet)")
    require_answer: bool = option(
        True, "mark the last step of an otherwise correct trace wrong when it states no answer"
    )


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


def label_file(
    traces: str, problems: str, out: str, *, require_answer: bool = True
) -> list[LabeledTrace]:
    """Exact-label every trace in ``traces`` and write them to ``out``; return them.

    Each record's ``meta["final_answer_correct"]`` says whether its ``answer`` is the problem's.

    Raises:
        CheckerError: a trace names a problem that is not in ``problems``.
    """
    from tqdm import tqdm

    from prmkit.tasks.arithmetic_check import label_trace

    by_id = {p.id: p for p in read_records(problems, Problem)}
    labeled: list[LabeledTrace] = []
    for trace in tqdm(iter_records(traces, Trace), desc="check", unit="trace", disable=None):
        problem = by_id.get(trace.problem_id)
        if problem is None:
            raise CheckerError(
                "trace answers an unknown problem",
                got=trace.problem_id,
                expected=f"a problem id from {problems}",
                fix="pass the problems file the traces were generated from",
                where=f"trace {trace.id!r} in {traces}",
            )
        record = label_trace(problem, trace, require_answer=require_answer)
        record.meta["final_answer_correct"] = answer_is_correct(record.answer, problem.answer)
        labeled.append(record)
    write_records(out, labeled)
    return labeled


def summarize(labeled: list[LabeledTrace]) -> str:
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--traces/--problems/--out`` flags plus ``--config`` and ``key=value`` overrides."""
    add_config_arguments(parser, CheckConfig)
    parser.add_argument("--traces", dest="traces_flag", help="Trace records to check")
    parser.add_argument("--problems", dest="problems_flag", help="the problems file")
    parser.add_argument("--out", dest="out_flag", help="output LabeledTrace file")


def run(args: argparse.Namespace) -> int:
    """Check the traces, write the labels, print a summary."""
    for key in ("traces", "problems", "out"):
        value = getattr(args, f"{key}_flag")
        if value is not None:
            args.overrides = [*args.overrides, f"{key}={value}"]
    cfg = stage_config(CheckConfig, args)
    for key in ("traces", "problems"):
        if not getattr(cfg, key):
            raise ConfigError(
                f"no {key} file given", got="", expected="a path", fix=f"pass --{key} FILE"
            )
    labeled = label_file(cfg.traces, cfg.problems, cfg.out, require_answer=cfg.require_answer)
    print(f"wrote {len(labeled)} labeled traces to {cfg.out}")
    print(summarize(labeled))
    return 0
