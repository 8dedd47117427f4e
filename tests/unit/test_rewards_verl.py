"""prmkit.rewards.verl and .verl_manager against a copy of veRL v0.9.0's interface.

veRL cannot be installed here: the copy is tests/unit/test_rewards_verl_interface.py (taken
from verl-project/verl tag v0.9.0, commit 483b8a0), installed under veRL's module names.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest
import torch
from test_rewards_verl_interface import (
    compute_rm_score,
    custom_reward_fn,
    installed_verl,
    load_reward_manager,
    make_batch,
    streaming_rm_scores,
)

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm import PRMSpec
from prmkit.rewards.align import place_at_tokens, step_token_ends
from prmkit.rewards.verl import (
    compute_score,
    dense_step_rewards,
    make_async_compute_score,
    make_compute_score,
)
from prmkit.score import PRMScorer, aggregate, text_trace
from prmkit.steps import split

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = PRMSpec.from_format("trl", head="tokcls")
RESPONSE = "Step 1: 2 + 3 = 5.\n\nStep 2: So the answer is 5."
QUESTION = "What is 2 + 3?"


class NumberScorer:
    """Scores each step with the number after its last space ("Step 1: 0.9" -> 0.9)."""

    def __init__(self, spec: PRMSpec = SPEC) -> None:
        self.spec = spec
        self.calls: list[list] = []

    def score(self, traces):
        self.calls.append(list(traces))
        return [[float(s.rsplit(" ", 1)[-1].rstrip(".")) for s in t.steps] for t in traces]


class AsyncNumberScorer(NumberScorer):
    async def ascore(self, traces):
        await asyncio.sleep(0)
        return self.score(traces)


@pytest.fixture(scope="module")
def checkpoint(tiny_model_dir, tmp_path_factory):
    """A tiny tokcls PRM saved as a prmkit checkpoint."""
    from prmkit.prm.checkpoint import save_prm
    from prmkit.train.loop import build_prm

    prm = build_prm(SPEC, str(tiny_model_dir), seed=2)
    return save_prm(prm, tmp_path_factory.mktemp("prm") / "ckpt")


@pytest.fixture(scope="module")
def prm_scorer(checkpoint) -> PRMScorer:
    return PRMScorer.from_checkpoint(str(checkpoint))


def ids_of(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


# --------------------------------------------------------------- the custom reward function


def test_compute_score_is_the_aggregated_prm_score_of_the_response():
    scorer = NumberScorer()
    fn = make_compute_score(scorer, aggregation="mean")
    out = fn("gsm8k", "Step 1: 0.2\n\nStep 2: 0.6", "5", {"question": QUESTION, "index": 3})
    assert out == {"score": pytest.approx(0.4), "prm_steps": 2}
    assert scorer.calls[0][0].prompt == QUESTION
    # veRL merges reward_kwargs into the call; its own keyword arguments are accepted
    wrapped = custom_reward_fn(fn, {})
    out = wrapped(
        data_source="gsm8k",
        solution_str="Step 1: 0.3",
        ground_truth="5",
        extra_info={"question": QUESTION},
        reward_router_address="127.0.0.1:9",
        reward_model_tokenizer=None,
    )
    assert out["score"] == pytest.approx(0.3)


def test_compute_score_refuses_what_it_cannot_score():
    fn = make_compute_score(NumberScorer())
    with pytest.raises(DataFormatError, match="extra_info has no 'question'"):
        fn("gsm8k", "Step 1: 0.2", "5", {"index": 1})
    with pytest.raises(DataFormatError, match="no step to score"):
        fn("gsm8k", " \n", "5", {"question": QUESTION})
    assert make_compute_score(NumberScorer(), empty_score=0.0)(
        "gsm8k", "", "5", {"question": QUESTION}
    ) == {"score": 0.0, "prm_steps": 0}
    with pytest.raises(ConfigError, match="unknown reward kwargs"):
        custom_reward_fn(fn, {"aggregate": "min"})("s", "Step 1: 0.2", "5", {"question": "q"})
    with pytest.raises(ConfigError, match="unknown aggregation"):
        make_compute_score(NumberScorer(), aggregation="max")


def test_async_compute_score_is_awaited_by_verl():
    fn = make_async_compute_score(AsyncNumberScorer(), aggregation="min")
    assert inspect.iscoroutinefunction(fn)  # veRL's check before awaiting it
    wrapped = custom_reward_fn(fn, {})
    out = asyncio.run(wrapped("s", "Step 1: 0.7\n\nStep 2: 0.4", "5", {"question": "q"}))
    assert out == {"score": pytest.approx(0.4), "prm_steps": 2}
    with pytest.raises(ConfigError, match="no async ascore"):
        make_async_compute_score(NumberScorer())


def test_module_compute_score_is_configured_by_reward_kwargs(checkpoint, prm_scorer):
    fn = custom_reward_fn(compute_score, {"prm": str(checkpoint), "aggregation": "last"})
    out = fn("gsm8k", RESPONSE, "5", {"question": QUESTION})
    (steps,) = prm_scorer.score([text_trace(SPEC, QUESTION, RESPONSE)])
    assert out == {"score": pytest.approx(aggregate(steps, "last"), abs=1e-6), "prm_steps": 2}
    with pytest.raises(ConfigError, match="no PRM checkpoint"):
        compute_score("gsm8k", RESPONSE, "5", {"question": QUESTION})


# --------------------------------------------------------------- step ends in tokens


def test_step_ends_are_the_tokens_that_end_each_step(smol_tokenizer):
    tok = smol_tokenizer
    ids = ids_of(tok, RESPONSE)
    tokens = tok.convert_ids_to_tokens(ids)
    seg = split(RESPONSE)
    ends = step_token_ends(tok, ids, seg.spans)
    assert ends == [12, 25] and [tokens[e] for e in ends] == [".", "."]
    assert tokens[-1] == tok.eos_token  # EOS is never a step's end


def test_step_ends_of_a_non_canonical_tokenization(smol_tokenizer):
    """Sampled ids the tokenizer would not produce: found by decoding prefixes instead."""
    tok = smol_tokenizer
    ids = ids_of(tok, RESPONSE)
    answer = tok.convert_tokens_to_ids("Ġanswer")
    pieces = tok.convert_tokens_to_ids(["Ġans", "wer"])
    at = ids.index(answer)
    odd = ids[:at] + pieces + ids[at + 1 :]
    assert tok.decode(odd, skip_special_tokens=True) == RESPONSE
    assert tok(RESPONSE, add_special_tokens=False)["input_ids"] != odd[:-1]
    ends = step_token_ends(tok, odd, split(RESPONSE).spans)
    assert ends == [12, 26] and tok.convert_ids_to_tokens(odd)[26] == "."


def test_steps_that_end_inside_one_token_share_it(smol_tokenizer):
    """A boundary inside a token ("Ġanswer" split by the regex "s"): both steps end there."""
    tok = smol_tokenizer
    text = "So the answer"
    ids = ids_of(tok, text)
    assert tok.convert_ids_to_tokens(ids)[:3] == ["So", "Ġthe", "Ġanswer"]
    seg = split(text, "regex", pattern="s")
    assert seg.steps == ["So the an", "wer"]
    ends = step_token_ends(tok, ids, seg.spans)
    assert ends == [2, 2]
    assert place_at_tokens(len(ids), ends, [0.5, 0.25]) == [0.0, 0.0, 0.75, 0.0]


def test_place_at_tokens_keeps_the_sum():
    assert place_at_tokens(5, [1, 4], [0.5, 0.25]) == [0.0, 0.5, 0.0, 0.0, 0.25]
    assert place_at_tokens(3, [2, 2], [0.5, 0.25]) == [0.0, 0.0, 0.75]
    with pytest.raises(DataFormatError, match="outside the response"):
        place_at_tokens(3, [3], [1.0])
    with pytest.raises(DataFormatError, match="differ in length"):
        place_at_tokens(3, [0, 1], [1.0])


def test_dense_step_rewards_put_each_step_score_on_its_last_token(smol_tokenizer, prm_scorer):
    ids = ids_of(smol_tokenizer, RESPONSE)
    dense = dense_step_rewards(prm_scorer, smol_tokenizer, QUESTION, ids)
    (steps,) = prm_scorer.score([text_trace(SPEC, QUESTION, RESPONSE)])
    assert dense.step_ends == [12, 25] and dense.step_scores == pytest.approx(steps, abs=1e-6)
    assert len(dense.rewards) == len(ids)
    assert [i for i, r in enumerate(dense.rewards) if r] == [12, 25]
    assert sum(dense.rewards) == pytest.approx(sum(steps), abs=1e-6)
    empty = dense_step_rewards(prm_scorer, smol_tokenizer, QUESTION, [smol_tokenizer.eos_token_id])
    assert empty.rewards == [0.0] and empty.step_scores == []


# --------------------------------------------------------------- the reward manager


def outcome(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """A rule-based outcome reward as veRL's custom reward function gives it."""
    return {"score": float(solution_str.strip().endswith(ground_truth)), "format": 1.0}


