"""Rollout annotation (mc, binary, omega) of GSM8K- and MATH-500-style problems, API and CLI.

The problems are written inline in the shape :mod:`prmkit.tasks.gsm8k` and
:mod:`prmkit.tasks.math500` produce (``meta["task"]``, bare numeric / LaTeX answers), so the tests
need no data set. The policy is a tiny random-weight model: its rollouts never reach an answer, but
each trace's own final answer is checked for real (``values[-1]``), and every rollout goes through
the task's answer checker and into the store.
"""

from __future__ import annotations

import sqlite3

import pytest

from prmkit.annotate.binary_search import BinarySearchLabeler
from prmkit.annotate.checkers import TaskAnswerChecker
from prmkit.annotate.montecarlo import MonteCarloLabeler
from prmkit.annotate.omega import OmegaPRMLabeler
from prmkit.annotate.rollouts import RolloutEngine
from prmkit.annotate.store import RolloutStore
from prmkit.records import LabeledTrace, Problem, Trace, read_records, write_records

pytestmark = pytest.mark.integration

K = 2
MAX_NEW_TOKENS = 6


def _gsm8k() -> tuple[list[Problem], list[Trace]]:
    problems = [
        Problem(
            id="gsm8k-test-0",
            prompt="Janet's ducks lay 16 eggs per day. She eats 3 and bakes muffins with 4. "
            "She sells the rest at $2 each. How many dollars does she make?",
            answer="18",
            meta={
                "task": "gsm8k",
                "split": "test",
                "index": 0,
                "gold_steps": ["16 - 3 - 4 = 9 eggs are left.", "9 * 2 = $18."],
            },
        ),
        Problem(
            id="gsm8k-test-1",
            prompt="A robe takes 2 bolts of blue fiber and half that much white fiber. "
            "How many bolts in total does it take?",
            answer="3",
            meta={"task": "gsm8k", "split": "test", "index": 1, "gold_steps": ["2 / 2 = 1", "3"]},
        ),
    ]
    steps = ["16 - 3 - 4 = 9 eggs are left.", "She makes 9 * 2 = $18.", "The answer is 18."]
    wrong = ["16 - 3 = 13 eggs are left.", "She makes 13 * 2 = $26.", "The answer is 26."]
    traces = [
        Trace(id="g0-right", problem_id="gsm8k-test-0", prompt=problems[0].prompt, steps=steps),
        Trace(id="g0-wrong", problem_id="gsm8k-test-0", prompt=problems[0].prompt, steps=wrong),
        Trace(
            id="g1-wrong",
            problem_id="gsm8k-test-1",
            prompt=problems[1].prompt,
            steps=["White fiber: 2 / 2 = 1 bolt.", "Total: 2 + 1 = 4.", "#### 4"],
        ),
    ]
    return problems, traces


def _math500() -> tuple[list[Problem], list[Trace]]:
    problems = [
        Problem(
            id="math500-0",
            prompt="Simplify $\\frac{6}{12}$.",
            answer="\\frac{1}{2}",
            meta={
                "task": "math500",
                "index": 0,
                "subject": "Prealgebra",
                "level": 1,
                "unique_id": "test/prealgebra/1.json",
                "solution": "Divide by 6: $\\boxed{\\frac{1}{2}}$.",
            },
        ),
        Problem(
            id="math500-1",
            prompt="Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
            answer="\\left( 3, \\frac{\\pi}{2} \\right)",
            meta={
                "task": "math500",
                "index": 1,
                "subject": "Precalculus",
                "level": 2,
                "unique_id": "test/precalculus/807.json",
                "solution": "$r = 3$, $\\theta = \\frac{\\pi}{2}$.",
            },
        ),
    ]
    traces = [
        Trace(
            id="m0-right",
            problem_id="math500-0",
            prompt=problems[0].prompt,
            steps=["Divide top and bottom by 6.", "So it is $\\boxed{\\frac{1}{2}}$."],
        ),
        Trace(
            id="m1-wrong",
            problem_id="math500-1",
            prompt=problems[1].prompt,
            steps=[
                "$r = \\sqrt{0^2 + 3^2} = 3$.",
                "$\\theta = 0$.",
                "The answer is $\\boxed{(3, 0)}$.",
            ],
        ),
    ]
    return problems, traces


