"""Fixtures for the annotation tests: built-in arithmetic problems and a scripted policy.

A tiny random-weight model never reaches a right answer, so every Monte Carlo value it gives is 0
and no labeler logic could be told apart from "all wrong". The labelers are therefore tested with
:class:`ScriptedPolicy`, a real :class:`~prmkit.generate.protocol.Generator` over the built-in
arithmetic task: it continues a prefix from the value the prefix reached, slipping on each
remaining operation with probability ``slip`` (its own random stream per sample). A prefix with a
wrong value can only end wrong; a correct prefix ends right with probability
``(1 - slip) ** remaining``. The store, the engine, SQLite and the checker are all real; the
tiny-model runs (store determinism, resume after ``kill -9``) are in tests/integration.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import pytest

from prmkit.annotate.build import LabelerBuilder
from prmkit.annotate.checkers import TaskAnswerChecker
from prmkit.annotate.rollouts import RolloutEngine
from prmkit.annotate.store import RolloutStore
from prmkit.generate.protocol import Completion, Prefix, SamplingParams
from prmkit.records import Problem, Trace, write_records
from prmkit.tasks.arithmetic import gold_solution, make_problem

_RESULT = re.compile(r"=\s*(-?\d+(?:\.\d+)?)\s*$")


def _apply(op: str, value: float, n: int) -> float:
    """Exact arithmetic; a wrong value that does not divide stays a (never right) decimal."""
    if op == "/":
        return value // n if value % n == 0 else round(value / n, 3)
    return {"+": value + n, "-": value - n, "*": value * n}[op]


class ScriptedPolicy:
    """A Generator for arithmetic prompts that slips on each operation with probability ``slip``.

    A slip adds 1-3 to the result, and every operation keeps an excess positive, so a wrong
    value is never repaired: the first error of a trace is exactly where its value goes wrong.
    """

    def __init__(self, problems: Sequence[Problem], slip: float = 0.15) -> None:
        self.by_prompt = {p.prompt: p for p in problems}
        self.slip = slip
        self.calls: list[tuple[int, int, int | None]] = []  # (prefixes, n, seed)

    def _continue(self, prefix: Prefix, rng: random.Random) -> str:
        problem = self.by_prompt[prefix.prompt]
        meta = problem.meta
        value, done = meta["start"], 0
        for step in prefix.steps:
            match = _RESULT.search(step)
            if match:
                value, done = float(match.group(1)), done + 1
                value = int(value) if value == int(value) else value
        lines = []
        for op, n, clause in list(zip(meta["ops"], meta["operands"], meta["clauses"], strict=True))[
            done:
        ]:
            exact = _apply(op, value, n)
            result = exact + rng.choice([1, 2, 3]) if rng.random() < self.slip else exact
            lines.append(f"{clause}: {value} {op} {n} = {result}")
            value = result
        lines.append(f"The answer is {value}.")
        return "\n\n".join(lines)

    def continue_from(
        self, prefixes: Sequence[Prefix], n: int, params: SamplingParams, stop: str = "solution"
    ) -> list[list[Completion]]:
        self.calls.append((len(prefixes), n, params.seed))
        out = []
        for i, prefix in enumerate(prefixes):
            group = []
            for j in range(n):
                text = self._continue(prefix, random.Random(f"{params.seed}/{i}/{j}"))
                group.append(
                    Completion(
                        text=text,
                        prompt_tokens=10 + 5 * len(prefix.steps),
                        completion_tokens=len(text.split()),
                        finish_reason="eos",
                    )
                )
            out.append(group)
        return out

    def sample(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        return self.continue_from([Prefix(p) for p in prompts], n, params)


def corrupt(problem: Problem, step: int, trace_id: str) -> Trace:
    """The gold solution with a wrong result at ``step`` (-1: none), carried to the answer."""
    meta = problem.meta
    value, steps = meta["start"], []
    for i, (op, n, clause) in enumerate(
        zip(meta["ops"], meta["operands"], meta["clauses"], strict=True)
    ):
        exact = _apply(op, value, n)
        result = exact + 1 if i == step else exact
        steps.append(f"{clause}: {value} {op} {n} = {result}")
        value = result
    steps.append(f"The answer is {value}.")
    if step < 0:
        assert steps == gold_solution(problem)
    return Trace(
        id=trace_id, problem_id=problem.id, prompt=problem.prompt, steps=steps, answer=str(value)
    )


@pytest.fixture
def problems() -> list[Problem]:
    return [make_problem(7, i, n_steps=8) for i in range(6)]


@pytest.fixture
def traces(problems) -> list[Trace]:
    """Six 9-step traces with first errors at steps 0, 2, 3, 5, 7 and none."""
    errors = [0, 2, 3, 5, 7, -1]
    return [corrupt(p, e, f"t{i}") for i, (p, e) in enumerate(zip(problems, errors, strict=True))]


@pytest.fixture
def make_engine(problems, tmp_path):
    """``make_engine(slip=..., store=..., seed=...) -> (engine, policy)``."""

    def build(
        slip: float = 0.15,
        store: RolloutStore | None = None,
        seed: int = 0,
        max_prefixes_per_call: int = 8,
    ):
        policy = ScriptedPolicy(problems, slip)
        store = store or RolloutStore(tmp_path / "rollouts.sqlite")
        engine = RolloutEngine(
            policy,
            store,
            TaskAnswerChecker(),
            {p.id: p for p in problems},
            seed=seed,
            policy=f"scripted-{slip}",
            max_prefixes_per_call=max_prefixes_per_call,
        )
        return engine, policy

    return build


class ScriptedJudge:
    """A judge Generator that always names step 0 (no rollouts: it only samples)."""

    def sample(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        return [[Completion("\\boxed{0}", 50, 4, "eos") for _ in range(n)] for _ in prompts]


@pytest.fixture
def files(problems, traces, tmp_path):
    """The problems and traces on disk: ``p.jsonl`` and ``t.jsonl`` in ``tmp_path``."""
    write_records(tmp_path / "p.jsonl", problems)
    write_records(tmp_path / "t.jsonl", traces)
    return tmp_path


@pytest.fixture
def use_models(monkeypatch):
    """``use_models(policy, judge=None) -> loaded``: what ``prmkit annotate`` loads instead.

    The CLI then gets ``judge`` for the model named ``judge-model`` and ``policy`` for any other;
    ``loaded`` lists the ``(model, adapter)`` pairs it asked for.
    """

    def patch(policy, judge=None) -> list[tuple[str, str | None]]:
        loaded: list[tuple[str, str | None]] = []

        def generator(self, model: str, adapter: str | None):
            loaded.append((model, adapter))
            return judge if judge is not None and model == "judge-model" else policy

        monkeypatch.setattr(LabelerBuilder, "generator", generator)
        return loaded

    return patch
