"""Rollouts on demand: "the first k rollouts of this state", drawn once, stored, then reused.

:class:`RolloutEngine` is what every rollout-based labeler (Monte Carlo, binary search, OmegaPRM)
asks for samples. A request names a :class:`State` (a problem plus a step prefix) and how many
rollouts it needs. Rollouts already in the :class:`~prmkit.annotate.store.RolloutStore` are
reused; the missing ones are drawn from the :class:`~prmkit.generate.protocol.Generator` to the
end of the solution, checked with the :class:`~prmkit.annotate.protocol.AnswerChecker`, and
stored, one generator call per transaction.

Determinism and resume: a generator call's seed is derived from the job seed and the call's
content (each state's key and first missing index). Which calls a job makes depends only on the
results of earlier calls, and every call is stored whole or not at all, so a job resumed after
``kill -9`` makes exactly the calls the uninterrupted job made after that point, with the same
seeds, and ends with the same rollouts and labels. Rollouts are content-addressed: two traces that
share a prefix (every trace shares the empty prefix of its problem) share its rollouts. Jobs may
share a store: what :meth:`RolloutEngine.rollouts` returns is read back from the store, so when two
jobs draw the same rollouts, both label from the ones stored first.

Where the calls run: each generator call is a :class:`DrawCall` (seeded, self-contained) that a
:class:`Drawer` runs, in this process (:class:`LocalDrawer`) or on a Ray worker
(:class:`~prmkit.annotate.distributed.RayDrawer`); the engine alone writes the store. A call run
twice (Ray runs calls at least once) returns the same rollouts, and the store keeps one copy. The
engine may be shared by threads (one labeler per thread).

Example:
    >>> engine = RolloutEngine(generator, store, checker, problems, seed=0)  # doctest: +SKIP
    >>> rollouts = engine.rollouts([(State.of(trace, 2), 8)])[0]  # doctest: +SKIP
    >>> sum(r.correct for r in rollouts) / len(rollouts)  # doctest: +SKIP
    0.375
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from prmkit.annotate.protocol import AnswerCheck, AnswerChecker
from prmkit.annotate.store import Rollout, RolloutStore, derive_seed
from prmkit.errors import ConfigError, RecordError
from prmkit.generate.protocol import Generator, Prefix, SamplingParams
from prmkit.records import Problem, Trace
from prmkit.steps import DEFAULT_SEPARATOR, check_segmentation, join_steps

__all__ = [
    "DrawCall",
    "Drawer",
    "Drawn",
    "LocalDrawer",
    "RolloutEngine",
    "State",
    "Usage",
    "solution_text",
]


@dataclass(frozen=True)
class State:
    """A problem plus the first steps of a solution: what a rollout continues from.

    Attributes:
        problem_id: The problem whose answer decides correctness.
        prompt: The problem text as the policy sees it.
        steps: The prefix steps.
        trace_id: The trace that asked first (informative; not part of the key).
    """

    problem_id: str
    prompt: str
    steps: tuple[str, ...]
    trace_id: str = field(default="", compare=False)

    @classmethod
    def of(cls, trace: Trace, n_steps: int) -> State:
        """The state after the first ``n_steps`` steps of ``trace``."""
        check_segmentation(trace.meta, "double_newline", where=f"trace {trace.id}")
        return cls(trace.problem_id, trace.prompt, tuple(trace.steps[:n_steps]), trace.id)

    @property
    def key(self) -> str:
        """Content hash of (problem id, prompt, steps): the store's state key."""
        text = "\x1e".join([self.problem_id, self.prompt, *self.steps])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def solution_text(steps: Sequence[str], continuation: str = "") -> str:
    """The whole solution a rollout produced: the prefix steps, then the generated text."""
    head = join_steps(list(steps))
    if not continuation.strip():
        return head
    return head + DEFAULT_SEPARATOR + continuation.strip() if head else continuation.strip()


@dataclass
class Drawn:
    """What this process drew from the generator (rollouts found in the store not counted).

    Attributes:
        calls: Generator calls.
        rollouts: Rollouts drawn.
        policy_tokens: Their generated tokens.
    """

    calls: int = 0
    rollouts: int = 0
    policy_tokens: int = 0


