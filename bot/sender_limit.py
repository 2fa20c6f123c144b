"""The per-sender rate limit of the residents' channels (WeChat, the web chat page, REST).

A sender may send HG_SENDER_RATE_PER_MINUTE messages (20) in each clock minute; further messages in that minute
are answered with a polite "please wait" (messages.SENT_TOO_FAST) and never reach the assistant, so a flood
cannot open tickets, fill the group chats or hold a Rasa replica. The count is shared by every process and
replica: in Redis when REDIS_URL is set, else in the machine's state file (bot/local_state.py); a WeChat retry
of a message already answered is not counted again (the dedupe comes first, bot/wechat/responder.py).

If the store cannot be reached the message is let through (and logged): a Redis outage must not silence residents.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Dict, Optional, Protocol

from bot.local_state import LocalState

logger = logging.getLogger(__name__)

WINDOW_S = 60
PREFIX = "hongguanjia:sender-rate"


class Counter(Protocol):
    """Counts under a key that expires `ttl` seconds after its first count."""

    async def incr(self, key: str, ttl: int) -> int:
        """Add one and return the new count."""


class MemoryCounter:
    """One process only (tests, a channel without Redis or a state file)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._counts: Dict[str, tuple] = {}
        self._clock = clock

    async def incr(self, key: str, ttl: int) -> int:
        now = self._clock()
        count, expires = self._counts.get(key, (0, now + ttl))
        if expires <= now:
            count, expires = 0, now + ttl
        self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
        self._counts[key] = (count + 1, expires)
        return count + 1


class RedisCounter:
    """Every process of every machine: INCR, and EXPIRE on the first count."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def incr(self, key: str, ttl: int) -> int:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, ttl, nx=True)
            count, _ = await pipe.execute()
        return int(count)


class LocalCounter:
    """Every process of this machine, in the state file."""

    def __init__(self, state: LocalState) -> None:
        self._state = state

    def _incr(self, key: str, ttl: int) -> int:
        with self._state.transaction() as tx:
            count = int(tx.get(key) or 0) + 1
            # the key carries its minute, so renewing the time to live on each count only keeps it a little longer
            tx.set(key, str(count), ttl)
            return count

    async def incr(self, key: str, ttl: int) -> int:
        return await asyncio.to_thread(self._incr, key, ttl)


class SenderLimit:
    """`allow(sender)` is False once `sender` has sent more than `per_minute` messages in this clock minute."""

    def __init__(self, per_minute: int, counter: Counter, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self._counter = counter
        self._clock = clock

    async def allow(self, sender: str) -> bool:
        """Count one message of `sender`; True if it may go to the assistant."""
        if self.per_minute <= 0:
            return True
        window = int(self._clock() // WINDOW_S)
        try:
            count = await self._counter.incr(f"{PREFIX}:{sender}:{window}", 2 * WINDOW_S)
        except Exception:  # noqa: BLE001 - Redis or the state file down: let residents through
            logger.exception("sender rate limit unavailable; letting the message through")
            return True
        if count == self.per_minute + 1:
            logger.warning("sender %s sent more than %d messages this minute; answering 'please wait'", sender,
                           self.per_minute)
        return count <= self.per_minute


def open_limit(per_minute: int, redis_client: Optional[Any] = None, state: Optional[LocalState] = None) -> SenderLimit:
    """The limit over Redis when there is a client, else over the state file, else in memory."""
    counter: Counter = (RedisCounter(redis_client) if redis_client is not None
                        else LocalCounter(state) if state is not None else MemoryCounter())
    return SenderLimit(per_minute, counter)
