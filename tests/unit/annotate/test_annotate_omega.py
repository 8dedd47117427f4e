"""OmegaPRM on real rollouts of a scripted policy: one tree per problem, exact cost, soft labels."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from conftest import ScriptedPolicy, corrupt
from prmkit.annotate.binary_search import first_error_labels
from prmkit.annotate.checkers import TaskAnswerChecker
from prmkit.annotate.omega import OmegaPRMLabeler, omega_q, omega_u
from prmkit.annotate.rollouts import RolloutEngine
from prmkit.annotate.store import RolloutStore
from prmkit.errors import ConfigError
from prmkit.tasks.arithmetic_check import check_steps

TRUE_ERRORS = [0, 2, 3, 5, 7, -1]


def _engine(policy, problems, store=None) -> RolloutEngine:
    return RolloutEngine(
        policy,
        store or RolloutStore(":memory:"),
        TaskAnswerChecker(),
        {p.id: p for p in problems},
        seed=0,
        policy="scripted",
    )


class _HardFor(ScriptedPolicy):
    """Slips on every operation of the ``hard`` problems: their Monte Carlo values are all 0."""

    def __init__(self, problems, hard, slip=0.15):
        super().__init__(problems, slip)
        self.hard = {p.prompt for p in hard}

    def _continue(self, prefix, rng):
        slip = self.slip
        self.slip = 1.0 if prefix.prompt in self.hard else slip
        try:
            return super()._continue(prefix, rng)
        finally:
            self.slip = slip


class _CutOff(ScriptedPolicy):
    """The same texts, every one reported as cut off by ``max_new_tokens``."""

    def continue_from(self, prefixes, n, params, stop="solution"):
        out = super().continue_from(prefixes, n, params, stop)
        return [[replace(c, finish_reason="length") for c in group] for group in out]


def _wrong_traces(problems, per_problem=8):
    """``per_problem`` wrong traces of each problem (first errors 0, 1, ...), grouped."""
    return [corrupt(p, e, f"{p.id}-e{e}") for p in problems for e in range(per_problem)]


def test_omega_q_and_u():
    assert omega_q(1.0, 0) == 1.0
    assert omega_q(0.0, 0) == 0.5
    assert omega_q(1.0, 500) == pytest.approx(0.9)
    assert omega_q(0.5, 100) > omega_q(0.25, 100) and omega_q(0.5, 100) > omega_q(0.5, 300)
    assert omega_u(0, 16) == pytest.approx(0.5)
    assert omega_u(3, 16) == pytest.approx(0.125)


def test_omega_u_counts_an_unvisited_tree_as_one_visit():
    # OpenR's compute_U: sum N = 0 is taken as 1, so the bonus is c_puct / (1 + N(s)), not 0
    assert omega_u(0, 0) == pytest.approx(0.125)
    assert omega_u(1, 0, c_puct=0.5) == pytest.approx(0.25)


def test_omega_labels_traces_and_grows_a_tree(make_engine, problems, traces):
    engine, _ = make_engine(slip=0.1)
    labeler = OmegaPRMLabeler(engine, k=8, search_limit=4)
    out = labeler.label(traces)
    main, extra = out[: len(traces)], out[len(traces) :]
    assert [t.id for t in main] == [t.id for t in traces]
    assert [t.first_error for t in main] == TRUE_ERRORS
    assert extra, "the tree search should label some of the policy's wrong rollouts"
    by_id = {p.id: p for p in problems}
    agree = 0
    for trace in extra:
        meta = trace.meta["annotation"]
        assert meta["origin"] == "omega_tree" and trace.id.startswith(meta["root_trace"] + "/")
        truth = check_steps(by_id[trace.problem_id], trace.steps).first_error
        agree += truth == trace.first_error
    assert agree >= 0.8 * len(extra)
    for trace in main:
        tree = trace.meta["annotation"]["tree"]
        assert tree["selections"] <= 4  # pool selections; the input's own search is extra
        assert tree["input_searches"] == (trace.first_error != -1)
    assert main[0].meta["annotation"]["rollouts"] >= 8  # the root's k, then the probes
    ids = [t.id for t in out]
    assert len(ids) == len(set(ids))


def test_omega_never_reselects_an_exhausted_pair(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    labeler = OmegaPRMLabeler(engine, k=4, search_limit=1000)
    selected = []
    select = labeler._select

    def spy(tree):
        candidate = select(tree)
        assert candidate.key in tree.seen and candidate.key not in tree.pool
        selected.append(candidate.key)
        return candidate

    labeler._select = spy
    out = labeler.label(traces[2:3])
    tree = out[0].meta["annotation"]["tree"]
    assert tree["pool_left"] == 0  # ran until the pool was empty: it terminates
    assert len(selected) == len(set(selected)) == len(out) - 1 == tree["selections"]
    assert len(selected) >= 3


def test_omega_grows_one_tree_per_problem_and_searches_each_rollout_once(problems):
    """Issue 11: 4 problems x 8 wrong traces gave 217 extras, 47 distinct (one 16 times)."""
    problems = problems[:4]
    traces = _wrong_traces(problems)

    def run():
        engine = _engine(ScriptedPolicy(problems, 0.15), problems)
        return OmegaPRMLabeler(engine, k=8, search_limit=8).label(traces)

    out = run()
    main, extra = out[: len(traces)], out[len(traces) :]
    assert [t.id for t in main] == [t.id for t in traces]
    truth = [e for _ in problems for e in range(8)]
    assert sum(t.first_error == e for t, e in zip(main, truth, strict=True)) >= 28
    sequences = Counter((t.problem_id, tuple(t.steps)) for t in extra)
    assert extra and max(sequences.values()) == 1  # every extra is a different solution
    assert not set(sequences) & {(t.problem_id, tuple(t.steps)) for t in traces}
    per_problem = Counter(t.problem_id for t in extra)
    assert max(per_problem.values()) <= 8  # search_limit selections per problem's tree
    for p in problems:
        trees = [t.meta["annotation"]["tree"] for t in main if t.problem_id == p.id]
        assert trees[0]["input_searches"] == 8 and all(tr == trees[0] for tr in trees)
        assert trees[0]["selections"] == per_problem[p.id]
        mine = [t for t in extra if t.problem_id == p.id]
        assert [t.id for t in mine] == [f"{p.id}-e0/omega-{n}" for n in range(len(mine))]
    again = run()  # deterministic: same ids, same labels
    assert [(t.id, t.steps, t.labels) for t in again] == [(t.id, t.steps, t.labels) for t in out]


def test_omega_attributes_each_rollout_to_exactly_one_record(problems, traces):
    engine = _engine(ScriptedPolicy(problems, 0.1), problems)
    # two traces of one problem plus the six fixtures: shared root, shared probes
    extra_trace = corrupt(problems[3], 1, "t3b")
    out = OmegaPRMLabeler(engine, k=8, search_limit=6).label([*traces, extra_trace])
    stored, tokens = engine.store.total(engine.namespace)
    assert stored == engine.drawn.rollouts > 0
    assert sum(t.meta["annotation"]["rollouts"] for t in out) == stored
    assert sum(t.meta["annotation"]["policy_tokens"] for t in out) == tokens
    for trace in out[len(traces) + 1 :]:  # an extra pays for the states its own search added
        meta = trace.meta["annotation"]
        assert meta["rollouts"] == 8 * meta["new_states"]


def test_omega_skips_problems_the_policy_never_solves(problems):
    hard = problems[1]
    traces = [
        corrupt(problems[0], 2, "easy-wrong"),
        corrupt(hard, 3, "hard-wrong"),
        corrupt(hard, -1, "hard-right"),
        corrupt(hard, 0, "hard-wrong-2"),
    ]
    engine = _engine(_HardFor(problems, [hard]), problems)
    labeler = OmegaPRMLabeler(engine, k=8, search_limit=4)
    out = labeler.label(traces)
    assert labeler.unsolvable_problems == [hard.id]
    assert [t.id for t in out[:4]] == [t.id for t in traces]
    easy, wrong, right, wrong2 = out[:4]
    assert easy.first_error == 2 and easy.meta["annotation"]["unsolvable"] is False
    for record in (wrong, wrong2):
        meta = record.meta["annotation"]
        assert record.labels == [None] * 9 and record.first_error == -1
        assert meta["unsolvable"] is True and meta["root_value"] == 0.0
        assert meta["probes"] == []
    # a right answer needs no rollouts: its all-correct labels stand
    assert right.labels == [1.0] * 9 and right.meta["annotation"]["unsolvable"] is False
    assert all(t.problem_id != hard.id for t in out[4:])  # no tree search either
    # only the root was estimated for the hard problem: k rollouts, charged to its first trace
    assert wrong.meta["annotation"]["rollouts"] == 8
    assert right.meta["annotation"]["rollouts"] == wrong2.meta["annotation"]["rollouts"] == 0


def test_omega_min_root_value_is_a_floor_on_the_pass_rate(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    labeler = OmegaPRMLabeler(engine, k=8, min_root_value=0.99)
    out = labeler.label(traces)
    roots = [t.meta["annotation"]["root_value"] for t in out]
    assert len(out) == len(traces)  # nothing searched, no extras
    below = [t.problem_id for t, v in zip(traces, roots, strict=True) if v < 1]
    assert labeler.unsolvable_problems == below
    for record, root, e in zip(out, roots, TRUE_ERRORS, strict=True):
        skipped = root < 1 and e >= 0  # a right answer keeps its labels
        assert record.meta["annotation"]["unsolvable"] == skipped
        assert record.labels == ([None] * 9 if skipped else first_error_labels(9, e))
    with pytest.raises(ConfigError, match="min_root_value"):
        OmegaPRMLabeler(engine, min_root_value=1.0)
    with pytest.raises(ConfigError, match="label"):
        OmegaPRMLabeler(engine, label="pav")


def test_omega_increments_only_the_selected_states_visit_count(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    labeler = OmegaPRMLabeler(engine, k=4, search_limit=6)
    trees = []
    chosen: list[str] = []
    select = labeler._select

    def spy(tree):
        candidate = select(tree)
        trees.append(tree)
        chosen.append(candidate.state.key)
        return candidate

    labeler._select = spy
    out = labeler.label(traces[3:4])  # first error at step 3
    tree = trees[0]
    root = next(n for n in tree.nodes.values() if not n.state.steps)
    visits = Counter(chosen)
    visits[root.state.key] += 1  # the input trace's own search starts at the root
    assert {k: n.visits for k, n in tree.nodes.items() if n.visits} == dict(visits)
    assert sum(n.visits for n in tree.nodes.values()) == len(chosen) + 1
    assert out[0].meta["annotation"]["tree"]["selections"] == len(chosen)


def test_omega_soft_labels_carry_the_tree_values(make_engine, traces):
    engine, _ = make_engine(slip=0.1)
    hard = OmegaPRMLabeler(engine, k=8, search_limit=4).label(traces)
    drawn = engine.drawn.rollouts
    soft = OmegaPRMLabeler(engine, k=8, search_limit=4, label="soft").label(traces)
    assert engine.drawn.rollouts == drawn  # the same tree, from the store
    assert [t.id for t in soft] == [t.id for t in hard]
    assert [t.first_error for t in soft] == [t.first_error for t in hard]
    for h, s in zip(hard, soft, strict=True):
        values = s.meta["annotation"]["values"]
        assert values == h.meta["annotation"]["values"] and len(values) == len(s.steps) + 1
        assert values[0] == s.meta["annotation"].get("root_value", values[0])
        assert h.labels == first_error_labels(len(h.steps), h.first_error)
        e = s.first_error
        end = len(s.steps) if e < 0 else e
        for i in range(end):  # each step: the value of the nearest estimated prefix after it
            after = [v for v in values[i + 1 : end + 1] if v is not None and v > 0]
            assert s.labels[i] == after[0] > 0
        if e >= 0:
            assert s.labels[e] == 0.0 and s.labels[e + 1 :] == [None] * (len(s.steps) - e - 1)
    # trace t3 (first error at step 3 of 9): probes at 4 (value 0), 2 and 3 (values > 0)
    values = soft[2].meta["annotation"]["values"]
    assert [p[0] for p in soft[2].meta["annotation"]["probes"]] == [4, 2, 3]
    assert values[1] is None and values[4] == 0.0 and values[-1] == 0.0
    assert soft[2].labels[:4] == [values[2], values[2], values[3], 0.0]
    assert soft[5].labels[-1] == 1.0 == soft[5].meta["annotation"]["values"][-1]


def test_omega_keeps_cut_off_rollouts_out_of_the_pool(problems, traces):
    full = OmegaPRMLabeler(_engine(ScriptedPolicy(problems, 0.1), problems), k=8).label(traces)
    cut = OmegaPRMLabeler(_engine(_CutOff(problems, 0.1), problems), k=8).label(traces)
    assert len(full) > len(traces)  # complete wrong rollouts are searched ...
    assert len(cut) == len(traces)  # ... cut-off ones have no answer: never in the pool
    # they still count in the Monte Carlo values as not correct (the same texts, same values)
    assert [t.meta["annotation"]["root_value"] for t in cut] == [
        t.meta["annotation"]["root_value"] for t in full[: len(traces)]
    ]
    assert [t.first_error for t in cut] == TRUE_ERRORS
