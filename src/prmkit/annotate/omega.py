"""OmegaPRM (Luo et al. 2024): binary search for first errors, steered by one tree per problem.

The traces of a :meth:`OmegaPRMLabeler.label` call are grouped by ``problem_id``; each problem
grows one tree from the bare problem (the root state). A node is a state ``s`` (the problem plus a
step prefix) with its Monte Carlo value ``MC(s)`` from ``k`` rollouts and its visit count
``N(s)``. Every wrong rollout ``r`` from a state with ``MC(s) > 0`` joins the candidate pool: it
holds a first error somewhere after ``s``. A tree is built in this order:

1. Estimate the root. If ``MC(root) <= min_root_value`` (default 0: no rollout was right) the
   problem is *unsolvable* for this policy and ``k``: nothing is searched, its wrong input traces
   get ``None`` labels with ``first_error = -1`` and ``meta["annotation"]["unsolvable"] = True``
   (a trace whose own answer is right keeps its all-correct labels, which need no rollouts), and
   its id is listed in :attr:`OmegaPRMLabeler.unsolvable_problems`.
2. Binary-search each wrong input trace from the root, in input order (every probe is a new node
   whose wrong rollouts join the pool).
3. Then up to ``search_limit`` selections from the pool (the paper's search limit per question),
   each the ``(s, r)`` with the largest

       Q(s, r) + U(s),  Q = alpha ** (1 - MC(s)) * beta ** (len(r) / L),
                        U = c_puct * sqrt(max(1, sum of N over the tree)) / (1 + N(s)),

   (defaults alpha 0.5, beta 0.9, L 500 tokens, c_puct 0.125), binary-searched like an input
   trace. The search stops early when the pool is empty.

Each search (input trace or selection) adds 1 to ``N`` of the state it starts from, as the paper's
maintenance phase; probed states start at ``N = 0`` and only selections raise it. The pool is
deduplicated by the whole solution (state steps + rollout steps): a candidate equal to an input
trace, to a searched candidate or to one in the pool is not added, so each solution is searched
and emitted once. Rollouts cut off by ``max_new_tokens`` (``finish_reason == "length"``) have no
final answer and never join the pool; they still count as not correct in ``MC``, as in the Monte
Carlo labeler.

Output: one record per input trace, in input order, then (with ``emit_tree``) one extra record
per pool selection, id ``<first trace of the problem in this call>/omega-<n>``, ``n`` counting
from 0 per problem; ``meta["annotation"]["origin"] == "omega_tree"``. Every record carries
``values`` (length ``steps + 1``: ``values[t]`` is ``MC`` of the first ``t`` steps when that prefix
is a node of the tree, else ``None``; ``values[-1]`` is whether the record's own answer is right).
Labels: ``hard`` gives 1.0 before the first error, 0.0 at it, ``None`` after; ``soft`` gives each
step before the first error the value of the nearest estimated prefix at or after it with
``MC > 0`` (the paper's tree labels the chunk of steps between two nodes with the ``MC`` of the
node that ends it), 0.0 at the error and ``None`` after.

Cost: each rollout is charged to exactly one record: the root's ``k`` to the problem's first input
trace, each new node's ``k`` to the record whose search created it (a state already in the tree
costs nothing again), so the sum of ``rollouts`` over all output records is the distinct rollouts
the labeler used. Trees do not outlive a ``label`` call: keep a problem's traces in one call.

Example:
    >>> labeler = OmegaPRMLabeler(engine, k=8, search_limit=4)  # doctest: +SKIP
    >>> out = labeler.label(traces)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prmkit.annotate.binary_search import first_error_labels
from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import RolloutEngine, State
from prmkit.annotate.store import Rollout
from prmkit.config import check_range
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Trace
from prmkit.steps import split_steps

__all__ = ["OmegaPRMLabeler", "omega_q", "omega_u"]

LABELS = ("hard", "soft")

Steps = tuple[str, ...]


def omega_q(
    mc: float, length: float, *, alpha: float = 0.5, beta: float = 0.9, max_length: float = 500
) -> float:
    """OmegaPRM's rollout value ``alpha ** (1 - MC) * beta ** (len / L)``.

    Example:
        >>> round(omega_q(1.0, 0), 3), round(omega_q(0.5, 0), 3), round(omega_q(1.0, 500), 3)
        (1.0, 0.707, 0.9)
    """
    return alpha ** (1.0 - mc) * beta ** (length / max_length)


def omega_u(visits: int, total_visits: int, *, c_puct: float = 0.125) -> float:
    """OmegaPRM's exploration bonus ``c_puct * sqrt(sum N) / (1 + N(s))``; ``sum N = 0`` counts as 1.

    Example:
        >>> omega_u(0, 0), omega_u(1, 16)
        (0.125, 0.25)
    """
    return c_puct * math.sqrt(max(1, total_visits)) / (1 + visits)


def _soft_labels(values: Sequence[float | None], first_error: int) -> list[float | None]:
    """Each step before ``first_error``: the nearest known value > 0 at or after it; 0.0; ``None``.

    ``values[t]`` belongs to the prefix of ``t`` steps, so step ``i`` looks at ``values[i + 1:]``
    (up to the first error's prefix, or the end when ``first_error`` is -1).

    Example:
        >>> _soft_labels([0.5, None, 0.75, 0.5, 0.0, None, 0.0], 3)
        [0.75, 0.75, 0.5, 0.0, None, None]
    """
    n = len(values) - 1
    end = n if first_error < 0 else first_error
    labels: list[float | None] = [None] * n
    nearest: float | None = None
    for i in reversed(range(end)):
        value = values[i + 1]
        if value is not None and value > 0:
            nearest = value
        labels[i] = nearest
    if first_error >= 0:
        labels[first_error] = 0.0
    return labels


@dataclass
class _Node:
    state: State
    mc: float
    visits: int = 0


@dataclass
class _Candidate:
    state: State
    steps: Steps
    length: int
    answer: str | None

    @property
    def key(self) -> Steps:
        """The whole solution: the state's steps, then the rollout's."""
        return self.state.steps + self.steps


@dataclass
class _Tree:
    nodes: dict[str, _Node] = field(default_factory=dict)
    pool: dict[Steps, _Candidate] = field(default_factory=dict)
    seen: set[Steps] = field(default_factory=set)
    """Whole solutions searched or pooled (input traces included): never pooled again."""
    selections: int = 0

    def total_visits(self) -> int:
        return sum(node.visits for node in self.nodes.values())


class OmegaPRMLabeler:
    """OmegaPRM labels for the input traces, plus the trees' extra labelled rollouts.

    Args:
        engine: Draws and stores the rollouts.
        k: Rollouts per state.
        search_limit: Pool selections per problem's tree (the wrong input traces are searched
            first and not counted).
        alpha, beta, max_length, c_puct: The selection constants (``max_length`` is L, in
            tokens).
        emit_tree: Search the pool and return its labelled rollouts; ``False`` searches only
            the input traces.
        label: ``hard`` (1/0/None) or ``soft`` (tree ``MC`` values before the first error).
        min_root_value: Search a problem only when its root value is above this, in [0, 1).

    Attributes:
        unsolvable_problems: Problem ids the last :meth:`label` call did not search.
    """

    name = "omega"

    def __init__(
        self,
        engine: RolloutEngine,
        *,
        k: int = 8,
        search_limit: int = 8,
        alpha: float = 0.5,
        beta: float = 0.9,
        max_length: float = 500,
        c_puct: float = 0.125,
        emit_tree: bool = True,
        label: str = "hard",
        min_root_value: float = 0.0,
    ) -> None:
        if k < 1 or search_limit < 1:
            raise ConfigError(
                "k and search_limit must be positive",
                got=(k, search_limit),
                expected="integers >= 1",
                fix="e.g. k=8 search_limit=8",
            )
        if label not in LABELS:
            raise ConfigError(
                "unknown omega label", got=label, expected=f"one of {LABELS}", fix="label=hard"
            )
        check_range("min_root_value", min_root_value, ge=0, lt=1)
        self.engine = engine
        self.k = k
        self.search_limit = search_limit
        self.alpha, self.beta, self.max_length, self.c_puct = alpha, beta, max_length, c_puct
        self.emit_tree = emit_tree
        self.label_scheme = label
        self.min_root_value = min_root_value
        self.unsolvable_problems: list[str] = []

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """One tree per problem; the traces' labels in input order, then the trees' extras."""
        self.unsolvable_problems = []
        groups: dict[str, list[int]] = {}
        for i, trace in enumerate(traces):
            groups.setdefault(trace.problem_id, []).append(i)
        firsts = [traces[idx[0]] for idx in groups.values()]
        roots = self.engine.rollouts([(State.of(t, 0), self.k) for t in firsts])  # one batch
        main: dict[int, LabeledTrace] = {}
        extra: list[LabeledTrace] = []
        for idx, root_rollouts in zip(groups.values(), roots, strict=True):
            records, tree_traces = self._problem([traces[i] for i in idx], root_rollouts)
            main.update(zip(idx, records, strict=True))
            extra.extend(tree_traces)
        return [main[i] for i in range(len(traces))] + extra

    # ------------------------------------------------------------------ tree

    def _add(self, tree: _Tree, state: State, rollouts: list[Rollout], cost: Cost) -> _Node:
        """Record the node of ``state`` from its ``k`` rollouts; wrong ones join the pool."""
        cost.add(rollouts)
        mc = sum(r.correct for r in rollouts) / len(rollouts)
        node = tree.nodes[state.key] = _Node(state, mc)
        if mc > 0:
            for rollout in rollouts:
                self._offer(tree, state, rollout)
        return node

    def _node(self, tree: _Tree, state: State, cost: Cost) -> _Node:
        """The node of ``state``; a new one draws (or reads) ``k`` rollouts, charged to ``cost``."""
        node = tree.nodes.get(state.key)
        if node is not None:
            return node
        return self._add(tree, state, self.engine.rollouts([(state, self.k)])[0], cost)

    def _offer(self, tree: _Tree, state: State, rollout: Rollout) -> None:
        if rollout.correct or rollout.finish_reason == "length" or not rollout.text.strip():
            return
        candidate = _Candidate(
            state, tuple(split_steps(rollout.text)), rollout.completion_tokens, rollout.answer
        )
        if candidate.steps and candidate.key not in tree.seen:
            tree.seen.add(candidate.key)
            tree.pool[candidate.key] = candidate

    def _select(self, tree: _Tree) -> _Candidate:
        total = tree.total_visits()

        def score(c: _Candidate) -> float:
            node = tree.nodes[c.state.key]
            q = omega_q(
                node.mc, c.length, alpha=self.alpha, beta=self.beta, max_length=self.max_length
            )
            return q + omega_u(node.visits, total, c_puct=self.c_puct)

        best = max(tree.pool.values(), key=score)  # first of equals: deterministic
        del tree.pool[best.key]
        return best

    def _binary(
        self, tree: _Tree, state: State, steps: Steps, trace_id: str, cost: Cost
    ) -> tuple[int, list[list[float]]]:
        """First wrong step of ``steps`` (0-based, relative) continuing ``state``; the probes."""
        tree.nodes[state.key].visits += 1  # the selected state only (maintenance phase)
        lo, hi = 0, len(steps)
        probes: list[list[float]] = []
        while hi - lo > 1:
            mid = (lo + hi) // 2
            child = State(state.problem_id, state.prompt, state.steps + steps[:mid], trace_id)
            node = self._node(tree, child, cost)
            probes.append([len(child.steps), node.mc])
            if node.mc > 0:
                lo = mid
            else:
                hi = mid
        return hi - 1, probes

    # --------------------------------------------------------------- records

    def _values(self, tree: _Tree, trace: Trace, correct: bool) -> list[float | None]:
        values: list[float | None] = []
        for t in range(len(trace.steps)):
            node = tree.nodes.get(State.of(trace, t).key)
            values.append(None if node is None else node.mc)
        return [*values, float(correct)]

    def _record(
        self,
        tree: _Tree,
        trace: Trace,
        first_error: int,
        correct: bool,
        cost: Cost,
        /,
        *,
        unknown: bool = False,
        **details: Any,
    ) -> LabeledTrace:
        """The output record; ``unknown``: every label ``None`` (an unsolvable problem)."""
        values = self._values(tree, trace, correct)
        if unknown:
            labels: list[float | None] = [None] * len(trace.steps)
        elif self.label_scheme == "soft":
            labels = _soft_labels(values, first_error)
        else:
            labels = first_error_labels(len(trace.steps), first_error)
        return labeled(
            trace,
            labels,
            first_error,
            "omega",
            cost,
            method="omega",
            label=self.label_scheme,
            k=self.k,
            values=values,
            final_answer_correct=correct,
            **details,
        )

    def _problem(
        self, traces: list[Trace], root_rollouts: list[Rollout]
    ) -> tuple[list[LabeledTrace], list[LabeledTrace]]:
        """Grow the tree of one problem; its input traces' records and the extra records."""
        tree = _Tree()
        first = traces[0]
        costs = [Cost() for _ in traces]
        correct = [self.engine.check_trace(t) for t in traces]
        tree.seen.update(tuple(t.steps) for t, ok in zip(traces, correct, strict=True) if not ok)
        root = State.of(first, 0)
        root_node = self._add(tree, root, root_rollouts, costs[0])
        unsolvable = root_node.mc <= self.min_root_value
        found: dict[Steps, tuple[int, list[list[float]]]] = {}
        if unsolvable:
            self.unsolvable_problems.append(first.problem_id)
        else:
            for trace, ok, cost in zip(traces, correct, costs, strict=True):
                steps = tuple(trace.steps)
                if not ok and steps not in found:  # a duplicate reuses the first one's search
                    found[steps] = self._binary(tree, root, steps, trace.id, cost)
        extras: list[LabeledTrace] = []
        searching = self.emit_tree and not unsolvable
        while searching and tree.pool and tree.selections < self.search_limit:
            extras.append(self._extra(tree, first, len(extras)))
        summary = {
            "states": len(tree.nodes),
            "input_searches": len(found),
            "selections": tree.selections,
            "pool_left": len(tree.pool),
        }
        out = []
        for trace, ok, cost in zip(traces, correct, costs, strict=True):
            unknown = unsolvable and not ok
            first_error, probes = (-1, []) if ok or unknown else found[tuple(trace.steps)]
            out.append(
                self._record(
                    tree,
                    trace,
                    first_error,
                    ok,
                    cost,
                    unknown=unknown,
                    probes=probes,
                    root_value=root_node.mc,
                    unsolvable=unknown,
                    tree=summary,
                )
            )
        return out, extras

    def _extra(self, tree: _Tree, first: Trace, n: int) -> LabeledTrace:
        """Select one pool candidate, binary-search it, and label it as an extra trace."""
        candidate = self._select(tree)
        tree.selections += 1
        trace_id = f"{first.id}/omega-{n}"
        cost = Cost()
        before = len(tree.nodes)
        rel, probes = self._binary(tree, candidate.state, candidate.steps, trace_id, cost)
        origin = {"origin": "omega_tree", "root_trace": first.id}
        trace = Trace(
            id=trace_id,
            problem_id=first.problem_id,
            prompt=first.prompt,
            steps=list(candidate.key),
            answer=candidate.answer,
            meta=dict(origin),
        )
        return self._record(
            tree,
            trace,
            len(candidate.state.steps) + rel,
            False,
            cost,
            **origin,
            state_steps=len(candidate.state.steps),
            probes=probes,
            new_states=len(tree.nodes) - before,
        )
