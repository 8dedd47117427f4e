"""Stage configs: one dataclass per stage, YAML overrides, ``key=value`` overrides.

Every field carries a help string in ``metadata["help"]`` and, for numbers, its allowed range
(``option(..., ge=1)``). An unknown key, a value of the wrong type, outside its ``Literal`` choices
or outside its range is a :class:`~prmkit.errors.ConfigError`, never silently ignored. A config
dataclass calls :func:`check_ranges` from ``__post_init__``, so building it in Python checks the
same rules as loading it from YAML or the command line.

A field whose type is itself a config dataclass is a *group* (e.g. the policy's model, adapter
and dtype): YAML sets it as a mapping, the command line key by key as ``group.key=value``.

Example:
    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Cfg:
    ...     n: int = field(default=2, metadata={"help": "how many"})
    >>> load_config(Cfg, None, ["n=5"]).n
    5
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import operator
import re
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from prmkit.errors import ConfigError

__all__ = [
    "Dtype",
    "add_config_arguments",
    "check_range",
    "check_ranges",
    "config_help",
    "load_config",
    "option",
    "stage_config",
]

_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

C = TypeVar("C")

Dtype = Literal["float32", "bfloat16", "float16", "auto"]
"""The torch dtype names a model can be loaded in; ``auto`` = bfloat16 where the device computes
it natively (a GPU with bf16, a CPU with AVX512-BF16/AMX), float32 elsewhere."""

_BOUNDS = {
    "ge": (">=", operator.ge),
    "gt": (">", operator.gt),
    "le": ("<=", operator.le),
    "lt": ("<", operator.lt),
}


def _bounds(*values: float | None) -> dict[str, float]:
    """The given ``(ge, gt, le, lt)`` bounds by name, without the ``None`` ones."""
    return {k: v for k, v in zip(_BOUNDS, values, strict=True) if v is not None}


def option(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with a default, a help string and an optional range for numbers.

    Lists and dicts get a factory. A ``None`` value is always in range; NaN and infinities never.
    """
    metadata: dict[str, Any] = {"help": help}
    bounds = _bounds(ge, gt, le, lt)
    if bounds:
        metadata["range"] = bounds
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _rule(bounds: dict[str, float]) -> str:
    """``>= 1``, ``in (0, 1]``, ...: the range as the errors and ``--help`` say it."""
    low = [k for k in ("ge", "gt") if k in bounds]
    high = [k for k in ("le", "lt") if k in bounds]
    if low and high:
        lo, hi = low[0], high[0]
        left, right = "[" if lo == "ge" else "(", "]" if hi == "le" else ")"
        return f"in {left}{bounds[lo]:g}, {bounds[hi]:g}{right}"
    return " and ".join(f"{_BOUNDS[k][0]} {v:g}" for k, v in bounds.items())


def check_range(
    name: str,
    value: float | None,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    where: str | None = None,
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is in the range (``None`` always passes).

    NaN and infinities are always out of range; with no bounds, only they are.

    Example:
        >>> check_range("top_p", 0.9, gt=0, le=1)
    """
    bounds = _bounds(ge, gt, le, lt)
    if value is None:
        return
    if math.isfinite(value) and all(_BOUNDS[k][1](value, v) for k, v in bounds.items()):
        return
    rule = _rule(bounds) or "that is finite"
    noun = "an integer" if isinstance(value, int) else "a number"
    raise ConfigError(
        f"'{name}' out of range",
        got=value,
        expected=f"{noun} {rule}",
        fix=f"set {name} to a number {rule} (see --help)",
        where=where,
    )


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_field(
    f: dataclasses.Field, hint: Any, value: Any, where: str | None = None, name: str | None = None
) -> Any:
    """Check one field's value: type, ``Literal`` choice, range; return it coerced.

    ``name`` is the key as the user writes it (``sampling.temperature`` in a group).
    """
    key = name or f.name
    ok, coerced = _matches(value, hint)
    choices = _choices(hint)
    if not ok and choices and isinstance(value, str):
        choices = ", ".join(choices)
        raise ConfigError(
            f"unknown choice for '{key}'",
            got=value,
            expected=f"one of {choices}",
            fix=f"set {key} to one of those (see --help)",
            where=where,
        )
    if not ok:
        raise ConfigError(
            f"wrong type for '{key}'",
            got=value,
            expected=_type_name(hint),
            fix=f"give '{key}' a value of that type",
            where=where,
        )
    if "range" in f.metadata and isinstance(coerced, (int, float)):
        check_range(key, coerced, where=where, **f.metadata["range"])
    return coerced


def _type_name(hint: Any) -> str:
    """``float``, ``list[int] | None``: a type hint as a user reads it."""
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _choices(hint: Any) -> list[str]:
    """The values a hint with ``Literal`` choices allows, as written in YAML (``[]``: no choices)."""
    args = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    literals = [a for a in args if typing.get_origin(a) is typing.Literal]
    if not literals:
        return []
    out = [repr(v) for a in literals for v in typing.get_args(a)]
    out += ["true", "false"] if bool in args else []
    out += ["null"] if type(None) in args else []
    return out


def check_ranges(obj: Any) -> None:
    """Check every field of config dataclass ``obj``: type, ``Literal`` choice, range.

    Call it from ``__post_init__``; an int given for a float field becomes a float.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        coerced = _check_field(f, hints[f.name], value)
        if coerced is not value:
            object.__setattr__(obj, f.name, coerced)


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
        ConfigError: unknown key, malformed override, wrong value type or choice, a value out of
            its range, bad YAML.
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
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                "malformed override",
                got=item,
                expected="key=value (a nested key as group.key=value)",
                fix="write overrides as key=value",
            )
        value = _yaml_value(raw)
        *groups, leaf = key.split(".")
        target = values
        for group in groups:
            inner = target.get(group)
            target[group] = inner = dict(inner) if isinstance(inner, dict) else {}
            target = inner
        target[leaf] = value
        source[key] = "command line"
    return _build(cls, values, source)


