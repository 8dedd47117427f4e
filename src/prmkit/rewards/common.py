"""What every RL reward adapter shares: the PRM spec, response text to steps, checked scores.

A reward adapter receives a prompt and a free-text response (or chat messages), splits the
response into steps with the PRM spec's own segmentation (:func:`prmkit.steps.split`, the one
segmenter, which keeps character spans), scores the steps with a
:class:`~prmkit.score.scorer.Scorer`, and turns the step scores into what the RL framework wants.

Example:
    >>> from prmkit.prm import PRMSpec
    >>> spec = PRMSpec.from_format("trl", head="tokcls")
    >>> trace, seg = response_trace(spec, "2+3?", "2 + 3 = 5.\\n\\nSo 5.", id="r0")
    >>> trace.steps, seg.spans
    (['2 + 3 = 5.', 'So 5.'], [(0, 10), (12, 17)])
    >>> response_trace(spec, "2+3?", "  \\n", id="r1")[0] is None
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prmkit.errors import ConfigError, DataFormatError
from prmkit.prm.spec import PRMSpec
from prmkit.records import Trace
from prmkit.score.text import response_trace

__all__ = [
    "check_ascore",
    "check_step_scores",
    "conversation_prompt",
    "conversation_response",
    "message_text",
    "resolve_spec",
    "response_trace",
]


def check_ascore(scorer: Any, fix: str) -> None:
    """Refuse a scorer without ``async ascore(traces)`` (the async adapters need one).

    Raises:
        ConfigError: naming the scorer's type and ``fix`` (the synchronous adapter to use).
    """
    if not callable(getattr(scorer, "ascore", None)):
        raise ConfigError(
            "the scorer has no async ascore(traces)",
            got=type(scorer).__name__,
            expected="a scorer with async ascore(traces) -> list[list[float]]",
            fix=fix,
        )


def resolve_spec(scorer: Any, spec: PRMSpec | None) -> PRMSpec:
    """The spec that says how responses are split: ``spec``, else the scorer's own.

    A :class:`~prmkit.score.scorer.PRMScorer` carries it as ``scorer.prm.spec``; other scorers
    (an HTTP client) may carry it as ``scorer.spec``.

    Raises:
        ConfigError: neither is there, or ``spec`` is not a :class:`PRMSpec`.
    """
    if spec is None:
        spec = getattr(scorer, "spec", None)
        if spec is None and getattr(scorer, "prm", None) is not None:
            spec = getattr(scorer.prm, "spec", None)
    if not isinstance(spec, PRMSpec):
        raise ConfigError(
            "no PRM spec to split responses into steps",
            got=type(spec).__name__,
            expected="a PRMSpec (spec=..., or a scorer with .spec or .prm.spec)",
            fix="pass spec=load_spec(checkpoint_dir), or a PRMScorer",
        )
    return spec


def message_text(content: Any, where: str) -> str:
    """The text of one chat message's ``content``: a string, or the ``text`` of its text blocks.

    Content blocks that are not text (images, audio) are left out: the PRM reads text only.
    ``None`` (an assistant turn that only calls a tool) is ``""``.

    Raises:
        DataFormatError: content of another shape.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
    raise DataFormatError(
        "a message's content is neither text nor a list of content blocks",
        got=type(content).__name__,
        expected="str, or [{'type': 'text', 'text': ...}, ...]",
        fix="pass chat messages as TRL does",
        where=where,
    )


def _check_messages(messages: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not all(
        isinstance(m, dict) and "role" in m for m in messages
    ):
        raise DataFormatError(
            "not a list of chat messages",
            got=messages,
            expected="[{'role': ..., 'content': ...}, ...]",
            fix="pass plain text or TRL's conversational format",
            where=where,
        )
    return messages


def conversation_prompt(messages: Any, where: str) -> str:
    """The PRM prompt of a chat prompt: the text of its last ``user`` message.

    A system message and earlier turns are not part of what the PRM was trained to read.

    Raises:
        DataFormatError: not chat messages, or no user message.
    """
    users = [m for m in _check_messages(messages, where) if m["role"] == "user"]
    if not users:
        raise DataFormatError(
            "the chat prompt has no user message",
            got=[m["role"] for m in messages],
            expected="at least one message with role 'user'",
            fix="put the problem in a user message, or pass prompt_key=<column>",
            where=where,
        )
    return message_text(users[-1].get("content"), where)


def conversation_response(messages: Any, where: str) -> str:
    """The response text of a chat completion: its ``assistant`` messages' text, joined by a
    blank line (tool calls and tool results are not steps)."""
    parts = [
        message_text(m.get("content"), where)
        for m in _check_messages(messages, where)
        if m["role"] == "assistant"
    ]
    return "\n\n".join(p for p in parts if p.strip())


def check_step_scores(
    scores: Sequence[Sequence[float]], traces: Sequence[Trace], who: str
) -> list[list[float]]:
    """The scorer's output, checked: one list per trace, one score per step.

    Raises:
        DataFormatError: a count differs (a missing score is never made up).
    """
    if len(scores) != len(traces):
        raise DataFormatError(
            f"{who} returned {len(scores)} score lists for {len(traces)} traces",
            got=len(scores),
            expected=str(len(traces)),
            fix="check the scorer (one list of step scores per trace, in input order)",
        )
    out = []
    for s, t in zip(scores, traces, strict=True):
        if len(s) != len(t.steps):
            raise DataFormatError(
                f"{who} returned {len(s)} step scores for a trace of {len(t.steps)} steps",
                got=list(s)[:8],
                expected=f"{len(t.steps)} scores",
                fix="check the scorer and the spec's segmentation",
                where=f"trace {t.id!r}",
            )
        out.append([float(x) for x in s])
    return out
