"""Label transforms from stored Monte Carlo values, judge voting, consensus."""

from __future__ import annotations

import re

import pytest

from prmkit.annotate.checkers import ArithmeticStepChecker
from prmkit.annotate.consensus import ConsensusLabeler, consensus_report
from prmkit.annotate.exact import ExactLabeler
from prmkit.annotate.judge import (
    JudgeLabeler,
    format_paragraphs,
    judge_prompt,
    majority,
    parse_verdict,
)
from prmkit.annotate.montecarlo import MonteCarloLabeler
from prmkit.annotate.store import RolloutStore
from prmkit.annotate.transforms import (
    hard_labels,
    labels_from_values,
    pav_progress,
    relabel,
    rpe_labels,
    soft_labels,
)
from prmkit.errors import ConfigError, RecordError
from prmkit.generate.protocol import Completion, SamplingParams
from prmkit.tasks.arithmetic_check import check_steps

VALUES = [0.5, 0.75, 0.5, 0.125, 0.0, None]


@pytest.mark.parametrize(
    ("scheme", "labels", "first_error"),
    [
        ("hard", [1.0, 1.0, 1.0, 0.0, None], 3),
        ("soft", [0.75, 0.5, 0.125, 0.0, None], 3),
        # ratios 1.5, 0.667, 0.25, 0.0: the second step already loses too much; after the
        # state of value 0 every step is wrong (GenPRM), even one whose value is unknown
        ("rpe", [1.0, 0.0, 0.0, 0.0, 0.0], 1),
        ("pav", [0.625, 0.375, 0.3125, 0.4375, None], 3),
    ],
)
def test_label_schemes(scheme, labels, first_error):
    got, fe, extra = labels_from_values(VALUES, scheme)
    assert got[:4] == pytest.approx(labels[:4])
    assert got[4] == labels[4] and fe == first_error
    if scheme == "pav":
        assert extra["progress"][:4] == pytest.approx([0.25, -0.25, -0.375, -0.125])


def test_transform_edges():
    assert hard_labels([None, 0.2, 0.0]) == [1.0, 0.0]
    assert soft_labels([None, 0.2, 0.0]) == [0.2, 0.0]
    assert rpe_labels([0.0, 0.5, 1.0]) == [0.0, 0.0]  # after a hopeless root: all wrong
    assert rpe_labels([0.5, 0.4, 0.4], epsilon=0.8) == [1.0, 1.0]  # 0.8 is enough
    assert pav_progress([0.5, 1.0]) == [0.5]
    with pytest.raises(ConfigError, match="pass rate"):
        rpe_labels([None, 0.5])
    with pytest.raises(ConfigError, match="label scheme"):
        labels_from_values([0.5, 1.0], "median")


def test_relabel_from_stored_values(make_engine, traces):
    engine, _ = make_engine(slip=0.2)
    labeled = MonteCarloLabeler(engine, k=8, estimate_root=True).label(traces)
    drawn = engine.drawn.rollouts
    for trace in labeled:
        values = trace.meta["annotation"]["values"]
        assert values[0] is not None  # the problem's pass rate
        rpe = relabel(trace, "rpe")
        assert rpe.labels == rpe_labels(values) and rpe.meta["annotation"]["label"] == "rpe"
        soft = relabel(trace, "soft")
        assert soft.labels == values[1:] and soft.first_error == trace.first_error
    assert engine.drawn.rollouts == drawn  # no new rollouts
    # the root state is shared: re-estimating it for another labeler costs nothing
    MonteCarloLabeler(engine, k=8, label="pav").label(traces)
    assert engine.drawn.rollouts == drawn
    no_root = MonteCarloLabeler(engine, k=8).label(traces[:1])
    with pytest.raises(ConfigError, match="estimate_root"):
        relabel(no_root[0], "pav")
    exact = ExactLabeler(ArithmeticStepChecker(), engine.problems).label(traces[:1])
    with pytest.raises(RecordError, match="Monte Carlo values"):
        relabel(exact[0], "soft")


# ------------------------------------------------------------------------------------ judge


