"""Problem sources and checkers: the built-in arithmetic task, GSM8K and MATH-500.

* :mod:`prmkit.tasks.problems`: the problems stage (:func:`build_problems`) and
  :func:`read_problems`, the reader of a problems file.
* :mod:`prmkit.tasks.check`: the check stage (:func:`check_traces`): exact step labels.
* :mod:`prmkit.tasks.arithmetic`: seeded word problems with gold worked solutions.
* :mod:`prmkit.tasks.arithmetic_check`: the exact step checker (ground-truth step labels).
* :mod:`prmkit.tasks.prompts`: prompt templates (text files in ``prmkit/prompts/``).
* :mod:`prmkit.tasks.gsm8k`, :mod:`prmkit.tasks.math500`: loaders of the real data sets.
* :mod:`prmkit.tasks.answers`: final-answer extraction and math-verify checking with a timeout.

Example:
    >>> from prmkit.tasks import ProblemsConfig, arithmetic_problems, build_problems
    >>> len(build_problems(ProblemsConfig(n=4, out=None)))
    4
    >>> arithmetic_problems(2, seed=0)[0].id
    'arith-s0-0'
"""

from __future__ import annotations

from prmkit.tasks.answers import VerifyStats, check_answer, extract_answer, verify_answer
from prmkit.tasks.arithmetic import build_problem, gold_solution, gold_text, make_problem
from prmkit.tasks.arithmetic import generate as arithmetic_problems
from prmkit.tasks.arithmetic_check import StepCheck, check_solution, check_steps, label_trace
from prmkit.tasks.check import CheckConfig, answer_is_correct, check_traces, summarize_check
from prmkit.tasks.gsm8k import load_gsm8k
from prmkit.tasks.math500 import load_math500
from prmkit.tasks.problems import (
    ProblemsConfig,
    build_problems,
    read_problems,
    summarize_problems,
)
from prmkit.tasks.prompts import load_prompt, render_prompt

__all__ = [
    "CheckConfig",
    "ProblemsConfig",
    "StepCheck",
    "VerifyStats",
    "answer_is_correct",
    "arithmetic_problems",
    "build_problem",
    "build_problems",
    "check_answer",
    "check_solution",
    "check_steps",
    "check_traces",
    "extract_answer",
    "gold_solution",
    "gold_text",
    "label_trace",
    "load_gsm8k",
    "load_math500",
    "load_prompt",
    "make_problem",
    "read_problems",
    "render_prompt",
    "summarize_check",
    "summarize_problems",
    "verify_answer",
]
