"""The rollout store: every policy sample an annotation job draws, in SQLite, written as it finishes.

A rollout is keyed by ``(namespace, state, idx)``: the job's namespace (policy, sampling settings,
job seed), the state it continues from (a content hash of problem, prompt and prefix steps) and
its index among that state's rollouts. The key is the table's primary key, so no rollout is ever
stored twice. Rollouts are written one generator call at a time, each call in one transaction, so
after ``kill -9`` the store holds whole calls only; a resumed job finds them and draws exactly the
missing ones again, with the same seeds.

Several jobs may share a store. A rollout whose key is already stored (another job drew it first)
is not inserted again, and callers read back what the store holds: the first writer's rollouts
win, and every job labels from the same rollouts.

The database runs in WAL mode: readers (a progress monitor, a second labeler) never block the
writer, and a crash never corrupts what was committed. Concurrent writers wait for each other
(up to :data:`BUSY_TIMEOUT_S` seconds per transaction). One store object may be used by several
threads of a process: its calls take turns on one connection.

Example:
    >>> store = RolloutStore(":memory:")
    >>> ns = store.namespace({"policy": "smollm2", "seed": 0})
    >>> store.add(ns, [Rollout(state="s1", idx=0, trace_id="t0", prefix_len=1, text="= 4",
    ...                        answer="4", correct=True, prompt_tokens=12,
    ...                        completion_tokens=3, finish_reason="eos", seed=7)])
    1
    >>> [r.answer for r in store.get(ns, "s1", 1)]
    ['4']
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from prmkit.errors import DataFormatError, PrmkitError

__all__ = ["BUSY_TIMEOUT_S", "Rollout", "RolloutStore", "derive_seed"]

BUSY_TIMEOUT_S = 60.0
"""How long a write waits for another job's transaction on the same store."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    namespace TEXT PRIMARY KEY,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rollouts (
    namespace TEXT NOT NULL,
    state TEXT NOT NULL,
    idx INTEGER NOT NULL,
    trace_id TEXT NOT NULL,
    prefix_len INTEGER NOT NULL,
    text TEXT NOT NULL,
    answer TEXT,
    correct INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL,
    seed INTEGER NOT NULL,
    PRIMARY KEY (namespace, state, idx)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class Rollout:
    """One stored sample.

    Attributes:
        state: Content hash of the state (problem, prompt, prefix steps) it continues.
        idx: Index among the state's rollouts (0, 1, ...); the first ``k`` are an estimate's k.
        trace_id: The trace whose labelling first asked for this state (informative).
        prefix_len: Number of steps in the state's prefix (informative).
        text: The generated text (a continuation, or a judge's critique).
        answer: The extracted final answer (``None`` when none was found).
        correct: Whether ``answer`` is correct for the problem.
        prompt_tokens: Prompt/prefix tokens the sample was conditioned on.
        completion_tokens: Tokens generated.
        finish_reason: ``"stop"``, ``"eos"`` or ``"length"``.
        seed: The seed of the generator call that produced it.
    """

    state: str
    idx: int
    trace_id: str
    prefix_len: int
    text: str
    answer: str | None
    correct: bool
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seed: int


_COLUMNS = [f.name for f in fields(Rollout)]


def derive_seed(*parts: object) -> int:
    """A deterministic 31-bit seed from any parts (job seed, state, first index, ...).

    Example:
        >>> derive_seed(0, "state", 3) == derive_seed(0, "state", 3)
        True
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class RolloutStore:
    """SQLite (WAL) store of rollouts; safe to reopen after a crash.

    Args:
        path: Database file (created with its folder if missing), or ``":memory:"``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise DataFormatError(
                "cannot open the rollout store",
                got=f"{self.path}: {exc}",
                expected="a prmkit rollout store (SQLite)",
                fix="pass a new path, or delete the broken file",
            ) from None

    def close(self) -> None:
        """Close the connection (committed rollouts are already on disk)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> RolloutStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def namespace(self, config: dict[str, Any]) -> str:
        """Register a job config and return its namespace (a hash of the config).

        Jobs with the same config share rollouts; a changed policy, sampling setting or seed
        gets a fresh namespace, so rollouts of different policies never mix.
        """
        text = json.dumps(config, sort_keys=True, default=str)
        name = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO jobs VALUES (?, ?)", (name, text))
        return name

    def job_config(self, namespace: str) -> dict[str, Any] | None:
        """The config registered under ``namespace`` (``None`` if unknown)."""
        with self._lock:
            row = self._db.execute(
                "SELECT config FROM jobs WHERE namespace = ?", (namespace,)
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def add(self, namespace: str, rollouts: Sequence[Rollout]) -> int:
        """Insert rollouts in one transaction; return how many were new.

        A rollout whose ``(state, idx)`` is already stored is skipped (another job on the store
        drew it first); read the stored ones back with :meth:`get`.
        """
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                before = self._db.total_changes
                self._db.executemany(
                    f"INSERT INTO rollouts (namespace, {', '.join(_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * (len(_COLUMNS) + 1))}) "
                    "ON CONFLICT (namespace, state, idx) DO NOTHING",  # not OR IGNORE: NOT NULL
                    [(namespace, *astuple(r)) for r in rollouts],
                )
                return self._db.total_changes - before
        except sqlite3.OperationalError as exc:  # locked past the timeout, disk full, read-only
            raise PrmkitError(
                "cannot write to the rollout store (this batch was not stored; the rollouts "
                "stored before it are kept, and a rerun resumes from them)",
                got=f"{self.path}: {exc}",
                expected=f"a writable store that no other job holds locked for over "
                f"{BUSY_TIMEOUT_S} s",
                fix="wait for the other job on this store, free disk space, or check permissions",
            ) from None

    def count(self, namespace: str, state: str) -> int:
        """How many rollouts of ``state`` are stored (they are always indices 0..count-1)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM rollouts WHERE namespace = ? AND state = ?",
                (namespace, state),
            ).fetchone()
        return int(row[0])

    def get(self, namespace: str, state: str, n: int | None = None) -> list[Rollout]:
        """The first ``n`` rollouts of ``state`` (all if ``n`` is ``None``), by index."""
        limit = -1 if n is None else n
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM rollouts WHERE namespace = ? AND state = ? "
                "ORDER BY idx LIMIT ?",
                (namespace, state, limit),
            ).fetchall()
        return [_row(r) for r in rows]

    def iter_all(self, namespace: str | None = None) -> Iterator[tuple[str, Rollout]]:
        """Every stored ``(namespace, rollout)`` in key order (for audits and tests)."""
        where, args = ("WHERE namespace = ?", (namespace,)) if namespace else ("", ())
        query = (
            f"SELECT namespace, {', '.join(_COLUMNS)} FROM rollouts {where} "
            "ORDER BY namespace, state, idx"
        )
        with self._lock:
            rows = self._db.execute(query, args).fetchall()
        for row in rows:
            yield row[0], _row(row[1:])

    def total(self, namespace: str | None = None) -> tuple[int, int]:
        """``(rollouts, completion tokens)`` stored, in one namespace or all."""
        where, args = ("WHERE namespace = ?", (namespace,)) if namespace else ("", ())
        with self._lock:
            row = self._db.execute(
                f"SELECT COUNT(*), COALESCE(SUM(completion_tokens), 0) FROM rollouts {where}",
                args,
            ).fetchone()
        return int(row[0]), int(row[1])


def _row(values: Iterable[Any]) -> Rollout:
    record = dict(zip(_COLUMNS, values, strict=True))
    record["correct"] = bool(record["correct"])
    return Rollout(**record)
