"""Problem sources and checkers: the built-in arithmetic task, GSM8K and MATH-500.

* :mod:`prmkit.tasks.arithmetic`: seeded word problems with gold worked solutions.
* :mod:`prmkit.tasks.arithmetic_check`: the exact step checker (ground-truth step labels).
* :mod:`prmkit.tasks.prompts`: prompt templates (text files in ``prmkit/prompts/``).
* :mod:`prmkit.tasks.gsm8k`, :mod:`prmkit.tasks.math500`: loaders of the real data sets.
* :mod:`prmkit.tasks.answers`: final-answer extraction and math-verify checking with a timeout.
"""

from __future__ import annotations

from prmkit.tasks.answers import VerifyStats, check_answer, extract_answer, verify_answer
from prmkit.tasks.arithmetic import build_problem, generate, gold_solution, gold_text, make_problem
from prmkit.tasks.arithmetic_check import StepCheck, check_solution, check_steps, label_trace
from prmkit.tasks.gsm8k import load_gsm8k
from prmkit.tasks.math500 import load_math500
from prmkit.tasks.prompts import load_prompt, render_prompt

__all__ = [
    "StepCheck",
    "VerifyStats",
    "build_problem",
    "check_answer",
    "check_solution",
    "check_steps",
    "extract_answer",
    "generate",
    "gold_solution",
    "gold_text",
    "label_trace",
    "load_gsm8k",
    "load_math500",
    "load_prompt",
    "make_problem",
    "render_prompt",
    "verify_answer",
]
