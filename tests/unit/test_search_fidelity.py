"""Search follows search-and-learn: N continuations per beam-search round, DVTS continues its best
child until that child finishes, naive / weighted / majority answers, the preset, prompt tokens
with prefix-cache credit (issue 11, items 10-14).

The policy is a scripted Generator and the PRM a table IncrementalScorer (both real
implementations of the protocols): a test writes each continuation, and a step's score is the
number after its leading ``@`` (``"@0.9 The answer is 5."`` scores 0.9).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from prmkit.generate.protocol import Completion, Generator, Prefix, SamplingParams, StopAt
from prmkit.records import Problem
from prmkit.score import IncrementalScorer, ScoreCost, ScoreState
from prmkit.search import SearchConfig, compare_with_best_of_n, matched_best_of_n, search

Policy = Callable[[tuple[str, ...], int, StopAt], tuple[str, str]]


class ScriptedGenerator:
    """A Generator whose continuations come from ``policy(steps, k, stop) -> (text, reason)``,
    ``k`` counting the continuations of that prefix drawn before. Records every call."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.calls: list[tuple[list[tuple[str, ...]], int, StopAt]] = []
        self.drawn: Counter[tuple[str, ...]] = Counter()

    def _complete(self, steps: tuple[str, ...], n: int, stop: StopAt) -> list[Completion]:
        out = []
        for _ in range(n):
            text, reason = self.policy(steps, self.drawn[steps], stop)
            self.drawn[steps] += 1
            out.append(
                Completion(
                    text=text,
                    prompt_tokens=10 + 3 * len(steps),
                    completion_tokens=len(text.split()) + 1,
                    finish_reason=reason,  # type: ignore[arg-type]
                )
            )
        return out

    def sample(
        self, prompts: Sequence[str], n: int, params: SamplingParams
    ) -> list[list[Completion]]:
        self.calls.append(([() for _ in prompts], n, "solution"))
        return [self._complete((), n, "solution") for _ in prompts]

    def continue_from(
        self, prefixes: Sequence[Prefix], n: int, params: SamplingParams, stop: StopAt = "solution"
    ) -> list[list[Completion]]:
        self.calls.append(([p.steps for p in prefixes], n, stop))
        return [self._complete(p.steps, n, stop) for p in prefixes]

    def per_round(self) -> list[int]:
        """Completions per call."""
        return [len(prefixes) * n for prefixes, n, _ in self.calls]


def _score(step: str) -> float:
    head = step.split()[0] if step.split() else ""
    return float(head[1:]) if head.startswith("@") else 0.5


class TableScorer:
    """An IncrementalScorer: each new step scored once from its ``@score`` head."""

    name = "table"

    def root(self, prompt: str) -> ScoreState:
        return ScoreState(prompt)

    def extend(
        self, items: Sequence[tuple[ScoreState, Sequence[str]]]
    ) -> tuple[list[ScoreState], ScoreCost]:
        cost = ScoreCost()
        out = []
        for state, new in items:
            scores = tuple(_score(s) for s in new)
            out.append(ScoreState(state.prompt, state.steps + tuple(new), state.scores + scores))
            cost.prm_steps_scored += len(new)
            cost.prm_tokens += sum(len(s.split()) for s in new)
            cost.prm_forward_passes += bool(new)
        return out, cost


def problem(answer: str = "7") -> Problem:
    return Problem(id="p0", prompt="What is it?", answer=answer, meta={})


def _search(method: str, p: Problem, gen: Generator, scorer: IncrementalScorer, **settings):
    """One problem's result (the table scorer has no PRM spec: ``min`` unless given)."""
    cfg = SearchConfig(method=method, **{"aggregation": "min", **settings})
    (result,) = search([p], gen, scorer, cfg)
    return result


def test_fakes_implement_the_protocols():
    assert isinstance(ScriptedGenerator(lambda s, k, stop: ("x", "eos")), Generator)
    assert isinstance(TableScorer(), IncrementalScorer)


