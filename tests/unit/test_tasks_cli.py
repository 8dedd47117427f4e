"""``prmkit problems`` and ``prmkit check`` in-process (the subprocess run is in tests/integration)."""

from __future__ import annotations

import pytest

from prmkit.cli import main
from prmkit.records import LabeledTrace, Problem, Trace, read_records, write_records
from prmkit.tasks import gold_solution


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


def test_problems_options_and_loaders(tmp_path, sample_data, monkeypatch, capsys):
    out = tmp_path / "p.parquet"
    assert (
        main(["problems", "n=12", "n_steps=4", "ops=+-", "seed=5", "max_value=50", f"out={out}"])
        == 0
    )
    problems = read_records(out, Problem)
    assert len(problems) == 12 and {p.meta["n_steps"] for p in problems} == {4}
    assert {op for p in problems for op in p.meta["ops"]} <= {"+", "-"}
    assert "operations per problem: 4: 12" in capsys.readouterr().out
    out = tmp_path / "g.jsonl"
    assert (
        main(
            [
                "problems",
                "task=gsm8k",
                "split=train",
                "limit=3",
                f"data_dir={sample_data}",
                f"out={out}",
            ]
        )
        == 0
    )
    assert [p.id for p in read_records(out, Problem)][-1] == "gsm8k-train-2"
    monkeypatch.setenv("PRMKIT_DATA_DIR", str(sample_data))  # the default lookup
    assert main(["problems", "task=math500", "limit=2", f"out={out}"]) == 0
    assert len(read_records(out, Problem)) == 2


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["problems", "task=aime"], "unknown choice for 'task'"),
        (["problems", "task=math500", "split=train"], "only a test split"),
        (["problems", "start_range=[5]"], "'start_range' needs two numbers"),
        (["problems", "ops=+^"], "unknown arithmetic operations"),
        (["check", "--problems", "p.jsonl"], "no traces file given"),
    ],
)
def test_stage_errors_are_reported(tmp_path, monkeypatch, capsys, argv, fragment):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    assert fragment in capsys.readouterr().err


def test_check_refuses_traces_of_unknown_problems(tmp_path, capsys):
    problems_file, traces_file = tmp_path / "p.jsonl", tmp_path / "t.jsonl"
    assert main(["problems", "n=2", f"out={problems_file}"]) == 0
    write_records(traces_file, [Trace(id="x", problem_id="arith-s9-0", prompt="", steps=["1"])])
    assert (
        main(
            [
                "check",
                "--traces",
                str(traces_file),
                "--problems",
                str(problems_file),
                "--out",
                str(tmp_path / "o.jsonl"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "unknown problem" in err and "arith-s9-0" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_check_without_answer_requirement(tmp_path, capsys):
    problems_file, traces_file = tmp_path / "p.jsonl", tmp_path / "t.jsonl"
    out = tmp_path / "o.jsonl"
    assert main(["problems", "n=3", f"out={problems_file}"]) == 0
    traces = _traces(read_records(problems_file, Problem))
    write_records(traces_file, traces)
    assert (
        main(
            [
                "check",
                f"traces={traces_file}",
                f"problems={problems_file}",
                f"out={out}",
                "require_answer=false",
            ]
        )
        == 0
    )
    labeled = read_records(out, LabeledTrace)
    assert labeled[2].first_error == -1 and labeled[2].labels[-1] == 1.0
    assert labeled[2].meta["exact_check"]["answer_correct"] is False


def test_problems_and_check_as_functions(tmp_path, monkeypatch):
    from prmkit.tasks import CheckConfig, ProblemsConfig, build_problems, check_traces

    monkeypatch.chdir(tmp_path)
    problems = build_problems(ProblemsConfig(n=3, seed=2, out=None))
    assert [p.id for p in problems] == ["arith-s2-0", "arith-s2-1", "arith-s2-2"]
    labeled = check_traces(CheckConfig(out=None), _traces(problems), problems, progress=False)
    assert [t.first_error for t in labeled] == [-1, 1, len(labeled[2].steps) - 1]
    assert [t.meta["final_answer_correct"] for t in labeled] == [True, True, False]
    assert list(tmp_path.iterdir()) == []  # out=None: nothing written
    out = tmp_path / "p.jsonl"
    assert build_problems(ProblemsConfig(n=3, seed=2, out=str(out))) == problems
    assert read_records(out, Problem) == problems
    checked = tmp_path / "c.jsonl"
    write_records(tmp_path / "t.jsonl", _traces(problems))
    cfg = CheckConfig(traces=str(tmp_path / "t.jsonl"), problems=str(out), out=str(checked))
    assert check_traces(cfg, progress=False) == labeled == read_records(checked, LabeledTrace)


def test_arithmetic_problems_is_the_public_name():
    import prmkit.tasks
    from prmkit.tasks.arithmetic import generate

    assert prmkit.tasks.arithmetic_problems is generate
    assert "generate" not in prmkit.tasks.__all__
