"""What a job used: distinct rollouts and judge verdicts, drawn now or reused (issue 11 item 2)."""

from __future__ import annotations

import re
import sqlite3

import pytest

from conftest import ScriptedJudge
from prmkit.annotate.rollouts import State
from prmkit.cli import main

_USED = re.compile(
    r"budget used: (\d+) rollouts \((\d+) drawn now, (\d+) reused from the store\), "
    r"(\d+) policy tokens, ([\d.]+) rollouts/trace"
)
_JUDGE = re.compile(r"judge: (\d+) verdicts \((\d+) drawn now, (\d+) reused from the store\)")
_ATTRIBUTED = re.compile(
    r"per-trace attribution: (\d+) rollouts, \d+ policy tokens over (\d+) records before filters"
)


def test_engine_counts_each_returned_rollout_once(make_engine, traces):
    engine, _ = make_engine()
    a, b = State.of(traces[1], 2), State.of(traces[2], 3)
    first = engine.rollouts([(a, 4), (a, 2), (b, 3)])
    assert (engine.used.rollouts, engine.used.drawn, engine.used.reused) == (7, 7, 0)
    engine.rollouts([(a, 4)])  # already handed out: no new use
    assert engine.used.rollouts == 7
    tokens = sum(r.completion_tokens for r in first[0] + first[2])
    assert engine.used.policy_tokens == tokens
    assert engine.used.prompt_tokens == sum(r.prompt_tokens for r in first[0] + first[2])
    again, _ = make_engine(store=engine.store)  # a second job on the same store
    again.rollouts([(a, 6)])
    assert (again.used.rollouts, again.used.drawn, again.used.reused) == (6, 2, 4)


@pytest.fixture
def cli_files(files, make_engine, use_models):
    """Traces on disk, and the CLI's models replaced by the scripted policy (and judge)."""
    _, policy = make_engine(slip=0.1)
    use_models(policy, ScriptedJudge())
    return files


def _run(files, *extra: str) -> int:
    return main(
        [
            "annotate",
            "--traces",
            str(files / "t.jsonl"),
            "--problems",
            str(files / "p.jsonl"),
            "--out",
            str(files / "o.jsonl"),
            "--store",
            str(files / "r.sqlite"),
            "--k",
            "4",
            "--no-progress",
            *extra,
        ]
    )


def _stored(path, kind: str) -> int:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT COUNT(*) FROM rollouts JOIN jobs USING (namespace) WHERE jobs.config LIKE ?",
            (f'%"kind": "{kind}"%',),
        ).fetchone()[0]


def test_cli_reports_the_distinct_rollouts_a_consensus_job_used(cli_files, capsys):
    """Used to print the first member's cost of the kept records only (32 for 192 drawn)."""
    assert _run(cli_files, "--method", "consensus", "--members", "mc,binary") == 0
    out = capsys.readouterr().out
    stored = _stored(cli_files / "r.sqlite", "rollouts")
    used = _USED.search(out)
    assert used, out
    assert [int(x) for x in used.groups()[:3]] == [stored, stored, 0]
    assert float(used.group(5)) == pytest.approx(stored / 6, abs=0.05)
    attributed = _ATTRIBUTED.search(out)
    assert attributed, out
    # mc's prefixes and binary's probes share rollouts: each record is charged its own
    assert int(attributed.group(1)) > stored and int(attributed.group(2)) == 6
    assert "dropped by filters" in out
    # the same job again: everything comes from the store
    assert _run(cli_files, "--method", "consensus", "--members", "mc,binary") == 0
    again = _USED.search(capsys.readouterr().out)
    assert [int(x) for x in again.groups()[:3]] == [stored, 0, stored]


def test_cli_counts_the_judges_verdicts(cli_files, capsys):
    args = ("--method", "consensus", "--members", "mc,judge", "--judge-model", "judge-model")
    assert _run(cli_files, *args, "--votes", "3") == 0
    out = capsys.readouterr().out
    verdicts = _stored(cli_files / "r.sqlite", "judge")
    assert verdicts == 6 * 3
    judged = _JUDGE.search(out)
    assert judged, out
    assert [int(x) for x in judged.groups()] == [verdicts, verdicts, 0]
    assert int(_USED.search(out).group(1)) == _stored(cli_files / "r.sqlite", "rollouts")
