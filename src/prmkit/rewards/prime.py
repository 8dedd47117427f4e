"""PRIME-style implicit process rewards, and the online update of the implicit PRM.

PRIME (Cui et al. 2025, "Process Reinforcement through Implicit Rewards"; reference code
``PRIME-RL/PRIME`` at commit ``18ad596``, ``training/verl/workers/actor/dp_prime.py``) rewards
every response token with the implicit PRM's log-ratio against a frozen reference::

    r_t = beta * (log pi_rm(y_t | y_<t) - log pi_ref(y_t | y_<t))

and, after each rollout batch, updates the implicit PRM with binary cross-entropy of
``sigmoid(beta * sum_t q_t)`` (``q_t`` the log-ratio) against the outcome label (1 = correct).
Here the PRM is a prmkit ``implicit`` :class:`~prmkit.prm.heads.PRM` (``model`` = pi_rm,
``ref_model`` = pi_ref, ``spec.beta``), and the log-ratios are
:func:`prmkit.prm.heads.token_logratios`, the implicit head's own. The inputs are the policy's
token ids (prompt and response), as in PRIME, not a step-tagged prmkit trace.

Granularity of :func:`implicit_rewards` (PRIME's ``prime_granularity``):

* ``token``: ``r_t`` on every response token.
* ``step`` (prmkit's): each step's sum on the step's last token (``step_ends``, e.g. from
  :func:`prmkit.rewards.align.step_token_ends`); tokens after the last step (EOS) are summed
  onto the last response token, so no token's reward is dropped.
* ``whole``: the response's sum on its last token.

Every granularity has the same per-response sum.

Example:
    >>> prm = build_prm(PRMSpec.from_format("trl", head="implicit"), "smollm2")  # doctest: +SKIP
    >>> rewards = implicit_rewards(prm, prompt_ids, response_ids)  # doctest: +SKIP
    >>> opt = torch.optim.AdamW(prm.model.parameters(), lr=1e-6)  # doctest: +SKIP
    >>> online_update(prm, opt, prompt_ids, response_ids, outcomes=[1, 0])  # doctest: +SKIP
    {'loss': 0.69, 'grad_norm': 0.31}
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.heads import PRM, eval_mode, token_logratios

__all__ = [
    "GRANULARITIES",
    "RolloutBatch",
    "batch_norm",
    "implicit_rewards",
    "online_update",
    "prime_loss",
    "response_log_ratios",
    "rollout_batch",
]

Granularity = Literal["token", "step", "whole"]
GRANULARITIES: tuple[str, ...] = ("token", "step", "whole")


@dataclass(frozen=True)
class RolloutBatch:
    """Prompts and responses as one right-padded model input.

    Attributes:
        input_ids: ``(batch, width)`` prompt then response ids, right-padded.
        attention_mask: ``(batch, width)`` 1 = real token.
        prompt_lengths: Tokens of each row's prompt.
        response_lengths: Tokens of each row's response.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    prompt_lengths: list[int]
    response_lengths: list[int]

    @property
    def response_width(self) -> int:
        return max(self.response_lengths, default=0)

    def response_mask(self) -> torch.Tensor:
        """``(batch, response_width)`` 1 on each row's response tokens."""
        width = self.response_width
        lengths = torch.tensor(self.response_lengths, device=self.input_ids.device)
        return (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]).float()


def rollout_batch(
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device | str = "cpu",
) -> RolloutBatch:
    """Lay ``prompt + response`` rows out right-padded.

    Raises:
        DataFormatError: the counts differ, or a prompt or response is empty.
    """
    if len(prompt_ids) != len(response_ids):
        raise DataFormatError(
            "prompts and responses differ in number",
            got=(len(prompt_ids), len(response_ids)),
            expected="one prompt per response",
            fix="repeat each prompt for each of its responses",
        )
    for i, (p, r) in enumerate(zip(prompt_ids, response_ids, strict=True)):
        if not len(p) or not len(r):
            raise DataFormatError(
                "an empty prompt or response",
                got=(len(p), len(r)),
                expected="at least one token in each",
                fix="drop empty responses before computing rewards",
                where=f"sample {i}",
            )
    rows = [
        [int(t) for t in p] + [int(t) for t in r]
        for p, r in zip(prompt_ids, response_ids, strict=True)
    ]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    return RolloutBatch(
        ids.to(device),
        mask.to(device),
        [len(p) for p in prompt_ids],
        [len(r) for r in response_ids],
    )


