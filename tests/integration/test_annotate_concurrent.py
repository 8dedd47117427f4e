"""Two ``prmkit annotate`` processes on one rollout store: both finish, with the same labels.

Both jobs run the same command (same seeds) against one SQLite file, started together, so they
draw the same states at about the same time: each insert that finds its keys already stored is
ignored, and each job labels from what the store holds. The labels and the stored rollouts must
equal those of a single-process run in a fresh store.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from prmkit.cli import main
from prmkit.records import LabeledTrace, Trace, read_records, write_records
from prmkit.tasks.arithmetic import gold_solution, make_problem
from prmkit.testing import store_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

K = 2
N_TRACES = 3
N_STEPS = 4
TOTAL = N_TRACES * (N_STEPS - 1) * K


def _command(tmp_path, model_dir, out: str, store: str) -> list[str]:
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
        str(tmp_path / out),
        "--store",
        str(tmp_path / store),
        "--policy",
        str(model_dir),
        "--k",
        str(K),
        "--label",
        "soft",
        "--max-new-tokens",
        "8",
        "--max-prefixes-per-call",
        "1",  # one state per call: a call's seed depends on its state only
        "--seed",
        "3",
        "--no-progress",
    ]


def test_two_jobs_on_one_store(tmp_path, tiny_model_dir):
    problems = [make_problem(13, i, n_steps=N_STEPS - 1) for i in range(N_TRACES)]
    write_records(tmp_path / "problems.jsonl", problems)
    write_records(
        tmp_path / "traces.jsonl",
        [
            Trace(id=f"t{i}", problem_id=p.id, prompt=p.prompt, steps=gold_solution(p))
            for i, p in enumerate(problems)
        ],
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    jobs = [
        subprocess.Popen(
            _command(tmp_path, tiny_model_dir, f"out{i}.jsonl", "shared.sqlite"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    results = [(job.wait(timeout=180), *job.communicate()) for job in jobs]
    for code, _, err in results:
        assert code == 0, err
        assert "Traceback" not in err
    # the single-process reference, in a fresh store
    assert main(_command(tmp_path, tiny_model_dir, "ref.jsonl", "ref.sqlite")[3:]) == 0

    outs = [read_records(tmp_path / f"{name}.jsonl", LabeledTrace) for name in ("out0", "out1")]
    ref_out = read_records(tmp_path / "ref.jsonl", LabeledTrace)
    assert len(ref_out) == N_TRACES
    for out in outs:
        assert [(t.id, t.labels, t.first_error) for t in out] == [
            (t.id, t.labels, t.first_error) for t in ref_out
        ]
        assert [t.meta["annotation"] for t in out] == [t.meta["annotation"] for t in ref_out]

    rows = store_rows(tmp_path / "shared.sqlite")
    assert len(rows) == TOTAL
    per_state: dict[tuple[str, str], list[int]] = {}
    for namespace, state, idx, *_ in rows:
        per_state.setdefault((namespace, state), []).append(idx)
    for idxs in per_state.values():  # no duplicate and no gap: indices 0..k-1
        assert sorted(idxs) == list(range(K))
    assert rows == store_rows(tmp_path / "ref.sqlite")  # the very same rollouts
