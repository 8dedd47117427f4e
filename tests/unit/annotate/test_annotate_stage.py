"""The annotate stage from Python: ``annotate(cfg, traces, problems)`` on records in memory."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import ScriptedJudge
from prmkit.annotate import AnnotateConfig, MonteCarloLabeler, annotate
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, read_records


def _cfg(**kwargs) -> AnnotateConfig:
    return AnnotateConfig(**{"no_progress": True, **kwargs})


def test_annotate_in_memory_labels_as_the_labeler_does(problems, traces, make_engine, tmp_path):
    engine, policy = make_engine(slip=0.15)
    expected = MonteCarloLabeler(engine, k=4, label="soft").label(traces)
    result = annotate(_cfg(method="mc", k=4, label="soft"), traces, problems, generator=policy)
    assert [r.labels for r in result.records] == [r.labels for r in expected]
    assert [r.id for r in result.records] == [t.id for t in traces]
    assert (result.n_traces, result.n_labelled, result.method) == (6, 6, "mc")
    assert result.used.rollouts == result.drawn.rollouts == engine.used.rollouts
    assert result.stored == (result.used.rollouts, result.used.policy_tokens)
    assert result.store == ":memory:" and result.out is None
    assert result.lines()[0] == "labelled 6/6 traces with mc"
    assert result.lines()[1].startswith(f"budget used: {result.used.rollouts} rollouts")
    assert {p.name.split("-")[0] for p in tmp_path.iterdir()} == {"rollouts.sqlite"}  # the engine's


def test_problems_by_id_or_as_a_list_and_limit(problems, traces, make_engine):
    _, policy = make_engine()
    cfg = _cfg(method="binary", k=4, limit=3)
    by_list = annotate(cfg, traces, problems, generator=policy)
    by_id = annotate(cfg, traces, {p.id: p for p in problems}, generator=policy)
    assert [r.to_dict() for r in by_list.records] == [r.to_dict() for r in by_id.records]
    assert [r.id for r in by_list.records] == ["t0", "t1", "t2"]


def test_out_is_written_and_exact_opens_no_store(problems, traces, tmp_path):
    out = tmp_path / "o.jsonl"
    result = annotate(_cfg(method="exact", out=str(out)), traces, problems)
    assert read_records(out, LabeledTrace) == result.records
    assert [r.first_error for r in result.records] == [0, 2, 3, 5, 7, -1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]
    assert result.used is None and result.store is None
    assert result.lines() == [f"labelled 6/6 traces with exact -> {out}"]


def test_the_judge_given_in_memory(problems, traces, make_engine):
    _, policy = make_engine(slip=0.1)
    cfg = _cfg(method="consensus", members="mc,judge", k=4, votes=3)
    result = annotate(cfg, traces, problems, generator=policy, judge=ScriptedJudge())
    (judged,) = result.judges_used
    assert (judged.rollouts, judged.drawn) == (18, 18)
    assert result.report is not None and result.report.format() in result.lines()
    assert len(result.records) + len(result.dropped) == len(traces)


def test_omega_tree_records_follow_the_inputs(problems, traces, make_engine):
    _, policy = make_engine(slip=0.3)
    result = annotate(_cfg(method="omega", k=4, search_limit=2), traces, problems, generator=policy)
    assert [r.id for r in result.records[: result.n_labelled]] == [t.id for t in traces]
    extra = result.records[result.n_labelled :]
    assert extra and all(r.meta["origin"] == "omega_tree" for r in extra)
    assert f"(+{len(extra)} tree traces)" in result.lines()[0]


def test_refusals_before_any_work(problems, traces, tmp_path):
    traces_file = tmp_path / "t.jsonl"
    with pytest.raises(ConfigError, match="traces given twice"):
        annotate(_cfg(method="exact", traces=str(traces_file)), traces, problems)
    with pytest.raises(ConfigError, match="no traces to label"):
        annotate(_cfg(method="exact"), None, problems)
    with pytest.raises(ConfigError, match="0 traces given"):
        annotate(_cfg(method="exact"), [], problems)
    with pytest.raises(ConfigError, match="method is not set"):
        annotate(_cfg(), traces, problems)
    with pytest.raises(ConfigError, match="problems are required"):
        annotate(_cfg(method="mc"), traces)
    with pytest.raises(ConfigError, match="the out path is also an input"):
        annotate(_cfg(method="exact", out=str(traces_file), traces=str(traces_file)))
    assert not traces_file.exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "mc", "k": 0}, "'k' out of range"),
        ({"method": "mk"}, "unknown choice for 'method'"),
        ({"method": "mc", "k_min": 9, "k_max": 3}, "k_min is above k_max"),
        ({"method": "omega", "label": "pav"}, "omega labels are hard or soft"),
        ({"method": "mc", "prover_k": 2}, "prover_k applies to label=pav only"),
        ({"method": "consensus", "members": "mc,consensus"}, "unknown consensus member"),
        ({"method": "mc", "scan_min_confidence": 0.5}, "was replaced by the SCAN method"),
    ],
)
def test_config_refuses_in_python_as_on_the_command_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        AnnotateConfig(**kwargs)


@pytest.mark.parametrize("method", ["mc", "binary", "omega", "scan"])
def test_traces_split_otherwise_are_refused_before_any_rollout(
    problems, traces, make_engine, method
):
    """Issue 12: the segmentation travels with the traces; rollouts join a prefix with a blank
    line and split their continuation on blank lines, so single-newline steps are refused."""
    from prmkit.errors import DataFormatError

    engine, policy = make_engine(slip=0.15)
    odd = [dataclasses.replace(traces[0], meta={"segmentation": "single_newline"})]
    with pytest.raises(
        DataFormatError, match=r"split with 'single_newline'.*needs 'double_newline'"
    ):
        annotate(_cfg(method=method, k=2), [*traces[1:], *odd], problems, generator=policy)
    assert policy.calls == []  # refused before any rollout
    with pytest.raises(DataFormatError, match="single_newline"):  # a labeler called directly
        MonteCarloLabeler(engine, k=2).label(odd)
    # the exact checker reads the steps as given: any segmentation is fine
    assert annotate(_cfg(method="exact"), odd, problems).n_labelled == 1