@dataclass
class Usage:
    """What a job used: the distinct samples handed to its labelers, each ``(state, idx)`` once.

    A rollout two labelers (or two traces sharing a prefix) ask for counts once, so this is the
    job's real budget, where the per-record ``meta["annotation"]["rollouts"]`` charge every record
    for the rollouts it read.

    Attributes:
        rollouts: Distinct samples returned.
        drawn: How many of those this job drew (the rest were reused from the store).
        policy_tokens: Their generated tokens.
        prompt_tokens: Their prompt/prefix tokens.
    """

    rollouts: int = 0
    drawn: int = 0
    policy_tokens: int = 0
    prompt_tokens: int = 0
    _seen: set[tuple[str, int]] = field(default_factory=set, repr=False)
    _fresh: set[tuple[str, int]] = field(default_factory=set, repr=False)

    @property
    def reused(self) -> int:
        """Samples used that an earlier job (or run) had stored."""
        return self.rollouts - self.drawn

    def mark_drawn(self, rows: Sequence[Rollout]) -> None:
        """Note samples this job drew (before they are handed out)."""
        self._fresh.update((r.state, r.idx) for r in rows)

    def count(self, rows: Sequence[Rollout]) -> None:
        """Count samples handed out; ones already counted are skipped."""
        for r in rows:
            key = (r.state, r.idx)
            if key in self._seen:
                continue
            self._seen.add(key)
            self.rollouts += 1
            if key in self._fresh:
                self.drawn += 1
            self.policy_tokens += r.completion_tokens
            self.prompt_tokens += r.prompt_tokens


@dataclass(frozen=True)
class DrawCall:
    """One generator call, self-contained: ``n`` new rollouts of each state from ``starts``.

    Attributes:
        states: The states continued.
        starts: Each state's first missing rollout index.
        problems: Each state's problem (its answer decides correctness).
        n: Rollouts per state.
        params: Sampling settings with the call's derived seed.
    """

    states: tuple[State, ...]
    starts: tuple[int, ...]
    problems: tuple[Problem, ...]
    n: int
    params: SamplingParams

    def run(self, generator: Generator, checker: AnswerChecker) -> list[Rollout]:
        """Sample the continuations, check their answers, return the rollout rows."""
        prefixes = [Prefix(s.prompt, s.steps) for s in self.states]
        completions = generator.continue_from(prefixes, self.n, self.params, stop="solution")
        if len(completions) != len(self.states) or any(len(o) != self.n for o in completions):
            raise RecordError(
                "the generator returned the wrong number of completions",
                got=[len(outs) for outs in completions],
                expected=f"{len(self.states)} lists of {self.n} completions",
                fix="fix the Generator's continue_from: one list of n per prefix",
            )
        rows: list[Rollout] = []
        for state, start, problem, outs in zip(
            self.states, self.starts, self.problems, completions, strict=True
        ):
            for j, completion in enumerate(outs):
                check = checker.check(problem, solution_text(state.steps, completion.text))
                rows.append(
                    Rollout(
                        state=state.key,
                        idx=start + j,
                        trace_id=state.trace_id,
                        prefix_len=len(state.steps),
                        text=completion.text,
                        answer=check.answer,
                        correct=check.correct,
                        prompt_tokens=completion.prompt_tokens,
                        completion_tokens=completion.completion_tokens,
                        finish_reason=completion.finish_reason,
                        seed=int(self.params.seed or 0),
                    )
                )
        return rows


class Drawer(Protocol):
    """Runs draw calls and answer checks somewhere: this process or a pool of workers."""

    def draw(self, call: DrawCall) -> list[Rollout]:
        """The call's rollout rows (not stored)."""
        ...

    def check(self, problem: Problem, solution: str) -> AnswerCheck:
        """Whether ``solution``'s final answer is right."""
        ...


class LocalDrawer:
    """The :class:`Drawer` of one process: the generator and checker given."""

    def __init__(self, generator: Generator, checker: AnswerChecker) -> None:
        self.generator = generator
        self.checker = checker

    def draw(self, call: DrawCall) -> list[Rollout]:
        """Run the call here."""
        return call.run(self.generator, self.checker)

    def check(self, problem: Problem, solution: str) -> AnswerCheck:
        """Check here."""
        return self.checker.check(problem, solution)


