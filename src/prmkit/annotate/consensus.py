"""Consensus of labelers: keep the traces on whose first error they all agree.

Qwen's PRM lessons (2501.07301) filter Monte Carlo labels with an LLM judge this way. Any two or
more :class:`~prmkit.annotate.protocol.Labeler` s combine; each labels every trace, and a trace is
kept when all of them name the same first error (-1 included). The kept record is the first
member's, with every member's first error in ``meta["annotation"]["consensus"]``.

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


def consensus_report(outputs: Mapping[str, Sequence[LabeledTrace]]) -> ConsensusReport:
    """Agreement on first errors between labelled versions of the same traces (by trace id)."""
    members = list(outputs)
    by_id = {m: {t.id: t.first_error for t in outputs[m]} for m in members}
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
        self._seen: dict[str, list[LabeledTrace]] = {m.name: [] for m in self.members}

    def label(self, traces: Sequence[Trace]) -> list[LabeledTrace]:
        """Run every member on ``traces``; return the agreed traces (first member's labels)."""
        ids = {t.id for t in traces}
        outputs = {m.name: [t for t in m.label(traces) if t.id in ids] for m in self.members}
        for name, out in outputs.items():
            self._seen[name].extend(out)
        self.report = consensus_report(self._seen)
        by_id = {name: {t.id: t for t in out} for name, out in outputs.items()}
        first = self.members[0].name
        kept = []
        for trace in traces:
            versions = {name: by_id[name].get(trace.id) for name in by_id}
            if any(v is None for v in versions.values()):
                continue
            errors = {name: v.first_error for name, v in versions.items()}
            if len(set(errors.values())) != 1:
                continue
            record = versions[first]
            meta = dict(record.meta)
            meta["annotation"] = {
                **meta["annotation"],
                "consensus": {
                    "members": list(errors),
                    "first_errors": errors,
                    "rollouts": sum(v.meta["annotation"]["rollouts"] for v in versions.values()),
                },
            }
            agreed = record.first_error
            labels = record.labels if agreed < 0 else record.labels[: agreed + 1]
            kept.append(
                LabeledTrace(
                    **record.trace_fields() | {"meta": meta},
                    labels=labels + [None] * (len(record.labels) - len(labels)),
                    first_error=record.first_error,
                    label_source="consensus:" + "+".join(errors),
                )
            )
        return kept