def config(**prm) -> dict:
    """veRL's config with the colocated reward model on (the path dense rewards need)."""
    model = {"enable": True, "enable_resource_pool": False}
    return {"reward": {"reward_kwargs": {"prm": prm}, "reward_model": model}}


def rollout(tok, responses: list[str]):
    prompts = [tok(f"Question: {q}", add_special_tokens=False)["input_ids"] for q in "abc"]
    resp = [ids_of(tok, r) for r in responses]
    data = make_batch(
        prompts[: len(resp)],
        resp,
        tok.pad_token_id,
        data_source=["gsm8k"] * len(resp),
        reward_model=[{"ground_truth": "5."}] * len(resp),
        extra_info=[{"question": QUESTION, "index": i} for i in range(len(resp))],
    )
    return data, resp


RESPONSES = [RESPONSE, "Step 1: 2 + 3 = 6.", "  "]


def test_manager_places_step_scores_and_the_outcome(smol_tokenizer, checkpoint, prm_scorer):
    tok = smol_tokenizer
    with installed_verl():
        from prmkit.rewards.verl_manager import PRMStepRewardManager

        data, resp = rollout(tok, RESPONSES)

        async def build():
            return load_reward_manager(
                PRMStepRewardManager,
                config(path=str(checkpoint), coef=0.5),
                tok,
                custom_reward_fn(outcome, {}),
                reward_router_address=None,
                reward_model_tokenizer=None,
            )

        manager = asyncio.run(build())
        out = compute_rm_score(manager, data)
    rm = out.batch["rm_scores"]
    assert rm.shape == data.batch["responses"].shape and rm.dtype == torch.float32
    (s0, s1) = prm_scorer.score([text_trace(SPEC, QUESTION, r) for r in RESPONSES[:2]])
    row0 = torch.zeros(rm.shape[1])
    row0[12], row0[25] = 0.5 * s0[0], 0.5 * s0[1]
    row0[len(resp[0]) - 1] += 1.0  # the outcome ("... is 5.") on the last token (EOS)
    torch.testing.assert_close(rm[0], row0, atol=1e-6, rtol=0)
    end = tok.convert_ids_to_tokens(resp[1]).index(".")
    assert [i for i, v in enumerate(rm[1].tolist()) if v] == [end]  # wrong: no outcome
    assert rm[1, end].item() == pytest.approx(0.5 * s1[0], abs=1e-6)
    assert rm[2].abs().sum() == 0  # no step, wrong outcome
    assert out.non_tensor_batch["prm_steps"].tolist() == [2, 1, 0]
    assert out.non_tensor_batch["score"].tolist() == [1.0, 0.0, 0.0]  # the outcome's own keys
    assert out.non_tensor_batch["prm_sum"].tolist() == pytest.approx(
        [0.5 * sum(s0), 0.5 * s1[0], 0.0], abs=1e-6
    )
    assert manager.batcher.calls == 1  # the concurrent samples were scored in one call


