"""``prmkit convert`` as a real subprocess, on the shipped ProcessBench sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_cli_processbench_to_trl_subprocess(sample_data: Path, tmp_path: Path) -> None:
    source = sample_data / "processbench" / "math.json"
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "prmkit.cli",
            "convert",
            "--from",
            "processbench",
            "--to",
            "trl",
            str(source),
            str(out),
            "--report",
            str(tmp_path / "report.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5
    flags = [flag for row in rows for flag in row["labels"]]
    assert flags.count(True) == 10 and flags.count(False) == 4
    assert sum(not row["labels"][-1] for row in rows) == 4
    assert "warning: processbench -> trl conversion: lost: 4 steps cut" in proc.stderr
    assert "wrote 5 trl records (14 steps)" in proc.stdout
    assert json.loads((tmp_path / "report.json").read_text())["written"] == 5
