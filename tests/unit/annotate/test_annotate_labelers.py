"""Monte Carlo, binary search and exact labels on real rollouts of a scripted policy."""

from __future__ import annotations

import dataclasses
import math

import pytest

from prmkit.annotate.binary_search import BinarySearchLabeler, first_error_labels
from prmkit.annotate.checkers import ArithmeticStepChecker
from prmkit.annotate.exact import ExactLabeler
from prmkit.annotate.montecarlo import AdaptiveK, MonteCarloLabeler
from prmkit.annotate.protocol import Labeler
from prmkit.annotate.rollouts import State
from prmkit.errors import ConfigError, RecordError

TRUE_ERRORS = [0, 2, 3, 5, 7, -1]


def test_exact_labeler_is_the_ground_truth(problems, traces):
    labeler = ExactLabeler(ArithmeticStepChecker(), {p.id: p for p in problems})
    assert isinstance(labeler, Labeler)
    out = labeler.label(traces)
    assert [t.first_error for t in out] == TRUE_ERRORS
    assert out[1].labels == [1.0, 1.0, 0.0] + [None] * 6
    assert out[5].labels == [1.0] * 9
    assert all(t.meta["annotation"]["rollouts"] == 0 for t in out)
    assert {t.label_source for t in out} == {"exact"}
    with pytest.raises(RecordError, match="unknown problem"):
        ExactLabeler(ArithmeticStepChecker(), {}).label(traces[:1])


