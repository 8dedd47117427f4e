"""Evaluation: ProcessBench, PRMBench, step metrics, best-of-N, and the run report.

One entry function per benchmark, each taking records or their file and returning the result
dict that ``prmkit eval ... --output`` writes:

* :func:`evaluate_processbench`: first-error F1 per subset, from predictions or step scores and a
  declared threshold; :func:`judge_processbench` makes the predictions with an LLM critic.
* :func:`evaluate_prmbench`: PRMScore per error class and overall, by PRMBench's rules.
* :func:`evaluate_steps`: step AUROC, calibration error, last-step-minimum share.
* :func:`evaluate_best_of_n`: pass@N, maj@N, prm@N and the weighted vote vs N.

:func:`run_eval` runs any of them from its config (:class:`ProcessBenchConfig`,
:class:`PRMBenchConfig`, :class:`StepsConfig`, :class:`BestOfNConfig`; ``prmkit eval``),
:func:`format_result` gives the printed table, and :func:`write_report` turns a folder of results
into ``report.html`` and ``report.md`` (``prmkit report``). pass@k and maj@k themselves live in
:mod:`prmkit.tasks.accuracy`. See ``docs/evaluate.md`` for the metric definitions.

Example:
    >>> from prmkit.evaluate import evaluate_best_of_n, evaluate_processbench, format_result
    >>> pb = evaluate_processbench(  # doctest: +SKIP
    ...     ["math.json"], scores="math_scored.jsonl", threshold_from="dev_scored.jsonl"
    ... )
    >>> print(format_result("processbench", pb))  # doctest: +SKIP
    >>> bon = evaluate_best_of_n(scored_traces, ns=[1, 4, 16])  # records work too  # doctest: +SKIP
    >>> bon["curves"]["prm_min"][-1]["mean"]  # doctest: +SKIP
    71.5
"""

from __future__ import annotations

from prmkit.evaluate.best_of_n import evaluate_best_of_n
from prmkit.evaluate.format import format_result
from prmkit.evaluate.judge_eval import judge_processbench
from prmkit.evaluate.prmbench import evaluate_prmbench
from prmkit.evaluate.processbench import evaluate_processbench
from prmkit.evaluate.report import ReportConfig, build_report, write_report
from prmkit.evaluate.stage import (
    BestOfNConfig,
    EvalConfig,
    PRMBenchConfig,
    ProcessBenchConfig,
    StepsConfig,
    run_eval,
)
from prmkit.evaluate.step_metrics import evaluate_steps

__all__ = [
    "BestOfNConfig",
    "EvalConfig",
    "PRMBenchConfig",
    "ProcessBenchConfig",
    "ReportConfig",
    "StepsConfig",
    "build_report",
    "evaluate_best_of_n",
    "evaluate_prmbench",
    "evaluate_processbench",
    "evaluate_steps",
    "format_result",
    "judge_processbench",
    "run_eval",
    "write_report",
]
