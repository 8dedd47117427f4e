"""PRM rewards for TRL's ``GRPOTrainer`` (and any trainer with its reward-function contract).

Tested against trl 1.13.0 (the newest this project's index offers; pinned in the ``rl`` extra).
TRL calls each reward function once per generation batch as::

    reward_func(prompts=..., completions=..., completion_ids=..., trainer_state=...,
                log_extra=..., log_metric=..., **dataset_columns)

and expects one float (or ``None`` to abstain) per completion. :class:`PRMReward` is such a
function: each completion becomes a :class:`~prmkit.records.Trace` (its text split into steps by
the PRM spec's segmentation), all of them are scored in one ``scorer.score`` call, and each
completion's step scores are aggregated (min, prod, last or mean) into its reward.

Example:
    >>> from trl import GRPOConfig, GRPOTrainer  # doctest: +SKIP
    >>> scorer = PRMScorer.from_checkpoint("runs/prm")  # doctest: +SKIP
    >>> reward = PRMReward(scorer, aggregation="min")  # doctest: +SKIP
    >>> trainer = GRPOTrainer(model=policy, reward_funcs=[accuracy, reward],  # doctest: +SKIP
    ...                       args=GRPOConfig(...), train_dataset=dataset)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.spec import PRMSpec
from prmkit.records import Trace
from prmkit.rewards.common import (
    check_ascore,
    check_step_scores,
    conversation_prompt,
    conversation_response,
    resolve_spec,
    response_trace,
)
from prmkit.score.aggregate import aggregate, check_aggregation

__all__ = ["PRMReward", "async_prm_reward"]


@dataclass(frozen=True)
class _Batch:
    """The traces to score for one call, and which completion each belongs to."""

    traces: list[Trace]
    owner: list[int]  # owner[k]: the completion of traces[k]
    n: int  # completions in the call


class _Core:
    """Completions to traces and step scores to rewards: shared by the sync and async forms."""

    def __init__(
        self,
        scorer: Any,
        spec: PRMSpec | None,
        aggregation: str,
        prompt_key: str | None,
        name: str | None,
    ) -> None:
        self.scorer = scorer
        self.spec = resolve_spec(scorer, spec)
        self.aggregation = check_aggregation(aggregation)
        self.prompt_key = prompt_key
        self.name = name if name is not None else f"prm_{aggregation}"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(
                "the reward function's name is empty",
                got=name,
                expected="a non-empty string (TRL logs rewards/<name>/mean)",
                fix="pass name='prm'",
            )
        self.calls = 0
        self.abstained = 0

    def batch(self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict) -> _Batch:
        if len(prompts) != len(completions):
            raise DataFormatError(
                "prompts and completions differ in length",
                got=(len(prompts), len(completions)),
                expected="one prompt per completion",
                fix="call the reward function as TRL does",
            )
        sources: Sequence[Any] = prompts
        if self.prompt_key is not None:
            if self.prompt_key not in columns:
                raise ConfigError(
                    f"prompt_key {self.prompt_key!r} is not a dataset column",
                    got=sorted(k for k in columns if k not in _TRL_KWARGS),
                    expected="the name of a column holding the problem text",
                    fix="add the column to the dataset, or pass prompt_key=None",
                )
            sources = columns[self.prompt_key]
            if len(sources) != len(completions):
                raise DataFormatError(
                    f"column {self.prompt_key!r} has {len(sources)} values",
                    got=len(sources),
                    expected=f"{len(completions)} (one per completion)",
                    fix="call the reward function as TRL does",
                )
        traces, owner = [], []
        for i, (source, completion) in enumerate(zip(sources, completions, strict=True)):
            where = f"completion {i}"
            prompt = source if isinstance(source, str) else conversation_prompt(source, where)
            if isinstance(completion, str):
                text = completion
            else:
                text = conversation_response(completion, where)
            trace, _ = response_trace(self.spec, prompt, text, id=f"c{i}")
            if trace is not None:
                traces.append(trace)
                owner.append(i)
        return _Batch(traces, owner, len(completions))

    def rewards(self, batch: _Batch, scores: Sequence[Sequence[float]], log_metric: Any) -> list:
        checked = check_step_scores(scores, batch.traces, f"the scorer of {self.name!r}")
        out: list[float | None] = [None] * batch.n
        for i, s in zip(batch.owner, checked, strict=True):
            out[i] = aggregate(s, self.aggregation)
        abstained = batch.n - len(batch.traces)
        self.calls += 1
        self.abstained += abstained
        if callable(log_metric):
            log_metric(f"{self.name}/abstained", abstained / max(batch.n, 1))
        return out


# keyword arguments TRL adds to the dataset columns
_TRL_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments", "completion_ids")


class PRMReward:
    """A TRL reward function: one PRM reward per completion, from its aggregated step scores.

    The completion's text is split into steps with the PRM spec's segmentation
    (``spec.segmentation``), every completion of the call is scored in one ``scorer.score``
    call, and the step scores are aggregated. Conversational input (TRL's chat format): the PRM
    prompt is the last ``user`` message's text, the response is the ``assistant`` messages'
    text (joined by a blank line); non-text content blocks are left out.

    A completion with no step (empty or blank) gets ``None``: TRL leaves this function out of
    that completion's reward (and logs NaN for it) instead of a made-up score; the count is in
    :attr:`abstained` and, per batch, in TRL's metric ``<name>/abstained``. A scorer error
    (e.g. a trace longer than the spec's ``max_length``) propagates; it never becomes 0.

    Args:
        scorer: A :class:`~prmkit.score.scorer.Scorer` (``score(traces) -> list[list[float]]``).
        spec: How responses are split; default: the scorer's spec (``scorer.prm.spec``).
        aggregation: ``min``, ``prod``, ``last`` or ``mean`` of the step scores.
        prompt_key: A dataset column holding the problem text the PRM should read (e.g. the
            raw question when the policy prompt wraps it in instructions); ``None``: the
            prompt TRL passes.
        name: The function's ``__name__``, which TRL logs as ``rewards/<name>/mean``;
            default ``prm_<aggregation>``.

    Attributes:
        calls: Batches scored so far.
        abstained: Completions that got ``None`` so far.

    Example:
        >>> reward = PRMReward(scorer, aggregation="mean")  # doctest: +SKIP
        >>> reward(prompts=["2+3?"], completions=["2 + 3 = 5.\\n\\nSo 5."])  # doctest: +SKIP
        [0.71]
    """

    def __init__(
        self,
        scorer: Any,
        *,
        spec: PRMSpec | None = None,
        aggregation: str = "min",
        prompt_key: str | None = None,
        name: str | None = None,
    ) -> None:
        self._core = _Core(scorer, spec, aggregation, prompt_key, name)
        self.__name__ = self._core.name

    @property
    def spec(self) -> PRMSpec:
        """The spec responses are split with."""
        return self._core.spec

    @property
    def calls(self) -> int:
        return self._core.calls

    @property
    def abstained(self) -> int:
        return self._core.abstained

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        """One reward (or ``None``) per completion, in order."""
        batch = self._core.batch(prompts, completions, kwargs)
        scores = self._core.scorer.score(batch.traces) if batch.traces else []
        return self._core.rewards(batch, scores, kwargs.get("log_metric"))

    def __repr__(self) -> str:
        return f"PRMReward(name={self.__name__!r}, aggregation={self._core.aggregation!r})"


def async_prm_reward(
    scorer: Any,
    *,
    spec: PRMSpec | None = None,
    aggregation: str = "min",
    prompt_key: str | None = None,
    name: str | None = None,
) -> Callable[..., Awaitable[list[float | None]]]:
    """:class:`PRMReward` for a scorer with ``async ascore(traces)`` (the HTTP client).

    TRL 1.13 runs a reward function on its event loop, concurrently with the other async reward
    functions, when ``inspect.iscoroutinefunction`` says so. That is true of an ``async def``
    function, not of an object with an ``async __call__`` (unless marked, which only Python 3.12+
    can), so this returns a function; its ``__name__`` is ``name`` (default ``prm_<aggregation>``) and its ``reward``
    attribute holds the counters (``calls``, ``abstained``). Same arguments and behaviour as
    :class:`PRMReward`.

    Raises:
        ConfigError: the scorer has no ``ascore``.

    Example:
        >>> scorer = AsyncHTTPScorer("http://prm:8000")  # doctest: +SKIP
        >>> reward = async_prm_reward(scorer, spec=load_spec("runs/prm"))  # doctest: +SKIP
        >>> GRPOTrainer(..., reward_funcs=[accuracy, reward])  # doctest: +SKIP
    """
    check_ascore(scorer, fix="use PRMReward for a synchronous scorer")
    core = _Core(scorer, spec, aggregation, prompt_key, name)

    async def reward(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        batch = core.batch(prompts, completions, kwargs)
        scores = await scorer.ascore(batch.traces) if batch.traces else []
        return core.rewards(batch, scores, kwargs.get("log_metric"))

    reward.__name__ = reward.__qualname__ = core.name
    reward.reward = core  # type: ignore[attr-defined]
    return reward