def _never_ends(steps: tuple[str, ...], k: int, stop: StopAt) -> tuple[str, str]:
    if stop == "solution":
        return f"@0.5 The answer is {k % 3}.", "eos"
    return f"@0.{k % 9 + 1} step {len(steps)}.{k}", "stop"


# ----------------------------------------------------------------------------- item 10


@pytest.mark.parametrize(("n", "m"), [(64, 4), (8, 2)])
def test_beam_search_samples_n_first_steps_and_n_per_round(n, m):
    """search-and-learn: N beams from the prompt, each sampling one step, every round (the old
    code expanded one root M times: 4, 16, 64 completions at N=64, M=4)."""
    gen = ScriptedGenerator(_never_ends)
    result = _search("beam", problem(), gen, TableScorer(), n=n, m=m, max_steps=3)
    assert gen.per_round() == [n, n, n]
    assert gen.calls[0] == ([()], n, "step")  # N distinct first steps from the prompt
    for prefixes, count, _ in gen.calls[1:]:
        assert len(set(prefixes)) == len(prefixes) == n // m and count == m
    assert len(result.candidates) == n
    assert result.compute.policy_completions == 3 * n


# ----------------------------------------------------------------------------- item 11


def _early_eos(steps: tuple[str, ...], k: int, stop: StopAt) -> tuple[str, str]:
    """The prompt's first child ends at once with a low score, its sibling goes on at 0.9."""
    if not steps:
        return ("@0.10 The answer is 3.", "eos") if k % 2 == 0 else ("@0.90 Half way.", "stop")
    return ("@0.80 The answer is 7.", "eos") if k % 2 == 0 else ("@0.20 The answer is 9.", "eos")


@pytest.mark.parametrize(
    "run",
    [
        lambda p, g, s: _search("dvts", p, g, s, n=2, m=2, max_steps=4),
        lambda p, g, s: _search("greedy", p, g, s, k=2, max_steps=4),
        lambda p, g, s: _search("beam", p, g, s, n=2, m=2, max_steps=4),
    ],
    ids=["dvts", "greedy", "beam-n=m"],
)
def test_a_finished_low_child_does_not_end_the_search(run):
    """The old engine stopped a group as soon as it had `keep` finished children: the returned
    solution scored 0.10 while an unfinished 0.90 branch existed."""
    gen = ScriptedGenerator(_early_eos)
    result = run(problem(), gen, TableScorer())
    assert result.record is not None
    assert result.record.answer == "7" and result.record.meta["search_score"] == pytest.approx(0.8)
    assert len(gen.calls) == 2


def test_dvts_candidates_are_the_last_siblings_of_each_subtree():
    gen = ScriptedGenerator(_early_eos)
    result = _search("dvts", problem(), gen, TableScorer(), n=4, m=2, max_steps=4)
    assert [b.group for b in result.candidates] == [0, 0, 1, 1]
    assert [b.score for b in result.candidates] == pytest.approx([0.8, 0.2, 0.8, 0.2])


def test_dvts_subtree_ends_at_a_boxed_answer():
    """search-and-learn prunes a DVTS beam whose text holds `boxed{`, even without EOS."""
    gen = ScriptedGenerator(lambda steps, k, stop: ("@0.9 so \\boxed{4}", "stop"))
    result = _search("dvts", problem(), gen, TableScorer(), n=2, m=2, max_steps=5)
    assert len(gen.calls) == 1
    assert result.record is not None and result.record.answer == "4"
    assert result.finished and result.finished[0].done


def _one_finishes_first(steps: tuple[str, ...], k: int, stop: StopAt) -> tuple[str, str]:
    if not steps:
        return ("@0.95 The answer is 4.", "eos") if k == 0 else (f"@0.5 a{k}.", "stop")
    if len(steps) >= 2:
        return f"@0.7 The answer is {k}.", "eos"
    return f"@0.6 b{k}.", "stop"


