"""The generate stage: sample ``n`` solutions per problem and keep them as Trace records.

Input: Problem records in memory, or a file (:func:`prmkit.tasks.read_problems`: Problem
records, or JSONL objects with ``prompt`` and optionally ``answer`` and ``id``). Output: one
Trace per non-empty sample, steps segmented with :func:`prmkit.steps.split`, the final answer
extracted, and in ``meta`` the token counts, the finish reason and the sampling parameters.

Example:
    >>> from prmkit.generate import GenerateConfig, generate
    >>> from prmkit.models import PolicyConfig
    >>> cfg = GenerateConfig(problems="problems.jsonl", out="traces.jsonl", n=4,
    ...                      policy=PolicyConfig(adapter="adapters/warmup-0123"))
    >>> traces = generate(cfg)  # doctest: +SKIP
    >>> traces[0].problem_id, traces[0].steps  # doctest: +SKIP
    ('arith-s0-0', ['Tom buys 5 more: 12 + 5 = 17.', 'The answer is 17.'])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from prmkit.config import check_ranges, option
from prmkit.errors import ConfigError
from prmkit.generate.backends import Backend, make_generator
from prmkit.generate.protocol import Completion, Generator, Prefix, SamplingParams
from prmkit.generate.sampling import row_seed
from prmkit.models.policy_config import PolicyConfig
from prmkit.records import Problem, Trace, write_records
from prmkit.steps import Strategy, split
from prmkit.tasks.answers import extract_answer
from prmkit.tasks.problems import read_problems
from prmkit.tasks.prompts import render_prompt

__all__ = ["GenerateConfig", "GenerateStats", "generate", "traces_for"]


@dataclass
class GenerateConfig:
    """Config of ``prmkit generate``."""

    problems: str = option("", "input: Problem records (JSONL/Parquet) or JSONL with 'prompt'")
    out: str | None = option(
        "traces.jsonl", "output file of Trace records (.jsonl or .parquet; null: write nothing)"
    )
    n: int = option(16, "samples per problem", ge=1)
    limit: int | None = option(None, "use only the first N problems", ge=1)
    backend: Backend = option(
        "transformers", "in-process transformers model, or an OpenAI-compatible server"
    )
    policy: PolicyConfig = field(
        default_factory=PolicyConfig,
        metadata={"help": "the policy (backend=openai: policy.model is the served name)"},
    )
    sampling: SamplingParams = field(
        default_factory=SamplingParams,
        metadata={"help": "sampling; the same sampling.seed and inputs give the same traces"},
    )
    batch_size: int = option(
        32, "samples decoded together (bounds memory; no effect on output)", ge=1
    )
    problems_per_call: int = option(4, "problems per generator call (part of the seeding)", ge=1)
    base_url: str = option("http://localhost:8000/v1", "server API root (backend=openai)")
    prompt_template: str | None = option(
        None,
        "user-message template in prmkit/prompts (None: the problem task's default, as the "
        "warm-up trains with; the bare prompt for other tasks)",
    )
    system: str | None = option(None, "system message (None: the chat template's default)")
    chat: bool = option(True, "render prompts with the model's chat template")
    segmentation: Strategy = option("double_newline", "step split strategy")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class GenerateStats:
    """Counts of one :func:`generate` call (pass one in to read them afterwards).

    Attributes:
        problems: Problems sampled.
        traces: Traces kept.
        empty: Completions without a step (skipped: a Trace needs one).
        length: Completions cut at ``max_new_tokens``.
        tokens: Completion tokens generated in all.
    """

    problems: int = 0
    traces: int = 0
    empty: int = 0
    length: int = 0
    tokens: int = 0

    def summary(self, out: str | None = None) -> str:
        """One line for the terminal (``out``: the file the traces went to)."""
        head = f"{self.traces} traces for {self.problems} problems"
        head = f"wrote {head} to {out}" if out is not None else f"{head} (not written)"
        return (
            f"{head} ({self.tokens} completion tokens; {self.length} hit max_new_tokens; "
            f"{self.empty} empty completions skipped)"
        )


def traces_for(
    problem: Problem,
    prompt: str,
    completions: Sequence[Completion],
    *,
    params: SamplingParams,
    strategy: str,
    meta: dict[str, Any],
) -> tuple[list[Trace], int]:
    """Trace records of one problem's completions, and how many were empty (skipped).

    ``prompt`` is the user message the policy was given (the problem inside its template), so
    continuing a trace (Monte Carlo rollouts) reproduces the policy's input exactly.
    """
    traces, empty = [], 0
    for j, completion in enumerate(completions):
        steps = split(completion.text, strategy).steps  # type: ignore[arg-type]
        if not steps:
            empty += 1
            continue
        traces.append(
            Trace(
                id=f"{problem.id}-s{j}",
                problem_id=problem.id,
                prompt=prompt,
                steps=steps,
                answer=extract_answer(completion.text),
                meta={
                    **meta,
                    "segmentation": strategy,
                    "sample_index": j,
                    "reference_answer": problem.answer,
                    "finish_reason": completion.finish_reason,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "sampling": asdict(params),
                },
            )
        )
    return traces, empty


def _generator(cfg: GenerateConfig) -> Generator:
    return make_generator(
        cfg.backend,
        cfg.policy,
        base_url=cfg.base_url,
        batch_size=cfg.batch_size,
        system=cfg.system,
        chat=cfg.chat,
    )


def _problems(cfg: GenerateConfig, problems: Iterable[Problem] | None) -> list[Problem]:
    if problems is not None:
        given = list(problems)[: cfg.limit]
        if not given:
            raise ConfigError(
                "no problems given",
                got=0,
                expected="at least one Problem",
                fix="pass a non-empty list of problems",
            )
        return given
    return read_problems(cfg.problems, cfg.limit)


def generate(
    cfg: GenerateConfig,
    problems: Iterable[Problem] | None = None,
    *,
    generator: Generator | None = None,
    stats: GenerateStats | None = None,
    progress: bool = True,
) -> list[Trace]:
    """Sample ``cfg.n`` solutions per problem; write them to ``cfg.out`` unless it is ``None``.

    Problems go to the policy ``problems_per_call`` at a time, each call seeded from
    ``(sampling.seed, index of its first problem)``: the same seed, inputs and
    ``problems_per_call`` give the same traces whatever ``batch_size``. The output file is
    written atomically, as the traces come.

    Args:
        cfg: The stage config.
        problems: The problems in memory (``None``: read ``cfg.problems``); ``cfg.limit``
            applies either way.
        generator: A ready :class:`~prmkit.generate.protocol.Generator` (``None``: build the one
            ``cfg.backend`` and ``cfg.policy`` name; the traces' ``meta`` names ``cfg.policy``
            either way).
        stats: Filled with the call's counts (completion tokens, cut-off and empty samples).
        progress: Show a progress bar on stderr.

    Returns:
        The traces, problem by problem, sample by sample (empty completions skipped).

    Raises:
        ConfigError: no problems; ``policy.adapter`` with ``backend=openai``.
        DataFormatError: a problems line is neither a Problem record nor has a ``prompt``.
        ModelLoadError: the policy model or its adapter cannot be loaded.

    Example:
        >>> cfg = GenerateConfig(out=None, n=2, sampling=SamplingParams(max_new_tokens=64))
        >>> traces = generate(cfg, [Problem(id="p", prompt="What is 2+3?", answer="5")])  # doctest: +SKIP
    """
    if problems is None and not cfg.problems:
        raise ConfigError(
            "no problems file given",
            got=cfg.problems,
            expected="problems=<file.jsonl>",
            fix="pass problems=path/to/file",
        )
    if generator is None and cfg.policy.adapter is not None and cfg.backend != "transformers":
        raise ConfigError(
            "policy.adapter needs backend=transformers",
            got=cfg.backend,
            expected="transformers",
            fix="serve the adapter with the server",
        )
    todo = _problems(cfg, problems)
    if generator is None:
        generator = _generator(cfg)
    stats = stats if stats is not None else GenerateStats()
    stats.problems = len(todo)
    traces: list[Trace] = []

    def produce() -> Iterator[Trace]:
        for trace in _sample(cfg, todo, generator, stats, progress):
            traces.append(trace)
            yield trace

    if cfg.out is None:
        for _ in produce():
            pass
    else:
        write_records(cfg.out, produce())
    return traces


def _sample(
    cfg: GenerateConfig,
    problems: list[Problem],
    generator: Generator,
    stats: GenerateStats,
    progress: bool,
) -> Iterator[Trace]:
    import sys

    from tqdm import tqdm

    params, per_call, seed = cfg.sampling, cfg.problems_per_call, cfg.sampling.seed
    meta = {
        "model": cfg.policy.model,
        "adapter": cfg.policy.adapter,
        "backend": cfg.backend,
        "prompt_template": cfg.prompt_template,
    }
    bar = tqdm(
        total=len(problems), desc="generate", unit="problem", file=sys.stderr, disable=not progress
    )
    for start in range(0, len(problems), per_call):
        batch = problems[start : start + per_call]
        # one seed per call of problems_per_call problems; batch_size does not change output
        call_params = replace(params, seed=None if seed is None else row_seed(seed, start, 0))
        prompts = [render_prompt(p, cfg.prompt_template) for p in batch]
        outs = generator.continue_from(
            [Prefix(p) for p in prompts], cfg.n, call_params, stop="solution"
        )
        for problem, prompt, completions in zip(batch, prompts, outs, strict=True):
            traces, empty = traces_for(
                problem, prompt, completions, params=params, strategy=cfg.segmentation, meta=meta
            )
            stats.empty += empty
            stats.length += sum(c.finish_reason == "length" for c in completions)
            stats.tokens += sum(c.completion_tokens for c in completions)
            stats.traces += len(traces)
            yield from traces
        bar.update(len(batch))
    bar.close()