@pytest.mark.parametrize(
    ("text", "n_steps", "verdict"),
    [
        ("The third paragraph is wrong. \\boxed{2}", 4, 2),
        ("All fine: \\boxed{-1}", 4, -1),
        ("first \\boxed{1} then on reflection \\boxed{ 3 }", 4, 3),
        ("\\boxed{4}", 4, None),  # out of range
        ("\\boxed{-2}", 4, None),
        ("paragraph 2 is wrong", 4, None),  # no box
        ("\\boxed{two}", 4, None),
    ],
)
def test_parse_verdict(text, n_steps, verdict):
    assert parse_verdict(text, n_steps) == verdict


def test_majority_and_paragraphs():
    assert majority([1, 1, 2]) == 1
    assert majority([-1, -1, 3]) == -1
    assert majority([-1, 3]) == 3  # a tie goes to the earliest error
    assert majority([4, 2]) == 2
    text = format_paragraphs(["a", "b"])
    assert text == "<paragraph_0>\na\n</paragraph_0>\n\n<paragraph_1>\nb\n</paragraph_1>"
    prompt = judge_prompt("What is 1+1?", ["1 + 1 = 2", "The answer is 2."])
    assert "What is 1+1?" in prompt and "<paragraph_1>\nThe answer is 2.\n</paragraph_1>" in prompt
    assert "\\boxed{" in prompt and "-1" in prompt
    with pytest.raises(ConfigError, match="unknown prompt template"):
        judge_prompt("q", ["a"], template="no_such_template")


class CheckerJudge:
    """A judge Generator that reads the paragraphs and answers with the exact checker.

    Vote ``j`` is wrong (one step late) when ``j`` is in ``late``, and unparsable when in ``junk``.
    """

    def __init__(self, problems, late=(), junk=()):
        self.by_text = {p.prompt: p for p in problems}
        self.late, self.junk = set(late), set(junk)
        self.calls = 0

    def sample(self, prompts, n, params):
        self.calls += 1
        out = []
        for prompt in prompts:
            problem = next(p for text, p in self.by_text.items() if text in prompt)
            steps = re.findall(r"<paragraph_\d+>\n(.*?)\n</paragraph_\d+>", prompt, re.S)
            truth = check_steps(problem, steps).first_error
            group = []
            for j in range(n):
                verdict = truth + 1 if j in self.late and truth >= 0 else truth
                text = "hmm" if j in self.junk else f"Checked. \\boxed{{{verdict}}}"
                group.append(Completion(text, 100, 7, "eos"))
            out.append(group)
        return out

    def continue_from(self, prefixes, n, params, stop="solution"):
        raise AssertionError("a judge only samples")


def test_judge_majority_vote_and_resume(problems, traces, tmp_path):
    store = RolloutStore(tmp_path / "j.sqlite")
    judge = CheckerJudge(problems, late={0}, junk={1})
    labeler = JudgeLabeler(
        judge,
        store,
        {p.id: p for p in problems},
        votes=5,
        params=SamplingParams(max_new_tokens=64),
        judge="checker",
    )
    out = labeler.label(traces)
    assert [t.first_error for t in out] == [0, 2, 3, 5, 7, -1]
    meta = out[1].meta["annotation"]
    assert meta["invalid_votes"] == 1 and meta["votes"].count(2) == 3
    assert meta["agreement"] == pytest.approx(0.75)
    assert meta["rollouts"] == 5 and meta["policy_tokens"] == 35
    calls = judge.calls
    again = JudgeLabeler(
        judge,
        store,
        {p.id: p for p in problems},
        votes=5,
        params=SamplingParams(max_new_tokens=64),
        judge="checker",
    ).label(traces)
    assert judge.calls == calls  # every verdict came from the store
    assert [t.labels for t in again] == [t.labels for t in out]


def test_judge_drops_traces_without_valid_votes(problems, traces, tmp_path):
    judge = CheckerJudge(problems, junk={0, 1, 2})
    labeler = JudgeLabeler(judge, RolloutStore(tmp_path / "j.sqlite"), {}, votes=3)
    assert labeler.label(traces[:2]) == []
    assert labeler.unlabeled == ["t0", "t1"]


# -------------------------------------------------------------------------------- consensus


