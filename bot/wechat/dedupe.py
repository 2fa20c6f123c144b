"""WeChat's retries recognised: the first delivery of a push claims it, later ones get its outcome.

WeChat retries a push it got no answer to within 5 s (three tries in all), and under load the copies
can overlap. The first copy to `claim` the dedupe key runs the turn; every other copy waits (within its
own time budget) for the `Outcome` the first one `settle`s: the same passive reply, or none (answer
`success`). A retry may reach another Rasa worker, so the claims must be shared: `RedisDedupeStore` (SET NX)
across machines, `LocalDedupeStore` across the processes of one machine (bot/local_state.py);
`MemoryDedupeStore` holds within one process only (tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, Tuple

from redis.exceptions import RedisError

from bot.local_state import LocalState

__all__ = ["DEFAULT_TTL", "DedupeStore", "LocalDedupeStore", "MemoryDedupeStore", "Outcome", "RedisDedupeStore",
           "wait_for_outcome"]

log = logging.getLogger(__name__)

DEFAULT_TTL = 60.0  # WeChat's retries all arrive within ~15 s of the first try


@dataclass(frozen=True)
class Outcome:
    """How the first delivery was answered: a passive text reply, or none (`success`; any reply comes later)."""

    reply: Optional[str]


class DedupeStore(Protocol):
    """Claims and outcomes of deliveries, by dedupe key."""

    async def claim(self, key: str) -> bool:
        """True for the first delivery of `key` within the TTL; False for every later one."""
        ...

    async def settle(self, key: str, outcome: Outcome) -> None:
        """Record how the claimed delivery of `key` was answered."""
        ...

    async def outcome(self, key: str) -> Optional[Outcome]:
        """The recorded outcome of `key`, or None while the first delivery is still working (or unknown)."""
        ...


class MemoryDedupeStore:
    """Claims kept in this process for `ttl` seconds."""

    def __init__(self, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        # Insertion order is expiry order (one TTL for all), so expired entries sit at the front.
        self._entries: "OrderedDict[str, Tuple[float, Optional[Outcome]]]" = OrderedDict()

    def _purge(self) -> None:
        now = self._clock()
        while self._entries:
            key, (expires_at, _) = next(iter(self._entries.items()))
            if expires_at > now:
                break
            del self._entries[key]

    async def claim(self, key: str) -> bool:
        """Claim `key` unless an unexpired claim exists."""
        self._purge()
        if key in self._entries:
            return False
        self._entries[key] = (self._clock() + self._ttl, None)
        return True

    async def settle(self, key: str, outcome: Outcome) -> None:
        """Attach the outcome to the claim (kept until the claim expires)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], outcome)

    async def outcome(self, key: str) -> Optional[Outcome]:
        """The settled outcome, if any."""
        self._purge()
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None


class RedisDedupeStore:
    """Claims shared by every process: `SET <prefix>:<key> pending NX PX ttl`, then the outcome as JSON.

    When Redis fails, a claim is granted (answering the resident matters more than a rare double turn)
    and outcomes read as unknown; each failure is logged.
    """

    _PENDING = "pending"

    def __init__(self, client: Any, ttl: float = DEFAULT_TTL, prefix: str = "hongguanjia:wechat:dedupe") -> None:
        """`client` is a redis.asyncio.Redis."""
        self._client = client
        self._ttl_ms = max(1, int(ttl * 1000))
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def claim(self, key: str) -> bool:
        """SET NX: only one process (and one request) gets True."""
        try:
            return bool(await self._client.set(self._key(key), self._PENDING, nx=True, px=self._ttl_ms))
        except RedisError as exc:
            log.warning("dedupe claim for %s failed open: Redis error %s", key, type(exc).__name__)
            return True

    async def settle(self, key: str, outcome: Outcome) -> None:
        """Replace the pending marker with the outcome (only while the claim still exists: XX)."""
        record = json.dumps({"reply": outcome.reply}, ensure_ascii=False)
        try:
            await self._client.set(self._key(key), record, xx=True, px=self._ttl_ms)
        except RedisError as exc:
            log.warning("dedupe outcome for %s not stored: Redis error %s", key, type(exc).__name__)

    async def outcome(self, key: str) -> Optional[Outcome]:
        """The outcome, or None while pending or gone."""
        try:
            raw = await self._client.get(self._key(key))
        except RedisError as exc:
            log.warning("dedupe outcome for %s unreadable: Redis error %s", key, type(exc).__name__)
            return None
        if raw is None:
            return None
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        if text == self._PENDING:
            return None
        try:
            reply = json.loads(text)["reply"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable dedupe record in Redis")
            return None
        return Outcome(reply if isinstance(reply, str) else None)


class LocalDedupeStore:
    """Claims shared by the processes of this machine through its state file, with the same rules as `RedisDedupeStore`
    (a failing file grants the claim and reads outcomes as unknown)."""

    _PENDING = "pending"

    def __init__(self, state: LocalState, ttl: float = DEFAULT_TTL, prefix: str = "wechat:dedupe") -> None:
        self._state = state
        self._ttl = ttl
        self._prefix = prefix

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    async def claim(self, key: str) -> bool:
        """Insert-if-absent in one transaction: only one process (and one request) gets True."""
        try:
            return await asyncio.to_thread(self._state.set, self._key(key), self._PENDING, self._ttl, nx=True)
        except sqlite3.Error as exc:
            log.warning("dedupe claim for %s failed open: %s", key, exc)
            return True

    async def settle(self, key: str, outcome: Outcome) -> None:
        """Replace the pending marker with the outcome (only while the claim still exists)."""
        record = json.dumps({"reply": outcome.reply}, ensure_ascii=False)
        try:
            await asyncio.to_thread(self._state.set, self._key(key), record, self._ttl, xx=True)
        except sqlite3.Error as exc:
            log.warning("dedupe outcome for %s not stored: %s", key, exc)

    async def outcome(self, key: str) -> Optional[Outcome]:
        """The outcome, or None while pending or gone."""
        try:
            raw = await asyncio.to_thread(self._state.get, self._key(key))
        except sqlite3.Error as exc:
            log.warning("dedupe outcome for %s unreadable: %s", key, exc)
            return None
        if raw is None or raw == self._PENDING:
            return None
        try:
            reply = json.loads(raw)["reply"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable dedupe record in the local state file")
            return None
        return Outcome(reply if isinstance(reply, str) else None)


async def wait_for_outcome(store: DedupeStore, key: str, deadline: float,
                           clock: Callable[[], float] = time.monotonic, poll: float = 0.05) -> Optional[Outcome]:
    """Poll for the outcome of `key` until `deadline` (on `clock`); None when it did not come in time."""
    while True:
        found = await store.outcome(key)
        if found is not None:
            return found
        left = deadline - clock()
        if left <= 0:
            return None
        await asyncio.sleep(min(poll, left))