def _nested(hint: Any) -> type | None:
    """The config dataclass a field holds as a group of keys (``None``: a plain value)."""
    return hint if dataclasses.is_dataclass(hint) and isinstance(hint, type) else None


def _build(
    cls: type[C],
    values: dict[str, Any],
    source: dict[str, str],
    prefix: str = "",
    base: Any = None,
) -> C:
    """``cls`` from a (nested) mapping of checked values; ``prefix`` names a group's keys.

    A group starts from ``base``, the defaults its stage gives it (the field's
    ``default_factory``), and only the keys given replace them.
    """
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = prefix + str(key)
        where = source.get(name) or next(
            (v for k, v in source.items() if k.startswith(name + ".")), None
        )
        if key not in fields:
            raise ConfigError(
                f"unknown config key for {cls.__name__}",
                got=name,
                expected=f"one of {sorted(prefix + k for k in fields)}",
                fix="remove or rename the key (see --help)",
                where=where,
            )
        group = _nested(hints[key])
        if group is not None:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"'{name}' is a group of keys",
                    got=value,
                    expected=f"a mapping of {sorted(f.name for f in dataclasses.fields(group))}",
                    fix=f"set its keys one by one, e.g. {name}.<key>=value",
                    where=where,
                )
            f = fields[key]
            start = f.default_factory() if callable(f.default_factory) else f.default
            start = start if dataclasses.is_dataclass(start) else None
            kwargs[key] = _build(group, value, source, name + ".", start)
        else:
            kwargs[key] = _check_field(fields[key], hints[key], value, where, name)
    return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)


def config_help(cls: type, prefix: str = "", defaults: Any = None) -> str:
    """One line per field: ``name (type, default[, range]): help``, for ``--help``.

    A group (a nested config dataclass) is listed key by key as ``group.key``, with the defaults
    the stage gives it (its ``default_factory``), not the group class's own.
    """
    hints = _hints(cls)
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default_factory() if callable(f.default_factory) else f.default
        if defaults is not None:
            default = getattr(defaults, f.name)
        group = _nested(hints[f.name])
        if group is not None:
            lines.append(config_help(group, prefix + f.name + ".", default))
            continue
        kind = _type_name(hints[f.name])
        rule = f", {_rule(f.metadata['range'])}" if "range" in f.metadata else ""
        lines.append(
            f"  {prefix}{f.name} ({kind}, default {default!r}{rule}): {f.metadata.get('help', '')}"
        )
    return "\n".join(lines)


def _field(cls: type, key: str) -> tuple[dataclasses.Field, Any]:
    """The field (and its type hint) a dotted key names in ``cls``."""
    *groups, leaf = key.split(".")
    for group in groups:
        cls = _hints(cls)[group]
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return fields[leaf], _hints(cls)[leaf]


def _yaml_value(raw: str) -> Any:
    """A command-line value as ``key=value`` reads it (YAML; the raw text when that fails)."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def add_config_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    shortcuts: Sequence[str] | dict[str, str] = (),
) -> None:
    """Add ``--config FILE``, ``key=value`` overrides and shortcut flags for config ``cls``.

    A shortcut is a flag for one key, the only way a stage offers flags: ``--max-new-tokens 64``
    is exactly ``max_new_tokens=64`` (a bool key's flag takes no value and sets it true; a list
    key's flag repeats: ``--data a --data b`` is ``data=["a", "b"]``). Give
    the keys (``["method", "out"]``: flags ``--method``, ``--out``) or a mapping from flag to key
    (``{"--policy": "policy.model"}``). Flags and ``key=value`` overrides win over the YAML file.
    """
    parser.add_argument("--config", default=None, help="YAML file of config overrides")
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides (see the keys below)"
    )
    pairs = (
        shortcuts.items()
        if isinstance(shortcuts, dict)
        else [("--" + k.replace("_", "-").replace(".", "-"), k) for k in shortcuts]
    )
    flags = []
    for i, (flag, key) in enumerate(pairs):
        f, hint = _field(cls, key)
        dest = f"_shortcut_{i}"
        text = f"{f.metadata.get('help', '')} (same as {key}=...)"
        if hint is bool:
            parser.add_argument(flag, dest=dest, action="store_true", default=None, help=text)
        elif list in (typing.get_origin(h) for h in (hint, *typing.get_args(hint))):
            text = f"{f.metadata.get('help', '')}; repeatable (same as {key}=[...])"
            parser.add_argument(
                flag, dest=dest, action="append", default=None, metavar="VALUE", help=text
            )
        else:
            parser.add_argument(flag, dest=dest, default=None, metavar="VALUE", help=text)
        flags.append((dest, key))
    parser.set_defaults(_config_shortcuts=flags)
    parser.epilog = "config keys:\n" + config_help(cls)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def stage_config(cls: type[C], args: argparse.Namespace) -> C:
    """Build the stage config from ``--config``, the shortcut flags and ``key=value`` overrides."""
    flags = []
    for dest, key in getattr(args, "_config_shortcuts", []):
        value = getattr(args, dest)
        if isinstance(value, list):  # a repeatable flag of a list key: each value read as YAML
            flags.append(f"{key}={json.dumps([_yaml_value(v) for v in value])}")
        elif value is not None:
            flags.append(f"{key}={'true' if value is True else value}")
    return load_config(cls, args.config, [*flags, *(getattr(args, "overrides", None) or [])])
