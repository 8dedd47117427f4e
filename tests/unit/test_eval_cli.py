"""``prmkit eval``: the printed tables, the JSON output schema, errors as exit code 1."""

from __future__ import annotations

import json

import pytest

from prmkit.cli import main
from prmkit.records import ScoredTrace, write_records


def _pb_file(path, rows):
    path.write_text(json.dumps([{"id": i, "steps": ["a", "b"], "label": lab} for i, lab in rows]))
    return path


def test_processbench_predictions_table_and_json(tmp_path, capsys):
    gsm = _pb_file(tmp_path / "gsm8k.json", [("g0", -1), ("g1", 1)])
    math = _pb_file(tmp_path / "math.json", [("m0", -1), ("m1", 0)])
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(
            json.dumps({"id": i, "prediction": p}) + "\n"
            for i, p in [("g0", -1), ("g1", 1), ("m0", 0), ("m1", 0)]
        )
    )
    out = tmp_path / "result.json"
    code = main(
        [
            "eval",
            "processbench",
            "--data",
            str(gsm),
            "--data",
            str(math),
            "--predictions",
            str(preds),
            "--output",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "gsm8k" in printed and "100.0" in printed and "mean" in printed
    result = json.loads(out.read_text())
    assert set(result["subsets"]) == {"gsm8k", "math"}
    assert set(result["subsets"]["math"]) >= {
        "acc_error",
        "acc_correct",
        "f1",
        "n_error",
        "n_correct",
    }
    assert result["subsets"]["math"]["f1"] == 0.0  # acc_correct 0
    assert result["mean_f1"] == pytest.approx(50.0)
    assert result["threshold"] is None and result["threshold_source"] == "predictions"


def test_processbench_refusal_is_exit_code_1(tmp_path, capsys):
    data = _pb_file(tmp_path / "math.json", [("m0", -1)])
    scores = tmp_path / "s.jsonl"
    write_records(
        scores,
        [
            ScoredTrace(
                id="m0",
                problem_id="m0",
                prompt="q",
                steps=["a", "b"],
                step_scores=[0.9, 0.9],
                prm="t",
                labels=[1.0, 1.0],
                first_error=-1,
            )
        ],
    )
    code = main(
        [
            "eval",
            "processbench",
            "--data",
            str(data),
            "--scores",
            str(scores),
            "--threshold-from",
            str(scores),
        ]
    )
    assert code == 1
    assert "evaluated data itself" in capsys.readouterr().err


def test_bon_prmbench_steps_outputs(tmp_path, capsys):
    traces = []
    for p in range(3):
        for j, (ans, ok, sc) in enumerate([("1", True, [0.9, 0.8]), ("2", False, [0.9, 0.2])]):
            traces.append(
                ScoredTrace(
                    id=f"p{p}/{j}",
                    problem_id=f"p{p}",
                    prompt="q",
                    steps=["a", "b"],
                    step_scores=sc,
                    prm="t",
                    answer=ans,
                    meta={"correct": ok, "classification": "confidence"},
                    labels=[1.0, 1.0 if ok else 0.0],
                    first_error=-1 if ok else 1,
                )
            )
    scores = tmp_path / "s.jsonl"
    write_records(scores, traces)
    bon = tmp_path / "bon.json"
    assert (
        main(["eval", "bon", "--scores", str(scores), "--bootstrap", "20", "--output", str(bon)])
        == 0
    )
    result = json.loads(bon.read_text())
    assert result["benchmark"] == "bon" and result["ns"] == [1, 2]
    assert result["curves"]["prm_min"][1]["mean"] == 100.0
    assert "prm_min" in capsys.readouterr().out
    prm = tmp_path / "prm.json"
    assert main(["eval", "prmbench", "--scores", str(scores), "--output", str(prm)]) == 0
    assert json.loads(prm.read_text())["overall"]["prm_score"] == pytest.approx(100.0)
    steps = tmp_path / "steps.json"
    assert main(["eval", "steps", "--scores", str(scores), "--output", str(steps)]) == 0
    assert json.loads(steps.read_text())["auroc"] == 1.0
    assert "AUROC" in capsys.readouterr().out


def test_bad_ns_is_a_config_error(capsys):
    assert main(["eval", "bon", "--scores", "x.jsonl", "--ns", "1", "--ns", "two"]) == 1
    assert "wrong type for 'ns'; got [1, 'two']" in capsys.readouterr().err


def test_keys_config_file_and_repeated_data(tmp_path, capsys):
    """Every flag is a key: a YAML file and key=value give the same run as the flags."""
    gsm = _pb_file(tmp_path / "gsm8k.json", [("g0", -1), ("g1", 1)])
    math = _pb_file(tmp_path / "math.json", [("m0", -1), ("m1", 0)])
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(json.dumps({"id": i, "prediction": -1}) + "\n" for i in ("g0", "g1", "m0", "m1"))
    )
    by_flags, by_keys = tmp_path / "a.json", tmp_path / "b.json"
    argv = ["eval", "processbench", "--data", str(gsm), "--data", str(math)]
    assert main([*argv, "--predictions", str(preds), "--output", str(by_flags)]) == 0
    config = tmp_path / "pb.yaml"
    config.write_text(f"data: [{gsm}, {math}]\npredictions: {preds}\n")
    assert main(["eval", "processbench", "--config", str(config), f"output={by_keys}"]) == 0
    assert json.loads(by_flags.read_text()) == json.loads(by_keys.read_text())
    assert set(json.loads(by_keys.read_text())["subsets"]) == {"gsm8k", "math"}
    # exactly one source of predictions
    assert main([*argv, "--predictions", str(preds), "--scores", str(preds)]) == 1
    assert "give exactly one source of predictions" in capsys.readouterr().err
    assert main(argv) == 1
    assert "got 'none'" in capsys.readouterr().err


def test_help_lists_every_key(capsys):
    from prmkit.evaluate.stage import CONFIGS

    for name in CONFIGS:
        with pytest.raises(SystemExit):
            main(["eval", name, "--help"])
        out = capsys.readouterr().out
        assert "config keys:" in out and "output (" in out
    with pytest.raises(SystemExit):
        main(["eval", "processbench", "--help"])
    out = capsys.readouterr().out
    assert "judge.model (" in out and "judge_sampling.max_new_tokens (" in out
