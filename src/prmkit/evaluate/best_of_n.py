"""Best-of-N from one sampling run: accuracy vs N for PRM selection, voting and pass@N.

Input: ScoredTrace records, ``N_max`` (or more) per problem, grouped by ``problem_id``. Each needs

- ``answer``: the final answer; answers math-verify finds equivalent vote together (grouped once
  per problem by :func:`~prmkit.tasks.vote.group_answers`). ``None`` or blank: no answer; such a
  trace never wins a vote (search-and-learn lets the empty answer form a group) but can still be
  picked by a PRM, and then counts as wrong;
- whether that answer is correct: ``meta["correct"]`` (a bool; the key is configurable), or, with
  ``correct_from="labels"``, ``first_error == -1`` of the trace's step labels;
- ``step_scores``: the PRM's scores (>= 0 for ``prod``-style use and weighted voting).

For N = 1, 2, 4, ..., N_max (and N_max itself), per problem, every method is averaged over
subsets of N of its solutions drawn without replacement: all C(n, N) subsets when there are at
most ``n_subsets`` of them (exact), else ``n_subsets`` random ones. Ties count fractionally (the
expected accuracy under a uniform random tie-break; search-and-learn takes the first answer or
solution). Methods:

- ``pass``: pass@N, any of the N is correct (exact, the unbiased estimator
  :func:`~prmkit.tasks.accuracy.pass_at_k`); its N = 1 value is pass@1, the mean accuracy of one
  sample;
- ``majority``: maj@N, the most frequent answer (:func:`~prmkit.tasks.accuracy.vote_accuracy`,
  the vote behind :func:`~prmkit.tasks.accuracy.maj_at_k`);
- ``prm_<agg>``: prm@N, the solution with the highest aggregated score, for each aggregation
  ``min``, ``prod``, ``last``, ``mean`` of the step scores;
- ``weighted_<agg>``: PRM-weighted majority, the answer with the largest sum of aggregated scores.

A method's accuracy at N is the mean over problems (percent); its confidence interval is the
percentile bootstrap over problems (``n_bootstrap`` resamples of the problem set). Each method's
difference from majority vote gets a *paired* interval: both are averaged over the same
resampled problem sets, so the interval is that of the difference, not two overlapping ones.

Example:
    >>> result = evaluate_best_of_n("samples_scored.jsonl", n_bootstrap=200)  # doctest: +SKIP
    >>> result["curves"]["prm_min"][-1]["mean"], result["pass@1"]["mean"]  # doctest: +SKIP
    (71.5, 52.0)
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from prmkit.config import check_range
from prmkit.errors import PrmkitError, RecordError
from prmkit.records import ScoredTrace, read_nonempty
from prmkit.score.aggregate import AGGREGATIONS, aggregate
from prmkit.tasks.accuracy import answer_groups, pass_at_k, vote_accuracy
from prmkit.tasks.answers import VerifyStats

__all__ = [
    "ProblemSamples",
    "best_of_n",
    "evaluate_best_of_n",
    "group_problems",
]


@dataclass
class ProblemSamples:
    """The N_max solutions of one problem, as arrays.

    Attributes:
        id: The problem id.
        correct: (n,) bool, whether each solution's answer is correct.
        answer_ids: (n,) int, each solution's group of equivalent answers (an index into
            ``answer_correct``); -1 = no answer.
        answer_correct: (k,) bool, whether each group's answer is correct.
        scores: aggregation -> (n,) aggregated PRM score.
        tokens: (n,) policy completion tokens of each solution (``meta["completion_tokens"]``),
            or ``None`` when any solution lacks the count.
    """

    id: str
    correct: np.ndarray
    answer_ids: np.ndarray
    answer_correct: np.ndarray
    scores: dict[str, np.ndarray]
    tokens: np.ndarray | None = None


def group_problems(
    traces: Iterable[ScoredTrace],
    *,
    correct_key: str = "correct",
    correct_from: Literal["meta", "labels"] = "meta",
    timeout_s: int = 5,
    stats: VerifyStats | None = None,
) -> list[ProblemSamples]:
    """Group scored solutions by problem and check the fields best-of-N needs.

    Each problem's answers are grouped once, by math-verify equivalence
    (:func:`~prmkit.tasks.vote.group_answers`); the group ids are the vote keys.

    Args:
        traces: Scored solutions.
        correct_key: The ``meta`` key of correctness (``correct_from="meta"``).
        correct_from: Read correctness from ``meta`` or from the labels (``first_error == -1``).
        timeout_s: math-verify's timeout per answer comparison.
        stats: Counts the comparisons (undecidable ones count as different answers).

    Raises:
        RecordError: correctness missing or not a bool; two solutions with equivalent answers
            but different correctness; a repeated trace id.
    """
    groups: dict[str, list[ScoredTrace]] = {}
    seen: set[str] = set()
    for t in traces:
        if t.id in seen:
            raise RecordError(
                "repeated trace id",
                got=t.id,
                expected="unique ids",
                fix="give every sampled solution its own id",
            )
        seen.add(t.id)
        groups.setdefault(t.problem_id, []).append(t)
    problems = []
    for pid, group in groups.items():
        correct, answers = [], []
        for t in group:
            where = f"trace {t.id!r}"
            if correct_from == "labels":
                if t.labels is None:
                    raise RecordError(
                        "no labels to read correctness from",
                        got=t.id,
                        expected="scored traces with labels",
                        fix="use correct_from='meta'",
                        where=where,
                    )
                ok = t.first_error in (None, -1)
            else:
                ok = t.meta.get(correct_key)
                if not isinstance(ok, bool):
                    raise RecordError(
                        f"meta[{correct_key!r}] is not a bool",
                        got=ok,
                        expected="true/false: is the final answer correct",
                        fix="check the answers first (prmkit check), or read "
                        "correctness from labels",
                        where=where,
                    )
            correct.append(ok)
            answers.append(t.answer)
        ids, answer_correct = answer_groups(
            answers, correct, timeout_s=timeout_s, stats=stats, where=f"problem {pid!r}"
        )
        scores = {
            how: np.array([aggregate(t.step_scores, how) for t in group]) for how in AGGREGATIONS
        }
        counts = [t.meta.get("completion_tokens") for t in group]
        known = all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
        problems.append(
            ProblemSamples(
                pid,
                np.array(correct, dtype=bool),
                np.array(ids, dtype=int),
                np.array(answer_correct, dtype=bool),
                scores,
                np.array(counts, dtype=float) if known else None,
            )
        )
    return problems


def _subsets(n: int, k: int, n_subsets: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """(S, k) index subsets without replacement; all of them (exact) when C(n, k) <= n_subsets."""
    if math.comb(n, k) <= n_subsets:
        return np.array(list(itertools.combinations(range(n), k)), dtype=int), True
    return np.argsort(rng.random((n_subsets, n)), axis=1)[:, :k], False


def _pick_best(values: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """(S, k) scores and correctness -> (S,) expected correctness of the argmax (ties shared)."""
    tied = values == values.max(axis=1, keepdims=True)
    return (tied & correct).sum(axis=1) / tied.sum(axis=1)


def _methods() -> list[str]:
    return (
        ["pass", "majority"]
        + [f"prm_{a}" for a in AGGREGATIONS]
        + [f"weighted_{a}" for a in AGGREGATIONS]
    )


def _problem_values(
    p: ProblemSamples, k: int, n_subsets: int, rng: np.random.Generator
) -> tuple[dict[str, float], bool]:
    n = len(p.correct)
    idx, exact = _subsets(n, k, n_subsets, rng)
    out = {"pass": pass_at_k(n, int(p.correct.sum()), k)}
    answer_ids = p.answer_ids[idx]
    out["majority"] = float(vote_accuracy(answer_ids, np.ones(idx.shape), p.answer_correct).mean())
    correct = p.correct[idx]
    for how in AGGREGATIONS:
        s = p.scores[how][idx]
        out[f"prm_{how}"] = float(_pick_best(s, correct).mean())
        out[f"weighted_{how}"] = float(vote_accuracy(answer_ids, s, p.answer_correct).mean())
    return out, exact


def _ns(n_max: int) -> list[int]:
    ns, k = [], 1
    while k < n_max:
        ns.append(k)
        k *= 2
    return [*ns, n_max]


def best_of_n(
    problems: Sequence[ProblemSamples],
    *,
    ns: Sequence[int] | None = None,
    n_subsets: int = 200,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy vs N for every method, with bootstrap confidence intervals over problems.

    Args:
        problems: From :func:`group_problems`.
        ns: The N values (default 1, 2, 4, ..., N_max, where N_max is the smallest number of
            solutions any problem has).
        n_subsets: Subsets per problem and N (all of them when there are fewer).
        n_bootstrap: Bootstrap resamples of the problems.
        confidence: Central interval mass.
        seed: Seeds subset sampling and the bootstrap.

    Returns:
        ``{"n_problems", "n_per_problem": {"min", "max"}, "ns", "pass@1": {"mean", "ci"},
        "curves": {method: [{"n", "mean", "ci": [lo, hi], "exact"}]}, "vs_majority":
        {method: [{"n", "mean", "ci", "significant"}]} (the method's accuracy minus maj@N, points,
        with the paired bootstrap interval; ``significant``: the interval lies above 0),
        "policy_tokens",
        "settings": {...}, "notes"}`` with accuracies in percent. ``policy_tokens`` is
        ``{"per_sample", "by_n"}``: the mean completion tokens of one solution and the expected
        completion tokens per problem at each N (N times the mean over problems of a problem's
        mean solution length: exact for subsets drawn without replacement), or ``None`` when
        some solution has no ``meta["completion_tokens"]``.

    Raises:
        ConfigError: ``n_subsets`` or ``n_bootstrap`` < 1, ``confidence`` outside (0, 1), a
            negative ``seed``.
    """
    check_range("n_subsets", n_subsets, ge=1)
    check_range("n_bootstrap", n_bootstrap, ge=1)
    check_range("confidence", confidence, gt=0, lt=1)
    check_range("seed", seed, ge=0)
    if not problems:
        raise PrmkitError(
            "no problems",
            expected="scored solutions of at least one problem",
            fix="pass a non-empty scores file",
        )
    if any(np.any(s < 0) for p in problems for s in p.scores.values()):
        raise PrmkitError(
            "negative PRM scores",
            expected="scores >= 0 (probabilities)",
            fix="score with a probability head; weighted voting and prod need non-negative scores",
        )
    counts = [len(p.correct) for p in problems]
    n_max = min(counts)
    ns = list(ns) if ns is not None else _ns(n_max)
    bad = [k for k in ns if not 1 <= k <= n_max]
    if bad:
        raise PrmkitError(
            "N out of range",
            got=bad,
            expected=f"1 <= N <= {n_max} (the fewest solutions of any problem)",
            fix="lower N or sample more solutions",
        )
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, len(problems), size=(n_bootstrap, len(problems)))
    tail = (1 - confidence) / 2 * 100
    curves: dict[str, list[dict[str, Any]]] = {m: [] for m in _methods()}
    vs_majority: dict[str, list[dict[str, Any]]] = {m: [] for m in curves if m != "majority"}

    def summarize(values: np.ndarray) -> tuple[float, list[float]]:
        means = 100 * values[boot].mean(axis=1)
        lo, hi = np.percentile(means, [tail, 100 - tail])
        return float(100 * values.mean()), [float(lo), float(hi)]

    for k in ns:
        per_problem = {m: np.empty(len(problems)) for m in curves}
        all_exact = True
        for i, p in enumerate(problems):
            values, exact = _problem_values(p, k, n_subsets, rng)
            all_exact &= exact
            for m, v in values.items():
                per_problem[m][i] = v
        for m, vals in per_problem.items():
            mean, ci = summarize(vals)
            curves[m].append({"n": k, "mean": mean, "ci": ci, "exact": all_exact or m == "pass"})
        for m in vs_majority:  # paired: the same bootstrap problem sets for both methods
            mean, ci = summarize(per_problem[m] - per_problem["majority"])
            vs_majority[m].append({"n": k, "mean": mean, "ci": ci, "significant": ci[0] > 0})
    acc1 = np.array([pass_at_k(len(p.correct), int(p.correct.sum()), 1) for p in problems])
    mean1, ci1 = summarize(acc1)
    notes = []
    policy_tokens = None
    if all(p.tokens is not None for p in problems):
        per_sample = float(np.mean([p.tokens.mean() for p in problems if p.tokens is not None]))
        policy_tokens = {"per_sample": per_sample, "by_n": [k * per_sample for k in ns]}
    else:
        notes.append(
            "no policy token counts: some solutions lack meta['completion_tokens'] "
            "(prmkit generate writes it)"
        )
    if min(counts) != max(counts):
        notes.append(
            f"problems have {min(counts)} to {max(counts)} solutions; N_max = "
            f"{n_max}, subsets are drawn from all of each problem's solutions"
        )
    return {
        "n_problems": len(problems),
        "n_per_problem": {"min": min(counts), "max": max(counts)},
        "ns": ns,
        "pass@1": {"mean": mean1, "ci": ci1},
        "curves": curves,
        "vs_majority": vs_majority,
        "policy_tokens": policy_tokens,
        "settings": {
            "n_subsets": n_subsets,
            "n_bootstrap": n_bootstrap,
            "confidence": confidence,
            "seed": seed,
        },
        "notes": notes,
    }