def _beta(prm: PRM, beta: float | None) -> float:
    value = prm.spec.beta if beta is None else beta
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(
            "beta is not a positive number",
            got=value,
            expected="a number > 0 (PRIME: 0.05)",
            fix="pass beta=0.05, or leave it to the spec",
        )
    return float(value)


def response_log_ratios(prm: PRM, batch: RolloutBatch) -> torch.Tensor:
    """``(batch, response_width)``: ``log pi_rm(y_t) - log pi_ref(y_t)`` of each response
    token (PRIME's ``q``), zeros after each response. Differentiable in ``prm.model``.

    Raises:
        ConfigError: the PRM is not an ``implicit`` head (it needs a reference model).
    """
    if prm.spec.head != "implicit":
        raise ConfigError(
            "implicit rewards need an implicit PRM",
            got=prm.spec.head,
            expected="a PRM with head 'implicit' (a policy and a frozen reference)",
            fix="build it with build_prm(PRMSpec(..., head='implicit'), base)",
        )
    ratios = token_logratios(prm, batch.input_ids, batch.attention_mask)  # (batch, width)
    width = batch.response_width
    cols = torch.tensor(batch.prompt_lengths, device=ratios.device)[:, None] + torch.arange(
        width, device=ratios.device
    )
    cols = cols.clamp(max=ratios.shape[1] - 1)
    return ratios.gather(1, cols) * batch.response_mask().to(ratios.dtype)


def _check_step_ends(
    step_ends: Sequence[Sequence[int]] | None, lengths: list[int]
) -> list[list[int]]:
    if step_ends is None or len(step_ends) != len(lengths):
        raise DataFormatError(
            "granularity 'step' needs the step ends of every response",
            got=None if step_ends is None else len(step_ends),
            expected=f"{len(lengths)} lists of token indices",
            fix="pass step_ends (e.g. from prmkit.rewards.align.step_token_ends)",
        )
    out = []
    for i, (ends, n) in enumerate(zip(step_ends, lengths, strict=True)):
        ends = [int(e) for e in ends]
        if any(b <= a for a, b in itertools.pairwise(ends)) or any(not 0 <= e < n for e in ends):
            raise DataFormatError(
                "step ends must increase and fall inside the response",
                got=ends,
                expected=f"increasing token indices in [0, {n})",
                fix="pass each step's last response-token index",
                where=f"sample {i}",
            )
        out.append(ends)
    return out


def implicit_rewards(
    prm: PRM,
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    *,
    granularity: Granularity = "token",
    step_ends: Sequence[Sequence[int]] | None = None,
    beta: float | None = None,
) -> torch.Tensor:
    """PRIME's token-level process rewards, ``(batch, response_width)`` on the PRM's device.

    ``r_t = beta * (log pi_rm(y_t|.) - log pi_ref(y_t|.))`` (``beta`` defaults to
    ``prm.spec.beta``), laid out by ``granularity`` (module docstring); zeros after each
    response.

    Raises:
        ConfigError: unknown granularity, bad beta, or not an implicit PRM.
        DataFormatError: ``step`` without valid ``step_ends``.
    """
    if granularity not in GRANULARITIES:
        raise ConfigError(
            "unknown granularity",
            got=granularity,
            expected=f"one of {list(GRANULARITIES)}",
            fix="token (PRIME's default), step or whole",
        )
    b = _beta(prm, beta)
    batch = rollout_batch(prompt_ids, response_ids, prm.pad_id(), prm.device)
    with torch.no_grad(), eval_mode(prm.model):
        r = b * response_log_ratios(prm, batch).float()  # (batch, response_width)
    if granularity == "token":
        return r
    out = torch.zeros_like(r)
    lengths = batch.response_lengths
    if granularity == "whole":
        out[torch.arange(len(lengths)), torch.tensor(lengths) - 1] = r.sum(dim=1)
        return out
    for i, ends in enumerate(_check_step_ends(step_ends, lengths)):
        cum = r[i].cumsum(0)
        last = cum.new_zeros(())  # the sum up to the last step's end (0 before any step)
        if ends:
            e = torch.tensor(ends, device=cum.device)
            v = cum[e]
            out[i, e] = v - torch.cat([v.new_zeros(1), v[:-1]])
            last = v[-1]
        if (ends[-1] if ends else -1) < lengths[i] - 1:
            # the tokens after the last step (EOS) go on the last token
            out[i, lengths[i] - 1] += cum[lengths[i] - 1] - last
    return out