def test_consensus_keeps_agreeing_traces(make_engine, problems, traces, tmp_path):
    by_id = {p.id: p for p in problems}
    exact = ExactLabeler(ArithmeticStepChecker(), by_id)
    judge = JudgeLabeler(
        CheckerJudge(problems, late={0, 1, 2}), RolloutStore(tmp_path / "j.db"), by_id, votes=5
    )  # a majority one step late on every wrong trace
    labeler = ConsensusLabeler([exact, judge])
    kept = labeler.label(traces)
    assert [t.id for t in kept] == ["t5"]  # only the all-correct trace agrees
    assert kept[0].label_source == "consensus:exact+judge"
    assert kept[0].meta["annotation"]["consensus"]["first_errors"] == {"exact": -1, "judge": -1}
    report = labeler.report
    assert report.total == 6 and report.kept == 1
    assert report.kept_fraction == pytest.approx(1 / 6)
    assert report.matrix["exact"]["judge"] == pytest.approx(1 / 6)
    assert report.matrix["judge"]["judge"] == 1.0
    assert "kept 1/6" in report.format()
    engine, _ = make_engine(slip=0.1)
    agree = ConsensusLabeler([exact, MonteCarloLabeler(engine, k=8)]).label(traces)
    assert len(agree) == 6  # MC on this policy finds every first error
    with pytest.raises(ConfigError, match="two or more"):
        ConsensusLabeler([exact])


def test_consensus_report_counts_missing_members():
    from prmkit.records import LabeledTrace

    def lt(tid, fe):
        return LabeledTrace(
            id=tid, problem_id="p", prompt="q", steps=["a", "b"], labels=[1.0, 1.0], first_error=fe
        )

    report = consensus_report({"a": [lt("x", -1), lt("y", 0)], "b": [lt("x", -1)]})
    assert report.total == 1 and report.kept == 1 and report.missing == {"b": ["y"]}


# -------------------------------------------------------------------------------------- cli


def test_cli_exact_method_and_errors(problems, traces, tmp_path, capsys):
    from prmkit.cli import main
    from prmkit.records import LabeledTrace, read_records, write_records

    write_records(tmp_path / "p.jsonl", problems)
    write_records(tmp_path / "t.jsonl", traces)
    args = [
        "annotate",
        "--method",
        "exact",
        "--traces",
        str(tmp_path / "t.jsonl"),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--no-progress",
    ]
    assert main(args) == 1  # exact needs the problems
    assert "problems are required" in capsys.readouterr().err
    assert main([*args, "--problems", str(tmp_path / "p.jsonl"), "--limit", "4"]) == 0
    out = read_records(tmp_path / "o.jsonl", LabeledTrace)
    assert [t.first_error for t in out] == [0, 2, 3, 5]
    assert "labelled 4/4 traces with exact" in capsys.readouterr().out


def test_rpe_is_zero_after_the_first_zero_value_as_genprm():
    """Issue 11 item 6: a later non-zero value does not revive steps after a dead state."""
    from prmkit.annotate.transforms import rpe_labels

    assert rpe_labels([0.5, 0.5, 0, 0.25, 0.25, 0]) == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert rpe_labels([0.5, 0.5, 0.5], epsilon=0.8) == [1.0, 1.0]
    assert rpe_labels([0.0, 0.5]) == [0.0]


class _Fixed:
    """A scripted labeler: fixed labels per trace id."""

    def __init__(self, name, labels):
        self.name, self._labels = name, labels

    def label(self, traces):
        from prmkit.annotate.protocol import Cost, annotation_meta
        from prmkit.records import LabeledTrace, first_error_from_labels

        out = []
        for t in traces:
            labels = self._labels[t.id]
            meta = {**t.meta, "annotation": annotation_meta(self.name, Cost())}
            out.append(
                LabeledTrace(
                    **t.trace_fields() | {"meta": meta},
                    labels=labels,
                    first_error=first_error_from_labels(labels),
                    label_source=self.name,
                )
            )
        return out


