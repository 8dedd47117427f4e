"""Step labels for traces: Monte Carlo, binary search, OmegaPRM, SCAN, checker, judge, consensus.

Every rollout-based labeler draws through a :class:`RolloutEngine` backed by a resumable SQLite
:class:`RolloutStore`. See ``docs/annotate.md``.
"""

from prmkit.annotate.binary_search import BinarySearchLabeler
from prmkit.annotate.checkers import ArithmeticStepChecker, TaskAnswerChecker
from prmkit.annotate.consensus import ConsensusLabeler, ConsensusReport, consensus_report
from prmkit.annotate.exact import ExactLabeler
from prmkit.annotate.judge import JudgeLabeler
from prmkit.annotate.montecarlo import AdaptiveK, MonteCarloLabeler
from prmkit.annotate.omega import OmegaPRMLabeler
from prmkit.annotate.protocol import AnswerCheck, AnswerChecker, Labeler, StepChecker
from prmkit.annotate.rollouts import RolloutEngine, State, Usage
from prmkit.annotate.scan import ScanLabeler, scan_labels
from prmkit.annotate.store import Rollout, RolloutStore
from prmkit.annotate.transforms import relabel

__all__ = [
    "AdaptiveK",
    "AnswerCheck",
    "AnswerChecker",
    "ArithmeticStepChecker",
    "BinarySearchLabeler",
    "ConsensusLabeler",
    "ConsensusReport",
    "ExactLabeler",
    "JudgeLabeler",
    "Labeler",
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
    "consensus_report",
    "relabel",
    "scan_labels",
]
