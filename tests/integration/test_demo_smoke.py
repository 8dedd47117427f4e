"""`prmkit demo` end to end on a tiny random model: every stage runs and writes its records."""

from __future__ import annotations

import json

import pytest

from prmkit.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_runs_every_stage_on_a_tiny_model(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PRMKIT_DATA_DIR", str(tmp_path / "no-shared-data"))
    out = tmp_path / "demo"
    argv = [
        "demo", f"out_dir={out}", f"model={tiny_model_dir}", "warmup_recipe=",
        "n_eval_problems=2", "n_samples=2", "n_train_problems=2", "n_train_samples=2",
        "n_annotate=2", "mc_k=1", "binary_k=1", "max_new_tokens=6", "prm_epochs=2",
        "probe_layer=1", "calibration_problems=1", "search_problems=1", "search_n=2",
        "search_m=1", "compare_labels=[mc,synthetic]", "synthetic_per_problem=2",
    ]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "label source comparison" in text
    sources = json.loads((out / "label_sources.json").read_text())["sources"]
    assert set(sources) == {"exact", "mc", "synthetic"}
    assert sources["synthetic"]["traces"] == 3  # 1 training problem: its gold + 2 slips
    for stage in ("1. policy", "5. train", "8. search", "9. serve", "10. formats", "11. report"):
        assert f"== {stage}" in text
    assert "shared data not converted" in text  # no shared data: only the demo's own records
    assert "traces of 1 other problems kept for the threshold" in text
    assert "95% paired bootstrap CI" in text and "significant" in text
    assert "from calibration traces held out of PRM training" in text or "fixed 0.5" in text
    summary = json.loads((out / "demo_summary.json").read_text())
    serve = summary["serve"]  # a real server process: client, /get_reward, /pooling
    assert serve["equal"] and serve["traces"] >= 1
    assert max(serve["client_max_diff"], serve["pooling_max_diff"]) <= 1e-5
    assert serve["policy_same_samples"]  # serve-policy's OpenAI API = in-process samples
    assert set(summary["timings_s"]) >= {
        "generate",
        "annotate",
        "train",
        "score",
        "search",
        "serve",
    }
    spec = json.loads((out / "prm" / "prm_spec.json").read_text())
    assert spec["head"] == "probe" and spec["probe_features"] == "logprobs"
    assert set(summary["prm"]["vs_majority"]) == {"prm_min", "weighted_min"}
    assert (out / "traces_eval.processbench.json").exists()
    assert (out / "traces_eval.trl.jsonl").exists()
    assert (out / "report.html").exists() and (out / "report.md").exists()
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    assert f"CPU capability {capability}" in text.split("== 1. policy")[0]  # printed first
    assert summary["machine"]["cpu_capability"] == capability


def test_demo_runs_again_over_its_own_output(tiny_model_dir, tmp_path, monkeypatch, capsys):
    """A second `make demo` replaces the demo's own PRM checkpoint (train refuses other folders)."""
    monkeypatch.setenv("PRMKIT_DATA_DIR", str(tmp_path / "no-shared-data"))
    out = tmp_path / "demo"
    argv = [
        "demo", f"out_dir={out}", f"model={tiny_model_dir}", "warmup_recipe=",
        "n_eval_problems=1", "n_samples=2", "n_train_problems=2", "n_train_samples=2",
        "n_annotate=1", "mc_k=1", "binary_k=1", "max_new_tokens=4", "prm_epochs=1",
        "probe_layer=1", "search_problems=1", "search_n=2", "search_m=1",
    ]  # fmt: skip
    assert main(argv) == 0
    first = (out / "prm" / "prm_spec.json").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "prm" / "prm_spec.json").stat().st_mtime_ns != first
    assert not [p.name for p in out.iterdir() if p.name.startswith(".prm.")]  # no leftovers
