"""PRM-guided search: incremental scoring equals one-pass scoring, accounting adds up, budgets hold.

The policy is a tiny random Llama over the real SmolLM2 vocabulary whose LM head is biased toward
digits, operators, newlines and (less) EOS, so it writes short "steps" separated by blank lines
and sometimes ends. The PRMs are tiny random models in the real input formats (TRL, Qwen2.5-Math-
PRM, Math-Shepherd); nothing is mocked: the search runs the real TransformersGenerator and the
real PRM forward passes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Sequence

import pytest
import torch

from prmkit.errors import ConfigError
from prmkit.generate.protocol import Completion, Prefix, SamplingParams, StopAt
from prmkit.generate.transformers_backend import TransformersGenerator
from prmkit.prm import PRMSpec
from prmkit.prm.heads import PRM, ProbeHead
from prmkit.records import Problem, ScoredTrace, Trace
from prmkit.score import IncrementalPRMScorer, IncrementalScorer, PRMScorer
from prmkit.search import SearchConfig, SearchResult, check_budget, matched_best_of_n, search
from prmkit.tasks.arithmetic import generate as arithmetic_problems
from prmkit.testing import build_tiny_lm, build_tiny_tokcls

FAVOURED = ["1", "2", "3", "Ġ=", "Ġ+", ".", "Ġ", "ĊĊ", "Ċ"]
PROMPT = "Tom has 3 apples. He buys 4 more. How many apples does Tom have now?"


# ----------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def policy(smol_tokenizer) -> TransformersGenerator:
    model = build_tiny_lm(len(smol_tokenizer), seed=7)
    bias = torch.zeros(len(smol_tokenizer))
    bias[smol_tokenizer.convert_tokens_to_ids(FAVOURED)] = 11.0
    bias[smol_tokenizer.eos_token_id] = 8.5
    model.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)
    return TransformersGenerator(model, smol_tokenizer, batch_size=16)


@pytest.fixture(scope="module")
def trl_prm(smol_tokenizer) -> PRM:
    spec = PRMSpec.from_format("trl", head="tokcls")
    return PRM(spec=spec, tokenizer=smol_tokenizer, model=build_tiny_tokcls(len(smol_tokenizer)))


@pytest.fixture(scope="module")
def qwen_prm(smol_tokenizer) -> PRM:
    tok = copy.deepcopy(smol_tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<extra_0>"]})
    spec = PRMSpec.from_format("qwen_prm", head="tokcls")
    return PRM(spec=spec, tokenizer=tok, model=build_tiny_tokcls(len(tok), seed=1))


@pytest.fixture(scope="module")
def shepherd_tok(smol_tokenizer):
    tok = copy.deepcopy(smol_tokenizer)
    tok.add_tokens(["ки"])
    return tok


@pytest.fixture(scope="module")
def shepherd_prm(shepherd_tok) -> PRM:
    spec = PRMSpec.from_format("math_shepherd", head="labeltok")
    return PRM(spec=spec, tokenizer=shepherd_tok, model=build_tiny_lm(len(shepherd_tok), seed=2))


@pytest.fixture(scope="module")
def probe_prm(smol_tokenizer) -> PRM:
    spec = PRMSpec.from_format("trl", head="probe", probe_hidden=8)
    torch.manual_seed(4)
    model = build_tiny_lm(len(smol_tokenizer), seed=4)
    return PRM(spec=spec, tokenizer=smol_tokenizer, model=model, probe=ProbeHead(64, 8).eval())


@pytest.fixture(scope="module")
def merging_prm(smol_tokenizer) -> PRM:
    """A joined format whose tag " th" merges with a next step starting "en" into " then", so
    extending a trace re-tokenizes a token the parent already ran (and moves its read position)."""
    spec = PRMSpec(
        head="labeltok", step_tag=" th", step_join="", prompt_join=" ", label_tokens=["+", "-"]
    )
    return PRM(
        spec=spec, tokenizer=smol_tokenizer, model=build_tiny_lm(len(smol_tokenizer), seed=5)
    )


class CountingGenerator:
    """A real Generator in front of another: records every call and sums its Completions."""

    def __init__(self, inner: TransformersGenerator) -> None:
        self.inner = inner
        self.calls: list[tuple[int, int, str]] = []  # (prefixes, n, stop)
        self.prompt_tokens = self.completion_tokens = self.completions = 0

    def _count(self, out: list[list[Completion]]) -> list[list[Completion]]:
        for group in out:
            for c in group:
                self.prompt_tokens += c.prompt_tokens
                self.completion_tokens += c.completion_tokens
                self.completions += 1
        return out

    def sample(self, prompts: Sequence[str], n: int, params: SamplingParams):
        self.calls.append((len(prompts), n, "solution"))
        return self._count(self.inner.sample(prompts, n, params))

    def continue_from(
        self, prefixes: Sequence[Prefix], n: int, params: SamplingParams, stop: StopAt = "solution"
    ):
        self.calls.append((len(prefixes), n, stop))
        return self._count(self.inner.continue_from(prefixes, n, params, stop))


def problem() -> Problem:
    return Problem(id="p0", prompt=PROMPT, answer="7", meta={})


SEARCH = {
    "max_steps": 4,
    "step_tokens": 12,
    "sampling": SamplingParams(temperature=0.8, max_new_tokens=24, seed=3),
}


def run(method: str, policy, scorer, **settings) -> SearchResult:
    """Search ``problem()`` with ``method`` and the settings (SEARCH's unless given)."""
    cfg = SearchConfig(method=method, **{**SEARCH, **settings})  # type: ignore[arg-type]
    (result,) = search([problem()], policy, scorer, cfg)
    return result


# ----------------------------------------------------------------------------- incremental

BRANCHES = [
    ["Tom buys 4 more: 3 + 4 = 7."],
    ["en he has 7 apples.", "en the answer is 7."],
    ["Check: 7 - 4 = 3."],
]


def _grow(scorer: IncrementalScorer):
    """A small tree: root -> a (1 step) -> {b (2 more), c (1 more)}; b -> d."""
    (a,), _ = scorer.extend([(scorer.root(PROMPT), BRANCHES[0])])
    (b, c), _ = scorer.extend([(a, BRANCHES[1]), (a, BRANCHES[2])])
    (d,), _ = scorer.extend([(b, ["en done: 7."])])
    return [a, b, c, d]


@pytest.mark.parametrize(
    "name", ["trl_prm", "qwen_prm", "shepherd_prm", "probe_prm", "merging_prm"]
)
@pytest.mark.parametrize("mode", ["kv", "recompute"])
def test_incremental_scores_equal_one_pass_rescore(request, name, mode):
    prm = request.getfixturevalue(name)
    scorer = IncrementalPRMScorer(prm, mode=mode)
    assert scorer.mode == mode
    states = _grow(scorer)
    full = PRMScorer(prm).score(
        [
            Trace(id=f"t{i}", problem_id="p", prompt=PROMPT, steps=list(s.steps))
            for i, s in enumerate(states)
        ]
    )
    for state, expected in zip(states, full, strict=True):
        assert len(state.scores) == len(state.steps)
        assert list(state.scores) == pytest.approx(expected, abs=1e-5)


def test_retokenized_prefix_step_is_scored_again(merging_prm):
    scorer = IncrementalPRMScorer(merging_prm, mode="kv")
    (a,), _ = scorer.extend([(scorer.root(PROMPT), BRANCHES[0])])
    (b,), cost = scorer.extend([(a, BRANCHES[1])])
    # " th" + "en" became " then": step 0's read token changed, so it is scored again
    assert cost.prm_steps_scored == 3
    assert b.scores[0] != pytest.approx(a.scores[0], abs=1e-6)
    (c,), cost = scorer.extend([(a, BRANCHES[2])])  # "Check" does not merge: step 0 kept
    assert cost.prm_steps_scored == 1 and c.scores[0] == a.scores[0]


def test_kv_mode_runs_only_new_tokens(trl_prm):
    """The per_step TRL format is prefix-stable: a chain of extensions runs each token once."""
    scorer = IncrementalPRMScorer(trl_prm, mode="kv")
    state, total_tokens, passes = scorer.root(PROMPT), 0, 0
    steps = ["Tom buys 4 more: 3 + 4 = 7.", "So he has 7 apples.", "The answer is 7."]
    for step in steps:
        (state,), cost = scorer.extend([(state, [step])])
        total_tokens += cost.prm_tokens
        passes += cost.prm_forward_passes
        assert cost.prm_steps_scored == 1
    enc = PRMScorer(trl_prm).encode(Trace(id="t", problem_id="p", prompt=PROMPT, steps=steps))
    assert total_tokens == len(enc.input_ids)  # not 1 + 2 + 3 prefixes' worth
    assert passes == len(steps)


def test_siblings_share_the_prompt_once(trl_prm):
    scorer = IncrementalPRMScorer(trl_prm, mode="kv")
    root = scorer.root(PROMPT)
    kids = [["One 1."], ["Two 2."], ["Three 3."]]
    states, cost = scorer.extend([(root, k) for k in kids])
    lengths = [
        len(
            PRMScorer(trl_prm)
            .encode(Trace(id="t", problem_id="p", prompt=PROMPT, steps=k))
            .input_ids
        )
        for k in kids
    ]
    shared = len(trl_prm.tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    # the shared prompt (and BOS, if any) runs once, each child's own tokens once
    assert cost.prm_tokens < sum(lengths)
    assert cost.prm_tokens >= sum(lengths) - (len(kids) - 1) * (shared + 1)
    assert cost.prm_forward_passes == 2
    assert [len(s.scores) for s in states] == [1, 1, 1]


def test_recompute_counts_whole_traces(trl_prm):
    scorer = IncrementalPRMScorer(trl_prm, mode="recompute")
    (a,), _ = scorer.extend([(scorer.root(PROMPT), ["One 1."])])
    (b,), cost = scorer.extend([(a, ["Two 2."])])
    enc = PRMScorer(trl_prm).encode(
        Trace(id="t", problem_id="p", prompt=PROMPT, steps=list(b.steps))
    )
    assert cost.prm_tokens == len(enc.input_ids)
    assert cost.prm_steps_scored == 1
    assert b.scores[0] == a.scores[0]  # the prefix score is kept, not recomputed


def test_extend_without_new_steps_is_free(trl_prm):
    scorer = IncrementalPRMScorer(trl_prm)
    (a,), _ = scorer.extend([(scorer.root(PROMPT), ["One 1."])])
    (same,), cost = scorer.extend([(a, [])])
    assert same is a and cost.prm_tokens == 0 and cost.prm_forward_passes == 0


def test_kv_mode_refused_for_implicit_head(smol_tokenizer):
    spec = PRMSpec.from_format("trl", head="implicit")
    prm = PRM(spec=spec, tokenizer=smol_tokenizer, model=build_tiny_lm(len(smol_tokenizer)))
    assert IncrementalPRMScorer(prm).mode == "recompute"
    with pytest.raises(ConfigError, match="KV-cache scoring is not available"):
        IncrementalPRMScorer(prm, mode="kv")
    with pytest.raises(ConfigError, match="unknown incremental scoring mode"):
        IncrementalPRMScorer(prm, mode="fast")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("method", ["beam", "dvts", "greedy"])
def test_search_accounting_adds_up_and_budget_holds(method, policy, trl_prm):
    gen = CountingGenerator(policy)
    scorer = IncrementalPRMScorer(trl_prm)
    result = run(method, gen, scorer, n=6, m=3, k=3)
    record = result.record
    assert record is not None and isinstance(record, ScoredTrace)
    compute = record.meta["compute"]
    # the record's policy counts are exactly the generator's own Completion counts, summed
    assert compute["policy_prompt_tokens"] == gen.prompt_tokens
    assert compute["policy_completion_tokens"] == gen.completion_tokens
    assert compute["policy_completions"] == gen.completions
    assert compute["generator_calls"] == len(gen.calls)
    assert 0 < compute["policy_prompt_tokens_prefix_cached"] <= compute["policy_prompt_tokens"]
    assert compute["prm_tokens"] > 0 and compute["prm_forward_passes"] > 0
    assert gen.calls, "the search made no generator call"
    if method == "beam":
        # N = 6 continuations each round: 6 first steps, then <= N/M = 2 kept beams refilled
        assert gen.calls[0] == (1, 6, "step")
        rounds = result.stats["rounds"]
        assert gen.completions == 6 * rounds and len(gen.calls) <= 2 * rounds
        for prefixes, _, _ in gen.calls[1:]:
            assert prefixes <= 2
    else:
        width, subtrees = 3, (2 if method == "dvts" else 1)
        for prefixes, n, _ in gen.calls:
            assert n == width and 1 <= prefixes <= subtrees
    # "step" calls, then "solution" calls in the last round (if the search got there)
    stops = [stop for _, _, stop in gen.calls]
    assert stops == sorted(stops, key=lambda stop: stop == "solution")
    assert ("solution" in stops) == (result.stats["rounds"] == SEARCH["max_steps"])
    # selection: the best candidate, its scores a one-pass re-score of its steps
    assert record.meta["search_score"] == max(b.score for b in result.candidates)
    assert set(record.meta["selection"]) == {"naive", "weighted", "majority"}
    rescored = PRMScorer(trl_prm).score([record])[0]
    assert record.step_scores == pytest.approx(rescored, abs=1e-5)
    groups = {b.group for b in result.candidates}
    assert len(groups) <= (2 if method == "dvts" else 1)
    json.dumps(record.to_dict())  # JSON-ready


def test_search_is_deterministic_for_a_seed(policy, trl_prm):
    scorer = IncrementalPRMScorer(trl_prm)
    a = run("beam", policy, scorer, n=4, m=2).record
    b = run("beam", policy, scorer, n=4, m=2).record
    c = run(
        "beam",
        policy,
        scorer,
        n=4,
        m=2,
        sampling=SamplingParams(temperature=0.8, max_new_tokens=24, seed=99),
    ).record
    assert a is not None and b is not None and c is not None
    assert a.to_dict() == b.to_dict()
    assert (a.steps, a.meta["compute"]) != (c.steps, c.meta["compute"])


def test_search_prm_counts_equal_per_round_sums(policy, trl_prm):
    """prm_steps_scored counts each new step once: no prefix step is scored again."""
    scorer = IncrementalPRMScorer(trl_prm, mode="kv")
    result = run("dvts", policy, scorer, n=4, m=2)
    compute = result.compute
    # every child adds >= 1 step and is scored once; children <= completions
    assert compute.prm_steps_scored > 0
    assert compute.prm_forward_passes <= 2 * compute.generator_calls * 2  # shared + tails per group


def test_search_rejects_bad_settings():
    with pytest.raises(ConfigError, match="multiple of the beam width"):
        SearchConfig(method="beam", n=6, m=4)
    with pytest.raises(ConfigError, match="multiple of the beam width"):
        SearchConfig(method="dvts", n=2, m=3)
    SearchConfig(method="greedy", n=6, m=4)  # greedy reads k only
    with pytest.raises(ConfigError, match="multiple of the beam width"):
        check_budget(2, 0)
    with pytest.raises(ConfigError, match="unknown choice for 'aggregation'"):
        SearchConfig(method="greedy", k=2, aggregation="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'max_steps' out of range"):
        SearchConfig(method="dvts", n=2, m=1, max_steps=0)
    with pytest.raises(ConfigError, match="'k' out of range"):
        SearchConfig(method="greedy", k=0)
    with pytest.raises(ConfigError, match="unknown choice for 'cut_steps'"):
        SearchConfig(n=2, m=1, cut_steps="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a sampling seed"):
        SearchConfig(sampling=SamplingParams(seed=None))
    with pytest.raises(ConfigError, match="past the end of a solution"):
        SearchConfig(sampling=SamplingParams(ignore_eos=True))


def test_search_needs_an_aggregation_without_a_prm_spec(policy, trl_prm):
    class Bare:  # an IncrementalScorer that is not a prmkit PRM: no spec to take the default from
        name = "bare"

        def __init__(self) -> None:
            self.inner = IncrementalPRMScorer(trl_prm)
            self.root, self.extend = self.inner.root, self.inner.extend

    with pytest.raises(ConfigError, match="no aggregation for this scorer"):
        search([problem()], policy, Bare(), SearchConfig(method="greedy", k=2, **SEARCH))
    result = run("greedy", policy, Bare(), k=2, max_steps=1, aggregation="min")
    assert result.record is not None and result.record.meta["aggregation"] == "min"
    spec_default = run("greedy", policy, IncrementalPRMScorer(trl_prm), k=2, max_steps=1)
    assert spec_default.record.meta["aggregation"] == trl_prm.spec.aggregation


# ----------------------------------------------------------------------------- best-of-N


def test_matched_best_of_n_stays_within_the_budget(policy, trl_prm):
    arith = arithmetic_problems(1, seed=0, min_steps=2, max_steps=2)[0]
    gen = CountingGenerator(policy)
    scorer = IncrementalPRMScorer(trl_prm)
    budget = 60
    bon = matched_best_of_n(arith, gen, scorer, budget, max_new_tokens=24, seed=1, first_chunk=2)
    assert bon.n >= 1 and bon.tokens == bon.compute.policy_completion_tokens
    assert bon.tokens <= budget or bon.n == 1
    assert bon.compute.policy_completions == bon.n
    assert gen.completions == bon.n + bon.discarded
    for t in bon.traces:
        assert isinstance(t.meta["correct"], bool)
        assert t.step_scores == pytest.approx(PRMScorer(trl_prm).score([t])[0], abs=1e-5)
    if bon.traces:
        best = max(bon.traces, key=lambda t: min(t.step_scores))
        assert bon.traces[bon.prm_pick].step_scores == best.step_scores


def test_compare_writes_both_accuracies(policy, trl_prm, tmp_path):
    from prmkit.search import compare_with_best_of_n

    problems = arithmetic_problems(2, seed=0, min_steps=2, max_steps=2)
    scorer = IncrementalPRMScorer(trl_prm)
    cfg = SearchConfig(method="greedy", k=2, **SEARCH)  # type: ignore[arg-type]
    result, records, _bon = compare_with_best_of_n(
        problems,
        policy,
        scorer,
        lambda p: search([p], policy, scorer, cfg)[0],
        method="greedy",
        max_new_tokens=24,
    )
    assert result["benchmark"] == "search_vs_bon" and result["n_problems"] == 2
    assert 0 <= result["search"]["accuracy"] <= 100
    assert 0 <= result["best_of_n"]["accuracy_prm"] <= 100
    assert (
        result["budget"]["search_tokens"]
        == sum(r.meta["compute"]["policy_completion_tokens"] for r in records)
        or len(records) < 2
    )
    for row in result["problems"]:
        assert row["bon_tokens"] <= row["search_tokens"] or row["bon_n"] == 1
    assert all(isinstance(r.meta["correct"], bool) for r in records)
    json.dumps(result)


# ----------------------------------------------------------------------------- CLI


def test_cli_search_and_compare(tmp_path, tiny_model_dir, trl_prm):
    from prmkit.cli import main
    from prmkit.prm.checkpoint import save_prm
    from prmkit.records import read_records, write_records

    ckpt = save_prm(trl_prm, tmp_path / "prm")
    probs = tmp_path / "problems.jsonl"
    write_records(probs, arithmetic_problems(2, seed=0, min_steps=2, max_steps=2))
    out, cmp_out = tmp_path / "dvts.jsonl", tmp_path / "cmp.json"
    code = main(
        [
            "search", "--method", "dvts", "--problems", str(probs), "--prm", str(ckpt),
            "--policy", str(tiny_model_dir), "--out", str(out), "--compare-bon",
            "--compare-out", str(cmp_out), "n=2", "m=2", "max_steps=2", "step_tokens=8",
            "sampling.max_new_tokens=8", "bon_max_n=4",
        ]
    )  # fmt: skip
    assert code == 0
    records = read_records(out, ScoredTrace)
    assert all(r.meta["method"] == "dvts" and "compute" in r.meta for r in records)
    result = json.loads(cmp_out.read_text())
    assert result["method"] == "dvts" and result["settings"]["n"] == 2
    assert {"accuracy", "accuracy_weighted", "accuracy_majority"} <= set(result["search"])
    assert {"accuracy_prm", "accuracy_weighted", "accuracy_majority"} <= set(result["best_of_n"])
    assert all("correct_weighted" in r.meta and "selection" in r.meta for r in records)
    assert main(["search", "--method", "beam", "--problems", str(probs), "--prm", str(ckpt),
                 "n=3", "m=2"]) == 1  # fmt: skip


def test_search_config_fields_have_help():
    for f in dataclasses.fields(SearchConfig):
        assert f.metadata.get("help"), f.name


def test_search_help_lists_every_key_and_the_shortcuts(capsys):
    from prmkit.cli import main

    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = capsys.readouterr().out
    for key in ("policy.model", "policy.adapter", "sampling.temperature", "sampling.seed", "n"):
        assert f"  {key} (" in text
    for flag in ("--method", "--preset", "--problems", "--prm", "--policy", "--out"):
        assert flag in text
    assert "--compare-bon" in text and "--compare-out" in text