def test_placement_last_is_one_scalar_that_both_verl_paths_accept(smol_tokenizer, checkpoint):
    tok = smol_tokenizer

    seen = []  # the documented hook: any Scorer through build_scorer

    with installed_verl():
        from prmkit.rewards.verl_manager import PRMStepRewardManager

        class WithScorer(PRMStepRewardManager):
            def build_scorer(self, settings):
                seen.append(settings.placement)
                return NumberScorer()

        data, resp = rollout(tok, ["Step 1: 0.25\n\nStep 2: 0.5.", "Step 1: 0.125"])

        async def build(placement):
            return WithScorer(config(placement=placement), tok, outcome)

        last = asyncio.run(build("last"))
        out = compute_rm_score(last, data)
        outputs = asyncio.run(_run_all(last, data))
        dense = asyncio.run(build("dense"))
        dense_outputs = asyncio.run(_run_all(dense, data))
    assert seen == ["last", "dense"]
    scores = [o["reward_score"] for o in outputs]
    assert scores == pytest.approx([0.75 + 1.0, 0.125])  # "...0.5." ends with the answer "5."
    assert [sum(o["reward_score"]) for o in dense_outputs] == pytest.approx(scores)
    rm = out.batch["rm_scores"]
    last_col = [len(r) - 1 for r in resp]
    assert [rm[i, c].item() for i, c in enumerate(last_col)] == pytest.approx(scores)
    torch.testing.assert_close(streaming_rm_scores(data, scores), rm)
    # veRL v0.9.0's streaming path (no reward model) cannot take per-token lists: documented
    with pytest.raises((ValueError, TypeError, RuntimeError)):
        streaming_rm_scores(data, [o["reward_score"] for o in dense_outputs])


