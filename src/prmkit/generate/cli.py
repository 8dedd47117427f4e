"""``prmkit generate``: sample ``n`` solutions per problem and write them as Trace records.

Input: a JSONL (or Parquet) file of Problem records, or a JSONL of objects with ``prompt`` (and
optionally ``answer`` and ``id``). GSM8K and MATH-500 files are turned into Problem records by
``prmkit problems`` first.

Output: one Trace per sample, steps segmented with :func:`prmkit.steps.split`, the final answer
extracted, and in ``meta`` the token counts, the finish reason and the sampling parameters.

Example:
    prmkit generate problems=problems.jsonl out=traces.jsonl n=16 temperature=0.7 \\
        model=smollm2 adapter=~/.cache/prmkit/adapters/xyz
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from prmkit.cli import add_config_arguments, stage_config
from prmkit.config import Dtype, check_ranges, option
from prmkit.errors import ConfigError, DataFormatError
from prmkit.generate.protocol import Generator, Prefix, SamplingParams
from prmkit.generate.sampling import row_seed
from prmkit.io import iter_jsonl
from prmkit.records import Problem, Trace, read_records, write_records
from prmkit.steps import Strategy, split
from prmkit.tasks.answers import extract_answer
from prmkit.tasks.prompts import render_prompt

__all__ = [
    "GenerateConfig",
    "add_arguments",
    "read_problems",
    "run",
    "traces_for",
]


@dataclass
class GenerateConfig:
    """Config of ``prmkit generate``."""

    problems: str = option("", "input: Problem records (JSONL/Parquet) or JSONL with 'prompt'")
    out: str = option("traces.jsonl", "output file of Trace records (.jsonl or .parquet)")
    n: int = option(16, "samples per problem", ge=1)
    temperature: float = option(0.7, "sampling temperature (0 = greedy)", ge=0)
    top_p: float = option(1.0, "nucleus sampling mass (1 = off)", gt=0, le=1)
    top_k: int = option(0, "top-k sampling (0 = off)", ge=0)
    max_new_tokens: int = option(256, "token budget of one solution", ge=1)
    seed: int = option(0, "seed; the same seed and inputs give the same traces", ge=0)
    limit: int | None = option(None, "use only the first N problems", ge=1)
    backend: Literal["transformers", "openai"] = option(
        "transformers", "in-process transformers model, or an OpenAI-compatible server"
    )
    model: str = option("smollm2", "model: 'smollm2', a local HF directory, or the served name")
    adapter: str | None = option(None, "LoRA adapter directory merged into the model (peft)")
    dtype: Dtype = option("float32", "torch dtype of the in-process model")
    device: str = option("cpu", "torch device of the in-process model")
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


def read_problems(path: str | Path, limit: int | None = None) -> list[Problem]:
    """Problem records, or ``{prompt, answer?, id?}`` JSONL objects turned into Problems.

    Raises:
        DataFormatError: a line is neither a Problem record nor has a ``prompt``; no problems.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        problems = read_records(path, Problem)[:limit]
    else:
        problems = _jsonl_problems(path, limit)
    if not problems:
        raise DataFormatError(
            f"0 problems in {path}",
            expected="at least one Problem record or object with 'prompt'",
            fix="pass the output of prmkit problems (did an earlier stage write nothing?)",
        )
    return problems


def _jsonl_problems(path: Path, limit: int | None) -> list[Problem]:
    problems: list[Problem] = []
    for lineno, obj in iter_jsonl(path):
        if limit is not None and len(problems) >= limit:
            break
        where = f"{path}:{lineno}"
        if "kind" in obj:
            problems.append(Problem.from_dict(obj, where=where))
            continue
        if not isinstance(obj.get("prompt"), str):
            raise DataFormatError(
                "line has no 'prompt' text",
                got=sorted(obj),
                where=where,
                expected="a Problem record or an object with 'prompt' (and 'answer', 'id')",
                fix="convert GSM8K/MATH-500 files with `prmkit problems` first",
            )
        answer = obj.get("answer", "")
        problems.append(
            Problem(
                id=str(obj.get("id", f"line{lineno}")),
                prompt=obj["prompt"],
                answer=answer if isinstance(answer, str) else str(answer),
                meta={},
            )
        )
    return problems


