"""Low-level file IO shared by every stage: atomic writes and strict JSON/JSONL reading.

Writes go to a temporary file in the destination folder and are renamed into place, so a crash
never leaves a half-written file behind. Reads name the file and line of any bad input, and refuse
``NaN``/``Infinity``: they are not JSON, and prmkit writes only strict JSON.

A killed write leaves ``.NAME.PID-XXXXXXXX.tmp`` beside ``NAME``. The next write of ``NAME``
removes such files once their writer process is gone from this machine and they are older than
:data:`STALE_SECONDS` (the age guards a writer on another machine sharing the folder).
Files are created ``0666 & ~umask``, folders ``0777 & ~umask``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from prmkit.errors import ConfigError, DataFormatError

__all__ = [
    "STALE_SECONDS",
    "atomic_write",
    "check_distinct_output",
    "check_input_file",
    "iter_jsonl",
    "loads_strict",
    "make_sibling_dir",
    "read_json",
    "remove_stale_siblings",
    "replace_dir",
    "stale_siblings",
    "write_json",
    "write_jsonl",
]


def check_distinct_output(
    output: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str] | None],
    *,
    name: str = "output",
) -> None:
    """Refuse an output path that resolves to one of the inputs (or the rollout store).

    Writing there would replace the data being read with the result.

    Raises:
        ConfigError: ``output`` and an input are the same file (symlinks resolved).

    Example:
        >>> check_distinct_output("out.jsonl", ["in.jsonl"])
    """
    target = Path(output).expanduser().resolve()
    for item in inputs:
        if item is None or str(item) == ":memory:":
            continue
        if Path(item).expanduser().resolve() == target:
            raise ConfigError(
                f"the {name} path is also an input",
                got=str(output),
                expected=f"a path that differs from every input (this one is {item})",
                fix=f"write the {name} to another file",
            )


STALE_SECONDS = 600
"""A leftover of a killed write is removed only when at least this old (and its writer is gone)."""


def _sibling_name(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.{kind}")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # another user's process
        return True
    return True


def stale_siblings(target: Path, kind: str, *, min_age: float = STALE_SECONDS) -> list[Path]:
    """Leftovers ``.NAME.PID-XXXXXXXX.KIND`` of killed prmkit writes of ``target``, newest first.

    Only entries whose writer process is no longer running here and that were last modified at
    least ``min_age`` seconds ago are returned.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)-[0-9a-f]{{8}}\.{re.escape(kind)}")
    found = []
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            match = pattern.fullmatch(entry.name)
            if not match or _pid_alive(int(match.group(1))):
                continue
            with contextlib.suppress(OSError):
                mtime = entry.stat(follow_symlinks=False).st_mtime
                if now - mtime >= min_age:
                    found.append((mtime, Path(entry.path)))
    return [path for _, path in sorted(found, reverse=True)]


def remove_stale_siblings(target: Path, kind: str) -> None:
    """Remove :func:`stale_siblings` of ``target`` (files or folders); ignore races."""
    for path in stale_siblings(target, kind):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()


def make_sibling_dir(target: Path, kind: str) -> Path:
    """Create an empty folder ``.NAME.PID-XXXXXXXX.KIND`` beside ``target`` (mode 0777 & ~umask)."""
    while True:
        path = _sibling_name(target, kind)
        with contextlib.suppress(FileExistsError):
            path.mkdir()
            return path


def replace_dir(new: Path, target: Path) -> None:
    """Rename folder ``new`` to ``target``, keeping an existing ``target`` until ``new`` is in.

    The old ``target`` is renamed aside to ``.NAME.PID-XXXXXXXX.old``, ``new`` renamed in, then
    the old one deleted; if renaming ``new`` in fails, the old one is put back. A kill between
    the two renames leaves the old folder aside (see :func:`stale_siblings`).
    """
    aside = None
    if target.exists():
        aside = make_sibling_dir(target, "old")
        os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        if aside is not None and not target.exists():
            os.replace(aside, target)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _check_output_file(path: Path) -> None:
    if path.is_dir():
        raise ConfigError(
            "the output path is a folder",
            got=str(path),
            expected="a file path",
            fix=f"name a file inside it, e.g. {path / 'out.jsonl'}",
        )


