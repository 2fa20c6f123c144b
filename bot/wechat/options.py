"""Each resident's last numbered options, so a bare "1"/"2"/"3" reply becomes that button's payload.

WeChat text has no buttons: the assistant's buttons are shown as "1. …" lines (see `render`), and the
resident answers with the number, maybe to another Rasa worker than the one that offered them. So the options
live in Redis when configured, else in the machine's state file (bot/local_state.py), both shared by every
server process (in memory only in tests), and expire after `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import time
import unicodedata
from collections import OrderedDict
from typing import Any, Callable, List, Optional, Protocol, Sequence, Tuple

from redis.exceptions import RedisError

from bot.local_state import LocalState
from bot.wechat.render import Option

__all__ = ["DEFAULT_TTL", "LocalOptionStore", "MemoryOptionStore", "OptionStore", "RedisOptionStore", "choose"]

log = logging.getLogger(__name__)

DEFAULT_TTL = 30 * 60.0  # an offer older than this is stale: a "1" then is just a "1"
_CHOICE = re.compile(r"\s*(?:第)?([1-9])\s*(?:个|项)?\s*[.。、,，)）]?\s*\Z")


def choose(text: str, options: Sequence[Option]) -> Optional[str]:
    """The payload of the option a bare number in `text` picks ("1", "１", "2." …), or None."""
    if not options:
        return None
    match = _CHOICE.match(unicodedata.normalize("NFKC", text))
    if match is None:
        return None
    index = int(match.group(1)) - 1
    return options[index].payload if index < len(options) else None


class OptionStore(Protocol):
    """Where each sender's last options are kept."""

    async def remember(self, sender_id: str, options: Sequence[Option]) -> None:
        """Keep `options` as the sender's current offer (an empty sequence clears it)."""
        ...

    async def recall(self, sender_id: str) -> List[Option]:
        """The sender's current offer, or an empty list."""
        ...


class MemoryOptionStore:
    """Offers kept in this process, at most `max_senders` of them (the oldest go first)."""

    def __init__(self, ttl: float = DEFAULT_TTL, max_senders: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._max = max_senders
        self._clock = clock
        self._offers: "OrderedDict[str, Tuple[float, Tuple[Option, ...]]]" = OrderedDict()

    async def remember(self, sender_id: str, options: Sequence[Option]) -> None:
        """Keep `options` for `ttl` seconds (an empty sequence clears the offer)."""
        self._offers.pop(sender_id, None)
        if not options:
            return
        self._offers[sender_id] = (self._clock() + self._ttl, tuple(options))
        while len(self._offers) > self._max:
            self._offers.popitem(last=False)

    async def recall(self, sender_id: str) -> List[Option]:
        """The sender's unexpired offer."""
        entry = self._offers.get(sender_id)
        if entry is None:
            return []
        expires_at, options = entry
        if self._clock() >= expires_at:
            del self._offers[sender_id]
            return []
        return list(options)


class RedisOptionStore:
    """Offers in Redis under `<prefix>:<sender>`, expiring by themselves."""

    def __init__(self, client: Any, ttl: float = DEFAULT_TTL, prefix: str = "hongguanjia:wechat:options") -> None:
        """`client` is a redis.asyncio.Redis."""
        self._client = client
        self._ttl_ms = max(1, int(ttl * 1000))
        self._prefix = prefix

    def _key(self, sender_id: str) -> str:
        return f"{self._prefix}:{sender_id}"

    async def remember(self, sender_id: str, options: Sequence[Option]) -> None:
        """Store `options` with the TTL, or delete the offer when there are none."""
        record = json.dumps([[o.title, o.payload] for o in options], ensure_ascii=False)
        try:
            if options:
                await self._client.set(self._key(sender_id), record, px=self._ttl_ms)
            else:
                await self._client.delete(self._key(sender_id))
        except RedisError as exc:
            log.warning("options of %s not stored: Redis error %s", sender_id, type(exc).__name__)

    async def recall(self, sender_id: str) -> List[Option]:
        """The stored offer (an unreadable record counts as none)."""
        try:
            raw = await self._client.get(self._key(sender_id))
        except RedisError as exc:
            log.warning("options of %s unreadable: Redis error %s", sender_id, type(exc).__name__)
            return []
        if raw is None:
            return []
        try:
            return [Option(str(title), str(payload)) for title, payload in json.loads(raw)]
        except (ValueError, TypeError):
            log.warning("ignoring an unreadable options record in Redis")
            return []


class LocalOptionStore:
    """Offers in the machine's state file under `<prefix>:<sender>`, expiring by themselves."""

    def __init__(self, state: LocalState, ttl: float = DEFAULT_TTL, prefix: str = "wechat:options") -> None:
        self._state = state
        self._ttl = ttl
        self._prefix = prefix

    def _key(self, sender_id: str) -> str:
        return f"{self._prefix}:{sender_id}"

    async def remember(self, sender_id: str, options: Sequence[Option]) -> None:
        """Store `options` with the TTL, or delete the offer when there are none."""
        record = json.dumps([[o.title, o.payload] for o in options], ensure_ascii=False)
        try:
            if options:
                await asyncio.to_thread(self._state.set, self._key(sender_id), record, self._ttl)
            else:
                await asyncio.to_thread(self._state.delete, self._key(sender_id))
        except sqlite3.Error as exc:
            log.warning("options of %s not stored: %s", sender_id, exc)

    async def recall(self, sender_id: str) -> List[Option]:
        """The stored offer (an unreadable record counts as none)."""
        try:
            raw = await asyncio.to_thread(self._state.get, self._key(sender_id))
        except sqlite3.Error as exc:
            log.warning("options of %s unreadable: %s", sender_id, exc)
            return []
        if raw is None:
            return []
        try:
            return [Option(str(title), str(payload)) for title, payload in json.loads(raw)]
        except (ValueError, TypeError):
            log.warning("ignoring an unreadable options record in the local state file")
            return []