def test_beam_search_refills_to_n_after_a_beam_finishes():
    """The old beam shrank (N/M minus finished) and stopped at N/M finished solutions."""
    gen = ScriptedGenerator(_one_finishes_first)
    result = _search("beam", problem(), gen, TableScorer(), n=4, m=2, max_steps=6)
    assert gen.per_round() == [4, 4, 4]
    assert len(result.finished) == 1 + 4
    assert result.record is not None and result.record.answer == "4"


# ----------------------------------------------------------------------------- item 12


def _votes(steps: tuple[str, ...], k: int, stop: StopAt) -> tuple[str, str]:
    table = [("5", 0.9), ("6", 0.6), ("6", 0.6), ("7", 0.25), ("7", 0.25), ("7", 0.25)]
    answer, score = table[k % 6]
    return f"@{score} The answer is {answer}.", "eos"


@pytest.mark.parametrize(
    "run",
    [
        lambda p, g, s: _search("beam", p, g, s, n=6, m=3, max_steps=1),
        lambda p, g, s: _search("dvts", p, g, s, n=6, m=6, max_steps=1),
    ],
    ids=["beam", "dvts"],
)
def test_naive_weighted_and_majority_answers(run):
    result = run(problem(), ScriptedGenerator(_votes), TableScorer())
    record = result.record
    assert record is not None and record.answer == "5"
    sel = record.meta["selection"]
    assert sel["naive"]["answer"] == "5" and sel["naive"]["score"] == pytest.approx(0.9)
    assert sel["weighted"]["answer"] == "6" and sel["weighted"]["weight"] == pytest.approx(1.2)
    assert sel["majority"]["answer"] == "7" and sel["majority"]["votes"] == 3
    picks = {rule: b.state.steps[-1] for rule, b in result.picks.items() if b is not None}
    assert picks == {
        "naive": "@0.9 The answer is 5.",
        "weighted": "@0.6 The answer is 6.",
        "majority": "@0.25 The answer is 7.",
    }
    assert record.meta["n_candidates"] == 6


def test_compare_reports_all_three_answers_on_both_sides():
    gen = ScriptedGenerator(_votes)
    search = lambda p: _search("beam", p, gen, TableScorer(), n=6, m=3, max_steps=1)  # noqa: E731
    result, records, _ = compare_with_best_of_n(
        [problem(answer="6")], gen, TableScorer(), search, method="beam", first_chunk=6
    )
    s, b = result["search"], result["best_of_n"]
    assert (s["accuracy"], s["accuracy_weighted"], s["accuracy_majority"]) == (0.0, 100.0, 0.0)
    assert (b["accuracy_prm"], b["accuracy_weighted"], b["accuracy_majority"]) == (0, 100, 0)
    assert records[0].meta["correct"] is False and records[0].meta["correct_weighted"] is True
    row = result["problems"][0]
    assert row["search_weighted_correct"] and row["bon_weighted_correct"] and row["bon_n"] == 6


def test_best_of_n_majority_groups_equivalent_answers():
    """Best-of-N votes by math-verify groups: '0.5' and '1/2' are one answer."""
    table = ["The answer is 0.5.", "The answer is 1/2.", "The answer is 3.", "The answer is 3."]
    bon_order = [table[1], table[2], table[0], table[3]]
    gen = ScriptedGenerator(lambda steps, k, stop: (f"@0.5 {bon_order[k % 4]}", "eos"))
    bon = matched_best_of_n(problem("1/2"), gen, TableScorer(), 10**6, max_n=4, first_chunk=4)
    assert bon.n == 4
    assert bon.traces[bon.majority_pick].answer in ("1/2", "0.5")  # tie 2-2: the first group


# ----------------------------------------------------------------------------- item 13


