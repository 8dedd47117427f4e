"""Moved: :func:`load_policy` lives in :mod:`prmkit.models.policy` (this name stays importable)."""

from prmkit.models.policy import load_policy

__all__ = ["load_policy"]