class RolloutEngine:
    """Draws, checks, stores and reuses rollouts.

    Args:
        generator: The policy (any :class:`Generator`; ``None`` when ``drawer`` runs the calls).
        store: Where rollouts live.
        checker: Decides whether a rollout's final answer is correct.
        problems: Problems by id (every requested state's ``problem_id`` must be here).
        seed: The job seed; every call's seed derives from it.
        params: Sampling settings (``seed`` is replaced per call).
        policy: A name for the policy, part of the namespace (e.g. model path + adapter).
        max_prefixes_per_call: Most states sent to the generator in one call.
        namespace: Use this namespace instead of one derived from the settings.
        drawer: Where the calls run (default: here, with ``generator`` and ``checker``).
    """

    def __init__(
        self,
        generator: Generator | None,
        store: RolloutStore,
        checker: AnswerChecker,
        problems: Mapping[str, Problem],
        *,
        seed: int = 0,
        params: SamplingParams | None = None,
        policy: str = "",
        max_prefixes_per_call: int = 8,
        namespace: str | None = None,
        drawer: Drawer | None = None,
    ) -> None:
        if drawer is None and generator is None:
            raise ConfigError(
                "the rollout engine has no policy",
                got="generator=None, drawer=None",
                expected="a Generator, or a Drawer that runs the calls",
                fix="pass generator=...",
            )
        if max_prefixes_per_call < 1:
            raise ConfigError(
                "max_prefixes_per_call must be positive",
                got=max_prefixes_per_call,
                expected="an integer >= 1",
                fix="e.g. max_prefixes_per_call=8",
            )
        self.drawer: Drawer = drawer or LocalDrawer(generator, checker)  # type: ignore[arg-type]
        self.store = store
        self.checker = checker
        self.problems = problems
        self.seed = seed
        self.params = params or SamplingParams()
        self.max_prefixes_per_call = max_prefixes_per_call
        config = {
            "kind": "rollouts",
            "policy": policy,
            "seed": seed,
            "params": {k: v for k, v in asdict(self.params).items() if k != "seed"},
        }
        self.namespace = namespace or store.namespace(config)
        self.drawn = Drawn()
        """Rollouts this process drew (not counting ones found in the store)."""
        self.used = Usage()
        """Distinct rollouts returned to labelers in this run, drawn now or reused."""
        self._lock = threading.Lock()

    def _problem(self, state: State) -> Problem:
        problem = self.problems.get(state.problem_id)
        if problem is None:
            raise RecordError(
                "trace refers to an unknown problem",
                got=state.problem_id,
                expected="a problem id present in the problems file",
                fix="pass the problems file the traces were generated from",
                where=f"trace {state.trace_id}",
            )
        return problem

    def rollouts(self, requests: Sequence[tuple[State, int]]) -> list[list[Rollout]]:
        """The first ``n`` rollouts of each requested state, drawing the missing ones.

        Requests are served in order; a state requested twice is drawn once.
        """
        missing: dict[str, tuple[State, int, int]] = {}  # key -> (state, first missing, n)
        for state, n in requests:
            key = state.key
            have = missing[key][1] if key in missing else self.store.count(self.namespace, key)
            want = max(n, missing[key][2]) if key in missing else n
            if want > have:
                missing[key] = (state, have, want)
        groups: dict[int, list[tuple[State, int]]] = {}
        for state, start, want in missing.values():
            groups.setdefault(want - start, []).append((state, start))
        for n, items in groups.items():
            for i in range(0, len(items), self.max_prefixes_per_call):
                self._draw(items[i : i + self.max_prefixes_per_call], n)
        out = [self.store.get(self.namespace, state.key, n) for state, n in requests]
        with self._lock:
            for rows in out:
                self.used.count(rows)
        return out

    def _draw(self, items: list[tuple[State, int]], n: int) -> None:
        """One generator call: ``n`` new rollouts for each ``(state, first index)``; one commit."""
        seed = derive_seed(self.seed, *(f"{s.key}:{start}" for s, start in items), n)
        call = DrawCall(
            states=tuple(s for s, _ in items),
            starts=tuple(start for _, start in items),
            problems=tuple(self._problem(s) for s, _ in items),  # fail before spending rollouts
            n=n,
            params=SamplingParams(**{**asdict(self.params), "seed": seed}),
        )
        rows = self.drawer.draw(call)
        self.store.add(self.namespace, rows)
        with self._lock:
            self.used.mark_drawn(rows)
            self.drawn.calls += 1
            self.drawn.rollouts += len(rows)
            self.drawn.policy_tokens += sum(r.completion_tokens for r in rows)

    def value(self, state: State, k: int) -> tuple[float, list[Rollout]]:
        """Monte Carlo value of ``state``: the fraction of its first ``k`` rollouts correct."""
        rollouts = self.rollouts([(state, k)])[0]
        return sum(r.correct for r in rollouts) / len(rollouts), rollouts

    def check_trace(self, trace: Trace) -> bool:
        """Whether the trace's own final answer is correct (no rollouts)."""
        state = State.of(trace, len(trace.steps))
        return self.drawer.check(self._problem(state), solution_text(trace.steps)).correct
