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
from prmkit.steps import Segmentation, split

__all__ = ["response_trace", "text_trace"]


def response_trace(
    spec: Any, prompt: str, text: str, *, id: str
) -> tuple[Trace | None, Segmentation]:
    """``text`` split into steps by ``spec``'s segmentation, as a :class:`Trace` (``None``
    when the text has no step), with the segmentation (character spans of the steps)."""
    seg = split(text, spec.segmentation, pattern=spec.segmentation_pattern)
    if not seg.steps:
        return None, seg
    return Trace(id=id, problem_id=id, prompt=prompt, steps=list(seg.steps)), seg


def text_trace(
    spec: Any, prompt: str, text: str, *, id: str = "t0", where: str | None = None
) -> Trace:
    """A :class:`Trace` of ``text`` split into steps with ``spec``'s segmentation.

    Raises:
        DataFormatError: the text has no step (empty or blank).
        ConfigError: ``prompt`` or ``text`` is not a string.
    """
    trace, _ = response_trace(spec, prompt, text, id=id)
    if trace is None:
        raise DataFormatError(
            "the response has no step to score",
            got=text[:80],
            expected=f"non-blank text (split by {spec.segmentation})",
            fix="send the model's response text",
            where=where,
        )
    return trace
