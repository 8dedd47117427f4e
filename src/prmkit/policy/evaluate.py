"""Evaluate a policy on held-out built-in arithmetic problems with the exact step checker.

For each problem the policy samples ``k`` solutions; each is split into steps and checked
(:func:`prmkit.tasks.arithmetic_check.check_steps`). Reported:

* ``pass@1``: the mean share of correct samples (the unbiased estimate from ``k`` samples),
* ``pass@k``: the share of problems with at least one correct sample,
* ``maj@k``: the share of problems whose most frequent final answer is the gold answer
  (answers grouped by math-verify equivalence; a tie counts fractionally),
* the histogram of first-error step positions over all wrong samples (``0`` = the first step).

A sample is correct when every step is correct and it ends with the right answer line. The
numbers come from :func:`prmkit.tasks.accuracy.accuracy_at_k`, the pass@k / maj@k that best-of-N
and the demo use too.

Example:
    >>> from prmkit.generate import SamplingParams, TransformersGenerator
    >>> gen = TransformersGenerator.from_pretrained("smollm2", adapter=warmup())  # doctest: +SKIP
    >>> result = evaluate_policy(gen, heldout_problems(20), k=16)  # doctest: +SKIP
    >>> print(result.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prmkit.generate.protocol import Generator, SamplingParams
from prmkit.records import Problem

__all__ = ["PolicyEval", "evaluate_policy", "heldout_problems"]


@dataclass
class PolicyEval:
    """The result of :func:`evaluate_policy`.

    Attributes:
        n_problems: Problems evaluated.
        k: Samples per problem.
        pass_at_1: Mean share of correct samples per problem.
        pass_at_k: Share of problems with a correct sample.
        maj_at_k: Share of problems whose majority final answer is right.
        first_errors: Wrong samples by the step of their first error (``{step: count}``).
        correct: Correct samples.
        no_answer: Samples without an answer line.
        completion_tokens: Tokens generated in all.
        wall_s: Sampling and checking time.
        samples: ``(problem_id, text, first_error)`` of every sample, for inspection.
    """

    n_problems: int
    k: int
    pass_at_1: float
    pass_at_k: float
    maj_at_k: float
    first_errors: dict[int, int]
    correct: int
    no_answer: int
    completion_tokens: int
    wall_s: float
    samples: list[tuple[str, str, int]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no samples)."""
        return {
            "n_problems": self.n_problems,
            "k": self.k,
            "pass@1": round(self.pass_at_1, 4),
            f"pass@{self.k}": round(self.pass_at_k, 4),
            f"maj@{self.k}": round(self.maj_at_k, 4),
            "first_errors": {str(s): c for s, c in sorted(self.first_errors.items())},
            "correct": self.correct,
            "no_answer": self.no_answer,
            "completion_tokens": self.completion_tokens,
            "wall_s": round(self.wall_s, 2),
            "tokens_per_s": round(self.completion_tokens / self.wall_s, 1) if self.wall_s else 0,
        }

    def summary(self) -> str:
        """A few human-readable lines."""
        hist = " ".join(f"{s}:{c}" for s, c in sorted(self.first_errors.items())) or "-"
        total = self.n_problems * self.k
        return (
            f"{self.n_problems} problems x {self.k} samples: pass@1 {self.pass_at_1:.1%}  "
            f"pass@{self.k} {self.pass_at_k:.1%}  maj@{self.k} {self.maj_at_k:.1%}\n"
            f"correct samples {self.correct}/{total}, without an answer {self.no_answer}\n"
            f"first error at step (count): {hist}\n"
            f"{self.completion_tokens} tokens sampled in {self.wall_s:.1f} s "
            f"({self.completion_tokens / max(self.wall_s, 1e-9):.0f} tokens/s)"
        )


def heldout_problems(
    n: int, *, seed: int = 1000, n_steps: int = 4, **settings: Any
) -> list[Problem]:
    """``n`` built-in problems of ``n_steps`` operations from run ``seed`` (default ranges).

    Use a seed that no training run uses: problem ``i`` of a run depends only on
    ``(seed, i)``, so another seed gives other problems.
    """
    from prmkit.tasks.arithmetic import generate

    return generate(n, seed=seed, n_steps=n_steps, **settings)


def evaluate_policy(
    generator: Generator,
    problems: Sequence[Problem],
    *,
    k: int = 16,
    temperature: float = 0.7,
    top_p: float = 1.0,
    max_new_tokens: int = 192,
    seed: int = 0,
) -> PolicyEval:
    """Sample ``k`` solutions per problem and score them with the exact step checker.

    Args:
        generator: Any :class:`~prmkit.generate.protocol.Generator` (e.g. a
            ``TransformersGenerator`` over :func:`prmkit.policy.load_policy`).
        problems: Built-in arithmetic problems (with gold states in ``meta``).
        k: Samples per problem.
        temperature: Sampling temperature.
        top_p: Nucleus sampling mass.
        max_new_tokens: Longest solution; a cut-off solution has no answer and counts as wrong.
        seed: Sampling seed.
    """
    from prmkit.steps import split_steps
    from prmkit.tasks.accuracy import Attempt, accuracy_at_k
    from prmkit.tasks.arithmetic_check import check_steps
    from prmkit.tasks.prompts import render_prompt

    params = SamplingParams(
        temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed
    )
    start = time.perf_counter()
    out = generator.sample([render_prompt(p) for p in problems], k, params)
    first_errors: Counter[int] = Counter()
    samples: list[tuple[str, str, int]] = []
    attempts: list[list[Attempt]] = []
    no_answer = tokens = 0
    for problem, group in zip(problems, out, strict=True):
        attempts.append([])
        for completion in group:
            tokens += completion.completion_tokens
            check = check_steps(problem, split_steps(completion.text))
            ok = check.first_error == -1 and check.answer_correct
            attempts[-1].append(Attempt(ok, check.final_answer, check.answer_correct))
            no_answer += check.final_answer is None
            if not ok:
                first_errors[check.first_error] += 1
            samples.append((problem.id, completion.text, check.first_error))
    acc = accuracy_at_k(attempts)
    return PolicyEval(
        n_problems=len(problems),
        k=k,
        pass_at_1=acc.pass_at_1,
        pass_at_k=acc.pass_at_k,
        maj_at_k=acc.maj_at_k,
        first_errors=dict(first_errors),
        correct=sum(a.correct for group in attempts for a in group),
        no_answer=no_answer,
        completion_tokens=tokens,
        wall_s=time.perf_counter() - start,
        samples=samples,
    )