def test_search_and_learn_preset_values():
    from prmkit.search import apply_preset, preset

    common = {
        "max_steps": 40,
        "step_tokens": 2048,
        "sampling.max_new_tokens": 2048,
        "sampling.temperature": 0.8,
        "sampling.top_p": 1.0,
        "sampling.top_k": 0,
        "aggregation": "last",
        "prm_batch_size": 4,
    }
    assert preset("search-and-learn", "beam") == {
        "n": 4,
        "m": 4,
        "filter_duplicates": True,
        "sort_completed": False,
        "cut_steps": "finish",
        **common,
    }
    assert preset("search-and-learn", "dvts") == {"n": 4, "m": 4, "cut_steps": "continue", **common}
    assert preset("prmkit", "beam") == {}
    # the preset's keys are config keys: applied to a config, the keys given stay
    cfg = apply_preset(
        SearchConfig(preset="search-and-learn", max_steps=2, sampling=SamplingParams(top_p=0.5)),
        given={"max_steps", "sampling.top_p"},
    )
    assert (cfg.n, cfg.max_steps, cfg.cut_steps, cfg.aggregation) == (4, 2, "finish", "last")
    assert (cfg.sampling.top_p, cfg.sampling.max_new_tokens, cfg.sampling.seed) == (0.5, 2048, 0)
    assert apply_preset(SearchConfig(n=16)) == SearchConfig(n=16)  # prmkit: the defaults
    (result,) = search([problem()], ScriptedGenerator(_votes), TableScorer(), cfg)
    assert result.record is not None and result.record.meta["settings"]["final_tokens"] == 2048


def _cli_config(argv: list[str], tmp_path=None):
    from prmkit.config import stage_config
    from prmkit.search.cli import _given_keys, add_arguments
    from prmkit.search.presets import apply_preset

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--problems", "p.jsonl", "--prm", "runs/prm", *argv])
    return apply_preset(stage_config(SearchConfig, args), given=_given_keys(args))


def test_cli_preset_and_overrides(tmp_path):
    cfg = _cli_config(["--preset", "search-and-learn", "n=16"])
    assert (cfg.preset, cfg.n, cfg.m, cfg.max_steps) == ("search-and-learn", 16, 4, 40)
    assert (cfg.step_tokens, cfg.sampling.max_new_tokens, cfg.aggregation) == (2048, 2048, "last")
    assert (cfg.filter_duplicates, cfg.sort_completed, cfg.cut_steps) == (True, False, "finish")
    assert (cfg.sampling.temperature, cfg.sampling.top_p, cfg.prm_batch_size) == (0.8, 1.0, 4)
    dv = _cli_config(["--preset", "search-and-learn", "--method", "dvts"])
    assert (dv.cut_steps, dv.filter_duplicates, dv.max_steps) == ("continue", False, 40)
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("preset: search-and-learn\nmax_steps: 10\nsampling:\n  temperature: 0.5\n")
    y = _cli_config(["--config", str(yaml_file), "aggregation=min", "sampling.top_k=5"])
    assert (y.max_steps, y.aggregation, y.sampling.max_new_tokens) == (10, "min", 2048)
    assert (y.sampling.temperature, y.sampling.top_k, y.step_tokens) == (0.5, 5, 2048)
    plain = _cli_config([])
    assert (plain.max_steps, plain.step_tokens, plain.sampling.max_new_tokens) == (12, 96, 256)
    assert (plain.cut_steps, plain.filter_duplicates, plain.sort_completed) == (
        "continue",
        False,
        True,
    )
    assert (plain.sampling.temperature, plain.sampling.seed, plain.policy.model) == (
        0.8,
        0,
        "smollm2",
    )
    flags = _cli_config(["--policy", "/models/qwen", "--compare-bon", "policy.dtype=bfloat16"])
    assert (flags.policy.model, flags.policy.dtype, flags.compare_bon) == (
        "/models/qwen",
        "bfloat16",
        True,
    )