def traces_for(
    problem: Problem,
    prompt: str,
    completions: list[Any],
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
                    "sample_index": j,
                    "reference_answer": problem.answer,
                    "finish_reason": completion.finish_reason,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "sampling": {k: v for k, v in asdict(params).items()},
                },
            )
        )
    return traces, empty


def _generator(cfg: GenerateConfig) -> Generator:
    if cfg.backend == "openai":
        from prmkit.generate.openai_backend import OpenAIGenerator

        tokenizer = None
        if Path(cfg.model).expanduser().is_dir() or cfg.model == "smollm2":
            from prmkit.models import load_tokenizer

            tokenizer = load_tokenizer(cfg.model)
        return OpenAIGenerator(
            cfg.base_url, cfg.model, tokenizer=tokenizer, system=cfg.system, chat=cfg.chat
        )
    from prmkit.generate.transformers_backend import TransformersGenerator

    return TransformersGenerator.from_pretrained(
        cfg.model,
        adapter=cfg.adapter,
        dtype=cfg.dtype,
        device=cfg.device,
        batch_size=cfg.batch_size,
        system=cfg.system,
        chat=cfg.chat,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--config`` and the ``key=value`` overrides of :class:`GenerateConfig`."""
    add_config_arguments(parser, GenerateConfig)


def run(args: argparse.Namespace) -> int:
    """Run the stage; returns the exit code."""
    from tqdm import tqdm

    cfg = stage_config(GenerateConfig, args)
    if not cfg.problems:
        raise ConfigError(
            "no problems file given",
            got=cfg.problems,
            expected="problems=<file.jsonl>",
            fix="pass problems=path/to/file",
        )
    if cfg.adapter is not None and cfg.backend != "transformers":
        raise ConfigError(
            "adapter= needs backend=transformers",
            got=cfg.backend,
            expected="transformers",
            fix="serve the adapter with the server",
        )
    problems = read_problems(cfg.problems, cfg.limit)
    params = SamplingParams(
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        top_k=cfg.top_k,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
    )
    generator = _generator(cfg)
    meta = {
        "model": cfg.model,
        "adapter": cfg.adapter,
        "backend": cfg.backend,
        "prompt_template": cfg.prompt_template,
    }
    per_call = cfg.problems_per_call
    stats = {"traces": 0, "empty": 0, "length": 0, "tokens": 0}

    def produce() -> Iterator[Trace]:
        bar = tqdm(total=len(problems), desc="generate", unit="problem", file=sys.stderr)
        for start in range(0, len(problems), per_call):
            batch = problems[start : start + per_call]
            # one seed per call of problems_per_call problems; batch_size does not change output
            batch_params = SamplingParams(
                **{**asdict(params), "seed": row_seed(cfg.seed, start, 0)}
            )
            prompts = [render_prompt(p, cfg.prompt_template) for p in batch]
            outs = generator.continue_from(
                [Prefix(p) for p in prompts], cfg.n, batch_params, stop="solution"
            )
            for problem, prompt, completions in zip(batch, prompts, outs, strict=True):
                traces, empty = traces_for(
                    problem,
                    prompt,
                    completions,
                    params=params,
                    strategy=cfg.segmentation,
                    meta=meta,
                )
                stats["empty"] += empty
                stats["length"] += sum(c.finish_reason == "length" for c in completions)
                stats["tokens"] += sum(c.completion_tokens for c in completions)
                stats["traces"] += len(traces)
                yield from traces
            bar.update(len(batch))
        bar.close()

    write_records(cfg.out, produce())
    print(
        f"wrote {stats['traces']} traces for {len(problems)} problems to {cfg.out} "
        f"({stats['tokens']} completion tokens; {stats['length']} hit max_new_tokens; "
        f"{stats['empty']} empty completions skipped)"
    )
    return 0
