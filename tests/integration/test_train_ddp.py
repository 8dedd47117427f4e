"""Data-parallel training: ``torchrun --nproc_per_node 2 -m prmkit train`` on CPU (gloo)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from prmkit.records import write_records
from prmkit.testing import labeled_trace

pytestmark = pytest.mark.slow


def test_torchrun_two_ranks_train_one_checkpoint(tiny_model_dir, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        torchrun = shutil.which("torchrun")
    data = tmp_path / "train.jsonl"
    write_records(data, [labeled_trace(i, [1.0, 0.0] if i % 3 else [1.0, 1.0]) for i in range(16)])
    out = tmp_path / "prm"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--nproc_per_node",
            "2",
            "-m",
            "prmkit",
            "train",
            f"data={data}",
            f"out={out}",
            f"base={tiny_model_dir}",
            "head=tokcls",
            "batch_size=2",
            "epochs=1",
            "eval_fraction=0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "train_report.json").read_text())
    # 16 traces in 8 batches of 2, split over 2 ranks: 4 optimizer steps make one epoch
    assert report["fit"]["optimizer_steps"] == 4
    assert report["fit"]["epochs_run"] == 1
    assert (out / "model.safetensors").exists() and not (tmp_path / "prm.state").exists()
    assert (proc.stdout + proc.stderr).count("saved ") == 1  # rank 0 alone saves
