"""The rollout store and the rollout engine: keys, transactions, reuse, determinism."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from prmkit.annotate.rollouts import LocalDrawer, State, solution_text
from prmkit.annotate.store import Rollout, RolloutStore, derive_seed
from prmkit.errors import DataFormatError, PrmkitError, RecordError


def _rollout(state: str, idx: int, text: str = "x") -> Rollout:
    return Rollout(
        state=state,
        idx=idx,
        trace_id="t",
        prefix_len=1,
        text=text,
        answer="4",
        correct=idx % 2 == 0,
        prompt_tokens=5,
        completion_tokens=3,
        finish_reason="eos",
        seed=11,
    )


def test_store_round_trip_and_wal(tmp_path):
    path = tmp_path / "sub" / "r.sqlite"
    with RolloutStore(path) as store:
        ns = store.namespace({"policy": "p", "seed": 0})
        store.add(ns, [_rollout("s", 0, "a"), _rollout("s", 1, "b")])
        assert store.count(ns, "s") == 2
        assert store.job_config(ns) == {"policy": "p", "seed": 0}
    with RolloutStore(path) as store:  # reopened: committed rows are there
        got = store.get(ns, "s")
        assert [(r.idx, r.text, r.correct) for r in got] == [(0, "a", True), (1, "b", False)]
        assert store.get(ns, "s", 1) == got[:1]
        assert store.total(ns) == (2, 6)
        mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_store_never_duplicates_and_batches_are_atomic(tmp_path):
    store = RolloutStore(tmp_path / "r.sqlite")
    ns = store.namespace({"a": 1})
    assert store.add(ns, [_rollout("s", 0, "a")]) == 1
    assert store.add(ns, [_rollout("s", 1), _rollout("s", 0, "b")]) == 1  # idx 0 is kept
    assert [r.text for r in store.get(ns, "s")] == ["a", "x"]
    broken = dataclasses.replace(_rollout("s", 3), text=None)  # NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        store.add(ns, [_rollout("s", 2), broken])
    assert store.count(ns, "s") == 2  # the whole batch was rolled back, idx 2 included
    other = store.namespace({"a": 2})
    assert other != ns
    store.add(other, [_rollout("s", 0)])  # same key in another namespace is fine
    assert store.total() == (3, 9)


def test_store_rejects_a_non_sqlite_file(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataFormatError, match="rollout store"):
        RolloutStore(bad)


def test_derive_seed_is_stable_and_spread():
    assert derive_seed(0, "a", 1) == derive_seed(0, "a", 1)
    seeds = {derive_seed(0, "a", i) for i in range(100)}
    assert len(seeds) == 100
    assert all(0 <= s < 2**31 for s in seeds)


def test_state_key_is_content_addressed(traces):
    a = State.of(traces[0], 3)
    assert (
        a.key
        == State(
            traces[0].problem_id, traces[0].prompt, tuple(traces[0].steps[:3]), "other-trace"
        ).key
    )
    assert a.key != State.of(traces[0], 4).key
    assert solution_text(["a", "b"], " c\n") == "a\n\nb\n\nc"
    assert solution_text([], "c") == "c"


def test_engine_reuses_stored_rollouts_and_draws_only_missing(make_engine, traces):
    engine, policy = make_engine()
    state = State.of(traces[1], 2)
    first = engine.rollouts([(state, 4)])[0]
    assert [r.idx for r in first] == [0, 1, 2, 3]
    assert policy.calls == [(1, 4, policy.calls[0][2])]
    again = engine.rollouts([(state, 4), (state, 2)])
    assert again[0] == first and again[1] == first[:2]
    assert len(policy.calls) == 1  # nothing new drawn
    more = engine.rollouts([(state, 6)])[0]
    assert more[:4] == first and len(more) == 6
    assert policy.calls[-1][:2] == (1, 2)  # only the two missing rollouts
    assert engine.drawn.rollouts == 6


def test_engine_batches_states_and_checks_answers(make_engine, traces):
    engine, policy = make_engine(slip=0.0, max_prefixes_per_call=3)
    states = [State.of(t, 1) for t in traces[1:]]  # correct first steps
    out = engine.rollouts([(s, 2) for s in states])
    assert [len(r) for r in out] == [2] * 5
    assert [c[:2] for c in policy.calls] == [(3, 2), (2, 2)]
    assert all(r.correct for rs in out for r in rs)  # a perfect policy from a correct prefix
    wrong = engine.rollouts([(State.of(traces[0], 1), 3)])[0]  # step 0 is wrong
    assert not any(r.correct for r in wrong)
    assert all(r.answer is not None for r in wrong)


def test_engine_is_deterministic_across_stores(make_engine, traces, tmp_path):
    runs = []
    for name in ("a", "b"):
        engine, _ = make_engine(store=RolloutStore(tmp_path / f"{name}.sqlite"), seed=3)
        engine.rollouts([(State.of(t, 4), 3) for t in traces])
        runs.append(list(engine.store.iter_all()))
    assert runs[0] == runs[1] and len(runs[0]) == 18
    engine, _ = make_engine(store=RolloutStore(tmp_path / "c.sqlite"), seed=4)
    engine.rollouts([(State.of(t, 4), 3) for t in traces])
    assert [r.text for _, r in engine.store.iter_all()] != [r.text for _, r in runs[0]]


def test_engine_rejects_unknown_problem_and_short_generator(make_engine, traces):
    engine, policy = make_engine()
    orphan = State("nope", traces[0].prompt, (), "t9")
    with pytest.raises(RecordError, match="unknown problem"):
        engine.rollouts([(orphan, 1)])
    policy.continue_from = lambda prefixes, n, params, stop="solution": [[]]
    with pytest.raises(RecordError, match="wrong number of completions"):
        engine.rollouts([(State.of(traces[0], 2), 2)])


def test_store_ignores_a_key_another_writer_stored_first(tmp_path):
    first, second = RolloutStore(tmp_path / "r.sqlite"), RolloutStore(tmp_path / "r.sqlite")
    ns = first.namespace({"a": 1})
    assert second.namespace({"a": 1}) == ns
    assert first.add(ns, [_rollout("s", 0, "first"), _rollout("s", 1, "first")]) == 2
    # the second job counted 0 before the first one committed, drew its own, and adds them now
    assert second.add(ns, [_rollout("s", 0, "late"), _rollout("s", 1, "late")]) == 0
    assert [r.text for r in second.get(ns, "s")] == ["first", "first"]  # the first writer wins
    assert second.total(ns) == (2, 6)


def test_store_waits_for_a_concurrent_writer(tmp_path):
    store = RolloutStore(tmp_path / "r.sqlite")
    assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000


def test_a_store_locked_too_long_is_a_typed_error_and_keeps_what_was_stored(tmp_path):
    """Past the busy timeout, the writer gets a PrmkitError (no raw sqlite3 traceback)."""
    path = tmp_path / "r.sqlite"
    store = RolloutStore(path)
    ns = store.namespace({"a": 1})
    store.add(ns, [_rollout("s", 0)])
    store._db.execute("PRAGMA busy_timeout = 50")  # a short wait instead of BUSY_TIMEOUT_S
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another job holds the write lock
    try:
        with pytest.raises(PrmkitError, match="cannot write to the rollout store"):
            store.add(ns, [_rollout("s", 1)])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert [r.idx for r in store.get(ns, "s")] == [0]
    assert store.add(ns, [_rollout("s", 1)]) == 1  # the lock is gone: the rerun stores it


def test_engines_sharing_a_store_return_what_it_holds(make_engine, traces, tmp_path):
    """A job that drew rollouts another job stored meanwhile gets the stored ones back."""
    path = tmp_path / "shared.sqlite"
    first, _ = make_engine(slip=0.5, store=RolloutStore(path))
    second, policy = make_engine(slip=0.5, store=RolloutStore(path), seed=99)
    second.namespace = first.namespace  # one job config; seed 99 only makes its samples differ
    state = State.of(traces[0], 2)

    class Racing:
        def continue_from(self, prefixes, n, params, stop="solution"):
            first.rollouts([(state, 4)])  # the other job commits while this one samples
            return policy.continue_from(prefixes, n, params, stop)

    second.drawer = LocalDrawer(Racing(), second.checker)
    got = second.rollouts([(state, 4)])[0]
    assert second.drawn.rollouts == 4  # it drew four, but the store kept the first job's
    assert got == first.store.get(first.namespace, state.key)
    assert {r.seed for r in got} != {seed for _, _, seed in policy.calls}
    assert second.store.count(second.namespace, state.key) == 4