def check_input_file(path: Path, kind: str) -> None:
    """Refuse a missing input path or a folder with a :class:`DataFormatError`."""
    if not path.exists():
        raise DataFormatError(
            "file not found",
            got=str(path),
            expected=f"an existing {kind} file",
            fix="check the path",
        )
    if path.is_dir():
        raise DataFormatError(
            "the input path is a folder",
            got=str(path),
            expected=f"a {kind} file",
            fix="name a file inside the folder",
        )


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    Raises:
        ConfigError: ``path`` is a folder.

    Example:
        >>> with atomic_write("out.jsonl") as f:  # doctest: +SKIP
        ...     f.write("{}\\n")
    """
    path = Path(path)
    _check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(path, "tmp")
    while True:
        tmp = _sibling_name(path, "tmp")
        with contextlib.suppress(FileExistsError):
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
    encoding = None if "b" in mode else "utf-8"
    try:
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(
            f"bytes that are not UTF-8 at byte {exc.start} of the line",
            got=raw[max(0, exc.start - 10) : exc.start + 10],
            expected="UTF-8 text",
            fix="re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
            where=where,
        ) from None


class _Constant:
    """Stands in for a NaN/Infinity literal until its field path is known."""

    def __init__(self, name: str) -> None:
        self.name = name


def _find_constant(obj: Any, path: str = "") -> tuple[str, str] | None:
    """``(field path, literal)`` of the first :class:`_Constant` in ``obj``, e.g. ``meta.t``."""
    if isinstance(obj, _Constant):
        return path, obj.name
    if isinstance(obj, dict):
        children = [(f"{path}.{k}" if path else k, v) for k, v in obj.items()]
    elif isinstance(obj, list):
        children = [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
    else:
        return None
    for child_path, value in children:
        found = _find_constant(value, child_path)
        if found:
            return found
    return None


def loads_strict(text: str, where: str, *, field: str = "") -> Any:
    """``json.loads`` that refuses ``NaN``/``Infinity`` (not JSON), naming the field.

    ``field`` prefixes the field path in the message (e.g. ``meta`` for an embedded document).

    Raises:
        json.JSONDecodeError: malformed JSON (the caller locates it).
        DataFormatError: a ``NaN``, ``Infinity`` or ``-Infinity`` literal.
    """
    seen: list[str] = []

    def constant(name: str) -> _Constant:
        seen.append(name)
        return _Constant(name)

    obj = json.loads(text, parse_constant=constant)
    if seen:
        field, name = _find_constant(obj, field) or (field, seen[0])
        raise DataFormatError(
            f"{name} is not valid JSON",
            got=name,
            expected="a finite number, or null for a missing value",
            fix="write null (or a string) instead; JSON has no NaN or Infinity",
            where=f"{where} field '{field}'" if field else where,
        )
    return obj


def _json_error_message(exc: json.JSONDecodeError) -> str:
    msg = exc.msg if exc.msg.endswith(" at") else f"{exc.msg} at"  # "...starting at"
    return f"malformed JSON ({msg} column {exc.colno})"


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file, streaming.

    Raises:
        DataFormatError: the path is missing or a folder; a line is not UTF-8, not valid JSON
            (``NaN``/``Infinity`` included), or not a JSON object.
    """
    path = Path(path)
    check_input_file(path, "JSONL")
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            text = _decode(raw, where).strip()
            if not text:
                continue
            try:
                obj = loads_strict(text, where)
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    _json_error_message(exc),
                    got=text,
                    expected="one JSON object per line",
                    fix="repair or remove that line",
                    where=where,
                ) from None
            if not isinstance(obj, dict):
                raise DataFormatError(
                    "line is not a JSON object",
                    got=type(obj).__name__,
                    expected="a JSON object ({...}) per line",
                    fix="write one object per line",
                    where=where,
                )
            yield lineno, obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a whole JSON document with a located error on bad bytes, syntax or NaN/Infinity."""
    path = Path(path)
    check_input_file(path, "JSON")
    text = _decode(path.read_bytes(), str(path))
    try:
        return loads_strict(text, str(path))
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            f"malformed JSON ({exc.msg})",
            got=text[max(0, exc.pos - 20) : exc.pos + 20],
            expected="a valid JSON document",
            fix="repair the file",
            where=f"{path}:{exc.lineno}",
        ) from None


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write dicts as JSONL; return the number of rows written."""
    count = 0
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
            count += 1
    return count


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write one JSON document (indented)."""
    with atomic_write(path) as handle:
        json.dump(obj, handle, ensure_ascii=False, indent=2, allow_nan=False)
        handle.write("\n")
