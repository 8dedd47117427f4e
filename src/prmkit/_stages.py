"""Stage packages that can be called: ``prmkit.train(cfg)`` runs ``prmkit.train.train(cfg)``.

The public API offers each stage as a function under the stage's own name (``prmkit.generate``,
``prmkit.annotate``, ``prmkit.train``, ``prmkit.score``, ``prmkit.search``) while the package of
that name keeps its other names (``prmkit.score.PRMScorer``). A stage package makes itself
callable by ending its ``__init__`` with ``callable_stage(__name__, "entry_function")``: the
module's class becomes :class:`StageModule`, whose ``__call__`` runs the entry function.

Example:
    >>> import prmkit.score
    >>> callable(prmkit.score), prmkit.score.__call__.__doc__.splitlines()[0]
    (True, 'Run the stage: the entry function named by ``__stage_entry__``.')
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["StageModule", "callable_stage"]


class StageModule(types.ModuleType):
    """A stage package that is also its own entry function."""

    __stage_entry__: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the stage: the entry function named by ``__stage_entry__``."""
        return getattr(self, self.__stage_entry__)(*args, **kwargs)


def callable_stage(module_name: str, entry: str) -> None:
    """Make the (already imported) package ``module_name`` callable as its ``entry`` function."""
    module = sys.modules[module_name]
    module.__stage_entry__ = entry  # type: ignore[attr-defined]
    module.__class__ = StageModule
