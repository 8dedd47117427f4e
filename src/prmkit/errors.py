"""The typed errors prmkit raises.

Every message says what was received, what was expected and how to fix it, and, for data, where
(file and line or row, and the field).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CheckerError",
    "ConfigError",
    "DataFormatError",
    "ModelLoadError",
    "PrmkitError",
    "RecordError",
]

_MAX_SHOWN = 120


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


class PrmkitError(Exception):
    """Base class of prmkit's errors.

    Args:
        what: One sentence saying what is wrong.
        got: The value received (shown with ``repr``, shortened).
        expected: What would have been accepted.
        fix: How to fix it.
        where: Location, e.g. ``data.jsonl:12`` or ``data.jsonl:12 field 'labels'``.
    """

    def __init__(
        self,
        what: str,
        *,
        got: Any = None,
        expected: str | None = None,
        fix: str | None = None,
        where: str | None = None,
    ) -> None:
        self.what = what
        self.got = got
        self.expected = expected
        self.fix = fix
        self.where = where
        parts = [f"{where}: {what}" if where else what]
        if got is not None:
            parts.append(f"got {_show(got)}")
        if expected:
            parts.append(f"expected {expected}")
        message = "; ".join(parts)
        if fix:
            message += f". Fix: {fix}"
        super().__init__(message)


class RecordError(PrmkitError, ValueError):
    """A record (Problem, Trace, ...) has a missing, mistyped or inconsistent field."""


class DataFormatError(PrmkitError, ValueError):
    """A file cannot be parsed: malformed JSON, non-UTF-8 bytes, wrong top-level shape."""


class ConfigError(PrmkitError, ValueError):
    """A configuration key is unknown or its value has the wrong type."""


class ModelLoadError(PrmkitError, RuntimeError):
    """A model, tokenizer or checkpoint cannot be found or loaded."""


class CheckerError(PrmkitError, RuntimeError):
    """An answer or step checker could not run (timeout, unparsable input in strict mode)."""
