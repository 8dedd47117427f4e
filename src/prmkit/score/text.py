"""Traces from plain solution text, split the way a PRM's spec says (``spec.segmentation``).

Servers (``/v1/score`` with ``text``, OpenRLHF's ``/get_reward``) and RL reward adapters receive
a prompt and a free-text response; :func:`text_trace` turns them into the :class:`Trace` every
scorer takes, with the one segmenter (:func:`prmkit.steps.split`).

Example:
    >>> from prmkit.prm import PRMSpec
    >>> spec = PRMSpec.from_format("trl", head="tokcls")
    >>> text_trace(spec, "2+3?", "2 + 3 = 5.\\n\\nSo 5.").steps
    ['2 + 3 = 5.', 'So 5.']
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import DataFormatError
from prmkit.records import Trace
from prmkit.steps import split

__all__ = ["text_trace"]


def text_trace(
    spec: Any, prompt: str, text: str, *, id: str = "t0", where: str | None = None
) -> Trace:
    """A :class:`Trace` of ``text`` split into steps with ``spec``'s segmentation.

    Raises:
        DataFormatError: the text has no step (empty or blank).
        ConfigError: ``prompt`` or ``text`` is not a string.
    """
    steps = split(text, spec.segmentation, pattern=spec.segmentation_pattern).steps
    if not steps:
        raise DataFormatError(
            "the response has no step to score",
            got=text[:80],
            expected=f"non-blank text (split by {spec.segmentation})",
            fix="send the model's response text",
            where=where,
        )
    return Trace(id=id, problem_id=id, prompt=prompt, steps=steps)
