"""Training on the Trainer engine survives SIGKILL: resuming gives the uninterrupted weights.

The killed run is a real process that kills itself with SIGKILL from its log callback at a
fixed optimizer step (after some checkpoints were written, before others), so the test is
deterministic; the resumed and uninterrupted runs then end with the same weights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from prmkit.errors import ConfigError
from prmkit.records import write_records
from prmkit.testing import labeled_trace
from prmkit.train import TrainConfig, train
from prmkit.train.state import STATE_MARKER, latest_checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

KILL_AT = 7

DRIVER = """
import json, os, signal, sys
from prmkit.train import TrainConfig, train

def log(line):
    if line.startswith("step={} ".format({kill_at})):
        os.kill(os.getpid(), signal.SIGKILL)

train(TrainConfig(**json.loads(sys.argv[1])), log=log)
"""


def _config(tmp_path, base, name, **extra) -> dict:
    data = tmp_path / "train.jsonl"
    if not data.exists():
        traces = [labeled_trace(i, [1.0, 0.0] if i % 3 else [1.0, 1.0, 1.0]) for i in range(12)]
        write_records(data, traces)
    return {
        "data": str(data),
        "out": str(tmp_path / name),
        "base": str(base),
        "head": "tokcls",
        "lr": 3e-3,
        "batch_size": 2,
        "max_steps": 10,
        "log_every": 1,
        "seed": 0,
        **extra,
    }


def _weights(path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize(
    "extra",
    [
        {"eval_fraction": 0.0, "save_every": 3},  # checkpoints every 3 steps
        {"eval_fraction": 0.25, "eval_every": 3, "patience": 0},  # one per eval, best kept
    ],
    ids=["no-eval", "eval-best"],
)
def test_resume_after_sigkill_gives_the_uninterrupted_weights(tiny_model_dir, tmp_path, extra):
    whole = _config(tmp_path, tiny_model_dir, "whole", **extra)
    train(TrainConfig(**whole), log=lambda _: None)

    cut = _config(tmp_path, tiny_model_dir, "cut", **extra)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    driver = DRIVER.replace("{kill_at}", str(KILL_AT))
    proc = subprocess.run(
        [sys.executable, "-c", driver, json.dumps(cut)], env=env, capture_output=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    state = tmp_path / "cut.state"
    assert (state / STATE_MARKER).exists() and not (tmp_path / "cut").exists()
    assert latest_checkpoint(state).name == "checkpoint-6"

    with pytest.raises(ConfigError, match="resume=true"):  # a run's state is never dropped silently
        train(TrainConfig(**cut), log=lambda _: None)
    lines: list[str] = []
    report = train(TrainConfig(**cut, resume=True), log=lines.append)
    assert any("resuming from" in line and "checkpoint-6" in line for line in lines)
    assert report["fit"]["resumed_from"].endswith("checkpoint-6")
    assert report["fit"]["optimizer_steps"] == 10
    assert not state.exists()  # prmkit's own state folder goes once the checkpoint is saved

    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-6, rtol=0, msg=name)


def test_a_state_folder_prmkit_did_not_make_is_refused(tiny_model_dir, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    cfg = _config(tmp_path, tiny_model_dir, "out", state_dir=str(foreign), max_steps=1)
    with pytest.raises(ConfigError, match="did not write"):
        train(TrainConfig(**cfg), log=lambda _: None)
    assert (foreign / "notes.txt").read_text() == "keep me"
