"""Hardening (issue 10): every config value in range, empty inputs refused, ProcessBench files
that do not match the data reported or refused."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing

import pytest

from prmkit.annotate import AnnotateConfig
from prmkit.cli import main
from prmkit.config import check_range, config_help, load_config, option
from prmkit.errors import ConfigError
from prmkit.generate import GenerateConfig
from prmkit.generate.protocol import SamplingParams
from prmkit.models import PolicyConfig
from prmkit.policy import WarmupConfig
from prmkit.score import ScoreConfig
from prmkit.search import SearchConfig
from prmkit.tasks import ProblemsConfig
from prmkit.train import TrainConfig

CONFIGS = [
    ProblemsConfig,
    GenerateConfig,
    WarmupConfig,
    AnnotateConfig,
    TrainConfig,
    ScoreConfig,
    SearchConfig,
    PolicyConfig,
    SamplingParams,
]
# numeric fields whose range depends on something else, checked where that is known
UNRANGED = {("TrainConfig", "probe_layer")}  # -n-1..n for a model of n layers (heads.py)

NAN = float("nan")

# (config, key, bad value, the allowed range as the error states it)
OUT_OF_RANGE = [
    (ProblemsConfig, "n", -1, ">= 1"),
    (ProblemsConfig, "n", 0, ">= 1"),
    (ProblemsConfig, "seed", -1, ">= 0"),
    (ProblemsConfig, "start_index", -1, ">= 0"),
    (ProblemsConfig, "n_steps", 0, ">= 1"),
    (ProblemsConfig, "min_steps", 0, ">= 1"),
    (ProblemsConfig, "max_steps", 0, ">= 1"),
    (ProblemsConfig, "max_value", 0, ">= 1"),
    (ProblemsConfig, "limit", -1, ">= 1"),
    (ProblemsConfig, "limit", 0, ">= 1"),
    (GenerateConfig, "n", 0, ">= 1"),
    (SamplingParams, "temperature", -0.1, ">= 0"),
    (SamplingParams, "temperature", NAN, ">= 0"),
    (SamplingParams, "top_p", 0.0, "in (0, 1]"),
    (SamplingParams, "top_p", 1.5, "in (0, 1]"),
    (SamplingParams, "top_k", -1, ">= 0"),
    (SamplingParams, "max_new_tokens", 0, ">= 1"),
    (SamplingParams, "seed", -1, ">= 0"),
    (GenerateConfig, "limit", -1, ">= 1"),
    (GenerateConfig, "batch_size", 0, ">= 1"),
    (GenerateConfig, "problems_per_call", 0, ">= 1"),
    (WarmupConfig, "n_examples", 0, ">= 1"),
    (WarmupConfig, "min_steps", 0, ">= 1"),
    (WarmupConfig, "max_steps", 0, ">= 1"),
    (WarmupConfig, "max_value", 0, ">= 1"),
    (WarmupConfig, "lora_r", -1, ">= 1"),
    (WarmupConfig, "lora_r", 0, ">= 1"),
    (WarmupConfig, "lora_alpha", 0, ">= 1"),
    (WarmupConfig, "lora_dropout", 1.0, "in [0, 1)"),
    (WarmupConfig, "lora_dropout", -0.1, "in [0, 1)"),
    (WarmupConfig, "lora_layers", -1, ">= 0"),
    (WarmupConfig, "lr", -1.0, "> 0"),
    (WarmupConfig, "lr", math.inf, "> 0"),
    (WarmupConfig, "batch_size", 0, ">= 1"),
    (WarmupConfig, "epochs", 0, ">= 1"),
    (WarmupConfig, "warmup_steps", -1, ">= 0"),
    (WarmupConfig, "max_seq_len", 0, ">= 1"),
    (WarmupConfig, "seed", -1, ">= 0"),
    (WarmupConfig, "threads", -1, ">= 0"),
    (WarmupConfig, "eval_problems", -1, ">= 0"),
    (WarmupConfig, "eval_steps", 0, ">= 1"),
    (WarmupConfig, "eval_seed", -1, ">= 0"),
    (WarmupConfig, "eval_k", 0, ">= 1"),
    (WarmupConfig, "eval_temperature", -1.0, ">= 0"),
    (WarmupConfig, "eval_max_new_tokens", 0, ">= 1"),
    (WarmupConfig, "eval_batch_size", 0, ">= 1"),
    (TrainConfig, "max_length", 0, ">= 1"),
    (TrainConfig, "error_weight", 0.0, "> 0"),
    (TrainConfig, "error_weight", NAN, "> 0"),
    (TrainConfig, "beta", 0.0, "> 0"),
    (TrainConfig, "probe_hidden", -1, ">= 0"),
    (TrainConfig, "lora_r", -1, ">= 0"),
    (TrainConfig, "lora_alpha", 0, ">= 1"),
    (TrainConfig, "lr", -1.0, "> 0"),
    (TrainConfig, "lr", NAN, "> 0"),
    (TrainConfig, "weight_decay", -0.1, ">= 0"),
    (TrainConfig, "epochs", -1, ">= 1"),
    (TrainConfig, "epochs", 0, ">= 1"),
    (TrainConfig, "batch_size", 0, ">= 1"),
    (TrainConfig, "max_steps", -1, ">= 0"),
    (TrainConfig, "eval_fraction", 1.0, "in [0, 1)"),
    (TrainConfig, "eval_fraction", -0.1, "in [0, 1)"),
    (TrainConfig, "eval_every", -1, ">= 0"),
    (TrainConfig, "patience", -1, ">= 0"),
    (TrainConfig, "seed", -1, ">= 0"),
    (ScoreConfig, "batch_size", 0, ">= 1"),
    (ScoreConfig, "max_batch_tokens", -1, ">= 0"),
    (SearchConfig, "n", 0, ">= 1"),
    (SearchConfig, "m", 0, ">= 1"),
    (SearchConfig, "k", 0, ">= 1"),
    (SearchConfig, "max_steps", 0, ">= 1"),
    (SearchConfig, "step_tokens", 0, ">= 1"),
    (SearchConfig, "limit", 0, ">= 1"),
    (SearchConfig, "prm_batch_size", 0, ">= 1"),
    (SearchConfig, "batch_size", 0, ">= 1"),
    (SearchConfig, "bon_max_n", 0, ">= 1"),
]

# (config, key, a value outside its closed set of choices)
BAD_CHOICE = [
    (ProblemsConfig, "split", "dev"),
    (PolicyConfig, "dtype", "nonsense"),
    (GenerateConfig, "segmentation", "paragraphs"),
    (TrainConfig, "head", "mlp"),
    (TrainConfig, "format", "prm800k"),
    (TrainConfig, "on_truncation", "skip"),
    (TrainConfig, "aggregation", "max"),
    (ScoreConfig, "dtype", "nonsense"),
    (SearchConfig, "aggregation", "max"),
]


def _yaml(value):
    if isinstance(value, float) and math.isnan(value):
        return ".nan"
    if value == math.inf:
        return ".inf"
    return str(value)


# --------------------------------------------------------------------------- A: config ranges


@pytest.mark.parametrize(("cls", "key", "value", "rule"), OUT_OF_RANGE)
def test_out_of_range_value_names_key_value_and_range(cls, key, value, rule):
    with pytest.raises(ConfigError) as info:
        load_config(cls, None, [f"{key}={_yaml(value)}"])
    message = str(info.value)
    assert f"command line: '{key}' out of range" in message
    assert f"got {value!r}" in message and rule in message
    with pytest.raises(ConfigError, match=f"'{key}' out of range"):
        cls(**{key: value})  # a Python user gets the same error


@pytest.mark.parametrize(("cls", "key", "value"), BAD_CHOICE)
def test_value_outside_a_closed_set_is_refused(cls, key, value):
    with pytest.raises(ConfigError, match=f"unknown choice for '{key}'.*expected one of"):
        load_config(cls, None, [f"{key}={value}"])
    with pytest.raises(ConfigError, match=f"unknown choice for '{key}'"):
        cls(**{key: value})


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_numeric_field_has_a_range_and_help_shows_it(cls):
    hints = typing.get_type_hints(cls)
    text = config_help(cls)
    cls()  # the defaults are in range
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        kinds = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        if not {int, float} & set(kinds) or (cls.__name__, f.name) in UNRANGED:
            continue
        assert "range" in f.metadata, f"{cls.__name__}.{f.name} has no range"
        line = next(x for x in text.splitlines() if x.startswith(f"  {f.name} ("))
        assert any(op in line.split("):")[0] for op in (">", "<", " in ")), line


def test_help_line_shows_the_range():
    assert "  batch_size (int, default 8, >= 1): traces per forward pass" in config_help(
        ScoreConfig
    )
    assert "top_p (float, default 1.0, in (0, 1])" in config_help(GenerateConfig)


def test_option_range_rules():
    @dataclasses.dataclass
    class Cfg:
        p: float = option(0.5, "a probability", ge=0.0, le=1.0)
        k: int | None = option(None, "optional count", ge=1)

        def __post_init__(self):
            from prmkit.config import check_ranges

            check_ranges(self)

    assert Cfg(p=0.0).p == 0.0 and Cfg(p=1).p == 1.0 and Cfg(k=None).k is None
    for bad in ({"p": 1.01}, {"p": -0.0001}, {"p": NAN}, {"k": 0}):
        with pytest.raises(ConfigError, match="out of range"):
            Cfg(**bad)
    with pytest.raises(ConfigError, match="wrong type for 'k'"):
        Cfg(k="3")


@pytest.mark.parametrize(
    ("value", "bounds", "ok"),
    [
        (0, {"ge": 0}, True),
        (0, {"gt": 0}, False),
        (1.0, {"ge": 0, "lt": 1}, False),
        (math.inf, {"ge": 0}, False),
        (-math.inf, {"le": 0}, False),
        (NAN, {"le": 1}, False),
        (None, {"ge": 1}, True),
    ],
)
def test_check_range(value, bounds, ok):
    if ok:
        check_range("x", value, **bounds)
    else:
        with pytest.raises(ConfigError, match="'x' out of range"):
            check_range("x", value, **bounds)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["problems", "n=-1"], "'n' out of range; got -1; expected an integer >= 1"),
        (["generate", "problems=p.jsonl", "limit=-1"], "'limit' out of range; got -1"),
        (["train", "--data", "d.jsonl", "--out", "o", "epochs=-1"], "'epochs' out of range"),
        (["train", "--data", "d.jsonl", "--out", "o", "lr=-1"], "'lr' out of range"),
        (["train", "--data", "d.jsonl", "--out", "o", "lora_r=-1"], "'lora_r' out of range"),
        (["warmup", "lora_r=-1"], "'lora_r' out of range"),
        (["score", "--prm", "p", "--traces", "t", "--out", "o", "batch_size=0"], "'batch_size'"),
        (["score", "--prm", "p", "--traces", "t", "--out", "o", "dtype=nonsense"], "'dtype'"),
        (["search", "--problems", "p", "--prm", "x", "batch_size=0"], "'batch_size' out of"),
    ],
)
def test_cli_refuses_out_of_range_config(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    assert fragment in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_literal_choices_match_their_registries():
    from prmkit.prm.spec import AGGREGATIONS, FORMATS, HEADS
    from prmkit.steps import STRATEGIES

    train = typing.get_type_hints(TrainConfig)
    assert typing.get_args(train["head"]) == HEADS
    assert set(typing.get_args(train["format"])) == set(FORMATS)
    assert typing.get_args(train["aggregation"]) == AGGREGATIONS
    search = typing.get_args(typing.get_type_hints(SearchConfig)["aggregation"])
    assert typing.get_args(search[0]) == AGGREGATIONS
    assert typing.get_args(typing.get_type_hints(GenerateConfig)["segmentation"]) == STRATEGIES


# --------------------------------------------------------------------------- A: eval flags


def _scored(sid, scores, first_error=-1, steps=None, **meta):
    from prmkit.records import ScoredTrace

    return ScoredTrace(
        id=sid,
        problem_id=sid,
        prompt="q",
        steps=steps or [f"step {i}" for i in range(len(scores))],
        step_scores=list(scores),
        prm="t",
        answer="1",
        labels=[1.0 if first_error == -1 or i < first_error else 0.0 for i in range(len(scores))],
        first_error=first_error,
        meta={"correct": first_error == -1, "classification": "confidence", **meta},
    )


@pytest.fixture
def eval_files(tmp_path):
    from prmkit.records import write_records

    data = tmp_path / "math.json"
    data.write_text(
        json.dumps(
            [
                {"id": "a", "steps": ["step 0", "step 1"], "label": -1},
                {"id": "b", "steps": ["step 0", "step 1"], "label": 1},
            ]
        )
    )
    scores = tmp_path / "scored.jsonl"
    write_records(scores, [_scored("a", [0.9, 0.8]), _scored("b", [0.9, 0.2], first_error=1)])
    return data, scores


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["processbench", "--threshold", "nan"], "wrong type for 'threshold'; got 'nan'"),
        (["processbench", "--threshold", ".nan"], "'threshold' out of range; got nan"),
        (["processbench", "threshold=.inf"], "'threshold' out of range; got inf"),
        (["processbench", "--threshold", "1.5"], "expected a number in [0, 1]"),
        (["processbench", "--threshold", "-0.1"], "expected a number in [0, 1]"),
        (["prmbench", "--threshold", ".nan"], "'threshold' out of range; got nan"),
        (["prmbench", "--threshold", "2"], "expected a number in [0, 1]"),
        (["steps", "--bins", "0"], "'n_bins' out of range; got 0; expected an integer >= 1"),
        (["bon", "--subsets", "0"], "'n_subsets' out of range; got 0"),
        (["bon", "--bootstrap", "0"], "'n_bootstrap' out of range; got 0"),
        (["bon", "--seed", "-1"], "'seed' out of range; got -1; expected an integer >= 0"),
        (["bon", "confidence=1"], "'confidence' out of range; got 1.0"),
        (["bon", "ns=[0]"], "N out of range"),
        (["bon", "--correct-from", "label"], "unknown choice for 'correct_from'"),
        (["prmbench", "repeated_pairs=some"], "unknown choice for 'repeated_pairs'"),
        (["processbench", "--judge", "x", "--judge-votes", "0"], "'judge_votes' out of range"),
        (["processbench", "--judge", "x", "--judge-batch", "0"], "'judge_batch' out of range"),
        (
            ["processbench", "--judge", "x", "--judge-max-new-tokens", "0"],
            "'judge_sampling.max_new_tokens' out of range",
        ),
        (
            ["processbench", "--judge", "x", "judge_sampling.top_p=0"],
            "'judge_sampling.top_p' out of range",
        ),
    ],
)
def test_eval_flags_out_of_range(argv, fragment, eval_files, capsys):
    data, scores = eval_files
    command, *rest = argv
    files = ["--scores", str(scores)]
    if command == "processbench":
        files = ["--data", str(data)] + ([] if "--judge" in rest else files)
    assert main(["eval", command, *files, *rest]) == 1
    assert fragment in capsys.readouterr().err


def test_threshold_outside_0_1_is_allowed_for_log_ratio_scores(tmp_path):
    """Implicit-head scores are log-ratios, not probabilities: any finite threshold applies."""
    from prmkit.evaluate.prmbench import evaluate_prmbench
    from prmkit.evaluate.processbench import evaluate_processbench
    from prmkit.records import write_records

    data = tmp_path / "math.json"
    data.write_text(json.dumps([{"id": "a", "steps": ["step 0", "step 1"], "label": 1}]))
    scores = tmp_path / "s.jsonl"
    write_records(scores, [_scored("a", [0.3, -2.0], first_error=1)])
    out = evaluate_processbench([data], scores=scores, threshold=-1.0)
    assert out["subsets"]["math"]["acc_error"] == 100.0
    assert evaluate_prmbench(scores, threshold=-1.0)["threshold"] == -1.0
    with pytest.raises(ConfigError, match="'threshold' out of range; got nan"):
        evaluate_prmbench(scores, threshold=NAN)


def test_report_n_traces_out_of_range(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--n-traces", "-1"]) == 1
    assert "'n_traces' out of range; got -1" in capsys.readouterr().err


# --------------------------------------------------------------------------- B: empty inputs


def _empty(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[]" if path.suffix == ".json" else "")
    return path


@pytest.mark.parametrize(
    ("argv", "empty", "fragment"),
    [
        (["problems", "task=gsm8k", "data_dir=data"], "data/gsm8k/test.jsonl", "0 problems"),
        (["generate", "problems=e.jsonl"], "e.jsonl", "0 problems in e.jsonl"),
        (["score", "--prm", "p", "--traces", "e.jsonl", "--out", "o.jsonl"], "e.jsonl", "0 traces"),
        (["train", "--data", "e.jsonl", "--out", "ckpt"], "e.jsonl", "0 labelled traces in e"),
        (["search", "--problems", "e.jsonl", "--prm", "p"], "e.jsonl", "0 problems in e.jsonl"),
        (["eval", "steps", "--scores", "e.jsonl"], "e.jsonl", "0 scored traces in e.jsonl"),
        (["eval", "bon", "--scores", "e.jsonl"], "e.jsonl", "0 scored traces in e.jsonl"),
        (["eval", "prmbench", "--scores", "e.jsonl"], "e.jsonl", "0 scored traces in e.jsonl"),
        (
            ["eval", "processbench", "--data", "math.json", "--predictions", "p.jsonl"],
            "math.json",
            "0 samples in math.json",
        ),
        (
            ["eval", "processbench", "--data", "math.jsonl", "--predictions", "p.jsonl"],
            "math.jsonl",
            "0 samples in math.jsonl",
        ),
    ],
)
def test_empty_input_is_refused(argv, empty, fragment, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _empty(tmp_path / empty)
    (tmp_path / "p.jsonl").write_text('{"id": "a", "prediction": -1}\n')
    assert main(argv) == 1
    assert fragment in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"p.jsonl", empty.split("/")[0]}
    )  # nothing written


def test_train_refuses_empty_eval_data(tmp_path, capsys):
    from prmkit.records import LabeledTrace, write_records

    data = tmp_path / "d.jsonl"
    trace = LabeledTrace(
        id="t", problem_id="p", prompt="q", steps=["a"], labels=[1.0], first_error=-1
    )
    write_records(data, [trace])
    argv = ["train", "--data", str(data), "--out", str(tmp_path / "ckpt")]
    assert main([*argv, f"eval_data={_empty(tmp_path / 'e.jsonl')}"]) == 1
    assert "0 labelled traces in" in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()


@pytest.mark.parametrize("which", ["predictions", "scores", "threshold_from"])
def test_processbench_refuses_an_empty_predictions_or_scores_file(which, eval_files, tmp_path):
    from prmkit.errors import DataFormatError
    from prmkit.evaluate.processbench import evaluate_processbench

    data, scores = eval_files
    empty = _empty(tmp_path / "empty.jsonl")
    kwargs = {
        "predictions": {"predictions": empty},
        "scores": {"scores": empty, "threshold": 0.5},
        "threshold_from": {"scores": scores, "threshold_from": empty},
    }[which]
    with pytest.raises(DataFormatError, match=r"0 (predictions|scored traces) in .*empty\.jsonl"):
        evaluate_processbench([data], **kwargs)


# --------------------------------------------------------------------------- C: mismatched files


def test_processbench_reports_ids_not_in_the_data(eval_files, tmp_path, capsys):
    from prmkit.records import write_records

    data, _ = eval_files
    preds = tmp_path / "p.jsonl"
    rows = [("a", -1), ("b", 1), ("zz", 0), ("yy", -1)]
    preds.write_text("".join(json.dumps({"id": i, "prediction": p}) + "\n" for i, p in rows))
    out = tmp_path / "r.json"
    argv = ["eval", "processbench", "--data", str(data), "--output", str(out)]
    assert main([*argv, "--predictions", str(preds)]) == 0
    assert "ignored 2 predictions whose ids are not in the data" in capsys.readouterr().out
    assert json.loads(out.read_text())["n_unused_predictions"] == 2
    extra = tmp_path / "more_scored.jsonl"
    write_records(
        extra, [_scored("a", [0.9, 0.8]), _scored("b", [0.9, 0.2], 1), _scored("c", [0.1])]
    )
    assert main([*argv, "--scores", str(extra), "--threshold", "0.5"]) == 0
    assert "ignored 1 scored traces whose ids are not in the data" in capsys.readouterr().out
    assert json.loads(out.read_text())["n_unused_predictions"] == 1


@pytest.mark.parametrize("how", ["threshold", "threshold_from", "oracle"])
def test_processbench_refuses_scores_of_other_step_texts(how, eval_files, tmp_path):
    from prmkit.errors import DataFormatError
    from prmkit.evaluate.processbench import evaluate_processbench
    from prmkit.records import write_records

    data, _ = eval_files
    other = tmp_path / "other_scored.jsonl"
    write_records(
        other,
        [_scored("a", [0.9, 0.8]), _scored("b", [0.9, 0.2], 1, steps=["step 0", "step one"])],
    )
    split = tmp_path / "dev.jsonl"
    write_records(split, [_scored("d0", [0.9]), _scored("d1", [0.2], 0)])
    kwargs = {
        "threshold": {"threshold": 0.5},
        "threshold_from": {"threshold_from": split},
        "oracle": {"oracle_threshold": True},
    }[how]
    with pytest.raises(DataFormatError) as info:
        evaluate_processbench([data], scores=other, **kwargs)
    message = str(info.value)
    assert "id 'b': scored trace's step 1 differs from the data's step 1" in message
    assert "got 'step one'" in message
