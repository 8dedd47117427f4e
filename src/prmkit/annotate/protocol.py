"""The annotation seams: what a labeler is, and what it needs to check answers and steps.

A :class:`Labeler` turns :class:`~prmkit.records.Trace` records into
:class:`~prmkit.records.LabeledTrace` records. Each output carries its provenance in
``meta["annotation"]``: the ``label_source``, the rollouts and policy tokens spent on it, and the
method's own details (Monte Carlo values, probed prefixes, judge votes).

Checkers are protocols too, so a labeler works with the built-in arithmetic task, GSM8K-style
answers or anything else that can say whether a final answer is right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from prmkit.records import LabeledTrace, Problem, Trace

__all__ = [
    "AnswerCheck",
    "AnswerChecker",
    "Cost",
    "Labeler",
    "StepChecker",
    "annotation_meta",
    "labeled",
]


@dataclass(frozen=True)
class AnswerCheck:
    """The final answer found in a solution text, and whether it is correct."""

    answer: str | None
    correct: bool


@runtime_checkable
class AnswerChecker(Protocol):
    """Says whether a (complete) solution's final answer is correct for a problem."""

    def check(self, problem: Problem, solution: str) -> AnswerCheck:
        """Extract the final answer of ``solution`` and compare it with ``problem.answer``."""
        ...


@runtime_checkable
class StepChecker(Protocol):
    """Exact per-step ground truth (e.g. the built-in arithmetic task's checker)."""

    def first_error(self, problem: Problem, steps: Sequence[str]) -> int:
        """0-based index of the first wrong step, -1 if every step is correct."""
        ...


@runtime_checkable
class Labeler(Protocol):
    """Labels traces step by step.

    ``label`` returns one :class:`LabeledTrace` per input trace, in order (a labeler may append
    extra traces it discovered, e.g. OmegaPRM's tree, after them, marked in ``meta``), each with
    ``meta["annotation"]`` as built by :func:`annotation_meta`.
    """

    name: str

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Label ``traces``; rollouts already in the store are reused, not redrawn."""
        ...


@dataclass
class Cost:
    """Policy budget spent on one trace: rollouts used and their tokens."""

    rollouts: int = 0
    policy_tokens: int = 0
    prompt_tokens: int = 0

    def add(self, rollouts: Sequence[Any]) -> None:
        """Count stored rollouts (anything with ``completion_tokens`` / ``prompt_tokens``)."""
        self.rollouts += len(rollouts)
        self.policy_tokens += sum(r.completion_tokens for r in rollouts)
        self.prompt_tokens += sum(r.prompt_tokens for r in rollouts)


def annotation_meta(label_source: str, cost: Cost, **details: Any) -> dict[str, Any]:
    """The provenance block stored under ``meta["annotation"]``."""
    return {
        "label_source": label_source,
        "rollouts": cost.rollouts,
        "policy_tokens": cost.policy_tokens,
        "prompt_tokens": cost.prompt_tokens,
        **details,
    }


def labeled(
    trace: Trace,
    labels: list[float | None],
    first_error: int,
    label_source: str,
    cost: Cost,
    **details: Any,
) -> LabeledTrace:
    """Build the output record: the trace's fields, labels, and provenance in ``meta``."""
    meta = dict(trace.meta)
    meta["annotation"] = annotation_meta(label_source, cost, **details)
    fields_ = trace.trace_fields()
    fields_["meta"] = meta
    return LabeledTrace(
        **fields_, labels=labels, first_error=first_error, label_source=label_source
    )
