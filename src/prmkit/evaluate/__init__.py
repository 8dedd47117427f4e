"""Evaluation: ProcessBench, PRMBench, step metrics, best-of-N.

Each module is importable on its own; ``prmkit eval`` (``prmkit.evaluate.cli``) wires them to the
command line. See ``docs/evaluate.md`` for the metric definitions.
"""

from __future__ import annotations

__all__: list[str] = []
