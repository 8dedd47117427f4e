"""prmkit.rewards.trl: PRMReward with TRL's reward-function contract (trl 1.13.0)."""

from __future__ import annotations

import asyncio
import inspect
import math
import subprocess
import sys

import pytest
import torch

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm import PRMSpec
from prmkit.prm.heads import PRM
from prmkit.rewards.trl import PRMReward, async_prm_reward
from prmkit.score import PRMScorer, aggregate, text_trace
from prmkit.testing import build_tiny_tokcls

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = PRMSpec.from_format("trl", head="tokcls")


class NumberScorer:
    """Scores each step with the number it is ("0.9" -> 0.9); records every call."""

    def __init__(self, spec: PRMSpec = SPEC) -> None:
        self.spec = spec
        self.calls: list[list] = []

    def score(self, traces):
        self.calls.append(list(traces))
        return [[float(s) for s in t.steps] for t in traces]


class AsyncNumberScorer(NumberScorer):
    async def ascore(self, traces):
        await asyncio.sleep(0)
        return self.score(traces)


@pytest.fixture(scope="module")
def prm_scorer(smol_tokenizer) -> PRMScorer:
    prm = PRM(spec=SPEC, tokenizer=smol_tokenizer, model=build_tiny_tokcls(len(smol_tokenizer)))
    return PRMScorer(prm)


@pytest.mark.parametrize(
    ("how", "expected"),
    [("min", 0.5), ("mean", 2.2 / 3), ("last", 0.8), ("prod", 0.9 * 0.5 * 0.8)],
)
def test_each_completion_gets_its_aggregated_step_scores(how, expected):
    reward = PRMReward(NumberScorer(), aggregation=how)
    out = reward(prompts=["q", "q"], completions=["0.9\n\n0.5\n\n0.8", "0.25"])
    assert out[0] == pytest.approx(expected) and out[1] == pytest.approx(0.25)
    assert reward.__name__ == f"prm_{how}"


def test_one_scorer_call_per_batch_with_steps_split_by_the_spec():
    scorer = NumberScorer(SPEC.replace(segmentation="single_newline"))
    reward = PRMReward(scorer, name="prm")
    out = reward(
        prompts=["2+3?", "4+4?", "1+1?"],
        completions=["0.5\n0.7", "0.1\n\n0.2", "0.3"],
        completion_ids=[[1], [2], [3]],
        trainer_state=None,
    )
    assert len(scorer.calls) == 1
    assert [t.steps for t in scorer.calls[0]] == [["0.5", "0.7"], ["0.1", "0.2"], ["0.3"]]
    assert [t.prompt for t in scorer.calls[0]] == ["2+3?", "4+4?", "1+1?"]
    assert out == pytest.approx([0.5, 0.1, 0.3])
    assert reward.__name__ == "prm" and reward.calls == 1


def test_a_completion_without_steps_abstains_and_is_counted():
    scorer = NumberScorer()
    reward = PRMReward(scorer)
    logged = []
    out = reward(
        prompts=["a", "b", "c"],
        completions=["0.4", "", "  \n\n "],
        log_metric=lambda name, value: logged.append((name, value)),
    )
    assert out[0] == pytest.approx(0.4) and out[1] is None and out[2] is None
    assert [t.id for t in scorer.calls[0]] == ["c0"]  # only the completion with a step
    assert reward.abstained == 2 and logged == [("prm_min/abstained", pytest.approx(2 / 3))]
    assert reward(prompts=["a"], completions=[""]) == [None]
    assert len(scorer.calls) == 1  # nothing to score: no scorer call


def test_conversational_input_reads_the_user_message_and_the_assistant_text():
    scorer = NumberScorer()
    reward = PRMReward(scorer, aggregation="mean")
    prompts = [
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+3?"}],
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q2"}]}],
    ]
    completions = [
        [{"role": "assistant", "content": "0.2\n\n0.4"}],
        [
            {"role": "assistant", "content": None, "tool_calls": [{"name": "calc"}]},
            {"role": "tool", "content": "42"},
            {"role": "assistant", "content": [{"type": "text", "text": "0.6"}]},
        ],
    ]
    out = reward(prompts=prompts, completions=completions)
    assert out == pytest.approx([0.3, 0.6])
    traces = scorer.calls[0]
    assert [t.prompt for t in traces] == ["2+3?", "Q2"]
    assert [t.steps for t in traces] == [["0.2", "0.4"], ["0.6"]]


