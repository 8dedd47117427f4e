"""The Python life cycle of docs/python.md runs as written (issue 12), on a tiny model."""

from __future__ import annotations

import re
from pathlib import Path

import prmkit

DOC = Path(__file__).parents[2] / "docs" / "python.md"


def _snippet() -> str:
    (block,) = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return block


def test_the_lifecycle_snippet_is_short_and_runs(tiny_model_dir, tmp_path, monkeypatch, capsys):
    code = _snippet()
    assert len(code.strip().splitlines()) <= 15
    model_line = 'model = "smollm2"  # or any local Hugging Face model directory'
    assert model_line in code
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(code.replace(model_line, f"model = {str(tiny_model_dir)!r}"), scope)
    assert (tmp_path / "runs/api/prm/prm_spec.json").exists()
    assert len(scope["traces"]) == 6 * 4 and len(scope["scored"]) == len(scope["labeled"])
    for trace in scope["scored"]:
        assert len(trace.step_scores) == len(trace.steps)
    assert "'n_steps'" in capsys.readouterr().out


def test_every_public_name_resolves():
    for name in prmkit.__all__:
        assert getattr(prmkit, name) is not None, name
    for stage in ("generate", "annotate", "train", "score", "search"):
        assert callable(getattr(prmkit, stage)), stage
    for metric in ("processbench", "prmbench", "step_metrics", "best_of_n"):
        assert callable(getattr(prmkit.evaluate, metric)), metric
