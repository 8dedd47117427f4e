"""``prmkit annotate`` survives ``kill -9``: no rollout duplicated or lost, the same labels.

A real subprocess runs Monte Carlo annotation with a tiny random-weight model saved to disk; the
test kills it with SIGKILL once some rollouts are committed, resumes it, and compares the store and
the labels with an uninterrupted run of the same command in a fresh store.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from prmkit.records import LabeledTrace, Trace, read_records, write_records
from prmkit.tasks.arithmetic import gold_solution, make_problem
from prmkit.testing import store_count, store_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

K = 2
N_TRACES = 3
N_STEPS = 4  # 3 operations + the answer line: 3 inner prefixes per trace
TOTAL = N_TRACES * (N_STEPS - 1) * K


def _command(tmp_path, model_dir, name: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "prmkit.cli",
        "annotate",
        "--method",
        "mc",
        "--traces",
        str(tmp_path / "traces.jsonl"),
        "--problems",
        str(tmp_path / "problems.jsonl"),
        "--out",
        str(tmp_path / f"{name}.jsonl"),
        "--store",
        str(tmp_path / f"{name}.sqlite"),
        "--policy",
        str(model_dir),
        "--k",
        str(K),
        "--label",
        "soft",
        "--max-new-tokens",
        "8",
        "--max-prefixes-per-call",
        "1",
        "--batch-traces",
        "2",
        "--seed",
        "5",
        "--no-progress",
    ]


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path, tiny_model_dir):
    problems = [make_problem(11, i, n_steps=N_STEPS - 1) for i in range(N_TRACES)]
    write_records(tmp_path / "problems.jsonl", problems)
    write_records(
        tmp_path / "traces.jsonl",
        [
            Trace(
                id=f"t{i}",
                problem_id=p.id,
                prompt=p.prompt,
                steps=gold_solution(p),
                answer=p.answer,
            )
            for i, p in enumerate(problems)
        ],
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}

    # the uninterrupted reference run
    ref = subprocess.run(
        _command(tmp_path, tiny_model_dir, "ref"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ref.returncode == 0, ref.stderr
    assert f"drawn this run: {TOTAL} rollouts" in ref.stdout

    # the same command, killed with SIGKILL once at least two calls are committed
    proc = subprocess.Popen(
        _command(tmp_path, tiny_model_dir, "run"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = tmp_path / "run.sqlite"
    deadline = time.monotonic() + 120
    while store_count(store) < 2 * K and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = store_count(store)
    assert 2 * K <= killed_at < TOTAL
    assert killed_at % K == 0  # whole generator calls only: one transaction each
    assert not (tmp_path / "run.jsonl").exists()  # the output is written atomically at the end

    resumed = subprocess.run(
        _command(tmp_path, tiny_model_dir, "run"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"drawn this run: {TOTAL - killed_at} rollouts" in resumed.stdout  # nothing redone

    rows, ref_rows = store_rows(store), store_rows(tmp_path / "ref.sqlite")
    assert len(rows) == TOTAL  # none lost
    assert len({r[:3] for r in rows}) == TOTAL  # none duplicated
    assert rows == ref_rows  # the very same rollouts: texts, tokens, seeds
    assert len({r[3] for r in rows}) > TOTAL // 2  # and they are real, varied samples

    out = read_records(tmp_path / "run.jsonl", LabeledTrace)
    ref_out = read_records(tmp_path / "ref.jsonl", LabeledTrace)
    assert [t.to_dict() for t in out] == [t.to_dict() for t in ref_out]
    assert len(out) == N_TRACES
    for trace in out:
        meta = trace.meta["annotation"]
        assert meta["rollouts"] == (N_STEPS - 1) * K and meta["policy_tokens"] > 0
        assert len(trace.labels) == N_STEPS
    print(json.dumps({"killed_at": killed_at, "total": TOTAL}))
