"""Search against best-of-N at equal policy tokens.

For each problem the search runs first; its policy tokens (completion tokens by default, or
prompt + completion with ``match="total"``) are that problem's budget. Best-of-N then samples
whole solutions from the same policy, one after another in sample order, and keeps as many as fit
in the budget (at least one). The kept samples are scored by the same PRM (one pass each).

Both sides are read with the same three answer rules (:mod:`prmkit.search.select`): ``naive``
(best-of-N: ``prm``), the highest aggregated score; ``weighted``, the answer with the largest
score sum; ``majority``, the most frequent answer (answers grouped by math-verify equivalence).
Accuracies are exact-checked on the built-in arithmetic task
(:func:`prmkit.tasks.arithmetic_check.check_steps`), and checked with
:func:`prmkit.tasks.answers.check_answer` on other tasks.

Samples are drawn in chunks, so a few drawn past the budget are thrown away; the compute written
counts the kept samples only (as if drawn one by one) and the thrown-away ones separately.

The result JSON (``"benchmark": "search_vs_bon"``)::

    {"benchmark": "search_vs_bon", "method": "beam", "match": "completion", "n_problems": 20,
     "aggregation": "min", "settings": {...},
     "search": {"accuracy": 45.0, "accuracy_weighted": 50.0, "accuracy_majority": 50.0,
                "n_correct": 9, "n_correct_weighted": 10, "n_correct_majority": 10,
                "compute": {...}},
     "best_of_n": {"accuracy_prm": 40.0, "accuracy_weighted": 45.0, "accuracy_majority": 35.0,
                   "n_mean": 6.2, "n_correct_prm": 8, "n_correct_weighted": 9,
                   "n_correct_majority": 7, "compute": {...}, "discarded_samples": 3},
     "budget": {"search_tokens": 51234, "bon_tokens": 50876, "ratio": 0.993},
     "problems": [{"id", "search_correct", "search_weighted_correct", "search_majority_correct",
                   "bon_n", "bon_prm_correct", "bon_weighted_correct", "bon_majority_correct",
                   "search_tokens", "bon_tokens"}]}

``search.accuracy`` is the naive pick (the record written). Accuracies are in percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prmkit.errors import ConfigError
from prmkit.generate.protocol import Completion, Generator, SamplingParams
from prmkit.records import Problem, ScoredTrace
from prmkit.score.aggregate import aggregate, aggregate_all
from prmkit.score.incremental import IncrementalScorer
from prmkit.search.engine import Compute, SearchResult, round_seed
from prmkit.search.select import RULES, select_answers
from prmkit.steps import join_steps, split
from prmkit.tasks.prompts import render_prompt

__all__ = [
    "BestOfNResult",
    "check_correct",
    "compare_with_best_of_n",
    "mark_correct",
    "matched_best_of_n",
]

Match = Literal["completion", "total"]


def check_correct(problem: Problem, steps: Sequence[str]) -> bool:
    """Whether a solution reaches the problem's answer: exact on the arithmetic task.

    Raises:
        CheckerError: the answer cannot be checked (see :func:`prmkit.tasks.answers.check_answer`).
    """
    if problem.meta.get("task") == "arithmetic":
        from prmkit.tasks.arithmetic_check import check_steps

        return check_steps(problem, list(steps)).answer_correct
    from prmkit.tasks.answers import check_answer

    return check_answer(problem, join_steps(list(steps)))


def _tokens(c: Completion, match: Match) -> int:
    return c.completion_tokens + (c.prompt_tokens if match == "total" else 0)


def _search_tokens(compute: Compute, match: Match) -> int:
    return compute.policy_completion_tokens + (
        compute.policy_prompt_tokens if match == "total" else 0
    )


@dataclass
class BestOfNResult:
    """Best-of-N on one problem under a token budget.

    Attributes:
        traces: The kept samples, scored (``meta["correct"]`` set), in sample order.
        prm_pick: Index of the PRM's (naive) pick in ``traces`` (-1: no sample had steps).
        majority_pick: Index of the first trace of the most frequent answer (-1: no answers).
        compute: Cost of the kept samples (policy and PRM).
        discarded: Samples drawn past the budget and thrown away.
        tokens: Policy tokens of the kept samples, counted as ``match`` says.
        n: Samples kept.
    """

    traces: list[ScoredTrace]
    prm_pick: int
    majority_pick: int
    compute: Compute
    discarded: int = 0
    tokens: int = 0
    n: int = 0
    weighted_pick: int = -1


def matched_best_of_n(
    problem: Problem,
    generator: Generator,
    scorer: IncrementalScorer,
    budget: int,
    *,
    match: Match = "completion",
    aggregation: str = "min",
    max_n: int = 64,
    first_chunk: int = 4,
    max_new_tokens: int = 256,
    temperature: float = 0.8,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    check: bool = True,
) -> BestOfNResult:
    """Sample whole solutions until the policy-token ``budget`` is used, then pick the best.

    Raises:
        ConfigError: ``max_n`` or ``first_chunk`` below 1.
    """
    if max_n < 1 or first_chunk < 1:
        raise ConfigError(
            "max_n and first_chunk must be >= 1",
            got={"max_n": max_n, "first_chunk": first_chunk},
            expected="positive integers",
            fix="e.g. max_n=64 first_chunk=4",
        )
    drawn: list[Completion] = []
    kept: list[Completion] = []
    kept_calls: set[int] = set()
    used = call = n_drawn = 0
    full = False
    while not full and len(kept) < max_n:
        if drawn:
            mean = max(1.0, sum(_tokens(c, match) for c in drawn) / len(drawn))
            want = max(1, math.ceil((budget - used) / mean) + 1)
        else:
            want = first_chunk
        want = min(want, max_n - len(kept))
        params = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            max_new_tokens=max_new_tokens,
            seed=round_seed(seed, problem.id, 1_000_000 + call),
        )
        (chunk,) = generator.sample([render_prompt(problem)], want, params)
        call += 1
        n_drawn += len(chunk)
        for c in chunk:
            drawn.append(c)
            cost = _tokens(c, match)
            if kept and used + cost > budget:
                full = True
                break
            kept.append(c)
            kept_calls.add(call - 1)
            used += cost
            if len(kept) >= max_n:
                break
    compute = Compute()
    compute.generator_calls = call
    for c in kept:
        compute.policy_prompt_tokens += c.prompt_tokens
        compute.policy_completion_tokens += c.completion_tokens
        compute.policy_completions += 1
    if kept:  # prefix-cache credit: the prompt once per call that kept a sample
        compute.policy_prompt_tokens_prefix_cached = kept[0].prompt_tokens * len(kept_calls)
    pieces = [(j, split(c.text).steps) for j, c in enumerate(kept)]
    with_steps = [(j, s) for j, s in pieces if s]
    root = scorer.root(render_prompt(problem))
    states, cost = scorer.extend([(root, s) for _, s in with_steps])
    compute.add_prm(cost)
    from prmkit.tasks.answers import extract_answer

    traces: list[ScoredTrace] = []
    for (j, steps), state in zip(with_steps, states, strict=True):
        meta: dict[str, Any] = {
            "method": "best_of_n",
            "sample_index": j,
            "prompt_tokens": kept[j].prompt_tokens,
            "completion_tokens": kept[j].completion_tokens,
            "finish_reason": kept[j].finish_reason,
            "prm_aggregates": aggregate_all(state.scores),
        }
        if check:
            meta["correct"] = check_correct(problem, steps)
        traces.append(
            ScoredTrace(
                id=f"{problem.id}-bon-s{j}",
                problem_id=problem.id,
                prompt=render_prompt(problem),
                steps=list(steps),
                answer=extract_answer(join_steps(list(steps))),
                meta=meta,
                step_scores=list(state.scores),
                prm=getattr(scorer, "name", "prm"),
            )
        )
    selection = select_answers(
        [t.answer for t in traces], [aggregate(t.step_scores, aggregation) for t in traces]
    )
    return BestOfNResult(
        traces,
        selection.naive,
        selection.majority,
        compute,
        discarded=n_drawn - len(kept),
        tokens=used,
        n=len(kept),
        weighted_pick=selection.weighted,
    )


_CORRECT = (
    "search_correct",
    "search_weighted_correct",
    "search_majority_correct",
    "bon_prm_correct",
    "bon_weighted_correct",
    "bon_majority_correct",
)


def _pct(k: int, n: int) -> float:
    return 100.0 * k / n if n else 0.0


def compare_with_best_of_n(
    problems: Sequence[Problem],
    generator: Generator,
    scorer: IncrementalScorer,
    search: Callable[[Problem], SearchResult],
    *,
    method: str,
    match: Match = "completion",
    aggregation: str = "min",
    settings: dict[str, Any] | None = None,
    **bon_kwargs: Any,
) -> tuple[dict[str, Any], list[ScoredTrace], list[ScoredTrace]]:
    """Run ``search`` and matched best-of-N on every problem.

    Args:
        problems: The problems (with answers).
        generator: The policy (the same for both).
        scorer: The PRM (the same for both).
        search: ``problem -> SearchResult``, e.g.
            ``lambda p: search([p], generator, scorer, cfg)[0]``.
        method: The search method's name.
        match: ``"completion"`` (generated tokens) or ``"total"`` (prompt + completion).
        aggregation: Best-of-N's selection aggregation (use the search's).
        settings: Written into the result.
        bon_kwargs: Passed to :func:`matched_best_of_n`.

    Returns:
        ``(result_json, search_records, bon_records)``; search records get ``meta["correct"]``
        (and ``correct_weighted``, ``correct_majority``: see :func:`mark_correct`).
    """
    if match not in ("completion", "total"):
        raise ConfigError(
            "unknown token match", got=match, expected="'completion' or 'total'", fix="pick one"
        )
    search_total, bon_total = Compute(), Compute()
    rows, search_records, bon_records = [], [], []
    discarded = 0
    for problem in problems:
        result = search(problem)
        search_total.add(result.compute)
        budget = _search_tokens(result.compute, match)
        ok = mark_correct(problem, result)
        if result.record is not None:
            search_records.append(result.record)
        bon = matched_best_of_n(
            problem, generator, scorer, budget, match=match, aggregation=aggregation, **bon_kwargs
        )
        bon_total.add(bon.compute)
        discarded += bon.discarded
        bon_records += bon.traces
        bon_ok = {
            rule: pick >= 0 and bool(bon.traces[pick].meta.get("correct"))
            for rule, pick in (
                ("prm", bon.prm_pick),
                ("weighted", bon.weighted_pick),
                ("majority", bon.majority_pick),
            )
        }
        rows.append(
            {
                "id": problem.id,
                "search_correct": ok["naive"],
                "search_weighted_correct": ok["weighted"],
                "search_majority_correct": ok["majority"],
                "bon_n": bon.n,
                "bon_prm_correct": bon_ok["prm"],
                "bon_weighted_correct": bon_ok["weighted"],
                "bon_majority_correct": bon_ok["majority"],
                "search_tokens": budget,
                "bon_tokens": bon.tokens,
            }
        )
    k = len(problems)
    s_tok = sum(r["search_tokens"] for r in rows)
    b_tok = sum(r["bon_tokens"] for r in rows)
    n = {key: sum(bool(r[key]) for r in rows) for key in _CORRECT}
    out = {
        "benchmark": "search_vs_bon",
        "method": method,
        "match": match,
        "aggregation": aggregation,
        "n_problems": k,
        "settings": dict(settings or {}),
        "search": {
            "accuracy": _pct(n["search_correct"], k),
            "accuracy_weighted": _pct(n["search_weighted_correct"], k),
            "accuracy_majority": _pct(n["search_majority_correct"], k),
            "n_correct": n["search_correct"],
            "n_correct_weighted": n["search_weighted_correct"],
            "n_correct_majority": n["search_majority_correct"],
            "compute": search_total.to_dict(),
        },
        "best_of_n": {
            "accuracy_prm": _pct(n["bon_prm_correct"], k),
            "accuracy_weighted": _pct(n["bon_weighted_correct"], k),
            "accuracy_majority": _pct(n["bon_majority_correct"], k),
            "n_correct_prm": n["bon_prm_correct"],
            "n_correct_weighted": n["bon_weighted_correct"],
            "n_correct_majority": n["bon_majority_correct"],
            "n_mean": sum(r["bon_n"] for r in rows) / k if k else 0.0,
            "compute": bon_total.to_dict(),
            "discarded_samples": discarded,
        },
        "budget": {
            "search_tokens": s_tok,
            "bon_tokens": b_tok,
            "ratio": b_tok / s_tok if s_tok else None,
        },
        "problems": rows,
    }
    return out, search_records, bon_records


def mark_correct(problem: Problem, result: SearchResult) -> dict[str, bool]:
    """Check each rule's pick; write ``correct`` (naive), ``correct_weighted`` and
    ``correct_majority`` into the record's meta. A rule without a pick is not correct.

    Raises:
        CheckerError: an answer cannot be checked (see :func:`check_correct`).
    """
    checked: dict[int, bool] = {}
    ok: dict[str, bool] = {}
    for rule in RULES:
        beam = result.picks.get(rule)
        if beam is None:
            ok[rule] = False
            continue
        if id(beam) not in checked:
            checked[id(beam)] = check_correct(problem, list(beam.state.steps))
        ok[rule] = checked[id(beam)]
    if result.record is not None:
        result.record.meta["correct"] = ok["naive"]
        result.record.meta["correct_weighted"] = ok["weighted"]
        result.record.meta["correct_majority"] = ok["majority"]
    return ok
