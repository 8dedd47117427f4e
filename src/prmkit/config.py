"""Stage configs: one dataclass per stage, YAML overrides, ``key=value`` overrides.

Every field carries a help string in ``metadata["help"]``. An unknown key, or a value of the
wrong type, is a :class:`~prmkit.errors.ConfigError`, never silently ignored.

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Cfg:
    ...     n: int = field(default=2, metadata={"help": "how many"})
    >>> load_config(Cfg, None, ["n=5"]).n
    5
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from prmkit.errors import ConfigError

__all__ = ["config_help", "load_config", "option"]

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

C = TypeVar("C")


def option(default: Any, help: str) -> Any:
    """A dataclass field with a default and a help string (lists/dicts get a factory)."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(
            default_factory=lambda: type(value)(value), metadata={"help": help}
        )
    return dataclasses.field(default=default, metadata={"help": help})


def _matches(value: Any, hint: Any) -> tuple[bool, Any]:
    """Check ``value`` against a type hint; return (ok, possibly-coerced value)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            ok, coerced = _matches(value, arg)
            if ok:
                return True, coerced
        return False, value
    if hint is type(None):
        return value is None, value
    if origin is typing.Literal:
        return value in typing.get_args(hint), value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        (arg, *_) = typing.get_args(hint) or (Any,)
        out = []
        for item in value:
            ok, coerced = _matches(item, arg)
            if not ok:
                return False, value
            out.append(coerced)
        return True, list(out) if origin is list else tuple(out)
    if origin is dict:
        return isinstance(value, dict), value
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
            return True, float(value)  # YAML 1.1 reads "1e-3" (no dot) as a string
        return False, value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)
        return isinstance(value, str), value
    if isinstance(hint, type):
        return isinstance(value, hint), value
    return True, value


def load_config(cls: type[C], path: str | Path | None = None, overrides: Sequence[str] = ()) -> C:
    """Build ``cls`` from defaults, then a YAML file of overrides, then ``key=value`` strings.

    Raises:
        ConfigError: unknown key, malformed override, wrong value type, bad YAML.
    """
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(
                "config file not found",
                got=str(path),
                expected="a YAML file",
                fix="check the --config path",
            )
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"malformed YAML ({exc})",
                got=str(path),
                expected="a YAML mapping",
                fix="repair the file",
            ) from None
        if not isinstance(loaded, dict):
            raise ConfigError(
                "config is not a mapping",
                got=type(loaded).__name__,
                expected="key: value pairs",
                fix="write a YAML mapping",
                where=str(path),
            )
        values.update(loaded)
        source.update({k: str(path) for k in loaded})
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                "malformed override",
                got=item,
                expected="key=value",
                fix="write overrides as key=value",
            )
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[key.strip()] = raw
        source[key.strip()] = "command line"
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"unknown config key for {cls.__name__}",
                got=key,
                expected=f"one of {sorted(names)}",
                fix="remove or rename the key (see --help)",
                where=source.get(key),
            )
        ok, coerced = _matches(value, hints[key])
        if not ok:
            raise ConfigError(
                f"wrong type for '{key}'",
                got=value,
                expected=str(hints[key]).replace("typing.", ""),
                fix=f"give '{key}' a value of that type",
                where=source.get(key),
            )
        kwargs[key] = coerced
    return cls(**kwargs)


def config_help(cls: type) -> str:
    """One line per field: ``name (type, default): help``, for ``--help``."""
    hints = typing.get_type_hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default
        kind = str(hints[f.name]).replace("typing.", "").replace("<class '", "").replace("'>", "")
        lines.append(f"  {f.name} ({kind}, default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)
