"""PRM rewards for veRL: a custom reward function, and dense step rewards for a reward manager.

Written against veRL v0.9.0 (``verl-project/verl`` tag ``v0.9.0``, commit ``483b8a0``); veRL is
not installed in prmkit's test environment, see docs/rewards.md for what was tested and how.

* **Custom reward function** (``reward.custom_reward_function``): veRL calls
  ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...,
  **reward_kwargs)`` once per response and takes a float, or a dict with ``"score"`` whose other
  keys are logged. :func:`make_compute_score` builds one from any scorer;
  :func:`compute_score` is one that veRL's config alone can point at (the PRM checkpoint comes
  from ``reward_kwargs``). Its reward is the aggregated step score, placed by veRL on the last
  response token.
* **Dense step rewards**: :func:`dense_step_rewards` puts each step's score on the response
  token that ends the step (zeros elsewhere); the veRL reward manager
  :class:`prmkit.rewards.verl_manager.PRMStepRewardManager` does the same in veRL's reward loop.

Example:
    >>> # prm_reward.py, named by reward.custom_reward_function.path
    >>> from prmkit.rewards.verl import make_compute_score  # doctest: +SKIP
    >>> from prmkit.score import PRMScorer  # doctest: +SKIP
    >>> compute_score = make_compute_score(PRMScorer.from_checkpoint("runs/prm"))  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.spec import PRMSpec
from prmkit.records import Trace
from prmkit.rewards.align import place_at_tokens, step_token_ends
from prmkit.rewards.common import (
    check_ascore,
    check_step_scores,
    resolve_spec,
    response_trace,
)
from prmkit.score.aggregate import aggregate, check_aggregation

__all__ = [
    "DenseSteps",
    "compute_score",
    "dense_step_rewards",
    "make_async_compute_score",
    "make_compute_score",
    "prompt_of",
]

# keyword arguments veRL's reward managers add to a custom reward function's call
_VERL_KWARGS = ("reward_router_address", "reward_model_tokenizer")


def prompt_of(extra_info: dict | None, prompt_key: str) -> str:
    """The problem text the PRM reads: ``extra_info[prompt_key]``.

    veRL passes a custom reward function the response (``solution_str``) but not the prompt;
    its data-preparation examples keep the question in ``extra_info`` (``"question"``).

    Raises:
        DataFormatError: ``extra_info`` has no such text.
    """
    value = (extra_info or {}).get(prompt_key)
    if not isinstance(value, str):
        raise DataFormatError(
            f"extra_info has no {prompt_key!r} text for the PRM prompt",
            got=sorted(extra_info or {}),
            expected=f"extra_info[{prompt_key!r}] = the problem text",
            fix="store the question in extra_info when preparing the data, "
            "or set prompt_key to the key that holds it",
        )
    return value


def _check_kwargs(kwargs: dict[str, Any]) -> None:
    unknown = sorted(k for k in kwargs if k not in _VERL_KWARGS)
    if unknown:
        raise ConfigError(
            "unknown reward kwargs for the PRM reward function",
            got=unknown,
            expected="aggregation, prompt_key (and for compute_score: prm, device, batch_size)",
            fix="remove them from reward.custom_reward_function.reward_kwargs",
        )


@dataclass(frozen=True)
class _Settings:
    spec: PRMSpec
    aggregation: str
    prompt_key: str
    empty_score: float | None

    def trace(self, solution_str: str, extra_info: dict | None) -> Trace | None:
        prompt = prompt_of(extra_info, self.prompt_key)
        return response_trace(self.spec, prompt, solution_str, id="verl")[0]

    def empty(self, solution_str: str) -> dict[str, float]:
        if self.empty_score is None:
            raise DataFormatError(
                "the response has no step to score",
                got=solution_str[:80],
                expected=f"non-blank text (split by {self.spec.segmentation})",
                fix="pass empty_score=<reward for an empty response> to score it explicitly",
            )
        return {"score": float(self.empty_score), "prm_steps": 0}

    def result(self, trace: Trace, scores: Sequence[Sequence[float]]) -> dict[str, float]:
        (steps,) = check_step_scores(scores, [trace], "the scorer")
        return {"score": aggregate(steps, self.aggregation), "prm_steps": len(steps)}


def _settings(
    scorer: Any,
    spec: PRMSpec | None,
    aggregation: str,
    prompt_key: str,
    empty_score: float | None,
) -> _Settings:
    return _Settings(
        resolve_spec(scorer, spec), check_aggregation(aggregation), prompt_key, empty_score
    )


def make_compute_score(
    scorer: Any,
    *,
    spec: PRMSpec | None = None,
    aggregation: str = "min",
    prompt_key: str = "question",
    empty_score: float | None = None,
) -> Callable[..., dict[str, float]]:
    """A veRL custom reward function: the PRM's aggregated step score of one response.

    The returned ``compute_score(data_source, solution_str, ground_truth, extra_info=None,
    **kwargs)`` splits ``solution_str`` with the spec's segmentation, scores it with
    ``scorer.score`` and returns ``{"score": <aggregate>, "prm_steps": <n>}`` (veRL logs
    ``prm_steps``). ``data_source`` and ``ground_truth`` are not read: combine the PRM score with
    an outcome check in your own function if you want both (docs/rewards.md shows how). veRL
    runs synchronous reward functions in threads, so calls into the scorer are serialised.

    Args:
        scorer: A :class:`~prmkit.score.scorer.Scorer`.
        spec: How responses are split; default: the scorer's spec.
        aggregation: ``min``, ``prod``, ``last`` or ``mean``.
        prompt_key: The ``extra_info`` key holding the problem text.
        empty_score: The reward of a response with no step; ``None`` (default): such a response
            raises :class:`~prmkit.errors.DataFormatError`, no score is made up.

    Example:
        >>> compute_score = make_compute_score(scorer, aggregation="mean")  # doctest: +SKIP
        >>> response = "2 + 3 = 5.\\n\\n#### 5"
        >>> compute_score("gsm8k", response, "5", {"question": "2+3?"})  # doctest: +SKIP
        {'score': 0.83, 'prm_steps': 2}
    """
    settings = _settings(scorer, spec, aggregation, prompt_key, empty_score)
    lock = threading.Lock()

    def compute_score(
        data_source: Any,
        solution_str: str,
        ground_truth: Any,
        extra_info: dict | None = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        _check_kwargs(kwargs)
        trace = settings.trace(solution_str, extra_info)
        if trace is None:
            return settings.empty(solution_str)
        with lock:
            scores = scorer.score([trace])
        return settings.result(trace, scores)

    return compute_score


def make_async_compute_score(
    scorer: Any,
    *,
    spec: PRMSpec | None = None,
    aggregation: str = "min",
    prompt_key: str = "question",
    empty_score: float | None = None,
) -> Callable[..., Awaitable[dict[str, float]]]:
    """:func:`make_compute_score` for a scorer with ``async ascore(traces)`` (the HTTP client).

    veRL awaits an ``async def`` reward function on its reward loop instead of running it in a
    thread, so many responses are in flight at once.

    Raises:
        ConfigError: the scorer has no ``ascore``.
    """
    check_ascore(scorer, fix="use make_compute_score for a synchronous scorer")
    settings = _settings(scorer, spec, aggregation, prompt_key, empty_score)

    async def compute_score(
        data_source: Any,
        solution_str: str,
        ground_truth: Any,
        extra_info: dict | None = None,
        **kwargs: Any,
    ) -> dict[str, float]:
        _check_kwargs(kwargs)
        trace = settings.trace(solution_str, extra_info)
        if trace is None:
            return settings.empty(solution_str)
        return settings.result(trace, await scorer.ascore([trace]))

    return compute_score


_SCORERS: dict[tuple[str, str, int], Any] = {}
_SCORERS_LOCK = threading.Lock()


def _cached_scorer(prm: str, device: str, batch_size: int) -> Any:
    """One :class:`~prmkit.score.scorer.PRMScorer` per checkpoint and device in this process."""
    key = (prm, device, batch_size)
    with _SCORERS_LOCK:
        if key not in _SCORERS:
            from prmkit.score.scorer import PRMScorer

            _SCORERS[key] = PRMScorer.from_checkpoint(prm, device=device, batch_size=batch_size)
        return _SCORERS[key]


_FUNCTIONS: dict[tuple, Callable[..., dict[str, float]]] = {}


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    *,
    prm: str | None = None,
    aggregation: str = "min",
    prompt_key: str = "question",
    device: str = "cpu",
    batch_size: int = 8,
    empty_score: float | None = None,
    **kwargs: Any,
) -> dict[str, float]:
    """veRL's custom reward function, configured by ``reward_kwargs`` alone.

    ``reward.custom_reward_function.path=pkg://prmkit.rewards.verl``, ``name=compute_score``, and
    ``reward_kwargs`` (merged into every call by veRL) name the checkpoint (``prm``) and the
    options of :func:`make_compute_score`. The checkpoint is loaded once per process.

    Raises:
        ConfigError: ``prm`` is missing, or an unknown reward kwarg is given.
    """
    if not prm:
        raise ConfigError(
            "no PRM checkpoint in the reward kwargs",
            got=prm,
            expected="reward_kwargs.prm = a prmkit checkpoint directory",
            fix="add +reward.custom_reward_function.reward_kwargs.prm=/path/to/prm",
        )
    key = (prm, aggregation, prompt_key, device, batch_size, empty_score)
    if key not in _FUNCTIONS:
        _FUNCTIONS[key] = make_compute_score(
            _cached_scorer(prm, device, batch_size),
            aggregation=aggregation,
            prompt_key=prompt_key,
            empty_score=empty_score,
        )
    return _FUNCTIONS[key](data_source, solution_str, ground_truth, extra_info, **kwargs)


@dataclass(frozen=True)
class DenseSteps:
    """The dense PRM reward of one response.

    Attributes:
        rewards: One value per response token: each step's score at the token that ends the step,
            zeros elsewhere (``sum(rewards) == sum(step_scores)``).
        step_scores: The PRM's score of each step.
        step_ends: The token index where each step's score sits.
    """

    rewards: list[float]
    step_scores: list[float]
    step_ends: list[int]


def dense_step_rewards(
    scorer: Any,
    tokenizer: Any,
    prompt: str,
    response_ids: Sequence[int],
    *,
    spec: PRMSpec | None = None,
) -> DenseSteps:
    """Score one response with a PRM and place each step's score at the step's last token.

    The response is decoded (special tokens skipped), split with the spec's segmentation, scored
    in one ``scorer.score`` call, and each step's score is put on the token that completes the
    step (:func:`~prmkit.rewards.align.step_token_ends`). A response with no step gets all zeros
    and no steps.

    Args:
        scorer: A :class:`~prmkit.score.scorer.Scorer`.
        tokenizer: The policy's tokenizer (the one that produced ``response_ids``).
        prompt: The problem text the PRM reads.
        response_ids: The response's valid token ids (no padding).
        spec: How responses are split; default: the scorer's spec.

    Example:
        >>> dense = dense_step_rewards(scorer, tokenizer, "2+3?", ids)  # doctest: +SKIP
        >>> dense.step_ends, [round(r, 2) for r in dense.rewards if r]  # doctest: +SKIP
        ([7, 13], [0.91, 0.85])
    """
    spec = resolve_spec(scorer, spec)
    text = tokenizer.decode(list(response_ids), skip_special_tokens=True)
    trace, seg = response_trace(spec, prompt, text, id="dense")
    if trace is None:
        return DenseSteps([0.0] * len(response_ids), [], [])
    (scores,) = check_step_scores(scorer.score([trace]), [trace], "the scorer")
    ends = step_token_ends(tokenizer, response_ids, seg.spans, text=text)
    return DenseSteps(place_at_tokens(len(response_ids), ends, scores), scores, ends)