def test_mc_hard_and_soft_labels(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    hard = MonteCarloLabeler(engine, k=8).label(traces)
    assert [t.first_error for t in hard] == TRUE_ERRORS
    for trace, true_error in zip(hard, TRUE_ERRORS, strict=True):
        values = trace.meta["annotation"]["values"]
        assert values[0] is None  # the root was not estimated
        assert values[-1] == (1.0 if true_error < 0 else 0.0)  # the trace's own answer
        if true_error >= 0:  # every prefix holding the error is hopeless
            assert all(v == 0.0 for v in values[true_error + 1 :])
        assert trace.labels == [float(v > 0) for v in values[1:]]
        # provenance: 8 rollouts for each of the 8 inner prefixes, tokens counted
        assert trace.meta["annotation"]["rollouts"] == 8 * 8
        assert trace.meta["annotation"]["policy_tokens"] > 8 * 8
        assert trace.label_source == "mc"
    drawn = engine.drawn.rollouts
    soft = MonteCarloLabeler(engine, k=8, label="soft").label(traces)
    assert engine.drawn.rollouts == drawn  # relabelling reuses every stored rollout
    assert soft[1].labels[:2] == hard[1].meta["annotation"]["values"][1:3]
    assert 0 < soft[5].labels[0] < soft[5].labels[7] == 1.0  # later prefixes succeed more


def test_mc_stop_at_zero_skips_later_prefixes(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    out = MonteCarloLabeler(engine, k=8, stop_at_zero=True).label(traces)
    assert [t.first_error for t in out] == TRUE_ERRORS
    for trace, e in zip(out, TRUE_ERRORS, strict=True):
        if e >= 0:
            assert trace.labels[e] == 0.0 and trace.labels[e + 1 :] == [None] * (8 - e)
            assert trace.meta["annotation"]["rollouts"] == 8 * min(e + 1, 8)
        else:
            assert trace.labels == [1.0] * 9
    full = MonteCarloLabeler(engine, k=8).label(traces)
    assert sum(t.meta["annotation"]["rollouts"] for t in out) < sum(
        t.meta["annotation"]["rollouts"] for t in full
    )


def test_mc_adaptive_k_follows_the_pass_rate(make_engine, traces):
    rule = AdaptiveK(probe_k=8, k_min=2, k_max=16, confidence=0.9)
    assert rule.k_for(0.0) == 16 and rule.k_for(1.0) == 2
    assert rule.k_for(0.5) == math.ceil(math.log(0.1) / math.log(0.5))
    easy, _ = make_engine(slip=0.0)
    out = MonteCarloLabeler(easy, adaptive=rule).label(traces[5:])
    meta = out[0].meta["annotation"]
    assert meta["values"][0] == 1.0 and meta["k"] == 2
    assert meta["rollouts"] == 8 + 2 * 8  # probe + k per inner prefix
    hard_engine, _ = make_engine(slip=0.6, store=None, seed=1)
    hard = MonteCarloLabeler(hard_engine, adaptive=rule).label(traces[5:])
    assert hard[0].meta["annotation"]["k"] > meta["k"]


def test_mc_rejects_bad_settings(make_engine):
    engine, _ = make_engine()
    with pytest.raises(ConfigError):
        MonteCarloLabeler(engine, k=0)
    with pytest.raises(ConfigError, match="label scheme"):
        MonteCarloLabeler(engine, label="fuzzy")


def test_binary_search_finds_first_errors_in_log_steps(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    out = BinarySearchLabeler(engine, k=8).label(traces)
    assert [t.first_error for t in out] == TRUE_ERRORS
    for trace, e in zip(out, TRUE_ERRORS, strict=True):
        meta = trace.meta["annotation"]
        assert trace.labels == first_error_labels(9, e)
        if e < 0:  # right final answer: no search, no rollouts
            assert meta["rollouts"] == 0 and meta["probes"] == []
        else:
            assert len(meta["probes"]) <= math.ceil(math.log2(9))
            # the root (the bare problem) is estimated once, then the midpoints
            assert meta["rollouts"] == 8 * (len(meta["probes"]) + 1)
            assert meta["root_value"] > 0 and not meta["unsolvable"]
            assert meta["probes"][0][0] == 4  # the first midpoint of (0, 9]


def test_binary_search_can_search_correct_traces(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    out = BinarySearchLabeler(engine, k=8, search_correct=True).label(traces[5:])
    assert out[0].first_error == -1 and out[0].meta["annotation"]["rollouts"] > 0


def test_binary_search_gives_null_labels_on_problems_the_policy_never_solves(
    make_engine, problems, traces
):
    """Issue 11 item 3: every wrong trace got first_error 0, a searched right one too."""
    engine, policy = make_engine(slip=1.0)  # slips on every operation: never right
    labeler = BinarySearchLabeler(engine, k=4, search_correct=True)
    out = labeler.label(traces)
    for record in out:
        meta = record.meta["annotation"]
        assert record.labels == [None] * 9 and record.first_error == -1
        assert meta["unsolvable"] is True and meta["root_value"] == 0.0
    assert labeler.unsolvable_problems == [p.id for p in problems]
    # the roots are estimated first, in one call; no midpoint is probed on an unsolvable problem
    assert [call[:2] for call in policy.calls] == [(6, 4)]
    # without search_correct a right trace keeps its all-correct outcome label, no rollouts
    plain = BinarySearchLabeler(engine, k=4).label(traces[5:])
    assert plain[0].labels == [1.0] * 9 and plain[0].meta["annotation"]["rollouts"] == 0


def test_binary_search_root_is_shared_and_has_a_floor(make_engine, problems, traces):
    engine, _ = make_engine(slip=0.1)
    same_problem = [
        dataclasses.replace(traces[2], id="a"),
        dataclasses.replace(traces[2], id="b", steps=[*traces[2].steps[:-1], "The answer is 1."]),
    ]
    out = BinarySearchLabeler(engine, k=8).label(same_problem)
    root = State.of(same_problem[0], 0)
    assert engine.store.count(engine.namespace, root.key) == 8  # drawn once for both
    assert out[0].meta["annotation"]["root_value"] == out[1].meta["annotation"]["root_value"]
    value = out[0].meta["annotation"]["root_value"]
    assert 0 < value < 1
    strict = BinarySearchLabeler(engine, k=8, min_root_value=value)
    assert all(t.labels == [None] * 9 for t in strict.label(same_problem))
    assert strict.unsolvable_problems == [traces[2].problem_id]
    with pytest.raises(ConfigError, match="min_root_value"):
        BinarySearchLabeler(engine, min_root_value=1.0)