def _outcomes(outcomes: Sequence[float], n: int, device: torch.device) -> torch.Tensor:
    if len(outcomes) != n or any(not 0.0 <= float(o) <= 1.0 for o in outcomes):
        raise DataFormatError(
            "outcome labels must be one number in [0, 1] per response",
            got=list(outcomes)[:8],
            expected=f"{n} labels, 1 = correct",
            fix="pass the verifier's 0/1 result for each response",
        )
    return torch.tensor([float(o) for o in outcomes], device=device)


def prime_loss(
    prm: PRM,
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    outcomes: Sequence[float],
    *,
    beta: float | None = None,
) -> torch.Tensor:
    """PRIME's cross-entropy PRM loss: mean BCE of ``sigmoid(beta * sum_t q_t)`` vs the outcome.

    Computed from the logit (``binary_cross_entropy_with_logits``), the numerically stable form
    of PRIME's ``binary_cross_entropy(sigmoid(.))``. Differentiable in ``prm.model``.
    """
    b = _beta(prm, beta)
    batch = rollout_batch(prompt_ids, response_ids, prm.pad_id(), prm.device)
    target = _outcomes(outcomes, len(response_ids), prm.device)
    logits = b * response_log_ratios(prm, batch).float().sum(dim=1)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, target)


def online_update(
    prm: PRM,
    optimizer: Any,
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    outcomes: Sequence[float],
    *,
    beta: float | None = None,
    micro_batch_size: int | None = None,
    grad_clip: float | None = 1.0,
) -> dict[str, float]:
    """One optimizer step of the implicit PRM on a rollout batch (PRIME's online update).

    Gradients of :func:`prime_loss` are accumulated over micro-batches (weighted by their size,
    so the step is that of the whole batch's mean loss), clipped to ``grad_clip`` and applied.
    The model trains in train mode and goes back to its previous mode after.

    Returns:
        ``{"loss": <batch loss before the step>, "grad_norm": <norm before clipping>}``.

    Raises:
        ConfigError: ``micro_batch_size`` below 1.
    """
    n = len(response_ids)
    size = n if micro_batch_size is None else micro_batch_size
    if size < 1:
        raise ConfigError(
            "micro_batch_size must be at least 1",
            got=micro_batch_size,
            expected="an integer >= 1, or None for the whole batch",
            fix="e.g. micro_batch_size=8",
        )
    params = [p for p in prm.model.parameters() if p.requires_grad]
    was_training = prm.model.training
    prm.model.train()
    try:
        optimizer.zero_grad()
        total = 0.0
        for lo in range(0, n, size):
            hi = min(lo + size, n)
            loss = prime_loss(
                prm, prompt_ids[lo:hi], response_ids[lo:hi], outcomes[lo:hi], beta=beta
            )
            (loss * (hi - lo) / n).backward()
            total += float(loss.detach()) * (hi - lo) / n
        if grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
        else:
            norm = torch.linalg.vector_norm(
                torch.stack([p.grad.detach().norm() for p in params if p.grad is not None])
            )
        optimizer.step()
        optimizer.zero_grad()
    finally:
        prm.model.train(was_training)
    return {"loss": total, "grad_norm": float(norm)}


def batch_norm(rewards: torch.Tensor) -> torch.Tensor:
    """PRIME's ``prime_norm=batch_norm``: token rewards divided by the largest absolute
    return-to-go in the batch (``max |sum_{s>=t} r_s|``), so no return exceeds 1 in size.

    Example:
        >>> batch_norm(torch.tensor([[1.0, -3.0], [2.0, 0.0]]))
        tensor([[ 0.3333, -1.0000],
                [ 0.6667,  0.0000]])
    """
    returns = torch.cumsum(rewards.flip(dims=[1]), dim=-1).flip(dims=[1])
    return rewards / (returns.abs().max() + 1e-6)
