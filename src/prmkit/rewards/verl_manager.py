"""A veRL reward manager with dense PRM step rewards: each step's score on the token that ends it.

Needs veRL (imported when this module is); written against veRL v0.9.0's reward loop
(``verl/experimental/reward_loop/reward_manager/base.py`` at tag ``v0.9.0``, commit ``483b8a0``):
``RewardManagerBase.__init__(config, tokenizer, compute_score)``, ``async run_single(data) ->
{"reward_score", "reward_extra_info"}`` and the class method ``assemble_rm_scores(data, scores)``
that turns the per-sample ``reward_score`` values into the ``rm_scores`` tensor. prmkit's tests run
against a copy of that interface (veRL is not installable there); see docs/rewards.md.

veRL config (Hydra overrides)::

    reward.reward_manager.source=importlib
    reward.reward_manager.name=PRMStepRewardManager
    reward.reward_manager.module.path=pkg://prmkit.rewards.verl_manager
    +reward.reward_kwargs.prm.path=/ckpt/prm        # a prmkit checkpoint
    +reward.reward_kwargs.prm.device=cuda           # where the PRM runs in each reward worker
    +reward.reward_kwargs.prm.placement=last        # or dense: see below
    reward.custom_reward_function.path=my_outcome.py   # the outcome reward (see below)

Each response's reward per token is ``coef * (step score - baseline)`` at each step's last
token, plus the outcome reward (``compute_score``, veRL's custom reward function) at the last
token. With ``placement: dense`` the manager returns that per-token list; veRL v0.9.0 only builds
``rm_scores`` through :meth:`PRMStepRewardManager.assemble_rm_scores` on its colocated
reward-model path (``reward.reward_model.enable=True`` without ``enable_resource_pool``); on the
streaming path (no reward model) its agent loop places one scalar per response at the last token,
so use ``placement: last`` (the per-response sum) there; ``dense`` is refused without the
colocated reward model. For GRPO, RLOO and other estimators that sum the token rewards the two
placements train identically.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from verl import DataProto
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.spec import load_spec
from prmkit.records import Trace
from prmkit.rewards.align import place_at_tokens, step_token_ends
from prmkit.rewards.common import check_step_scores, resolve_spec, response_trace
from prmkit.rewards.verl import prompt_of

__all__ = ["PRMStepRewardManager", "StepRewardSettings"]


@dataclass(frozen=True)
class StepRewardSettings:
    """``reward.reward_kwargs.prm`` of the veRL config.

    Attributes:
        path: The prmkit checkpoint directory.
        device: Where the PRM runs in each reward worker.
        batch_size: Traces per PRM forward pass.
        prompt_key: The ``extra_info`` key holding the problem text.
        spec_dir: A directory with the ``prm_spec.json`` that says how responses are split;
            default: the scorer's own spec (a checkpoint's). Needed by a scorer without one (an
            HTTP client returned by an overridden :meth:`PRMStepRewardManager.build_scorer`).
        coef: The weight of the PRM step rewards.
        baseline: Subtracted from each step score before weighting: a step reward is
            ``coef * (score - baseline)`` (``0.5`` makes steps the PRM doubts cost reward, so
            more steps are not simply more reward).
        placement: ``dense`` (each step's score at its last token) or ``last`` (their sum and
            the outcome at the last token, one scalar per response).
        outcome: Add the custom reward function's score at the last token.
    """

    path: str | None = None
    device: str = "cpu"
    batch_size: int = 8
    prompt_key: str = "question"
    spec_dir: str | None = None
    coef: float = 1.0
    baseline: float = 0.0
    placement: str = "dense"
    outcome: bool = True

    @classmethod
    def from_config(cls, config: Any) -> StepRewardSettings:
        """The settings under ``config.reward.reward_kwargs.prm``; unknown keys are errors."""
        kwargs = (config.get("reward") or {}).get("reward_kwargs") or {}
        raw = dict(kwargs.get("prm") or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                "unknown keys in reward.reward_kwargs.prm",
                got=unknown,
                expected=f"some of {sorted(known)}",
                fix="remove them",
            )
        settings = cls(**raw)
        if settings.placement not in ("dense", "last"):
            raise ConfigError(
                "unknown placement of the PRM rewards",
                got=settings.placement,
                expected="'dense' or 'last'",
                fix="placement=dense (GAE, REINFORCE++) or last (the streaming reward loop)",
            )
        model = (config.get("reward") or {}).get("reward_model") or {}
        colocated = bool(model.get("enable")) and not model.get("enable_resource_pool")
        if settings.placement == "dense" and not colocated:
            raise ConfigError(
                "dense rewards need veRL's colocated reward-model path",
                got={k: model.get(k) for k in ("enable", "enable_resource_pool")},
                expected="reward.reward_model.enable=True and enable_resource_pool=False "
                "(only there does veRL 0.9 build rm_scores with assemble_rm_scores)",
                fix="set +reward.reward_kwargs.prm.placement=last (one scalar per response, "
                "the same for GRPO), or enable the colocated reward model",
            )
        return settings


class _Batcher:
    """Scores traces from concurrent ``run_single`` calls together: one scorer call per batch.

    veRL's reward loop runs every sample of a chunk as its own asyncio task; the traces those
    tasks hand in during one turn of the event loop go to the scorer in one call.
    """

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self.pending: list[tuple[Trace, asyncio.Future]] = []
        self.running = False
        self.task: asyncio.Task | None = None
        self.calls = 0

    async def score(self, trace: Trace) -> list[float]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((trace, future))
        if not self.running:
            self.running = True
            self.task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                await asyncio.sleep(0)  # let the tasks started in this turn hand in their traces
                batch, self.pending = self.pending, []
                traces = [t for t, _ in batch]
                try:
                    self.calls += 1
                    if callable(getattr(self.scorer, "ascore", None)):
                        scores = await self.scorer.ascore(traces)
                    else:
                        scores = await loop.run_in_executor(None, self.scorer.score, traces)
                    checked = check_step_scores(scores, traces, "the PRM scorer")
                except Exception as exc:  # every waiting sample fails with the scorer's error
                    for _, future in batch:
                        future.set_exception(exc)
                    continue
                for (_, future), s in zip(batch, checked, strict=True):
                    future.set_result(s)
        finally:
            self.running = False


class PRMStepRewardManager(RewardManagerBase):
    """veRL reward manager: PRM step scores at each step's last token, the outcome at the last.

    For one response (the last sequence of a trajectory, as veRL's ``naive`` manager): the
    valid response ids are decoded (special tokens skipped), split into steps with the PRM
    spec's segmentation and scored (concurrent samples in one scorer call); each step's
    ``coef * (score - baseline)`` goes on the token that completes the step
    (:func:`~prmkit.rewards.align.step_token_ends`), and the outcome reward veRL's custom reward
    function gives goes on the last token. A response with no step gets only the outcome.

    Args:
        config: veRL's config; the PRM settings are ``config.reward.reward_kwargs.prm``
            (:class:`StepRewardSettings`).
        tokenizer: The policy's tokenizer.
        compute_score: The outcome reward function (veRL passes the custom reward function).
        reward_router_address, reward_model_tokenizer: Passed on to ``compute_score`` as veRL's
            own managers do when a reward model runs.
    """

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any,
        reward_router_address: str | None = None,
        reward_model_tokenizer: Any = None,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.settings = StepRewardSettings.from_config(config)
        if self.settings.outcome and compute_score is None:
            raise ConfigError(
                "no outcome reward function",
                got=None,
                expected="reward.custom_reward_function.path (the outcome reward)",
                fix="set it, or reward_kwargs.prm.outcome=false for PRM rewards only",
            )
        self.is_async_reward_score = inspect.iscoroutinefunction(compute_score)
        self.reward_router_address = reward_router_address
        self.reward_model_tokenizer = reward_model_tokenizer
        self.scorer = self.build_scorer(self.settings)
        spec = load_spec(self.settings.spec_dir) if self.settings.spec_dir else None
        self.spec = resolve_spec(self.scorer, spec)
        self.batcher = _Batcher(self.scorer)

    def build_scorer(self, settings: StepRewardSettings) -> Any:
        """The PRM scorer (override to score through another :class:`~prmkit.score.Scorer`)."""
        if not settings.path:
            raise ConfigError(
                "no PRM checkpoint for the step reward manager",
                got=settings.path,
                expected="reward.reward_kwargs.prm.path = a prmkit checkpoint directory",
                fix="add +reward.reward_kwargs.prm.path=/path/to/prm",
            )
        from prmkit.score.scorer import PRMScorer

        return PRMScorer.from_checkpoint(
            settings.path, device=settings.device, batch_size=settings.batch_size
        )

    async def _outcome(self, item: Any, text: str, extra_info: dict) -> tuple[float, dict]:
        kwargs: dict[str, Any] = {
            "data_source": item.non_tensor_batch["data_source"],
            "solution_str": text,
            "ground_truth": item.non_tensor_batch["reward_model"]["ground_truth"],
            "extra_info": extra_info,
        }
        if self.reward_router_address is not None:
            kwargs["reward_router_address"] = self.reward_router_address
            kwargs["reward_model_tokenizer"] = self.reward_model_tokenizer
        if self.is_async_reward_score:
            result = await self.compute_score(**kwargs)
        else:
            result = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.compute_score(**kwargs)
            )
        if isinstance(result, dict):
            return float(result["score"]), dict(result)
        return float(result), {"acc": result}

    async def run_single(self, data: DataProto) -> dict:
        """``{"reward_score": <per-token list or scalar>, "reward_extra_info": {...}}``."""
        item = data[-1:][0]  # the last sequence of a multi-output trajectory, as veRL's naive
        response_ids = item.batch["responses"]
        length = int(item.batch["attention_mask"][-response_ids.shape[-1] :].sum())
        if length == 0:
            raise DataFormatError(
                "the response has no valid token",
                got=0,
                expected="at least one response token under the attention mask",
                fix="check the rollout batch",
            )
        ids = [int(t) for t in response_ids[:length]]
        extra_info = dict(item.non_tensor_batch.get("extra_info", None) or {})
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        prompt = prompt_of(extra_info, self.settings.prompt_key)
        trace, seg = response_trace(self.spec, prompt, text, id="verl")
        # hand the trace to the batcher before the first await, so this turn's samples batch up
        pending = asyncio.ensure_future(self.batcher.score(trace)) if trace else None
        outcome, info = (0.0, {})
        if self.settings.outcome:
            outcome, info = await self._outcome(item, text, extra_info)
        scores = await pending if pending is not None else []
        ends = step_token_ends(self.tokenizer, ids, seg.spans, text=text) if scores else []
        coef, baseline = self.settings.coef, self.settings.baseline
        rewards = place_at_tokens(length, ends, [coef * (s - baseline) for s in scores])
        rewards[-1] += outcome
        info = {
            **info,
            "prm_sum": float(sum(rewards) - outcome),
            "prm_steps": len(scores),
        }
        if self.settings.placement == "last":
            return {"reward_score": float(sum(rewards)), "reward_extra_info": info}
        return {"reward_score": rewards, "reward_extra_info": info}

    @classmethod
    def assemble_rm_scores(cls, data: DataProto, scores: list) -> torch.Tensor:
        """``rm_scores`` ``(batch, response_length)``: each row's per-token rewards from the left
        (scalars, from ``placement: last``, go to the last valid token as veRL's own do).

        Raises:
            DataFormatError: a row's length is not its valid response length.
        """
        if all(isinstance(s, (int, float)) for s in scores):
            return super().assemble_rm_scores(data, scores)
        prompt_length = data.batch["prompts"].size(1)
        valid = data.batch["attention_mask"][:, prompt_length:].sum(dim=1).tolist()
        rm_scores = torch.zeros_like(data.batch["responses"], dtype=torch.float32)
        for i, (row, n) in enumerate(zip(scores, valid, strict=True)):
            if len(row) != n:
                raise DataFormatError(
                    "a dense reward row does not match its response",
                    got=len(row),
                    expected=f"{int(n)} values (the valid response length)",
                    fix="return one value per valid response token from run_single",
                    where=f"sample {i}",
                )
            rm_scores[i, : int(n)] = rm_scores.new_tensor(row)
        return rm_scores
