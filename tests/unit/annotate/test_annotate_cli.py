"""``prmkit annotate``: every setting a key (flags are shortcuts), ``--config`` with groups, and
refusals before any work: clobbered inputs, out-of-range or contradictory keys, no traces."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import typing

import pytest
import yaml

from prmkit.annotate.cli import SHORTCUTS
from prmkit.annotate.config import AnnotateConfig
from prmkit.annotate.store import RolloutStore
from prmkit.cli import main
from prmkit.records import LabeledTrace, read_records


def _args(tmp_path, *extra: str, method: str = "exact") -> list[str]:
    args = {
        "--method": method,
        "--traces": str(tmp_path / "t.jsonl"),
        "--problems": str(tmp_path / "p.jsonl"),
        "--out": str(tmp_path / "o.jsonl"),
        "--policy": str(tmp_path / "no-model"),  # never loaded: every refusal comes first
    }
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        args[flag] = value
    return ["annotate", *(x for kv in args.items() for x in kv), "--no-progress"]


@pytest.mark.parametrize("input_flag", ["--traces", "--problems", "--store"])
def test_out_may_not_be_an_input(files, input_flag, capsys):
    if input_flag == "--store":  # `--store X --out X` used to replace the store with JSONL
        with RolloutStore(files / "r.jsonl") as store:
            store.namespace({"a": 1})
        target = files / "r.jsonl"
    else:
        target = files / ("t.jsonl" if input_flag == "--traces" else "p.jsonl")
    before = target.read_bytes()
    assert main(_args(files, input_flag, str(target), "--out", str(target))) == 1
    err = capsys.readouterr().err
    assert "the out path is also an input" in err and str(target) in err
    assert target.read_bytes() == before


def test_out_through_a_symlink_is_refused(files, capsys):
    (files / "link.jsonl").symlink_to(files / "t.jsonl")
    assert main(_args(files, "--out", str(files / "link.jsonl"))) == 1
    assert "also an input" in capsys.readouterr().err


@pytest.mark.parametrize("input_name", ["t.jsonl", "p.jsonl"])
def test_store_may_not_be_an_input(files, input_name, capsys):
    before = (files / input_name).read_bytes()
    code = main(_args(files, "--store", str(files / input_name), method="mc"))
    assert code == 1
    assert "the store path is also an input" in capsys.readouterr().err
    assert (files / input_name).read_bytes() == before


def test_exact_creates_no_rollout_store(files):
    assert main(_args(files, "--store", str(files / "r.sqlite"))) == 0
    assert not (files / "r.sqlite").exists()
    assert main(_args(files)) == 0  # nor the default <out>.rollouts.sqlite
    assert sorted(p.name for p in files.iterdir()) == ["o.jsonl", "p.jsonl", "t.jsonl"]
    assert len(read_records(files / "o.jsonl", LabeledTrace)) == 6


@pytest.mark.parametrize(
    "flag, value, expected",
    [
        ("--limit", "-3", "an integer >= 1"),
        ("--limit", "0", "an integer >= 1"),
        ("--batch-traces", "0", "an integer >= 1"),
        ("--max-new-tokens", "0", "an integer >= 1"),
        ("--gen-batch-size", "0", "an integer >= 1"),
        ("--max-prefixes-per-call", "-1", "an integer >= 1"),
        ("--verify-timeout", "0", "an integer >= 1"),
        ("--k", "0", "an integer >= 1"),
        ("--probe-k", "0", "an integer >= 1"),
        ("--k-min", "0", "an integer >= 1"),
        ("--k-max", "0", "an integer >= 1"),
        ("--search-limit", "0", "an integer >= 1"),
        ("--votes", "0", "an integer >= 1"),
        ("--judge-max-new-tokens", "0", "an integer >= 1"),
        ("--seed", "-1", "an integer >= 0"),
        ("--temperature", "-0.5", "a number >= 0"),
        ("--temperature", ".nan", "a number >= 0"),
        ("--top-p", "0", "a number in (0, 1]"),
        ("--top-p", "1.5", "a number in (0, 1]"),
        ("--epsilon", "1.2", "a number in [0, 1]"),
        ("--epsilon", "-0.1", "a number in [0, 1]"),
        ("--sc-threshold", "2", "a number in [0, 1]"),
        ("--sc-threshold", ".nan", "a number in [0, 1]"),
        ("--sc-samples", "0", "an integer >= 1"),
        ("--scan-tolerance", "-1", "an integer >= 0"),
        ("--prover-k", "0", "an integer >= 1"),
        ("--min-root-value", "1", "a number in [0, 1)"),
    ],
)
def test_out_of_range_flags_are_refused(files, flag, value, expected, capsys):
    assert main(_args(files, flag, value, method="mc")) == 1
    err = capsys.readouterr().err
    name = SHORTCUTS[flag]  # a group's key is named by its dotted key
    assert f"'{name}' out of range" in err and expected in err
    shown = err.split("got ", 1)[1].split(";")[0]
    assert str(float(shown)) == str(float(yaml.safe_load(value)))
    assert not (files / "o.jsonl").exists() and not (files / "o.jsonl.rollouts.sqlite").exists()


def test_a_value_of_the_wrong_type_is_refused(files, capsys):
    assert main(_args(files, "--temperature", "nan", method="mc")) == 1  # YAML's NaN is .nan
    err = capsys.readouterr().err
    assert "wrong type for 'sampling.temperature'" in err and "expected float" in err
    assert main(_args(files, "--label", "bogus", method="mc")) == 1
    assert "unknown choice for 'label'" in capsys.readouterr().err
    assert not (files / "o.jsonl").exists()


def test_inconsistent_flags_are_refused(files, capsys):
    assert main(_args(files, "--k-min", "10", "--k-max", "2", method="mc")) == 1
    assert "k_min is above k_max" in capsys.readouterr().err
    assert main(_args(files, "--prover-k", "4", method="mc")) == 1  # the default label is hard
    assert "prover_k applies to label=pav" in capsys.readouterr().err
    assert main(_args(files, "--label", "rpe", method="omega")) == 1
    assert "omega labels are hard or soft" in capsys.readouterr().err
    assert main(_args(files, "--members", "mc,nope", method="consensus")) == 1
    assert "unknown consensus member" in capsys.readouterr().err
    assert main(_args(files, "--seed", "null", method="mc")) == 1
    assert "annotate needs a job seed" in capsys.readouterr().err
    assert not (files / "o.jsonl").exists()


def test_method_and_out_are_required(files, capsys):
    args = _args(files)
    i = args.index("--method")
    assert main(args[:i] + args[i + 2 :]) == 1
    assert "method is not set" in capsys.readouterr().err
    i = args.index("--out")
    assert main(args[:i] + args[i + 2 :]) == 1
    assert "prmkit annotate needs out" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["mc", "binary"])
def test_scan_min_confidence_points_to_the_scan_method(files, method, capsys):
    """Issue 11 item 5: the post-hoc filter spent every rollout first; SCAN is a method now."""
    assert main(_args(files, "--scan-min-confidence", "0.5", method=method)) == 1
    err = capsys.readouterr().err
    assert "--scan-min-confidence) was replaced" in err and "--method scan --sc-threshold" in err
    assert not (files / "o.jsonl").exists() and not (files / "o.jsonl.rollouts.sqlite").exists()


def test_no_traces_is_an_error(files, capsys):
    (files / "empty.jsonl").write_text("\n")
    assert main(_args(files, "--traces", str(files / "empty.jsonl"))) == 1
    assert f"0 traces in {files / 'empty.jsonl'}" in capsys.readouterr().err
    assert not (files / "o.jsonl").exists()


def _keys(cls: type, prefix: str = "") -> list[str]:
    """Every key of a config dataclass, a group's as ``group.key``."""
    hints = typing.get_type_hints(cls)
    out: list[str] = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            out += _keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_help_lists_every_key_and_flag(capsys):
    with pytest.raises(SystemExit) as done:
        main(["annotate", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    keys = _keys(AnnotateConfig)
    assert {"policy.model", "policy.adapter", "sampling.seed", "sampling.temperature"} <= set(keys)
    assert len(keys) >= 45
    for key in keys:
        assert f"\n  {key} (" in out, key
    # every flag of the argparse era is still there, each a shortcut for one key
    old_flags = [
        "--method",
        "--traces",
        "--problems",
        "--out",
        "--store",
        "--limit",
        "--batch-traces",
        "--no-progress",
        "--policy",
        "--adapter",
        "--seed",
        "--temperature",
        "--top-p",
        "--max-new-tokens",
        "--gen-batch-size",
        "--max-prefixes-per-call",
        "--verify-timeout",
        "--k",
        "--label",
        "--epsilon",
        "--prover-k",
        "--stop-at-zero",
        "--estimate-root",
        "--adaptive-k",
        "--probe-k",
        "--k-min",
        "--k-max",
        "--scan-min-confidence",
        "--search-correct",
        "--min-root-value",
        "--search-limit",
        "--no-tree",
        "--sc-samples",
        "--sc-threshold",
        "--scan-tolerance",
        "--judge-model",
        "--judge-adapter",
        "--votes",
        "--judge-max-new-tokens",
        "--judge-template",
        "--members",
    ]
    for flag in old_flags:
        assert flag in SHORTCUTS and f"  {flag}" in out, flag
    assert set(SHORTCUTS.values()) <= set(keys)


def test_config_file_with_a_policy_group_and_overrides(files, make_engine, use_models, capsys):
    """``--config recipe.yaml key=value``: YAML groups, then flags and overrides win."""
    _, policy = make_engine(slip=0.1)
    loaded = use_models(policy)
    recipe = {
        "method": "mc",
        "traces": str(files / "t.jsonl"),
        "problems": str(files / "p.jsonl"),
        "out": str(files / "o.jsonl"),
        "k": 2,
        "label": "soft",
        "policy": {"model": "scripted-policy", "adapter": "lora-dir"},
        "sampling": {"temperature": 1.0, "seed": 3},
        "no_progress": True,
    }
    (files / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    argv = ["annotate", "--config", str(files / "recipe.yaml"), "k=3", "policy.adapter=null"]
    assert main([*argv, "--limit", "2"]) == 0
    assert loaded == [("scripted-policy", None)]
    out = capsys.readouterr().out
    assert "labelled 2/2 traces with mc -> " in out and "budget used: " in out
    records = read_records(files / "o.jsonl", LabeledTrace)
    assert [r.id for r in records] == ["t0", "t1"]
    meta = records[1].meta["annotation"]
    assert (meta["k"], meta["label"]) == (3, "soft")
    # the namespace holds the YAML's sampling settings and seed
    with sqlite3.connect(files / "o.jsonl.rollouts.sqlite") as db:
        ((text,),) = db.execute("SELECT config FROM jobs").fetchall()
    config = json.loads(text)
    assert config["seed"] == 3 and config["params"]["temperature"] == 1.0
    assert config["policy"] == "scripted-policy"
    # an unknown key in the file is an error, naming the file
    (files / "bad.yaml").write_text(yaml.safe_dump({**recipe, "policy": {"modle": "x"}}))
    assert main(["annotate", "--config", str(files / "bad.yaml")]) == 1
    err = capsys.readouterr().err
    assert "unknown config key for PolicyConfig" in err and "policy.modle" in err
