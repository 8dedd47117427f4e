"""SCAN (Ding et al. 2025, yyDing1/SCAN-PRM) on a scripted policy: the reference's rules, pinned.

The reference keeps problems whose self-confidence (share of correct samples) is >= 0.75, rolls out
only the wrong responses of those, 8 rollouts per step until the first step of value 0, labels
correct responses all 1.0, and gives the two steps before the error ``min(1, MC / SC)``.
"""

from __future__ import annotations

import pytest

from prmkit.annotate import ScanLabeler
from prmkit.annotate.rollouts import State
from prmkit.annotate.scan import scan_labels
from prmkit.cli import main
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Problem, Trace, read_records
from prmkit.tasks.arithmetic import make_problem

EASY, HARD = (
    3,
    3,
)  # 4-operation problems the policy usually solves, 24-operation ones it rarely does


@pytest.fixture
def problems() -> list[Problem]:
    """Overrides conftest's: three easy problems, then three hard ones."""
    easy = [make_problem(7, i, n_steps=4) for i in range(EASY)]
    return easy + [make_problem(7, EASY + i, n_steps=24) for i in range(HARD)]


def _solution(problem: Problem, wrong_at: int, trace_id: str) -> Trace:
    """The problem's solution with its result at step ``wrong_at`` off by one (-1: right)."""
    meta = problem.meta
    value, steps = meta["start"], []
    for i, (op, n, clause) in enumerate(
        zip(meta["ops"], meta["operands"], meta["clauses"], strict=True)
    ):
        exact = {"+": value + n, "-": value - n, "*": value * n}[op]
        result = exact + (i == wrong_at)
        steps.append(f"{clause}: {value} {op} {n} = {result}")
        value = result
    steps.append(f"The answer is {value}.")
    return Trace(
        id=trace_id, problem_id=problem.id, prompt=problem.prompt, steps=steps, answer=str(value)
    )


@pytest.fixture
def traces(problems) -> list[Trace]:
    """Per problem a trace wrong at step 3 (easy) or 5 (hard), and a right one."""
    out = []
    for i, p in enumerate(problems):
        out.append(_solution(p, 3 if i < EASY else 5, f"w{i}"))
        out.append(_solution(p, -1, f"r{i}"))
    return out


@pytest.mark.parametrize(
    ("values", "tolerance", "labels", "first_error"),
    [
        # the error at step 3: the two steps before it get min(1, MC / SC), earlier ones 1
        ([0.8, 0.9, 0.6, 0.2, 0.0, None, None], 2, [1.0, 0.75, 0.25, 0.0, None, None], 3),
        ([0.5, 0.9, 0.0], 2, [1.0, 0.0], 1),  # MC above SC: capped at 1
        ([0.8, 0.0, None], 2, [0.0, None], 0),
        ([0.8, 0.9, 0.6, 0.0], 0, [1.0, 1.0, 0.0], 2),  # no tolerance: hard labels
        ([0.8, None, None, 1.0], 2, [1.0, 1.0, 1.0], -1),  # a right response: all correct
    ],
)
def test_scan_labels_follow_the_reference(values, tolerance, labels, first_error):
    got, fe = scan_labels(values, tolerance=tolerance)
    assert got == pytest.approx(labels) and fe == first_error


def test_scan_filters_before_rolling_out_and_labels_as_the_reference(make_engine, traces):
    engine, _ = make_engine(slip=0.03)
    labeler = ScanLabeler(engine, k=4, sc_samples=64)
    out = labeler.label(traces)
    assert [t.id for t in out] == [t.id for t in traces]  # nothing lost
    hard_ids = [t.problem_id for t in traces[2 * EASY :: 2]]
    assert labeler.filtered_problems == hard_ids
    for record, trace in zip(out, traces, strict=True):
        meta = record.meta["annotation"]
        sc = meta["self_confidence"]
        assert meta["values"][0] == sc and meta["sc_samples"] == 64
        if trace.problem_id in hard_ids:  # below 0.75: null labels, not one step rollout
            assert sc < 0.75 and meta["scan_filtered"] is True
            assert record.labels == [None] * len(trace.steps) and record.first_error == -1
            assert meta["rollouts"] == 64
            for t in range(1, len(trace.steps)):
                assert engine.store.count(engine.namespace, State.of(trace, t).key) == 0
        elif trace.id.startswith("r"):  # a right response: all 1.0, no step rollouts
            assert sc >= 0.75 and not meta["scan_filtered"]
            assert record.labels == [1.0] * 5 and record.first_error == -1
            assert meta["rollouts"] == 64
        else:  # wrong at step 3: k rollouts per step up to the first zero
            values = meta["values"]
            assert all(v > 0 for v in values[1:4]) and values[4] == 0.0
            assert record.first_error == 3 and meta["rollouts"] == 64 + 4 * 4
            assert record.labels == [
                1.0,
                min(1.0, values[2] / sc),
                min(1.0, values[3] / sc),
                0.0,
                None,
            ]
            assert record.label_source == "scan"


def test_scan_defaults_are_the_reference_settings(make_engine):
    engine, _ = make_engine()
    labeler = ScanLabeler(engine)
    assert (labeler.k, labeler.sc_samples, labeler.sc_threshold, labeler.tolerance) == (
        8,
        128,
        0.75,
        2,
    )
    for bad in ({"k": 0}, {"sc_samples": 0}, {"sc_threshold": 1.5}, {"tolerance": -1}):
        with pytest.raises(ConfigError):
            ScanLabeler(engine, **bad)


def test_scan_through_the_cli(traces, files, make_engine, use_models, capsys):
    tmp_path = files
    _, policy = make_engine(slip=0.03)
    use_models(policy)
    args = ["annotate", "--method", "scan", "--traces", str(tmp_path / "t.jsonl")]
    args += ["--problems", str(tmp_path / "p.jsonl"), "--out", str(tmp_path / "o.jsonl")]
    assert main([*args, "--sc-samples", "64", "--k", "4", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "SCAN: 3 problems (6 traces) below self-confidence 0.75" in out
    records = read_records(tmp_path / "o.jsonl", LabeledTrace)
    assert len(records) == len(traces)
    assert sum(r.labels == [None] * len(r.steps) for r in records) == 6
