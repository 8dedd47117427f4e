"""OmegaPRM: binary search for first errors, steered by a tree search over a pool of rollouts.

For each trace a tree grows from the bare problem (the root state). A node is a state ``s`` (the
problem plus a step prefix) with its Monte Carlo value ``MC(s)`` from ``k`` rollouts and its visit
count ``N(s)``. Every rollout ``r`` from ``s`` that ends in a wrong answer while ``MC(s) > 0`` goes
into the candidate pool: it holds a first error somewhere after ``s``. Each round selects the
``(s, r)`` with the largest

    Q(s, r) + U(s),  Q = alpha ** (1 - MC(s)) * beta ** (len(r) / L),
                     U = c_puct * sqrt(sum of N over the tree) / (1 + N(s)),

(defaults alpha 0.5, beta 0.9, L 500 tokens, c_puct 0.125: prefer wrong rollouts from states that
look good, short rollouts, and little-visited states), binary-searches ``r`` for its first error
(every probe is a new node whose wrong rollouts join the pool), and retires ``(s, r)`` for good:
an exhausted pair is never selected again. The search stops after ``search_limit`` selections or
when the pool is empty.

The input trace itself is the first rollout searched (when its answer is wrong), so its labels
are the binary-search labels; with ``emit_tree`` every other searched rollout becomes an extra
:class:`~prmkit.records.LabeledTrace` (``meta["annotation"]["origin"] == "omega_tree"``), placed
after the input traces.

Example:
    >>> labeler = OmegaPRMLabeler(engine, k=8, search_limit=4)  # doctest: +SKIP
    >>> out = labeler.label(traces)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from prmkit.annotate.binary_search import first_error_labels
from prmkit.annotate.protocol import Cost, labeled
from prmkit.annotate.rollouts import RolloutEngine, State
from prmkit.annotate.store import Rollout
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Trace
from prmkit.steps import split_steps

__all__ = ["OmegaPRMLabeler", "omega_q", "omega_u"]


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
    """OmegaPRM's exploration bonus ``c_puct * sqrt(sum N) / (1 + N(s))``."""
    return c_puct * math.sqrt(total_visits) / (1 + visits)


@dataclass
class _Node:
    state: State
    mc: float
    visits: int = 0


@dataclass
class _Candidate:
    state: State
    steps: tuple[str, ...]
    length: int
    answer: str | None
    key: tuple[str, int]


@dataclass
class _Tree:
    nodes: dict[str, _Node] = field(default_factory=dict)
    pool: dict[tuple[str, int], _Candidate] = field(default_factory=dict)
    exhausted: set[tuple[str, int]] = field(default_factory=set)

    def total_visits(self) -> int:
        return sum(node.visits for node in self.nodes.values())


