"""Step labels for traces: Monte Carlo, binary search, OmegaPRM, SCAN, checker, judge, consensus.

The stage is :func:`annotate` with its :class:`AnnotateConfig`; ``prmkit annotate`` parses the
same keys and calls it. Every rollout-based labeler draws through a :class:`RolloutEngine` backed
by a resumable SQLite :class:`RolloutStore`; the labelers can also be built directly. See
``docs/annotate.md``.

Example:
    >>> from prmkit.annotate import AnnotateConfig, annotate
    >>> from prmkit.models import PolicyConfig
    >>> cfg = AnnotateConfig(method="binary", k=8, out="labeled.jsonl",
    ...                      policy=PolicyConfig(model="smollm2", adapter="warmup"))  # doctest: +SKIP
    >>> result = annotate(cfg, traces, problems)  # doctest: +SKIP
    >>> print("\n".join(result.lines()))  # doctest: +SKIP
    labelled 6/6 traces with binary -> labeled.jsonl
    budget used: 40 rollouts (40 drawn now, 0 reused from the store), ...
"""

from prmkit.annotate.binary_search import BinarySearchLabeler
from prmkit.annotate.build import LabelerBuilder
from prmkit.annotate.checkers import ArithmeticStepChecker, TaskAnswerChecker
from prmkit.annotate.config import METHODS, AnnotateConfig
from prmkit.annotate.consensus import ConsensusLabeler, ConsensusReport, consensus_report
from prmkit.annotate.exact import ExactLabeler
from prmkit.annotate.judge import JudgeLabeler
from prmkit.annotate.montecarlo import AdaptiveK, MonteCarloLabeler
from prmkit.annotate.omega import OmegaPRMLabeler
from prmkit.annotate.protocol import AnswerCheck, AnswerChecker, Labeler, StepChecker
from prmkit.annotate.rollouts import Drawn, RolloutEngine, State, Usage
from prmkit.annotate.scan import ScanLabeler, scan_labels
from prmkit.annotate.stage import AnnotateResult, annotate, chunk_by_problem
from prmkit.annotate.store import Rollout, RolloutStore
from prmkit.annotate.transforms import relabel

__all__ = [
    "METHODS",
    "AdaptiveK",
    "AnnotateConfig",
    "AnnotateResult",
    "AnswerCheck",
    "AnswerChecker",
    "ArithmeticStepChecker",
    "BinarySearchLabeler",
    "ConsensusLabeler",
    "ConsensusReport",
    "Drawn",
    "ExactLabeler",
    "JudgeLabeler",
    "Labeler",
    "LabelerBuilder",
    "MonteCarloLabeler",
    "OmegaPRMLabeler",
    "Rollout",
    "RolloutEngine",
    "RolloutStore",
    "ScanLabeler",
    "State",
    "StepChecker",
    "TaskAnswerChecker",
    "Usage",
    "annotate",
    "chunk_by_problem",
    "consensus_report",
    "relabel",
    "scan_labels",
]

from prmkit._stages import callable_stage

callable_stage(__name__, "annotate")
