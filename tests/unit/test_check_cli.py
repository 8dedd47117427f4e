"""``prmkit check`` writes ``meta["final_answer_correct"]``: the verdict on the trace's answer."""

from __future__ import annotations

import pytest

from prmkit.cli import main
from prmkit.records import LabeledTrace, Problem, Trace, read_records, write_records
from prmkit.tasks import gold_solution


@pytest.fixture
def problems_file(tmp_path):
    path = tmp_path / "problems.jsonl"
    assert main(["problems", "n=2", "seed=1", f"out={path}"]) == 0
    return path


def _check(tmp_path, problems_file, traces: list[Trace]) -> list[LabeledTrace]:
    traces_file, out = tmp_path / "traces.jsonl", tmp_path / "checked.jsonl"
    write_records(traces_file, traces)
    argv = ["check", "--traces", str(traces_file), "--problems", str(problems_file)]
    assert main([*argv, "--out", str(out)]) == 0
    return read_records(out, LabeledTrace)


def test_check_writes_final_answer_correct(tmp_path, problems_file):
    p, q = read_records(problems_file, Problem)
    gold = gold_solution(p)
    wrong_answer = [*gold[:-1], f"The answer is {int(p.answer) + 1}."]
    traces = [
        Trace(id="gold", problem_id=p.id, prompt=p.prompt, steps=gold),
        Trace(id="wrong", problem_id=p.id, prompt=p.prompt, steps=wrong_answer),
        Trace(id="unfinished", problem_id=q.id, prompt=q.prompt, steps=gold_solution(q)[:-1]),
        # the answer the record carries (what eval bon votes on) as a decimal
        Trace(
            id="decimal",
            problem_id=q.id,
            prompt=q.prompt,
            steps=gold_solution(q),
            answer=f"{q.answer}.0",
        ),
    ]
    checked = {t.id: t for t in _check(tmp_path, problems_file, traces)}
    assert {k: t.meta["final_answer_correct"] for k, t in checked.items()} == {
        "gold": True,
        "wrong": False,
        "unfinished": False,
        "decimal": True,
    }
    for t in checked.values():
        assert t.meta["final_answer_correct"] is t.meta["exact_check"]["answer_correct"]


def test_final_answer_correct_judges_the_records_answer(tmp_path, problems_file):
    """A trace whose recorded ``answer`` differs from its last answer line: the flag follows the
    recorded answer, the one best-of-N votes on, so the two never disagree."""
    p, _ = read_records(problems_file, Problem)
    steps = [*gold_solution(p)[:-1], f"The answer is {int(p.answer) + 1}."]
    traces = [
        Trace(id="a", problem_id=p.id, prompt=p.prompt, steps=steps, answer=p.answer),
        Trace(id="b", problem_id=p.id, prompt=p.prompt, steps=gold_solution(p), answer="x + 1"),
    ]
    a, b = _check(tmp_path, problems_file, traces)
    assert a.answer == p.answer and a.meta["final_answer_correct"] is True
    assert a.meta["exact_check"]["answer_correct"] is False
    assert b.meta["final_answer_correct"] is False
