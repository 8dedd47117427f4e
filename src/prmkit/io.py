"""Low-level file IO shared by every stage: atomic writes and strict JSON/JSONL reading.

Writes go to a temporary file in the destination folder and are renamed into place, so a crash
never leaves a half-written file behind. Reads name the file and line of any bad input.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from prmkit.errors import ConfigError, DataFormatError

__all__ = [
    "atomic_write",
    "check_distinct_output",
    "iter_jsonl",
    "read_json",
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


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success rename it over ``path``.

    Example:
        >>> with atomic_write("out.jsonl") as f:  # doctest: +SKIP
        ...     f.write("{}\\n")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file, streaming.

    Raises:
        DataFormatError: a line is not UTF-8, not valid JSON, or not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(
            "file not found",
            got=str(path),
            expected="an existing JSONL file",
            fix="check the path",
        )
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            where = f"{path}:{lineno}"
            text = _decode(raw, where).strip()
            if not text:
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataFormatError(
                    f"malformed JSON ({exc.msg} at column {exc.colno})",
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
    """Read a whole JSON document with a located error on bad bytes or syntax."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(
            "file not found", got=str(path), expected="an existing JSON file", fix="check the path"
        )
    text = _decode(path.read_bytes(), str(path))
    try:
        return json.loads(text)
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