def test_consensus_labels_stop_at_the_agreed_first_error():
    """Issue 11 item 9: the first member's 1.0 after the agreed error is not kept."""
    from prmkit.records import Trace

    trace = Trace(id="t", problem_id="p", prompt="q", steps=["a", "b", "c", "d"], answer="1")
    mc = _Fixed("mc", {"t": [1.0, 0.0, 1.0, 1.0]})  # MC without stop-at-zero recovers later
    judge = _Fixed("judge", {"t": [1.0, 0.0, None, None]})
    (kept,) = ConsensusLabeler([mc, judge]).label([trace])
    assert kept.first_error == 1 and kept.labels == [1.0, 0.0, None, None]
    right = Trace(id="r", problem_id="p", prompt="q", steps=["a", "b"], answer="1")
    both = [_Fixed("mc", {"r": [1.0, 0.75]}), _Fixed("judge", {"r": [1.0, 1.0]})]
    assert ConsensusLabeler(both).label([right])[0].labels == [1.0, 0.75]  # no error: all kept


def test_relabel_drops_the_previous_schemes_keys(make_engine, traces):
    """Issue 11 item 9: pav -> hard left 'progress'; rpe -> soft left 'epsilon'."""
    engine, _ = make_engine(slip=0.3)
    labeled = MonteCarloLabeler(engine, k=4, estimate_root=True).label(traces[:2])
    for trace in labeled:
        pav = relabel(trace, "pav")
        assert "progress" in pav.meta["annotation"]
        assert "progress" not in relabel(pav, "hard").meta["annotation"]
        rpe = relabel(trace, "rpe")
        assert rpe.meta["annotation"]["epsilon"] == 0.8
        assert "epsilon" not in relabel(rpe, "soft").meta["annotation"]


def test_pav_progress_under_a_best_of_k_prover():
    """Issue 11 item 8: Setlur et al.'s BoK(pi) prover, Q = 1 - (1 - Q^pi)^K, from the values."""
    values = [0.5, 0.75, 0.25, 0.0]
    assert pav_progress(values, prover_k=1) == pav_progress(values)
    bok = [1 - (1 - v) ** 4 for v in values]  # 0.9375, 0.99609375, 0.68359375, 0
    progress = pav_progress(values, prover_k=4)
    assert progress == pytest.approx([bok[1] - bok[0], bok[2] - bok[1], bok[3] - bok[2]])
    labels, first_error, extra = labels_from_values(values, "pav", prover_k=4)
    assert labels == pytest.approx([(1 + a) / 2 for a in progress])
    assert first_error == 2 and extra == {"progress": progress, "prover_k": 4}
    with pytest.raises(ConfigError, match="prover_k"):
        pav_progress(values, prover_k=0)


def test_pav_prover_k_from_the_labeler_and_relabel(make_engine, traces):
    engine, _ = make_engine(slip=0.3)
    labeled = MonteCarloLabeler(engine, k=4, label="pav", prover_k=3).label(traces[:2])
    drawn = engine.drawn.rollouts
    for trace in labeled:
        values = trace.meta["annotation"]["values"]
        assert trace.meta["annotation"]["prover_k"] == 3
        assert trace.meta["annotation"]["progress"] == pav_progress(values, prover_k=3)
        again = relabel(relabel(trace, "pav"), "pav", prover_k=3)
        assert again.labels == trace.labels
        assert relabel(trace, "pav").meta["annotation"]["prover_k"] == 1
        assert "prover_k" not in relabel(trace, "soft").meta["annotation"]
    assert engine.drawn.rollouts == drawn


def test_consensus_drops_a_trace_a_member_could_not_label(make_engine, traces):
    """Issue 11 item 3: binary's null labels (unsolvable problem) are no agreement with MC."""
    from prmkit.annotate.binary_search import BinarySearchLabeler

    engine, _ = make_engine(slip=1.0)  # never solves: MC says "step 0", binary says nothing
    binary = BinarySearchLabeler(engine, k=4)
    labeler = ConsensusLabeler([MonteCarloLabeler(engine, k=4), binary])
    assert labeler.label(traces[:5]) == []
    assert labeler.unsolvable_problems == binary.unsolvable_problems
    assert len(labeler.unsolvable_problems) == 5
    assert labeler.report.total == 0 and labeler.report.missing["binary"] == [
        t.id for t in traces[:5]
    ]
    assert [t.id for t in labeler.dropped] == [t.id for t in traces[:5]]