TASKS = {"gsm8k": _gsm8k, "math500": _math500}
RIGHT = {"g0-right", "m0-right"}


def _labeler(method: str, engine: RolloutEngine):
    if method == "mc":
        return MonteCarloLabeler(engine, k=K, label="soft")
    if method == "binary":
        return BinarySearchLabeler(engine, k=K)
    return OmegaPRMLabeler(engine, k=K, search_limit=2)


def _check_outputs(method: str, traces: list[Trace], out: list[LabeledTrace]) -> None:
    assert [t.id for t in out[: len(traces)]] == [t.id for t in traces]
    for record in out:
        assert len(record.labels) == len(record.steps)
    for trace, record in zip(traces, out, strict=False):
        meta = record.meta["annotation"]
        right = trace.id in RIGHT
        if method == "mc":
            # the trace's own final answer, checked by the task's checker
            assert meta["values"][-1] == (1.0 if right else 0.0)
            assert meta["rollouts"] == K * (len(trace.steps) - 1)
        elif not right:  # random rollouts never solve the problem: unsolvable, nothing searched
            assert meta["unsolvable"] is True and meta["root_value"] == 0.0
            assert record.labels == [None] * len(trace.steps) and record.first_error == -1
        else:  # a right final answer: all correct (binary: no search)
            assert record.first_error == -1
            assert meta["rollouts"] == 0 or method == "omega"


def _stored(path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT namespace, state, idx FROM rollouts").fetchall()


@pytest.mark.parametrize("method", ["mc", "binary", "omega"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_annotate_task_problems_through_the_api(task, method, tmp_path, tiny_lm, smol_tokenizer):
    from prmkit.generate.protocol import SamplingParams
    from prmkit.generate.transformers_backend import TransformersGenerator

    problems, traces = TASKS[task]()
    checker = TaskAnswerChecker(lenient=True)
    store = RolloutStore(tmp_path / "r.sqlite")
    engine = RolloutEngine(
        TransformersGenerator(tiny_lm, smol_tokenizer, batch_size=8),
        store,
        checker,
        {p.id: p for p in problems},
        params=SamplingParams(max_new_tokens=MAX_NEW_TOKENS),
    )
    out = _labeler(method, engine).label(traces)
    _check_outputs(method, traces, out)
    stored, _ = store.total(engine.namespace)
    assert stored == engine.drawn.rollouts > 0
    assert checker.stats.calls >= stored  # every rollout was checked
    store.close()


@pytest.mark.parametrize("method", ["mc", "binary", "omega"])
@pytest.mark.parametrize("task", sorted(TASKS))
def test_annotate_task_problems_through_the_cli(task, method, tmp_path, tiny_model_dir, capsys):
    from prmkit.cli import main

    problems, traces = TASKS[task]()
    write_records(tmp_path / "problems.jsonl", problems)
    write_records(tmp_path / "traces.jsonl", traces)
    code = main(
        [
            "annotate",
            "--method",
            method,
            "--traces",
            str(tmp_path / "traces.jsonl"),
            "--problems",
            str(tmp_path / "problems.jsonl"),
            "--out",
            str(tmp_path / "out.jsonl"),
            "--store",
            str(tmp_path / "r.sqlite"),
            "--policy",
            str(tiny_model_dir),
            "--k",
            str(K),
            "--label",
            "soft",
            "--search-limit",
            "2",
            "--max-new-tokens",
            str(MAX_NEW_TOKENS),
            "--no-progress",
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    out = read_records(tmp_path / "out.jsonl", LabeledTrace)
    _check_outputs(method, traces, out)
    rows = _stored(tmp_path / "r.sqlite")
    assert len(rows) == len(set(rows)) > 0
    assert f"labelled {len(traces)}/{len(traces)} traces with {method}" in printed.out
    assert "answers: " in printed.out  # the verifier's counts are reported
