"""The round loop shared by beam search, DVTS and reward-guided greedy, and its compute accounting.

All three methods are one loop over *groups* of beams:

* each round, every active beam of every group is continued ``width`` times with one
  :meth:`~prmkit.generate.protocol.Generator.continue_from` call (``stop="step"``; the last
  round uses ``stop="solution"`` so every beam ends with a whole solution);
* only the new steps are scored (:class:`~prmkit.search.incremental.IncrementalScorer`);
* a child that ended its solution (``finish_reason == "eos"``) joins its group's finished list;
  the group keeps its best ``keep - finished`` unfinished children by aggregated step score
  (ties: the earlier child) as next round's active beams;
* a group stops when it has ``keep`` finished solutions or no unfinished child.

Beam search is one group (``keep = N / M`` beams, ``width = M``), DVTS is ``N / M`` groups of
``keep = 1``, ``width = M``, greedy is one group of ``keep = 1``, ``width = k``. The selected
solution is the finished beam with the highest aggregated score over all groups.

Every call's cost is counted exactly: the generator's own ``prompt_tokens`` and
``completion_tokens`` of every returned :class:`~prmkit.generate.protocol.Completion`, the
number of ``continue_from`` calls, and the PRM's tokens, forward passes and scored steps.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from prmkit.errors import ConfigError
from prmkit.generate.protocol import Completion, Generator, Prefix, SamplingParams
from prmkit.records import Problem, ScoredTrace
from prmkit.score.aggregate import AGGREGATIONS, aggregate, aggregate_all
from prmkit.search.incremental import IncrementalScorer, ScoreCost, ScoreState
from prmkit.steps import join_steps, split
from prmkit.tasks.prompts import render_prompt

__all__ = ["Beam", "Compute", "SearchResult", "round_seed", "tree_search"]


@dataclass
class Compute:
    """Exact compute of a search (or a best-of-N run).

    Attributes:
        policy_prompt_tokens: Sum of ``Completion.prompt_tokens`` over every completion returned
            (a prefix continued ``M`` times counts ``M`` times, as the generator reports it).
        policy_completion_tokens: Sum of ``Completion.completion_tokens``.
        policy_completions: Completions returned.
        generator_calls: ``continue_from`` / ``sample`` calls.
        prm_tokens: Tokens run through the PRM (KV-cached tokens are not run again).
        prm_forward_passes: PRM forward calls.
        prm_steps_scored: Step scores computed.
    """

    policy_prompt_tokens: int = 0
    policy_completion_tokens: int = 0
    policy_completions: int = 0
    generator_calls: int = 0
    prm_tokens: int = 0
    prm_forward_passes: int = 0
    prm_steps_scored: int = 0

    def add_call(self, out: Sequence[Sequence[Completion]]) -> None:
        """Count one generator call and the completions it returned."""
        self.generator_calls += 1
        for group in out:
            for c in group:
                self.policy_prompt_tokens += c.prompt_tokens
                self.policy_completion_tokens += c.completion_tokens
                self.policy_completions += 1

    def add_prm(self, cost: ScoreCost) -> None:
        """Count PRM work."""
        self.prm_tokens += cost.prm_tokens
        self.prm_forward_passes += cost.prm_forward_passes
        self.prm_steps_scored += cost.prm_steps_scored

    @property
    def policy_tokens(self) -> int:
        """Prompt plus completion tokens of the policy."""
        return self.policy_prompt_tokens + self.policy_completion_tokens

    def to_dict(self) -> dict[str, int]:
        """JSON-ready counts."""
        return asdict(self)


@dataclass
class Beam:
    """One partial or finished solution in the search.

    Attributes:
        state: The scored steps so far.
        group: The group (DVTS subtree) it belongs to.
        score: The aggregated step score (``-inf`` for a beam without steps).
        finish_reason: The last completion's finish reason.
    """

    state: ScoreState
    group: int
    score: float
    finish_reason: str = ""


@dataclass
class SearchResult:
    """The outcome of searching one problem.

    Attributes:
        record: The selected solution as a ScoredTrace (``None`` if no beam produced a step).
        finished: Every finished beam, best first.
        compute: The exact cost.
        stats: Counts: rounds, empty completions, steps cut at ``step_tokens``.
    """

    record: ScoredTrace | None
    finished: list[Beam]
    compute: Compute
    stats: dict[str, int] = field(default_factory=dict)


def round_seed(seed: int, problem_id: str, round_index: int) -> int:
    """The seed of one round's generator call: depends on the seed, the problem id and the round.

    Example:
        >>> round_seed(0, "p1", 2) == round_seed(0, "p1", 2) != round_seed(0, "p1", 3)
        True
    """
    state = np.random.SeedSequence(
        [seed & 0xFFFFFFFFFFFF, zlib.crc32(problem_id.encode()), round_index]
    )
    return int(state.generate_state(1, dtype=np.uint64)[0] >> 1)


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{name} must be a positive integer",
            got=value,
            expected="an integer >= 1",
            fix=f"set {name} to 1 or more",
        )


def tree_search(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    *,
    method: str,
    groups: int,
    keep: int,
    width: int,
    max_steps: int = 12,
    step_tokens: int = 96,
    final_tokens: int = 256,
    temperature: float = 0.8,
    top_p: float = 1.0,
    top_k: int = 0,
    aggregation: str = "min",
    seed: int = 0,
    settings: dict[str, Any] | None = None,
) -> SearchResult:
    """Search one problem (see the module doc); the building block of beam, DVTS and greedy.

    Args:
        problem: The problem; its ``prompt`` goes to both the policy and the PRM.
        generator: The policy.
        scorer: The incremental PRM.
        method: Name written to the record.
        groups: Independent groups (DVTS subtrees).
        keep: Active beams per group, and finished solutions a group collects.
        width: Children per active beam per round.
        max_steps: Rounds; the last one finishes every beam's solution.
        step_tokens: Token budget of one step.
        final_tokens: Token budget of the last round's continuation.
        temperature: Sampling temperature.
        top_p: Nucleus mass.
        top_k: Top-k (0 = off).
        aggregation: How step scores rank beams: min, prod, last or mean.
        seed: Base seed (each round's call uses :func:`round_seed`).
        settings: Extra settings to write into the record's ``meta``.

    Raises:
        ConfigError: a non-positive size or an unknown aggregation.
    """
    for name, value in (
        ("groups", groups),
        ("keep", keep),
        ("width", width),
        ("max_steps", max_steps),
        ("step_tokens", step_tokens),
        ("final_tokens", final_tokens),
    ):
        _check_positive(name, value)
    if aggregation not in AGGREGATIONS:
        raise ConfigError(
            "unknown aggregation",
            got=aggregation,
            expected=f"one of {list(AGGREGATIONS)}",
            fix="pick a listed aggregation",
        )
    compute = Compute()
    stats = {"rounds": 0, "empty_completions": 0, "steps_cut_at_step_tokens": 0}
    root = scorer.root(render_prompt(problem))
    active: list[list[Beam]] = [[Beam(root, g, float("-inf"))] for g in range(groups)]
    finished: list[list[Beam]] = [[] for _ in range(groups)]
    for rnd in range(max_steps):
        work = [b for g in range(groups) for b in active[g]]
        if not work:
            break
        last = rnd == max_steps - 1
        params = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=final_tokens if last else step_tokens,
            seed=round_seed(seed, problem.id, rnd),
        )
        out = generator.continue_from(
            [Prefix(render_prompt(problem), b.state.steps) for b in work],
            width,
            params,
            stop="solution" if last else "step",
        )
        compute.add_call(out)
        stats["rounds"] += 1
        children: list[tuple[Beam, list[str], bool, str]] = []
        for beam, completions in zip(work, out, strict=True):
            for c in completions:
                new = split(c.text).steps
                done = last or c.finish_reason == "eos"
                if not new and (not done or not beam.state.steps):
                    stats["empty_completions"] += 1
                    continue
                if c.finish_reason == "length" and not last:
                    stats["steps_cut_at_step_tokens"] += 1
                children.append((beam, new, done, c.finish_reason))
        states, cost = scorer.extend([(beam.state, new) for beam, new, _, _ in children])
        compute.add_prm(cost)
        next_active: list[list[Beam]] = [[] for _ in range(groups)]
        for (beam, _, done, reason), state in zip(children, states, strict=True):
            child = Beam(state, beam.group, aggregate(state.scores, aggregation), reason)
            (finished if done else next_active)[beam.group].append(child)
        for g in range(groups):
            need = keep - len(finished[g])
            ranked = sorted(
                enumerate(next_active[g]), key=lambda ib: (-ib[1].score, ib[0])
            )  # stable: the earlier child wins a tie
            active[g] = [b for _, b in ranked[: max(need, 0)]]
    done_beams = sorted(
        (b for g in finished for b in g), key=lambda b: -b.score
    )  # sorted() is stable: ties keep group/child order
    record = None
    if done_beams:
        best = done_beams[0]
        record = _record(
            problem,
            best,
            done_beams,
            compute,
            stats,
            method=method,
            aggregation=aggregation,
            prm=getattr(scorer, "name", "prm"),
            settings={
                "groups": groups,
                "keep": keep,
                "width": width,
                "max_steps": max_steps,
                "step_tokens": step_tokens,
                "final_tokens": final_tokens,
                "temperature": temperature,
                "top_p": top_p,
                "top_k": top_k,
                "seed": seed,
                **(settings or {}),
            },
        )
    return SearchResult(record, done_beams, compute, stats)


def _record(
    problem: Problem,
    best: Beam,
    done: list[Beam],
    compute: Compute,
    stats: dict[str, int],
    *,
    method: str,
    aggregation: str,
    prm: str,
    settings: dict[str, Any],
) -> ScoredTrace:
    from prmkit.tasks.answers import extract_answer

    steps = list(best.state.steps)
    return ScoredTrace(
        id=f"{problem.id}-{method}",
        problem_id=problem.id,
        prompt=render_prompt(problem),
        steps=steps,
        answer=extract_answer(join_steps(steps)),
        meta={
            "method": method,
            "aggregation": aggregation,
            "search_score": best.score,
            "finish_reason": best.finish_reason,
            "prm_aggregates": aggregate_all(best.state.scores),
            "compute": compute.to_dict(),
            "search_stats": dict(stats),
            "settings": settings,
            "candidates": [
                {
                    "answer": extract_answer(join_steps(list(b.state.steps))),
                    "score": b.score,
                    "n_steps": len(b.state.steps),
                    "group": b.group,
                }
                for b in done
            ],
        },
        step_scores=list(best.state.scores),
        prm=prm,
    )
