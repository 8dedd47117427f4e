"""What the search methods share: one expansion round, the compute, the result record.

:class:`Rounds` holds a problem's search state that every method needs. Its
:meth:`Rounds.expand` continues a list of beams, each a given number of times, by one step
(:meth:`~prmkit.generate.protocol.Generator.continue_from` with ``stop="step"``; in the last
round, ``max_steps``, ``stop="solution"`` so every beam ends with a whole solution), scores only
the new steps (:class:`~prmkit.score.incremental.IncrementalScorer`) and returns the children.
Beams asking for the same number of children share one generator call (beam search asks for at
most two different numbers per round; DVTS and greedy for one).

A child is *done* when its completion ended the solution (``finish_reason == "eos"``), in the last
round, or, with ``cut_steps="finish"``, when its step was cut at ``step_tokens`` (search-and-
learn's beam search treats such a length stop as completed; prmkit's default keeps the cut step
and continues it). A completion without a new step is dropped (counted in ``empty_completions``)
unless it ends a beam that has steps.

:meth:`Rounds.result` applies the three answer rules of :mod:`prmkit.search.select` (naive,
PRM-weighted, majority) to the method's candidates and writes the naive pick as the record.

Every call's cost is counted exactly: the generator's own ``prompt_tokens`` and
``completion_tokens`` of every returned :class:`~prmkit.generate.protocol.Completion` (and the
prompt tokens with prefix-cache credit: each distinct prefix once per call), the number of
``continue_from`` calls, and the PRM's tokens, forward passes and scored steps.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from prmkit.generate.protocol import Completion, Generator, Prefix, SamplingParams
from prmkit.records import Problem, ScoredTrace
from prmkit.score.aggregate import aggregate, aggregate_all
from prmkit.score.incremental import IncrementalScorer, ScoreCost, ScoreState
from prmkit.search.select import RULES, Selection, select_answers
from prmkit.steps import join_steps, split
from prmkit.tasks.prompts import render_prompt

__all__ = ["Beam", "Compute", "Rounds", "SearchResult", "round_seed"]


@dataclass
class Compute:
    """Exact compute of a search (or a best-of-N run).

    Attributes:
        policy_prompt_tokens: Sum of ``Completion.prompt_tokens`` over every completion returned
            (a prefix continued ``M`` times counts ``M`` times, as the generator reports it).
        policy_prompt_tokens_prefix_cached: The same with prefix-cache credit: each distinct
            prefix of a call counted once, however many completions it got.
        policy_completion_tokens: Sum of ``Completion.completion_tokens``.
        policy_completions: Completions returned.
        generator_calls: ``continue_from`` / ``sample`` calls.
        prm_tokens: Tokens run through the PRM (KV-cached tokens are not run again).
        prm_forward_passes: PRM forward calls.
        prm_steps_scored: Step scores computed.
    """

    policy_prompt_tokens: int = 0
    policy_prompt_tokens_prefix_cached: int = 0
    policy_completion_tokens: int = 0
    policy_completions: int = 0
    generator_calls: int = 0
    prm_tokens: int = 0
    prm_forward_passes: int = 0
    prm_steps_scored: int = 0

    def add_call(self, keys: Sequence[Hashable], out: Sequence[Sequence[Completion]]) -> None:
        """Count one generator call: ``out[i]`` are the completions of the prefix ``keys[i]``."""
        self.generator_calls += 1
        seen: set[Hashable] = set()
        for key, group in zip(keys, out, strict=True):
            for c in group:
                self.policy_prompt_tokens += c.prompt_tokens
                self.policy_completion_tokens += c.completion_tokens
                self.policy_completions += 1
            if group and key not in seen:
                seen.add(key)
                self.policy_prompt_tokens_prefix_cached += group[0].prompt_tokens

    def add_prm(self, cost: ScoreCost) -> None:
        """Count PRM work."""
        self.prm_tokens += cost.prm_tokens
        self.prm_forward_passes += cost.prm_forward_passes
        self.prm_steps_scored += cost.prm_steps_scored

    def add(self, other: Compute) -> None:
        """Add another compute into this one."""
        for name, value in other.to_dict().items():
            setattr(self, name, getattr(self, name) + value)

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
        done: Whether the beam is finished (see the module doc).
    """

    state: ScoreState
    group: int
    score: float
    finish_reason: str = ""
    done: bool = False


