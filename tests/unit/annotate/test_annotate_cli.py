"""``prmkit annotate`` refuses bad input before any work: clobbered inputs, bad flags, no traces."""

from __future__ import annotations

import pytest

from prmkit.annotate.store import RolloutStore
from prmkit.cli import main
from prmkit.records import LabeledTrace, read_records, write_records


@pytest.fixture
def files(problems, traces, tmp_path):
    write_records(tmp_path / "p.jsonl", problems)
    write_records(tmp_path / "t.jsonl", traces)
    return tmp_path


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
    assert "the --out path is also an input" in err and str(target) in err
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
    assert "the --store path is also an input" in capsys.readouterr().err
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
        ("--temperature", "nan", "a number >= 0"),
        ("--top-p", "0", "a number in (0, 1]"),
        ("--top-p", "1.5", "a number in (0, 1]"),
        ("--epsilon", "1.2", "a number in [0, 1]"),
        ("--epsilon", "-0.1", "a number in [0, 1]"),
        ("--sc-threshold", "2", "a number in [0, 1]"),
        ("--sc-threshold", "nan", "a number in [0, 1]"),
        ("--sc-samples", "0", "an integer >= 1"),
        ("--scan-tolerance", "-1", "an integer >= 0"),
        ("--prover-k", "0", "an integer >= 1"),
        ("--min-root-value", "1", "a number in [0, 1)"),
    ],
)
def test_out_of_range_flags_are_refused(files, flag, value, expected, capsys):
    assert main(_args(files, flag, value, method="mc")) == 1
    err = capsys.readouterr().err
    assert f"'{flag}' out of range" in err and expected in err
    shown = err.split("got ", 1)[1].split(";")[0]
    assert str(float(shown)) == str(float(value))
    assert not (files / "o.jsonl").exists() and not (files / "o.jsonl.rollouts.sqlite").exists()


def test_inconsistent_flags_are_refused(files, capsys):
    assert main(_args(files, "--k-min", "10", "--k-max", "2", method="mc")) == 1
    assert "--k-min is above --k-max" in capsys.readouterr().err
    assert main(_args(files, "--prover-k", "4", method="mc")) == 1  # the default label is hard
    assert "--prover-k applies to --label pav" in capsys.readouterr().err
    assert not (files / "o.jsonl").exists()


@pytest.mark.parametrize("method", ["mc", "binary"])
def test_scan_min_confidence_points_to_the_scan_method(files, method, capsys):
    """Issue 11 item 5: the post-hoc filter spent every rollout first; SCAN is a method now."""
    assert main(_args(files, "--scan-min-confidence", "0.5", method=method)) == 1
    err = capsys.readouterr().err
    assert "--scan-min-confidence was replaced" in err and "--method scan --sc-threshold" in err
    assert not (files / "o.jsonl").exists() and not (files / "o.jsonl.rollouts.sqlite").exists()


def test_no_traces_is_an_error(files, capsys):
    (files / "empty.jsonl").write_text("\n")
    assert main(_args(files, "--traces", str(files / "empty.jsonl"))) == 1
    assert f"0 traces in {files / 'empty.jsonl'}" in capsys.readouterr().err
    assert not (files / "o.jsonl").exists()