async def _run_all(manager, data):
    return await asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(len(data))))


def test_manager_settings_and_errors(smol_tokenizer):
    tok = smol_tokenizer
    with installed_verl():
        from prmkit.rewards.verl_manager import PRMStepRewardManager, StepRewardSettings

        async def build(cfg, fn=outcome):
            return PRMStepRewardManager(cfg, tok, fn)

        with pytest.raises(ConfigError, match=r"unknown keys in reward\.reward_kwargs\.prm"):
            asyncio.run(build(config(path="x", weight=2)))
        with pytest.raises(ConfigError, match="unknown placement"):
            asyncio.run(build(config(path="x", placement="spread")))
        with pytest.raises(ConfigError, match="no PRM checkpoint"):
            asyncio.run(build(config()))
        with pytest.raises(ConfigError, match="no outcome reward function"):
            asyncio.run(build(config(path="x"), fn=None))
        streaming = {"reward": {"reward_kwargs": {"prm": {"path": "x"}}}}
        with pytest.raises(ConfigError, match="dense rewards need veRL's colocated"):
            asyncio.run(build(streaming))
        own_pool = config(path="x")
        own_pool["reward"]["reward_model"]["enable_resource_pool"] = True
        with pytest.raises(ConfigError, match="dense rewards need veRL's colocated"):
            asyncio.run(build(own_pool))
        last = StepRewardSettings.from_config(
            {"reward": {"reward_kwargs": {"prm": {"placement": "last"}}}}
        )
        assert last == StepRewardSettings(placement="last")


def test_a_scorer_error_fails_every_waiting_sample(smol_tokenizer):
    tok = smol_tokenizer

    class Broken(NumberScorer):
        def score(self, traces):
            raise DataFormatError("1 step(s) fall beyond max_length")

    with installed_verl():
        from prmkit.rewards.verl_manager import PRMStepRewardManager

        class WithScorer(PRMStepRewardManager):
            def build_scorer(self, settings):
                return Broken()

        data, _ = rollout(tok, ["Step 1: 0.25", "Step 1: 0.5"])

        async def run():
            manager = WithScorer(config(outcome=False), tok, None)
            return await asyncio.gather(
                *(manager.run_single(data[i : i + 1]) for i in range(2)), return_exceptions=True
            )

        results = asyncio.run(run())
    assert all(isinstance(r, DataFormatError) for r in results)


def test_async_scorer_and_async_outcome(smol_tokenizer):
    tok = smol_tokenizer

    async def async_outcome(data_source, solution_str, ground_truth, extra_info=None):
        return 2.0

    with installed_verl():
        from prmkit.rewards.verl_manager import PRMStepRewardManager

        class WithScorer(PRMStepRewardManager):
            def build_scorer(self, settings):
                return AsyncNumberScorer()

        data, resp = rollout(tok, ["Step 1: 0.25"])

        async def run():
            manager = WithScorer(config(), tok, async_outcome)
            return await manager.run_single(data[0:1])

        out = asyncio.run(run())
    assert sum(out["reward_score"]) == pytest.approx(2.25)
    assert out["reward_score"][-1] == pytest.approx(2.0) and len(out["reward_score"]) == len(
        resp[0]
    )
    assert out["reward_extra_info"]["acc"] == 2.0  # a plain float outcome is logged as veRL does


def test_baseline_and_a_spec_for_a_scorer_without_one(smol_tokenizer, checkpoint):
    tok = smol_tokenizer

    class Specless:  # an HTTP client has no spec: it comes from spec_dir
        def score(self, traces):
            return NumberScorer().score(traces)

    with installed_verl():
        from prmkit.rewards.verl_manager import PRMStepRewardManager

        class WithScorer(PRMStepRewardManager):
            def build_scorer(self, settings):
                return Specless()

        data, _ = rollout(tok, ["Step 1: 0.25\n\nStep 2: 0.75"])

        async def run(**prm):
            manager = WithScorer(config(**prm), tok, None)
            return manager, await manager.run_single(data[0:1])

        with pytest.raises(ConfigError, match="no PRM spec"):
            asyncio.run(run(outcome=False))
        manager, out = asyncio.run(
            run(outcome=False, spec_dir=str(checkpoint), coef=2.0, baseline=0.5)
        )
    assert manager.spec.head == "tokcls"
    assert [r for r in out["reward_score"] if r] == pytest.approx([-0.5, 0.5])
