"""A real trl 1.13 GRPOTrainer trains a tiny policy for 3 steps with PRMReward as its reward.

The policy is a tiny random Llama over the SmolLM2 vocabulary, nudged toward digits, "=" and
newlines so that its completions have several steps; the PRM is a tiny random token-classifier.
"""

from __future__ import annotations

import math

import pytest
import torch

from prmkit.prm import PRMSpec
from prmkit.prm.heads import PRM
from prmkit.rewards.trl import PRMReward
from prmkit.score import PRMScorer, aggregate, text_trace
from prmkit.testing import build_tiny_lm, build_tiny_tokcls

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]

FAVOURED = ["1", "2", "3", "Ġ=", "Ġ+", ".", "Ġ", "Ċ", "ĊĊ"]
STEPS, PROMPTS, GENERATIONS, MAX_TOKENS = 3, 2, 2, 16


class Recorder:
    """Wraps the reward function to keep every call's arguments and result."""

    def __init__(self, reward: PRMReward) -> None:
        self.reward = reward
        self.__name__ = reward.__name__
        self.calls: list[dict] = []

    def __call__(self, prompts, completions, **kwargs):
        out = self.reward(prompts=prompts, completions=completions, **kwargs)
        self.calls.append({"prompts": prompts, "completions": completions, "out": out, **kwargs})
        return out


def test_grpo_trains_with_the_prm_reward(smol_tokenizer, tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    tok = smol_tokenizer
    policy = build_tiny_lm(len(tok), seed=3)
    bias = torch.zeros(len(tok))
    bias[tok.convert_tokens_to_ids(FAVOURED)] = 9.0
    policy.lm_head.register_forward_hook(lambda _m, _i, out: out + bias)

    spec = PRMSpec.from_format("trl", head="tokcls", segmentation="single_newline")
    scorer = PRMScorer(PRM(spec=spec, tokenizer=tok, model=build_tiny_tokcls(len(tok), seed=0)))
    reward = Recorder(PRMReward(scorer, prompt_key="question"))

    questions = ["2+3?", "1+2?", "3+3?", "2+2?"]
    data = Dataset.from_dict(
        {"prompt": [f"Question: {q}\nAnswer:" for q in questions], "question": questions}
    )
    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to=[],
        max_completion_length=MAX_TOKENS,
        num_generations=GENERATIONS,
        per_device_train_batch_size=PROMPTS * GENERATIONS,
        max_steps=STEPS,
        logging_steps=1,
        save_strategy="no",
        learning_rate=1e-4,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=args,
        train_dataset=data,
        processing_class=tok,
    )
    trainer.train()

    assert trainer.state.global_step == STEPS
    assert len(reward.calls) == STEPS  # one generation batch per optimizer step
    n = PROMPTS * GENERATIONS
    for call in reward.calls:
        assert len(call["prompts"]) == len(call["completions"]) == len(call["out"]) == n
        assert len(call["question"]) == n and len(call["completion_ids"]) == n
        assert all(1 <= len(ids) <= MAX_TOKENS for ids in call["completion_ids"])
        assert all(isinstance(c, str) for c in call["completions"])
        assert call["trainer_state"] is trainer.state
        # each prompt's generations are adjacent, and the PRM read the raw question
        assert call["question"][0] == call["question"][1] != call["question"][2]
        for q, c, r in zip(call["question"], call["completions"], call["out"], strict=True):
            if not c.strip():
                assert r is None
                continue
            (steps,) = scorer.score([text_trace(spec, q, c)])
            assert r == pytest.approx(aggregate(steps, "min"), abs=1e-5)
    assert sum(
        len(text_trace(spec, "q", c).steps) > 1
        for c in reward.calls[-1]["completions"]
        if c.strip()
    )

    # what TRL logged is what the reward function returned
    logged = [h for h in trainer.state.log_history if f"rewards/{reward.__name__}/mean" in h]
    assert len(logged) == STEPS
    for h, call in zip(logged, reward.calls, strict=True):
        values = [r for r in call["out"] if r is not None]
        assert h[f"rewards/{reward.__name__}/mean"] == pytest.approx(sum(values) / len(values))
        assert h[f"{reward.__name__}/abstained"] == pytest.approx(
            call["out"].count(None) / len(call["out"])
        )
    last = list(trainer._logs["rewards"][reward.__name__])
    assert len(last) == n
    for got, want in zip(last, reward.calls[-1]["out"], strict=True):
        assert math.isnan(got) if want is None else got == pytest.approx(want)
