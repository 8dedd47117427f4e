"""``generate -> check -> score -> eval bon`` on the command line, with a tiny random model.

Each stage reads what the one before wrote, unchanged: ``check`` must leave the final answer's
correctness where ``eval bon --correct-from meta`` reads it.
"""

from __future__ import annotations

import json

import pytest

from prmkit.cli import main
from prmkit.io import write_json
from prmkit.prm import PRMSpec
from prmkit.records import LabeledTrace, Problem, ScoredTrace, Trace, read_records, write_records
from prmkit.tasks import gold_solution

pytestmark = pytest.mark.integration


def test_generate_check_score_bon(tmp_path, tiny_model_dir, capsys):
    problems, traces = tmp_path / "problems.jsonl", tmp_path / "traces.jsonl"
    checked, scored = tmp_path / "checked.jsonl", tmp_path / "scored.jsonl"
    assert main(["problems", "task=arithmetic", "n=2", "seed=0", f"out={problems}"]) == 0
    argv = [f"problems={problems}", f"out={traces}", "n=2", "sampling.max_new_tokens=8"]
    assert main(["generate", *argv, f"policy.model={tiny_model_dir}", "sampling.seed=0"]) == 0
    # A random model never answers right: add one gold and one wrong-answer solution per
    # problem, so best-of-N sees both verdicts (4 solutions per problem).
    sampled = read_records(traces, Trace)
    assert sampled
    extra = []
    for p in read_records(problems, Problem):
        prompt = next(t.prompt for t in sampled if t.problem_id == p.id)
        gold = gold_solution(p)
        wrong = [*gold[:-1], f"The answer is {int(p.answer) + 1}."]
        for name, steps in (("gold", gold), ("wrong", wrong)):
            extra.append(Trace(id=f"{p.id}-{name}", problem_id=p.id, prompt=prompt, steps=steps))
    write_records(traces, [*sampled[:4], *extra])

    argv = ["--traces", str(traces), "--problems", str(problems), "--out", str(checked)]
    assert main(["check", *argv]) == 0
    labeled = read_records(checked, LabeledTrace)
    verdicts = {t.id: t.meta["final_answer_correct"] for t in labeled}
    assert all(isinstance(v, bool) for v in verdicts.values())
    assert [v for k, v in verdicts.items() if k.endswith(("-gold", "-wrong"))] == [
        True,
        False,
        True,
        False,
    ]

    spec = PRMSpec.from_format("math_shepherd", head="labeltok", max_length=1024)
    write_json(tmp_path / "spec.json", spec.to_dict())
    argv = ["--prm", str(tiny_model_dir), "--traces", str(checked), "--out", str(scored)]
    assert main(["score", *argv, f"spec={tmp_path / 'spec.json'}"]) == 0
    assert {t.id: t.meta["final_answer_correct"] for t in read_records(scored, ScoredTrace)} == (
        verdicts
    )

    out = tmp_path / "bon.json"
    capsys.readouterr()
    argv = ["--scores", str(scored), "--correct-from", "meta", "--bootstrap", "20"]
    code = main(
        ["eval", "bon", *argv, "--correct-key", "final_answer_correct", "--output", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["ns"] == [1, 2, 4]
    (pass_at_4,) = [row for row in result["curves"]["pass"] if row["n"] == 4]
    assert pass_at_4["mean"] == 100.0  # every problem has its gold solution among the 4
