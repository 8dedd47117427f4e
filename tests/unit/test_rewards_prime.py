"""prmkit.rewards.prime: PRIME's implicit token rewards and online PRM update, on tiny models."""

from __future__ import annotations

import pytest
import torch

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm import PRMSpec
from prmkit.rewards.prime import (
    batch_norm,
    implicit_rewards,
    online_update,
    prime_loss,
    rollout_batch,
)

pytestmark = pytest.mark.usefixtures("one_thread")

BETA = 0.05


@pytest.fixture
def prm(tiny_model_dir):
    """An implicit PRM whose policy is moved away from its (frozen) reference."""
    from prmkit.train.loop import build_prm

    prm = build_prm(PRMSpec.from_format("trl", head="implicit"), str(tiny_model_dir), seed=0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in prm.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    return prm


@pytest.fixture(scope="module")
def rollouts(smol_tokenizer):
    tok = smol_tokenizer
    prompts = ["What is 2 + 3?", "Tom has 3 apples and buys 4 more. How many?"]
    responses = ["2 + 3 = 5.\n\nThe answer is 5.", "3 + 4 = 7."]
    p = [tok(x, add_special_tokens=False)["input_ids"] for x in prompts]
    r = [tok(x, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for x in responses]
    return p, r


def hand_log_ratios(prm, prompt_ids, response_ids):
    """log pi(y_t) - log pi_ref(y_t) of each response token, one sequence at a time."""
    out = []
    with torch.no_grad():
        for p, r in zip(prompt_ids, response_ids, strict=True):
            ids = torch.tensor([p + r])
            lp = [
                torch.log_softmax(m(input_ids=ids).logits[0].double(), -1)
                for m in (prm.model, prm.ref_model)
            ]
            rows = torch.arange(len(p) - 1, len(p) + len(r) - 1)
            target = torch.tensor(r)
            out.append(lp[0][rows, target] - lp[1][rows, target])
    return out


def test_token_rewards_are_beta_times_the_hand_computed_log_ratios(prm, rollouts):
    p, r = rollouts
    rewards = implicit_rewards(prm, p, r, beta=BETA)
    assert rewards.shape == (2, max(len(x) for x in r))
    for i, q in enumerate(hand_log_ratios(prm, p, r)):
        assert q.abs().max() > 1e-3  # the policy really differs from the reference
        torch.testing.assert_close(rewards[i, : len(r[i])].double(), BETA * q, atol=1e-5, rtol=1e-4)
        assert rewards[i, len(r[i]) :].abs().sum() == 0
    # beta defaults to the spec's (0.05, as PRIME)
    torch.testing.assert_close(implicit_rewards(prm, p, r), rewards)


def test_step_and_whole_granularity_keep_the_token_sums(prm, rollouts):
    p, r = rollouts
    token = implicit_rewards(prm, p, r)
    whole = implicit_rewards(prm, p, r, granularity="whole")
    ends = [[5, len(r[0]) - 2], [6]]  # the second response: EOS and "." after its one step
    step = implicit_rewards(prm, p, r, granularity="step", step_ends=ends)
    torch.testing.assert_close(whole.sum(1), token.sum(1))
    torch.testing.assert_close(step.sum(1), token.sum(1))
    for i, n in enumerate(len(x) for x in r):
        assert whole[i].nonzero().flatten().tolist() == [n - 1]
    torch.testing.assert_close(step[0, 5], token[0, :6].sum())
    torch.testing.assert_close(step[0, len(r[0]) - 2], token[0, 6 : len(r[0]) - 1].sum())
    torch.testing.assert_close(step[0, len(r[0]) - 1], token[0, len(r[0]) - 1])  # the EOS tail
    torch.testing.assert_close(step[1, 6], token[1, :7].sum())
    torch.testing.assert_close(step[1, len(r[1]) - 1], token[1, 7 : len(r[1])].sum())


def test_prime_loss_is_bce_of_the_summed_log_ratio(prm, rollouts):
    p, r = rollouts
    logits = torch.stack([BETA * q.sum() for q in hand_log_ratios(prm, p, r)]).float()
    target = torch.tensor([1.0, 0.0])
    want = torch.nn.functional.binary_cross_entropy(torch.sigmoid(logits), target)
    got = prime_loss(prm, p, r, [1, 0], beta=BETA)
    assert got.item() == pytest.approx(want.item(), rel=1e-4)


def test_one_online_update_lowers_the_bce_on_its_batch(prm, rollouts):
    p, r = rollouts
    outcomes = [1, 0]
    with torch.no_grad():
        before = prime_loss(prm, p, r, outcomes).item()
    ref_before = [t.clone() for t in prm.ref_model.parameters()]
    prm.model.eval()
    optimizer = torch.optim.Adam(prm.model.parameters(), lr=1e-3)
    stats = online_update(prm, optimizer, p, r, outcomes, micro_batch_size=1)
    with torch.no_grad():
        after = prime_loss(prm, p, r, outcomes).item()
    assert stats["loss"] == pytest.approx(before, rel=1e-4) and stats["grad_norm"] > 0
    assert after < before
    assert not prm.model.training  # its mode is restored
    assert all(
        torch.equal(a, b) for a, b in zip(ref_before, prm.ref_model.parameters(), strict=True)
    )


def test_micro_batches_give_the_whole_batch_gradient(prm, rollouts):
    p, r = rollouts
    grads = []
    for size in (1, None):
        prm.model.zero_grad()
        (
            prime_loss(prm, p, r, [1, 0])
            if size is None
            else sum(prime_loss(prm, p[i : i + 1], r[i : i + 1], [[1, 0][i]]) / 2 for i in range(2))
        ).backward()
        grads.append(prm.model.get_input_embeddings().weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_batch_norm_divides_by_the_largest_return():
    out = batch_norm(torch.tensor([[1.0, -3.0], [2.0, 0.0]]))
    torch.testing.assert_close(out, torch.tensor([[1 / 3, -1.0], [2 / 3, 0.0]]), atol=1e-5, rtol=0)


def test_errors(prm, rollouts, tiny_model_dir):
    from prmkit.train.loop import build_prm

    p, r = rollouts
    with pytest.raises(ConfigError, match="unknown granularity"):
        implicit_rewards(prm, p, r, granularity="sentence")
    with pytest.raises(DataFormatError, match="needs the step ends"):
        implicit_rewards(prm, p, r, granularity="step")
    with pytest.raises(DataFormatError, match="must increase"):
        implicit_rewards(prm, p, r, granularity="step", step_ends=[[3, 3], [1]])
    with pytest.raises(ConfigError, match="beta"):
        implicit_rewards(prm, p, r, beta=0)
    with pytest.raises(DataFormatError, match="outcome labels"):
        prime_loss(prm, p, r, [1, 2])
    with pytest.raises(DataFormatError, match="empty prompt or response"):
        rollout_batch([[1]], [[]], 0)
    with pytest.raises(DataFormatError, match="differ in number"):
        rollout_batch([[1]], [[2], [3]], 0)
    with pytest.raises(ConfigError, match="micro_batch_size"):
        online_update(
            prm, torch.optim.SGD(prm.model.parameters(), lr=0.1), p, r, [1, 0], micro_batch_size=0
        )
    tokcls = build_prm(PRMSpec.from_format("trl", head="tokcls"), str(tiny_model_dir))
    with pytest.raises(ConfigError, match="need an implicit PRM"):
        implicit_rewards(tokcls, p, r)
