"""Consensus of labelers: keep the traces on whose first error they all agree.

Qwen's PRM lessons (2501.07301) filter Monte Carlo labels with an LLM judge this way. Any two or
more :class:`~prmkit.annotate.protocol.Labeler` s combine; each labels every trace, and a trace is
kept when all of them name the same first error (-1 included). The kept record is the first
member's, with every member's first error in ``meta["annotation"]["consensus"]``; its
``rollouts`` / ``policy_tokens`` / ``prompt_tokens`` are the members' sums (what the trace cost).

A member that returns no record for a trace (a judge with no valid vote) or one with only
``None`` labels (binary search on a problem the policy never solves, a SCAN-filtered problem)
leaves the trace unknown: it is not kept, and counts as missing for that member in the report.
Traces not kept are in :attr:`ConsensusLabeler.dropped` (first error ``-1`` counts as agreement
only when every member says it).

:class:`ConsensusReport` gives the kept fraction and the pairwise agreement matrix (the share of
traces on which two members agree), over the traces every member labelled.

Example:
    >>> report = consensus_report({"mc": [...], "judge": [...]})  # doctest: +SKIP
    >>> report.kept_fraction, report.matrix["mc"]["judge"]  # doctest: +SKIP
    (0.62, 0.62)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from prmkit.annotate.protocol import Labeler
from prmkit.errors import ConfigError
from prmkit.records import LabeledTrace, Trace

__all__ = ["ConsensusLabeler", "ConsensusReport", "consensus_report"]


@dataclass
class ConsensusReport:
    """How far labelers agree on first errors.

    Attributes:
        members: Labeler names, in order.
        total: Traces labelled by every member.
        kept: Traces on which all members agree.
        matrix: ``matrix[a][b]``: the fraction of the ``total`` traces on which ``a`` and ``b``
            name the same first error.
        missing: Per member, trace ids it returned no label for (e.g. a judge with no valid vote).
    """

    members: list[str]
    total: int
    kept: int
    matrix: dict[str, dict[str, float]]
    missing: dict[str, list[str]] = field(default_factory=dict)

    @property
    def kept_fraction(self) -> float:
        """``kept / total`` (0.0 when nothing was labelled by all)."""
        return self.kept / self.total if self.total else 0.0

    def format(self) -> str:
        """A small readable table."""
        width = max(len(m) for m in self.members) + 2
        lines = [
            f"consensus: kept {self.kept}/{self.total} ({self.kept_fraction:.1%})",
            " " * width + "".join(f"{m:>{width}}" for m in self.members),
        ]
        for a in self.members:
            lines.append(
                f"{a:<{width}}" + "".join(f"{self.matrix[a][b]:>{width}.3f}" for b in self.members)
            )
        return "\n".join(lines)


def _informative(record: LabeledTrace) -> bool:
    """Whether a member said anything about the trace (not every label ``None``)."""
    return any(label is not None for label in record.labels)


def consensus_report(outputs: Mapping[str, Sequence[LabeledTrace]]) -> ConsensusReport:
    """Agreement on first errors between labelled versions of the same traces (by trace id).

    A version whose labels are all ``None`` counts as missing.
    """
    members = list(outputs)
    by_id = {m: {t.id: t.first_error for t in outputs[m] if _informative(t)} for m in members}
    common = [tid for tid in by_id[members[0]] if all(tid in by_id[m] for m in members)]
    every = set().union(*(set(ids) for ids in by_id.values()))
    missing = {m: sorted(every - set(by_id[m])) for m in members}
    matrix = {
        a: {
            b: (sum(by_id[a][t] == by_id[b][t] for t in common) / len(common) if common else 0.0)
            for b in members
        }
        for a in members
    }
    kept = sum(len({by_id[m][t] for m in members}) == 1 for t in common)
    return ConsensusReport(
        members, len(common), kept, matrix, {m: ids for m, ids in missing.items() if ids}
    )


class ConsensusLabeler:
    """Keep traces on which every member labeler finds the same first error.

    Args:
        members: Two or more labelers; the first one's labels are kept up to and including the
            agreed first error. The members agree on nothing after it, so later labels are
            ``null`` (a member such as MC without stop-at-zero may have said 1.0 there).
    """

    name = "consensus"

    def __init__(self, members: Sequence[Labeler]) -> None:
        if len(members) < 2:
            raise ConfigError(
                "consensus needs two or more labelers",
                got=[m.name for m in members],
                expected="at least two members",
                fix="e.g. --members mc,judge",
            )
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ConfigError(
                "consensus members must have distinct names",
                got=names,
                expected="distinct labelers",
                fix="list each method once",
            )
        self.members = list(members)
        self.report: ConsensusReport | None = None
        """The report over every trace this labeler has labelled so far (all calls)."""
        self.dropped: list[LabeledTrace] = []
        """Traces of the last :meth:`label` call that were not kept (members disagree, or one
        could not label them), as the first member's record (any member's if it has none),
        with ``consensus.agreed = False``."""
        self._seen: dict[str, list[LabeledTrace]] = {m.name: [] for m in self.members}

    @property
    def unsolvable_problems(self) -> list[str]:
        """The members' unsolvable problems (their traces are never kept), each once."""
        found = (p for m in self.members for p in getattr(m, "unsolvable_problems", []))
        return list(dict.fromkeys(found))

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Run every member on ``traces``; return the agreed traces (first member's labels)."""
        ids = {t.id for t in traces}
        outputs = {m.name: [t for t in m.label(traces) if t.id in ids] for m in self.members}
        for name, out in outputs.items():
            self._seen[name].extend(out)
        self.report = consensus_report(self._seen)
        by_id = {name: {t.id: t for t in out} for name, out in outputs.items()}
        kept: list[LabeledTrace] = []
        self.dropped = []
        for trace in traces:
            versions = {name: by_id[name].get(trace.id) for name in by_id}
            present = [v for v in versions.values() if v is not None]
            if not present:
                continue
            errors = {
                name: v.first_error if v is not None and _informative(v) else None
                for name, v in versions.items()
            }
            agreed = None not in errors.values() and len(set(errors.values())) == 1
            record = versions[self.members[0].name] or present[0]
            meta = dict(record.meta)
            meta["annotation"] = {
                **meta["annotation"],
                **{key: sum(v.meta["annotation"][key] for v in present) for key in _COST_KEYS},
                "consensus": {
                    "members": list(errors),
                    "first_errors": errors,
                    "agreed": agreed,
                    "rollouts": sum(v.meta["annotation"]["rollouts"] for v in present),
                    "member_rollouts": {
                        name: v.meta["annotation"]["rollouts"]
                        for name, v in versions.items()
                        if v is not None
                    },
                },
            }
            if any(v.meta["annotation"].get("unsolvable") for v in present):
                meta["annotation"]["unsolvable"] = True
            labels = record.labels
            if agreed and record.first_error >= 0:
                labels = labels[: record.first_error + 1]
            (kept if agreed else self.dropped).append(
                LabeledTrace(
                    **record.trace_fields() | {"meta": meta},
                    labels=labels + [None] * (len(record.labels) - len(labels)),
                    first_error=record.first_error,
                    label_source="consensus:" + "+".join(errors),
                )
            )
        return kept


_COST_KEYS = ("rollouts", "policy_tokens", "prompt_tokens")