class OmegaPRMLabeler:
    """OmegaPRM labels for the input traces, plus the tree's extra labelled rollouts.

    Args:
        engine: Draws and stores the rollouts.
        k: Rollouts per state.
        search_limit: Selections per trace's tree (the input trace's own search included).
        alpha, beta, max_length, c_puct: The selection constants (``max_length`` is L, in
            tokens).
        emit_tree: Also return the other searched rollouts as labelled traces.
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
    ) -> None:
        if k < 1 or search_limit < 1:
            raise ConfigError(
                "k and search_limit must be positive",
                got=(k, search_limit),
                expected="integers >= 1",
                fix="e.g. k=8 search_limit=8",
            )
        self.engine = engine
        self.k = k
        self.search_limit = search_limit
        self.alpha, self.beta, self.max_length, self.c_puct = alpha, beta, max_length, c_puct
        self.emit_tree = emit_tree

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Grow one tree per trace, in order; return the traces' labels, then the extras."""
        main: list[LabeledTrace] = []
        extra: list[LabeledTrace] = []
        for trace in traces:
            labeled_trace, tree_traces = self._search(trace)
            main.append(labeled_trace)
            extra.extend(tree_traces)
        return main + (extra if self.emit_tree else [])

    # ------------------------------------------------------------------ tree

    def _node(self, tree: _Tree, state: State, cost: Cost) -> _Node:
        """Create (or find) the node of ``state``: k rollouts, wrong ones into the pool."""
        node = tree.nodes.get(state.key)
        if node is not None:
            return node
        mc, rollouts = self.engine.value(state, self.k)
        cost.add(rollouts)
        node = tree.nodes[state.key] = _Node(state, mc)
        if mc > 0:
            for rollout in rollouts:
                self._offer(tree, state, rollout)
        return node

    def _offer(self, tree: _Tree, state: State, rollout: Rollout) -> None:
        key = (state.key, rollout.idx)
        if rollout.correct or key in tree.exhausted or key in tree.pool:
            return
        steps = tuple(split_steps(rollout.text)) if rollout.text.strip() else ()
        if steps:
            tree.pool[key] = _Candidate(
                state, steps, rollout.completion_tokens, rollout.answer, key
            )

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
        tree.exhausted.add(best.key)
        return best

    def _binary(
        self, tree: _Tree, state: State, steps: tuple[str, ...], trace_id: str, cost: Cost
    ) -> tuple[int, list[list[float]]]:
        """First wrong step of ``steps`` (0-based, relative) continuing ``state``."""
        tree.nodes[state.key].visits += 1
        lo, hi = 0, len(steps)
        probes: list[list[float]] = []
        while hi - lo > 1:
            mid = (lo + hi) // 2
            child = State(state.problem_id, state.prompt, state.steps + steps[:mid], trace_id)
            node = self._node(tree, child, cost)
            node.visits += 1
            probes.append([len(child.steps), node.mc])
            if node.mc > 0:
                lo = mid
            else:
                hi = mid
        return hi - 1, probes

    def _search(self, trace: Trace) -> tuple[LabeledTrace, list[LabeledTrace]]:
        tree = _Tree()
        cost = Cost()
        root = State.of(trace, 0)
        root_node = self._node(tree, root, cost)
        correct = self.engine.check_trace(trace)
        selections = 0
        probes: list[list[float]] = []
        first_error = -1
        if not correct:
            first_error, probes = self._binary(tree, root, tuple(trace.steps), trace.id, cost)
            selections = 1
        extras: list[LabeledTrace] = []
        while tree.pool and selections < self.search_limit:
            candidate = self._select(tree)
            selections += 1
            own = Cost()
            before = len(tree.nodes)
            rel, cand_probes = self._binary(tree, candidate.state, candidate.steps, trace.id, own)
            cost.rollouts += own.rollouts
            cost.policy_tokens += own.policy_tokens
            cost.prompt_tokens += own.prompt_tokens
            steps = list(candidate.state.steps + candidate.steps)
            fe = len(candidate.state.steps) + rel
            base = Trace(
                id=f"{trace.id}/omega-{selections - 1}",
                problem_id=trace.problem_id,
                prompt=trace.prompt,
                steps=steps,
                answer=candidate.answer,
                meta={"origin": "omega_tree", "root_trace": trace.id},
            )
            extras.append(
                labeled(
                    base,
                    first_error_labels(len(steps), fe),
                    fe,
                    "omega",
                    own,
                    method="omega",
                    origin="omega_tree",
                    root_trace=trace.id,
                    k=self.k,
                    probes=cand_probes,
                    new_states=len(tree.nodes) - before,
                )
            )
        out = labeled(
            trace,
            first_error_labels(len(trace.steps), first_error),
            first_error,
            "omega",
            cost,
            method="omega",
            k=self.k,
            probes=probes,
            final_answer_correct=correct,
            root_value=root_node.mc,
            tree={"states": len(tree.nodes), "selections": selections, "pool_left": len(tree.pool)},
        )
        return out, extras