def test_prompt_key_reads_the_problem_from_a_dataset_column():
    scorer = NumberScorer()
    reward = PRMReward(scorer, prompt_key="question")
    reward(prompts=["Solve: 2+3? Think step by step."], completions=["0.5"], question=["2+3?"])
    assert scorer.calls[0][0].prompt == "2+3?"
    with pytest.raises(ConfigError, match="prompt_key 'question' is not a dataset column"):
        reward(prompts=["p"], completions=["0.5"], answer=["5"], trainer_state=None)


def test_errors_are_typed_and_scores_are_never_made_up():
    with pytest.raises(ConfigError, match="unknown aggregation"):
        PRMReward(NumberScorer(), aggregation="median")
    with pytest.raises(ConfigError, match="no PRM spec"):
        PRMReward(object())
    reward = PRMReward(NumberScorer())
    with pytest.raises(DataFormatError, match="differ in length"):
        reward(prompts=["a", "b"], completions=["0.5"])
    with pytest.raises(DataFormatError, match="not a list of chat messages"):
        reward(prompts=[[{"content": "no role"}]], completions=["0.5"])
    with pytest.raises(DataFormatError, match="no user message"):
        reward(prompts=[[{"role": "system", "content": "s"}]], completions=["0.5"])

    class Short(NumberScorer):
        def score(self, traces):
            return [[0.5] for _ in traces]  # one score for a two-step trace

    with pytest.raises(DataFormatError, match="1 step scores for a trace of 2 steps"):
        PRMReward(Short())(prompts=["a"], completions=["0.1\n\n0.2"])

    class Broken(NumberScorer):
        def score(self, traces):
            raise DataFormatError("1 step(s) fall beyond max_length")

    with pytest.raises(DataFormatError, match="max_length"):
        PRMReward(Broken())(prompts=["a"], completions=["0.1"])


def test_a_real_prm_scorer_gives_the_scores_of_its_own_text_traces(prm_scorer):
    reward = PRMReward(prm_scorer, aggregation="last")
    completions = ["2 + 3 = 5.\n\nSo the answer is 5.", "4 + 4 = 8."]
    out = reward(prompts=["2+3?", "4+4?"], completions=completions)
    expected = prm_scorer.score(
        [text_trace(SPEC, p, c) for p, c in zip(["2+3?", "4+4?"], completions, strict=True)]
    )
    assert out == pytest.approx([aggregate(s, "last") for s in expected], abs=1e-6)
    assert all(0.0 < x < 1.0 for x in out)


def test_trl_logs_the_reward_under_its_name():
    from trl.trainer.utils import get_callable_name

    assert get_callable_name(PRMReward(NumberScorer(), aggregation="mean")) == "prm_mean"
    assert not inspect.iscoroutinefunction(PRMReward(NumberScorer()))


def test_async_reward_is_a_coroutine_function_with_the_sync_results():
    from trl.trainer.utils import get_callable_name

    scorer = AsyncNumberScorer()
    reward = async_prm_reward(scorer, aggregation="mean", name="prm_http")
    assert inspect.iscoroutinefunction(reward)  # what GRPOTrainer checks to await it
    assert get_callable_name(reward) == "prm_http"
    completions = ["0.2\n\n0.4", " ", "0.9"]
    out = asyncio.run(reward(prompts=["a", "b", "c"], completions=completions))
    assert out == PRMReward(NumberScorer(), aggregation="mean")(
        prompts=["a", "b", "c"], completions=completions
    )
    assert out[1] is None and reward.reward.abstained == 1
    with pytest.raises(ConfigError, match="no async ascore"):
        async_prm_reward(NumberScorer())


def test_the_package_imports_without_trl_or_verl():
    code = (
        "import sys, prmkit.rewards, prmkit.rewards.trl, prmkit.rewards.verl, "
        "prmkit.rewards.prof, prmkit.rewards.prime\n"
        "assert 'trl' not in sys.modules and 'verl' not in sys.modules, sorted(sys.modules)\n"
        "assert prmkit.rewards.PRMReward is prmkit.rewards.trl.PRMReward"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_none_becomes_nan_in_trl_so_the_mean_skips_it():
    """What TRL 1.13 does with our None: NaN, left out of nanmean (not a 0 reward)."""
    out = PRMReward(NumberScorer())(prompts=["a", "b"], completions=["0.5", ""])
    as_trl = torch.tensor([r if r is not None else torch.nan for r in out])
    assert math.isnan(as_trl[1]) and torch.nanmean(as_trl).item() == pytest.approx(0.5)
