"""How a :class:`~prmkit.generate.protocol.Prefix` becomes model input, and where a step ends.

The problem is the user message of the tokenizer's chat template; the given steps start the
assistant message, joined by the step separator of :mod:`prmkit.steps` (``"\\n\\n"``). A prefix with
steps ends with that separator, so the model's next token starts the next step.

Token ids are built so that a prefix tokenizes exactly as the same text does in the middle of a
whole solution: ``"5.\\n\\n"`` at the end of a string becomes the single token ``"ĊĊ"`` in SmolLM2's
tokenizer, but inside a solution (as the model saw it in training) it is ``"Ċ", "Ċ"``.
:func:`encode_prefix` (through :func:`encode_text`) appends the in-text form of the separator.

Example:
    >>> from prmkit.models import load_tokenizer  # doctest: +SKIP
    >>> tok = load_tokenizer("smollm2")  # doctest: +SKIP
    >>> render_prefix(tok, Prefix("What is 2+3?", ("2 + 3 = 5.",)))[-30:]  # doctest: +SKIP
    'user\\nWhat is 2+3?<|im_end|>\\n<|im_start|>assistant\\n2 + 3 = 5.\\n\\n'
    >>> find_step_end("Add them: 5.\\n\\nThen")
    12
"""

from __future__ import annotations

import re
from typing import Any

from prmkit.errors import ModelLoadError
from prmkit.generate.protocol import Prefix
from prmkit.steps import DEFAULT_SEPARATOR, join_steps

__all__ = [
    "STEP_BOUNDARY",
    "STEP_SEPARATOR",
    "encode_prefix",
    "encode_text",
    "find_step_end",
    "render_prefix",
    "render_solution",
    "separator_ids",
]

STEP_SEPARATOR = DEFAULT_SEPARATOR
"""The text placed between steps (``"\\n\\n"``), from :mod:`prmkit.steps`."""

STEP_BOUNDARY = re.compile(r"\n[ \t\r\f\v]*\n")
"""A step boundary: a blank line, as :func:`prmkit.steps.split` (``double_newline``) splits."""


def find_step_end(text: str) -> int | None:
    """Offset where the first step of ``text`` ends (the start of the boundary), or ``None``.

    A boundary only counts after some non-blank text, so leading blank lines never make an empty
    step. ``text[:find_step_end(text)]`` is the step, as :func:`prmkit.steps.split` would cut it
    (up to trailing white space, which ``split`` strips).
    """
    start = len(text) - len(text.lstrip())
    if start == len(text):
        return None
    match = STEP_BOUNDARY.search(text, start)
    return None if match is None else match.start()


def _template_messages(prompt: str, system: str | None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system is not None else []
    return [*messages, {"role": "user", "content": prompt}]


def _chat_head(tokenizer: Any, prompt: str, system: str | None, chat: bool) -> str:
    if not chat:
        return prompt + STEP_SEPARATOR
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError(
            "the tokenizer has no chat template",
            got=getattr(tokenizer, "name_or_path", None),
            expected="a tokenizer with a chat_template",
            fix="use an instruct model's tokenizer, or pass chat=False for a plain "
            "'prompt\\n\\nsteps' layout",
        )
    return tokenizer.apply_chat_template(
        _template_messages(prompt, system), tokenize=False, add_generation_prompt=True
    )


def render_prefix(
    tokenizer: Any, prefix: Prefix, *, system: str | None = None, chat: bool = True
) -> str:
    """The model input of ``prefix`` as text (the generation prompt plus the given steps).

    Args:
        tokenizer: A Hugging Face tokenizer.
        prefix: The problem and the steps so far.
        system: A system message; ``None`` keeps the template's default.
        chat: Use the chat template (``False``: ``prompt + "\\n\\n" + steps``).
    """
    head = _chat_head(tokenizer, prefix.prompt, system, chat)
    if not prefix.steps:
        return head
    return head + join_steps(list(prefix.steps)) + STEP_SEPARATOR


def render_solution(
    tokenizer: Any,
    prompt: str,
    steps: list[str] | tuple[str, ...],
    *,
    system: str | None = None,
    chat: bool = True,
) -> tuple[str, str]:
    """A whole worked solution as ``(prompt_text, completion_text)``, e.g. for fine-tuning.

    ``completion_text`` is the steps joined by the separator followed by the end-of-turn token
    (``<|im_end|>`` for SmolLM2), so a model trained on it stops where :class:`Generator`
    ``stop="solution"`` expects.
    """
    head = _chat_head(tokenizer, prompt, system, chat)
    end = tokenizer.eos_token or ""
    return head, join_steps(list(steps)) + end


def separator_ids(tokenizer: Any) -> list[int]:
    """Token ids of the separator as it tokenizes *between* two steps (not at the end of text)."""
    a = tokenizer.encode("a", add_special_tokens=False)
    both = tokenizer.encode("a" + STEP_SEPARATOR + "a", add_special_tokens=False)
    if len(both) > 2 * len(a) and both[: len(a)] == a and both[-len(a) :] == a:
        return both[len(a) : -len(a)]
    return tokenizer.encode(STEP_SEPARATOR, add_special_tokens=False)  # it merges with neighbours


def encode_text(tokenizer: Any, text: str, sep_ids: list[int] | None = None) -> list[int]:
    """Token ids of ``text`` (no special tokens added); a trailing step separator is encoded in
    its in-text form, as :func:`separator_ids` (pass them as ``sep_ids`` to reuse them)."""
    if not text.endswith(STEP_SEPARATOR):
        return tokenizer.encode(text, add_special_tokens=False)
    body = tokenizer.encode(text[: -len(STEP_SEPARATOR)], add_special_tokens=False)
    return body + (separator_ids(tokenizer) if sep_ids is None else sep_ids)


def encode_prefix(
    tokenizer: Any, prefix: Prefix, *, system: str | None = None, chat: bool = True
) -> list[int]:
    """Token ids of :func:`render_prefix`, with the trailing separator in its in-text form.

    The chat template already holds any special tokens, so none are added.
    """
    return encode_text(tokenizer, render_prefix(tokenizer, prefix, system=system, chat=chat))