def evaluate_best_of_n(
    scores: str | os.PathLike[str] | Iterable[ScoredTrace],
    *,
    correct_key: str = "correct",
    correct_from: Literal["meta", "labels"] = "meta",
    ns: Sequence[int] | None = None,
    n_subsets: int = 200,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Best-of-N curves from scored solutions, given as records or their file.

    Runs :func:`group_problems`, then :func:`best_of_n` (see there for the arguments and the
    result).

    The result adds ``answer_grouping``: ``{"answers", "groups", "comparisons", "failures"}``
    (solutions with an answer, groups of equivalent answers, math-verify comparisons made, and
    those it could not decide).

    Raises:
        DataFormatError: the file holds no traces.
        PrmkitError: no traces given.

    Example:
        >>> out = evaluate_best_of_n("samples_scored.jsonl", ns=[1, 4, 16])  # doctest: +SKIP
        >>> [row["mean"] for row in out["curves"]["majority"]]  # doctest: +SKIP
        [52.0, 61.5, 66.0]
    """
    if isinstance(scores, (str, os.PathLike)):
        traces = read_nonempty(
            scores,
            ScoredTrace,
            noun="scored traces",
            fix="pass the output of prmkit score (did an earlier stage write nothing?)",
        )
    else:
        traces = list(scores)
    stats = VerifyStats()
    problems = group_problems(
        traces, correct_key=correct_key, correct_from=correct_from, stats=stats
    )
    result = best_of_n(
        problems,
        ns=ns,
        n_subsets=n_subsets,
        n_bootstrap=n_bootstrap,
        confidence=confidence,
        seed=seed,
    )
    result["answer_grouping"] = {
        "answers": int(sum((p.answer_ids >= 0).sum() for p in problems)),
        "groups": sum(len(p.answer_correct) for p in problems),
        "comparisons": stats.calls,
        "failures": stats.failures,
    }
    if stats.failures:
        result["notes"].append(
            f"{stats.failures} of {stats.calls} answer comparisons could not be decided "
            "(math-verify timeout or error); those answers vote apart"
        )
    return result


from prmkit._stages import callable_stage  # noqa: E402  (prmkit.evaluate.best_of_n(...) runs evaluate_best_of_n)

callable_stage(__name__, "evaluate_best_of_n")