@dataclass
class SearchResult:
    """The outcome of searching one problem.

    Attributes:
        record: The naive pick as a ScoredTrace (``None`` if no candidate had a step).
        finished: Every finished beam, best first.
        candidates: The N solutions the answer rules vote over, in the method's order (beam
            search repeats a solution when fewer than N finished, as search-and-learn does).
        picks: Per rule (naive, weighted, majority), the picked candidate or ``None``.
        compute: The exact cost.
        stats: Counts: rounds, empty completions, steps cut at ``step_tokens``.
    """

    record: ScoredTrace | None
    finished: list[Beam]
    candidates: list[Beam]
    picks: dict[str, Beam | None]
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


class Rounds:
    """A problem's search: expands beams round by round and builds the result.

    The settings come checked from a :class:`~prmkit.search.config.SearchConfig`.

    Args:
        problem: The problem; its ``prompt`` goes to both the policy and the PRM.
        generator: The policy.
        scorer: The incremental PRM.
        max_steps: Rounds; the last one finishes every beam's solution.
        step_tokens: Token budget of one step (every round but the last).
        sampling: Sampling of every call; ``max_new_tokens`` is the last round's budget,
            ``seed`` the base of each round's seed (:func:`round_seed`).
        aggregation: How step scores rank beams: min, prod, last or mean.
        cut_steps: What a step cut at ``step_tokens`` does: ``continue`` (kept, continued next
            round) or ``finish`` (the beam is completed, as search-and-learn's beam search).
    """

    def __init__(
        self,
        problem: Problem,
        generator: Generator,
        scorer: IncrementalScorer,
        *,
        max_steps: int,
        step_tokens: int,
        sampling: SamplingParams,
        aggregation: str,
        cut_steps: Literal["continue", "finish"],
    ) -> None:
        self.problem, self.generator, self.scorer = problem, generator, scorer
        self.prompt = render_prompt(problem)
        self.max_steps, self.aggregation, self.cut_steps = max_steps, aggregation, cut_steps
        self.step_tokens, self.sampling = step_tokens, sampling
        self.settings: dict[str, Any] = {
            "max_steps": max_steps,
            "step_tokens": step_tokens,
            "final_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": sampling.top_k,
            "seed": sampling.seed,
            "cut_steps": cut_steps,
        }
        self.compute = Compute()
        self.stats = {"rounds": 0, "empty_completions": 0, "steps_cut_at_step_tokens": 0}
        self._root = scorer.root(self.prompt)

    def root(self, group: int = 0) -> Beam:
        """The empty beam of ``group``."""
        return Beam(self._root, group, float("-inf"))

    def _params(self, last: bool, seed: int) -> SamplingParams:
        budget = self.sampling.max_new_tokens if last else self.step_tokens
        return dataclasses.replace(self.sampling, max_new_tokens=budget, seed=seed)

    def expand(self, requests: Sequence[tuple[Beam, int]], rnd: int) -> list[list[Beam]]:
        """Continue each ``(beam, count)`` ``count`` times; the scored children per request.

        Requests with the same count share one call; the first call of round ``rnd`` is seeded
        with ``round_seed(seed, problem.id, rnd)``, a second with ``problem.id + "#1"``.
        """
        last = rnd == self.max_steps - 1
        by_count: dict[int, list[int]] = {}
        for i, (_, count) in enumerate(requests):
            by_count.setdefault(count, []).append(i)
        completions: list[list[Completion]] = [[] for _ in requests]
        for call, (count, members) in enumerate(by_count.items()):
            pid = self.problem.id if call == 0 else f"{self.problem.id}#{call}"
            prefixes = [Prefix(self.prompt, requests[i][0].state.steps) for i in members]
            out = self.generator.continue_from(
                prefixes,
                count,
                self._params(last, round_seed(self.settings["seed"], pid, rnd)),
                stop="solution" if last else "step",
            )
            self.compute.add_call(prefixes, out)
            for i, group in zip(members, out, strict=True):
                completions[i] = list(group)
        self.stats["rounds"] += 1
        plan: list[tuple[int, list[str], bool, str]] = []
        for i, ((beam, _), group) in enumerate(zip(requests, completions, strict=True)):
            for c in group:
                new = split(c.text).steps
                cut = c.finish_reason == "length" and not last
                done = last or c.finish_reason == "eos" or (cut and self.cut_steps == "finish")
                if not new and (not done or not beam.state.steps):
                    self.stats["empty_completions"] += 1
                    continue
                self.stats["steps_cut_at_step_tokens"] += cut
                plan.append((i, new, done, c.finish_reason))
        states, cost = self.scorer.extend([(requests[i][0].state, new) for i, new, _, _ in plan])
        self.compute.add_prm(cost)
        children: list[list[Beam]] = [[] for _ in requests]
        for (i, _, done, reason), state in zip(plan, states, strict=True):
            score = aggregate(state.scores, self.aggregation)
            children[i].append(Beam(state, requests[i][0].group, score, reason, done))
        return children

    def result(
        self,
        method: str,
        candidates: list[Beam],
        finished: list[Beam],
        settings: dict[str, Any],
    ) -> SearchResult:
        """Select answers among ``candidates`` and write the naive pick as the record."""
        from prmkit.tasks.answers import extract_answer

        distinct = list({id(b): b for b in candidates}.values())
        answer_of = {id(b): extract_answer(join_steps(list(b.state.steps))) for b in distinct}
        selection = select_answers(
            [answer_of[id(b)] for b in candidates], [b.score for b in candidates]
        )
        picks = {
            rule: candidates[selection.pick(rule)] if selection.pick(rule) >= 0 else None
            for rule in RULES
        }
        record = None
        best = picks["naive"]
        if best is not None:
            index = {id(b): k for k, b in enumerate(distinct)}
            copies = {id(b): 0 for b in distinct}
            for b in candidates:
                copies[id(b)] += 1
            record = ScoredTrace(
                id=f"{self.problem.id}-{method}",
                problem_id=self.problem.id,
                prompt=self.prompt,
                steps=list(best.state.steps),
                answer=answer_of[id(best)],
                meta={
                    "method": method,
                    "aggregation": self.aggregation,
                    "search_score": best.score,
                    "finish_reason": best.finish_reason,
                    "prm_aggregates": aggregate_all(best.state.scores),
                    "compute": self.compute.to_dict(),
                    "search_stats": dict(self.stats),
                    "settings": {**self.settings, **settings},
                    "selection": _selection_meta(selection, picks, answer_of, index),
                    "n_candidates": len(candidates),
                    "candidates": [
                        {
                            "answer": answer_of[id(b)],
                            "score": b.score,
                            "n_steps": len(b.state.steps),
                            "group": b.group,
                            "finished": b.done,
                            "copies": copies[id(b)],
                        }
                        for b in distinct
                    ],
                },
                step_scores=list(best.state.scores),
                prm=getattr(self.scorer, "name", "prm"),
            )
        return SearchResult(record, finished, candidates, picks, self.compute, dict(self.stats))


def _selection_meta(
    selection: Selection,
    picks: dict[str, Beam | None],
    answer_of: dict[int, str | None],
    index: dict[int, int],
) -> dict[str, Any]:
    """``meta["selection"]``: per rule the answer, its score/weight/votes and candidate index."""
    out: dict[str, Any] = {}
    for rule in RULES:
        beam = picks[rule]
        if beam is None:
            out[rule] = None
            continue
        entry: dict[str, Any] = {"answer": answer_of[id(beam)], "candidate": index[id(beam)]}
        if rule == "naive":
            entry["score"] = beam.score
        elif rule == "weighted":
            entry["weight"] = selection.weight
        else:
            entry["votes"] = selection.votes
        out[rule] = entry
    return out
