"""Expiring keys in one SQLite file, shared by every process on this machine: what Redis does when there is none.

Several Rasa workers (HG_RASA_WORKERS) and the processes beside them (dispatcher, CLI) share short-lived
state: Rasa's conversation locks (bot/rasa_locks.py), WeChat's dedupe claims, numbered options and the
access token (bot/wechat/). With REDIS_URL set, Redis holds all of it (and replicas may run on several
machines); without it, this file under var/ does, for the processes of one machine.

Each operation is one short transaction. Writers take SQLite's write lock at the start (BEGIN IMMEDIATE),
so a read-modify-write (`transaction`) is atomic across processes; WAL lets readers run beside a writer and
the busy timeout makes a writer wait its turn instead of failing. Nothing here must survive a crash or a
power cut (a lost lock or claim expires anyway), hence `synchronous=NORMAL`.

Calls are synchronous and take well under a millisecond; async callers run them through `asyncio.to_thread`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

__all__ = ["LocalState", "StateTransaction"]

BUSY_TIMEOUT_MS = 5000
_SCHEMA = "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL NOT NULL)"


class StateTransaction:
    """The operations of one open transaction; expiry is judged against the instant it began."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self._conn = conn
        self.now = now

    def get(self, key: str) -> Optional[str]:
        """The value of `key`, or None when it is absent or expired."""
        row = self._conn.execute("SELECT value FROM state WHERE key = ? AND expires_at > ?", (key, self.now)).fetchone()
        return row[0] if row else None

    def set(self, key: str, value: str, ttl: float, *, nx: bool = False, xx: bool = False) -> bool:
        """Store `value` for `ttl` seconds; with `nx` only if absent (or expired), with `xx` only if present."""
        present = self.get(key) is not None
        if (nx and present) or (xx and not present):
            return False
        self._conn.execute("INSERT OR REPLACE INTO state (key, value, expires_at) VALUES (?, ?, ?)",
                           (key, value, self.now + ttl))
        return True

    def delete(self, key: str, expected: Optional[str] = None) -> bool:
        """Delete `key` (only if it holds `expected`, when given); True when something was deleted."""
        if expected is None:
            cur = self._conn.execute("DELETE FROM state WHERE key = ?", (key,))
        else:
            cur = self._conn.execute("DELETE FROM state WHERE key = ? AND value = ?", (key, expected))
        return cur.rowcount > 0


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL. Processes opening a new file at once can get "database is locked" here without
    SQLite's busy handler being called, so retry until the busy timeout (the mode is stored in the file: once set by
    any process, the others find it set)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class LocalState:
    """One SQLite file of expiring keys; safe to share between threads and processes (and across fork)."""

    def __init__(self, path: Union[str, Path], clock: Callable[[], float] = time.time,
                 purge_every: float = 60.0) -> None:
        """`clock` is wall time (shared by every process); expired rows are purged at most every `purge_every` s."""
        self.path = Path(path)
        self._clock = clock
        self._purge_every = purge_every
        self._next_purge = 0.0
        self._mutex = threading.Lock()
        self._conn: Optional[sqlite3.Connection] = None
        self._pid = 0

    def _connection(self) -> sqlite3.Connection:
        # A connection must never cross a fork (Sanic forks its workers): each process opens its own.
        if self._conn is None or self._pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            _set_wal(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[StateTransaction]:
        """One atomic read-modify-write: BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error)."""
        with self._mutex:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                tx = StateTransaction(conn, self._clock())
                yield tx
                if tx.now >= self._next_purge:
                    conn.execute("DELETE FROM state WHERE expires_at <= ?", (tx.now,))
                    self._next_purge = tx.now + self._purge_every
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get(self, key: str) -> Optional[str]:
        """The value of `key`, or None (a plain read: no write lock taken)."""
        with self._mutex:
            row = self._connection().execute("SELECT value FROM state WHERE key = ? AND expires_at > ?",
                                             (key, self._clock())).fetchone()
        return row[0] if row else None

    def set(self, key: str, value: str, ttl: float, *, nx: bool = False, xx: bool = False) -> bool:
        """`StateTransaction.set` in a transaction of its own (SET key value PX ttl [NX|XX])."""
        with self.transaction() as tx:
            return tx.set(key, value, ttl, nx=nx, xx=xx)

    def delete(self, key: str, expected: Optional[str] = None) -> bool:
        """`StateTransaction.delete` in a transaction of its own (compare-and-delete when `expected` is given)."""
        with self.transaction() as tx:
            return tx.delete(key, expected)

    def close(self) -> None:
        """Close this process's connection (another call opens a new one)."""
        with self._mutex:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