def test_cut_step_finishes_a_beam_with_cut_steps_finish():
    def policy(steps, k, stop):
        return ("@0.9 a long step that was cut", "length") if not steps else ("@0.1 end.", "eos")

    cont = _search(
        "beam", problem(), ScriptedGenerator(policy), TableScorer(), n=2, m=2, max_steps=3
    )
    assert cont.record is not None and len(cont.record.steps) == 2
    assert cont.stats["steps_cut_at_step_tokens"] == 2
    gen = ScriptedGenerator(policy)
    fin = _search("beam", problem(), gen, TableScorer(), n=2, m=2, max_steps=3, cut_steps="finish")
    assert fin.record is not None and len(fin.record.steps) == 1 and len(gen.calls) == 1


def test_filter_duplicates_keeps_distinct_beams():
    def policy(steps, k, stop):
        if not steps:
            return ("@0.9 same.", "stop") if k < 3 else ("@0.5 other.", "stop")
        return "@0.5 The answer is 1.", "eos"

    gen = ScriptedGenerator(policy)
    _search("beam", problem(), gen, TableScorer(), n=4, m=2, max_steps=3)
    assert gen.calls[1][0] == [("@0.9 same.",), ("@0.9 same.",)]
    gen = ScriptedGenerator(policy)
    _search("beam", problem(), gen, TableScorer(), n=4, m=2, max_steps=3, filter_duplicates=True)
    assert gen.calls[1][0] == [("@0.9 same.",), ("@0.5 other.",)]


def test_unsorted_completed_keeps_the_first_n_and_repeats_to_n():
    """sort_completed=False (search-and-learn): the first N completed, repeated up to N."""

    def policy(steps, k, stop):
        if not steps:
            return ("@0.3 The answer is 2.", "eos") if k == 0 else (f"@0.5 s{k}.", "stop")
        return f"@0.9 The answer is {k}.", "eos"

    sal = _search("beam", problem(), ScriptedGenerator(policy), TableScorer(), n=4, m=2,
                      max_steps=3, sort_completed=False)  # fmt: skip
    assert sal.candidates[0].score == pytest.approx(0.3)
    mine = _search(
        "beam", problem(), ScriptedGenerator(policy), TableScorer(), n=4, m=2, max_steps=3
    )
    assert all(b.score == pytest.approx(0.5) for b in mine.candidates)  # min(0.5, 0.9)
    # only one solution finished (the others were empty): it fills all N places
    gen = ScriptedGenerator(
        lambda s, k, stop: ("@0.3 The answer is 2.", "eos") if k == 0 else ("", "eos")
    )
    one = _search("beam", problem(), gen, TableScorer(), n=4, m=2, max_steps=1)
    assert one.record is not None and one.record.meta["n_candidates"] == 4
    assert [c["copies"] for c in one.record.meta["candidates"]] == [4]
    assert one.record.meta["selection"]["majority"]["votes"] == 4


# ----------------------------------------------------------------------------- item 14


def test_prompt_tokens_reported_and_with_prefix_cache_credit():
    gen = ScriptedGenerator(_never_ends)
    result = _search("dvts", problem(), gen, TableScorer(), n=4, m=2, max_steps=2)
    compute = result.compute.to_dict()
    # round 0: one call, the root twice (two subtrees) x 2 children: 4 x 10 reported, 10 credited
    # round 1: two distinct one-step prefixes x 2 children: 4 x 13 reported, 2 x 13 credited
    assert compute["policy_prompt_tokens"] == 4 * 10 + 4 * 13
    assert compute["policy_prompt_tokens_prefix_cached"] == 10 + 2 * 13
    assert result.record is not None
    assert result.record.meta["compute"] == compute


def test_best_of_n_prompt_tokens_with_prefix_cache_credit():
    gen = ScriptedGenerator(lambda s, k, stop: ("@0.5 The answer is 7.", "eos"))
    bon = matched_best_of_n(problem(), gen, TableScorer(), 10**6, max_n=6, first_chunk=4)
    assert bon.n == 6 and len(gen.calls) == 2
    assert bon.compute.policy_prompt_tokens == 6 * 10
    assert bon.compute.policy_prompt_tokens_prefix_cached == 2 * 10
