"""``prmkit problems`` then ``prmkit check`` as real subprocesses."""

from __future__ import annotations

import subprocess
import sys

import pytest

from prmkit.records import LabeledTrace, Problem, Trace, read_records, write_records
from prmkit.tasks import gold_solution

pytestmark = pytest.mark.integration


def _traces(problems: list[Problem]) -> list[Trace]:
    """Gold traces, a wrong second step in every third, a missing answer line in every third."""
    traces = []
    for i, p in enumerate(problems):
        steps = gold_solution(p)
        if i % 3 == 1:
            steps[1] = steps[1] + "1"  # "... = 17" -> "... = 171"
        elif i % 3 == 2:
            steps = steps[:-1]
        traces.append(Trace(id=f"t{i}", problem_id=p.id, prompt=p.prompt, steps=steps))
    return traces


def test_problems_then_check_in_a_subprocess(tmp_path):
    problems_file, traces_file = tmp_path / "problems.jsonl", tmp_path / "traces.jsonl"
    out = tmp_path / "labeled.jsonl"
    cmd = [sys.executable, "-m", "prmkit.cli"]
    done = subprocess.run(
        [*cmd, "problems", "task=arithmetic", "n=9", "seed=3", f"out={problems_file}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"wrote 9 arithmetic problems to {problems_file}" in done.stdout
    problems = read_records(problems_file, Problem)
    write_records(traces_file, _traces(problems))
    done = subprocess.run(
        [
            *cmd,
            "check",
            "--traces",
            str(traces_file),
            "--problems",
            str(problems_file),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        "9 traces: 3 with every step correct (33.3%), 6 with the correct answer (66.7%), "
        "3 with the correct answer despite a wrong step"
    ) in done.stdout
    labeled = read_records(out, LabeledTrace)
    assert [t.first_error for t in labeled[:3]] == [-1, 1, len(labeled[2].steps) - 1]
    assert all(t.label_source == "exact" for t in labeled)
    assert labeled[1].labels[:3] == [1.0, 0.0, None]
