"""Step segmentation: the one place where step separators live.

:func:`split` turns a solution text into steps and keeps, for each step, its character span in the
text, plus the exact text between steps (``gaps``), so :func:`join` reproduces the input exactly.

Strategies:

* ``double_newline`` (default): steps are separated by one or more blank lines.
* ``single_newline``: every non-blank line is a step.
* ``step_markers``: a step starts at each ``Step k:`` marker (``Step 3.``, ``## Step 3:`` too);
  text before the first marker, if any, is a step of its own.
* ``regex``: steps are separated by matches of a user pattern (``pattern=``).
* ``sentences``: sentence ends (``.``, ``!``, ``?`` followed by space and a capital, digit or ``$``),
  not inside decimals like ``3.5`` or common abbreviations.

Step text never has leading or trailing white space; that goes into the gaps.

Example:
    >>> s = split("Add 2 and 3: 5.\\n\\nDouble it: 10.\\n")
    >>> s.steps
    ['Add 2 and 3: 5.', 'Double it: 10.']
    >>> s.spans
    [(0, 15), (17, 31)]
    >>> join(s) == "Add 2 and 3: 5.\\n\\nDouble it: 10.\\n"
    True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from prmkit.errors import ConfigError

__all__ = [
    "STRATEGIES",
    "Segmentation",
    "Strategy",
    "check_segmentation",
    "join",
    "join_steps",
    "segmentation_of",
    "split",
    "split_steps",
]

Strategy = Literal["double_newline", "single_newline", "step_markers", "regex", "sentences"]
STRATEGIES: tuple[str, ...] = (
    "double_newline",
    "single_newline",
    "step_markers",
    "regex",
    "sentences",
)

DEFAULT_SEPARATOR = "\n\n"
_SEPARATORS = {
    "double_newline": re.compile(r"\n[ \t\r\f\v]*\n\s*"),
    "single_newline": re.compile(r"\n"),
}
_STEP_MARKER = re.compile(r"(?im)^[ \t]*(?:#+[ \t]*)?(?:\*\*)?step[ \t]+\d+[ \t]*[:.)]")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "Dr.", "Mr.", "Mrs.", "Ms.", "Fig.", "No.")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9$\\(\"'])")


@dataclass(frozen=True)
class Segmentation:
    """Steps of a text with their character spans and the text between them.

    Attributes:
        text: The original text.
        steps: Step strings, stripped of surrounding white space, never empty.
        spans: ``(start, end)`` of each step in ``text``; ``text[start:end] == step``.
        gaps: ``len(steps) + 1`` strings: before the first step, between steps, after the last.
    """

    text: str
    steps: list[str]
    spans: list[tuple[int, int]]
    gaps: list[str]

    def step_of_offset(self, offset: int) -> int:
        """Index of the step containing character ``offset`` (-1 if it falls in a gap)."""
        for i, (start, end) in enumerate(self.spans):
            if start <= offset < end:
                return i
        return -1


def _from_cuts(text: str, cuts: list[tuple[int, int]]) -> Segmentation:
    """Build a segmentation from ``(start, end)`` chunks covering the text, stripping each."""
    spans: list[tuple[int, int]] = []
    for start, end in cuts:
        chunk = text[start:end]
        stripped = chunk.strip()
        if not stripped:
            continue
        lead = len(chunk) - len(chunk.lstrip())
        spans.append((start + lead, start + lead + len(stripped)))
    steps = [text[s:e] for s, e in spans]
    bounds = [0, *[x for span in spans for x in span], len(text)]
    gaps = [text[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds), 2)]
    return Segmentation(text=text, steps=steps, spans=spans, gaps=gaps)


def _cuts_by_separator(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    cuts, pos = [], 0
    for match in pattern.finditer(text):
        if match.end() == match.start():
            continue
        cuts.append((pos, match.start()))
        pos = match.end()
    cuts.append((pos, len(text)))
    return cuts


def _cuts_by_markers(text: str) -> list[tuple[int, int]]:
    starts = [m.start() for m in _STEP_MARKER.finditer(text)]
    if not starts:
        return [(0, len(text))]
    bounds = ([0] if starts[0] > 0 else []) + starts + [len(text)]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _cuts_by_sentences(text: str) -> list[tuple[int, int]]:
    cuts, pos = [], 0
    for match in _SENTENCE_END.finditer(text):
        before = text[pos : match.start()]
        if before.endswith(_ABBREVIATIONS):
            continue
        cuts.append((pos, match.start()))
        pos = match.start()
    cuts.append((pos, len(text)))
    # Paragraph breaks always end a sentence too.
    out: list[tuple[int, int]] = []
    for start, end in cuts:
        for s, e in _cuts_by_separator(text[start:end], _SEPARATORS["double_newline"]):
            out.append((start + s, start + e))
    return out


def split(
    text: str, strategy: Strategy = "double_newline", *, pattern: str | None = None
) -> Segmentation:
    """Split ``text`` into steps with the given strategy.

    Args:
        text: The solution text.
        strategy: One of :data:`STRATEGIES`.
        pattern: The separator regex, required for (and only used by) ``strategy="regex"``.

    Raises:
        ConfigError: unknown strategy, or a missing/invalid ``pattern``.
    """
    if not isinstance(text, str):
        raise ConfigError(
            "text to segment is not a string",
            got=type(text).__name__,
            expected="str",
            fix="pass the solution text",
        )
    if strategy in _SEPARATORS:
        cuts = _cuts_by_separator(text, _SEPARATORS[strategy])
    elif strategy == "step_markers":
        cuts = _cuts_by_markers(text)
    elif strategy == "sentences":
        cuts = _cuts_by_sentences(text)
    elif strategy == "regex":
        if not pattern:
            raise ConfigError(
                "strategy 'regex' needs a separator pattern",
                got=pattern,
                expected="a regular expression",
                fix="pass pattern=r'...'",
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(
                f"invalid regex ({exc})",
                got=pattern,
                expected="a valid Python regular expression",
                fix="escape special characters",
            ) from None
        cuts = _cuts_by_separator(text, compiled)
    else:
        raise ConfigError(
            "unknown segmentation strategy",
            got=strategy,
            expected=f"one of {list(STRATEGIES)}",
            fix="pick a listed strategy",
        )
    return _from_cuts(text, cuts)


def join(segmentation: Segmentation) -> str:
    """Reassemble the original text from steps and gaps; ``join(split(x)) == x``."""
    parts = [segmentation.gaps[0]]
    for step, gap in zip(segmentation.steps, segmentation.gaps[1:], strict=True):
        parts += [step, gap]
    return "".join(parts)


def split_steps(
    text: str, strategy: Strategy = "double_newline", *, pattern: str | None = None
) -> list[str]:
    """Just the step strings of :func:`split`."""
    return split(text, strategy, pattern=pattern).steps


def join_steps(steps: list[str], separator: str = DEFAULT_SEPARATOR) -> str:
    """Render a list of steps as one solution text (the inverse of ``split_steps``)."""
    return separator.join(steps)


def segmentation_of(meta: dict) -> str:
    """The segmentation a trace's steps were split with (``meta["segmentation"]``, which
    ``prmkit generate`` writes; records without it are taken as ``double_newline``)."""
    return str(meta.get("segmentation", "double_newline"))


def check_segmentation(meta: dict, expected: str, *, where: str) -> None:
    """Refuse a trace whose steps were split otherwise than ``expected``.

    Consumers that continue or re-split a trace's text (rollouts join a prefix with
    :data:`DEFAULT_SEPARATOR` and split the continuation with ``double_newline``) call this, so
    two step boundaries are never mixed silently.

    Raises:
        DataFormatError: naming both segmentations and how to fix it.
    """
    got = segmentation_of(meta)
    if got != expected:
        from prmkit.errors import DataFormatError

        raise DataFormatError(
            f"the trace's steps were split with '{got}', this step needs '{expected}'",
            got=got,
            expected=expected,
            fix=f"generate the traces with segmentation={expected} (or re-split them)",
            where=where,
        )
