"""The access token: one shared copy behind a small store, refreshed before it expires, fetched by one caller at a time.

WeChat invalidates the previous token (after a short overlap) whenever a new one is fetched, so two
fetchers racing each other make each other's tokens fail. Within a process an asyncio.Lock serialises
fetches; with `RedisTokenStore` a Redis lock (SET NX PX) does the same across processes, and waiters
re-read the store until the holder has saved the new token. Without Redis, `LocalTokenStore` does the same
for the processes of one machine (Rasa workers, dispatcher, CLI) through its state file (bot/local_state.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Optional, Protocol, Tuple

from bot.local_state import LocalState
from bot.wechat.errors import WeChatError, WeChatUnavailable

__all__ = [
    "LOCAL_TOKEN_KEY",
    "REDIS_TOKEN_KEY",
    "shared_token_store",
    "shared_token_stores",
    "AccessTokenManager",
    "LocalTokenStore",
    "MemoryTokenStore",
    "RedisTokenStore",
    "StoredToken",
    "TokenFetcher",
    "TokenStore",
]

log = logging.getLogger(__name__)

TokenFetcher = Callable[[], Awaitable[Tuple[str, int]]]

# Delete the lock (or token) only if it still holds our value: a lock that expired and was taken by
# another process must not be released by us, nor a freshly fetched token dropped by a late invalidate.
_COMPARE_AND_DELETE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class StoredToken:
    """A token with the instant it expires and the instant from which it should be replaced."""

    value: str
    expires_at: float
    refresh_at: float

    def usable(self, now: float) -> bool:
        """Whether the token may still be used (it has not expired)."""
        return now < self.expires_at

    def fresh(self, now: float) -> bool:
        """Whether the token needs no refresh yet."""
        return now < self.refresh_at

    def __repr__(self) -> str:
        return f"StoredToken(value='****', expires_at={self.expires_at}, refresh_at={self.refresh_at})"


class TokenStore(Protocol):
    """Where the shared token lives, and the lock that lets one fetcher at a time replace it."""

    async def load(self) -> Optional[StoredToken]:
        """The stored token, if any."""
        ...

    async def save(self, token: StoredToken, now: float) -> None:
        """Store `token` (replacing any other); `now` is the manager's clock."""
        ...

    async def discard(self, value: str) -> None:
        """Forget the stored token if (and only if) it is `value`."""
        ...

    async def try_lock(self) -> Optional[str]:
        """Take the fetch lock and return its lease, or None when another holder has it."""
        ...

    async def unlock(self, lease: str) -> None:
        """Release the fetch lock taken with `lease` (no-op if it was lost)."""
        ...


# Where the shared account's token is kept; a community's own account adds ":<appid>" (bot/wechat/accounts.py).
REDIS_TOKEN_KEY = "hongguanjia:wechat:access_token"
LOCAL_TOKEN_KEY = "wechat:access_token"


class MemoryTokenStore:
    """A token kept in this process only (tests, or a single-process deployment)."""

    def __init__(self) -> None:
        self._token: Optional[StoredToken] = None

    async def load(self) -> Optional[StoredToken]:
        """The stored token, if any."""
        return self._token

    async def save(self, token: StoredToken, now: float) -> None:
        """Store `token`."""
        self._token = token

    async def discard(self, value: str) -> None:
        """Forget the stored token if it is `value`."""
        if self._token is not None and self._token.value == value:
            self._token = None

    async def try_lock(self) -> Optional[str]:
        """Always granted: the manager's asyncio.Lock already serialises fetches in this process."""
        return "memory"

    async def unlock(self, lease: str) -> None:
        """Nothing to release."""


class RedisTokenStore:
    """A token shared by every process through one Redis key, with a `<key>:lock` fetch lock."""

    def __init__(self, client: Any, key: str = REDIS_TOKEN_KEY, lock_ttl: float = 15.0) -> None:
        """`client` is a redis.asyncio.Redis; `lock_ttl` bounds how long a crashed fetcher can block others."""
        self._client = client
        self._key = key
        self._lock_key = f"{key}:lock"
        self._lock_ttl_ms = max(1, int(lock_ttl * 1000))

    async def load(self) -> Optional[StoredToken]:
        """The stored token, if any (an unreadable value counts as none)."""
        raw = await self._client.get(self._key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return StoredToken(str(data["value"]), float(data["expires_at"]), float(data["refresh_at"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable access token record in Redis")
            return None

    async def save(self, token: StoredToken, now: float) -> None:
        """Store `token`; Redis drops it by itself when it expires."""
        ttl_ms = max(1, int((token.expires_at - now) * 1000))
        record = json.dumps({"value": token.value, "expires_at": token.expires_at, "refresh_at": token.refresh_at})
        await self._client.set(self._key, record, px=ttl_ms)

    async def discard(self, value: str) -> None:
        """Forget the stored token if it is `value` (compare-and-delete in one step)."""
        raw = await self._client.get(self._key)
        if raw is None:
            return
        try:
            if json.loads(raw).get("value") != value:
                return
        except (ValueError, AttributeError):
            pass  # unreadable: delete it below so the next get() fetches a good one
        await self._client.eval(_COMPARE_AND_DELETE, 1, self._key, raw)

    async def try_lock(self) -> Optional[str]:
        """SET NX PX the lock key to a fresh lease; None when another process holds it."""
        lease = uuid.uuid4().hex
        taken = await self._client.set(self._lock_key, lease, nx=True, px=self._lock_ttl_ms)
        return lease if taken else None

    async def unlock(self, lease: str) -> None:
        """Delete the lock key if it still holds our lease."""
        await self._client.eval(_COMPARE_AND_DELETE, 1, self._lock_key, lease)


class LocalTokenStore:
    """A token shared by the processes of this machine through its state file, with a `<key>:lock` fetch lock."""

    def __init__(self, state: LocalState, key: str = LOCAL_TOKEN_KEY, lock_ttl: float = 15.0) -> None:
        """`lock_ttl` bounds how long a crashed fetcher can block others."""
        self._state = state
        self._key = key
        self._lock_key = f"{key}:lock"
        self._lock_ttl = lock_ttl

    async def load(self) -> Optional[StoredToken]:
        """The stored token, if any (an unreadable value counts as none)."""
        raw = await asyncio.to_thread(self._state.get, self._key)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return StoredToken(str(data["value"]), float(data["expires_at"]), float(data["refresh_at"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring an unreadable access token record in the local state file")
            return None

    async def save(self, token: StoredToken, now: float) -> None:
        """Store `token` until it expires."""
        record = json.dumps({"value": token.value, "expires_at": token.expires_at, "refresh_at": token.refresh_at})
        await asyncio.to_thread(self._state.set, self._key, record, max(0.001, token.expires_at - now))

    async def discard(self, value: str) -> None:
        """Forget the stored token if it is `value` (read and delete in one transaction)."""

        def discard() -> None:
            with self._state.transaction() as tx:
                raw = tx.get(self._key)
                if raw is None:
                    return
                try:
                    if json.loads(raw).get("value") != value:
                        return
                except (ValueError, AttributeError):
                    pass  # unreadable: delete it so the next get() fetches a good one
                tx.delete(self._key)

        await asyncio.to_thread(discard)

    async def try_lock(self) -> Optional[str]:
        """Take the fetch lock with a fresh lease unless another process holds it."""
        lease = uuid.uuid4().hex
        taken = await asyncio.to_thread(self._state.set, self._lock_key, lease, self._lock_ttl, nx=True)
        return lease if taken else None

    async def unlock(self, lease: str) -> None:
        """Release the fetch lock if it still holds our lease."""
        await asyncio.to_thread(self._state.delete, self._lock_key, lease)


class AccessTokenManager:
    """Hands out the shared access token, fetching a new one (once, however many callers wait) when needed."""

    def __init__(
        self,
        store: TokenStore,
        fetch: TokenFetcher,
        refresh_margin: float = 300,
        clock: Callable[[], float] = time.time,
        *,
        poll_interval: float = 0.05,
        lock_wait: float = 30.0,
    ) -> None:
        """`fetch` returns (token, expires_in seconds); `lock_wait` bounds the wait for another fetcher."""
        self._store = store
        self._fetch = fetch
        self._margin = refresh_margin
        self._clock = clock
        self._poll = poll_interval
        self._lock_wait = lock_wait
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A usable token: the stored one while fresh, otherwise a new one fetched by exactly one caller."""
        token = await self._store.load()
        if token is not None and token.fresh(self._clock()):
            return token.value
        async with self._lock:
            return await self._refresh()

    async def invalidate(self, token: str) -> None:
        """Drop `token` (WeChat called it invalid or expired) unless a newer one has replaced it already."""
        await self._store.discard(token)

    async def _refresh(self) -> str:
        deadline = time.monotonic() + self._lock_wait
        while True:
            token = await self._store.load()
            if token is not None and token.fresh(self._clock()):
                return token.value  # another caller or process refreshed it while we waited
            lease = await self._store.try_lock()
            if lease is not None:
                try:
                    return await self._fetch_and_save()
                finally:
                    await self._store.unlock(lease)
            if time.monotonic() >= deadline:
                raise WeChatUnavailable("token", "timed out waiting for another process to fetch the token")
            await asyncio.sleep(self._poll)

    async def _fetch_and_save(self) -> str:
        current = await self._store.load()
        now = self._clock()
        if current is not None and current.fresh(now):
            return current.value  # saved between our last read and taking the lock
        try:
            value, expires_in = await self._fetch()
        except WeChatError:
            if current is not None and current.usable(self._clock()):
                # Only the early refresh failed: the old token still works for a while.
                log.warning("access token refresh failed; using the current token until it expires", exc_info=True)
                return current.value
            raise
        now = self._clock()
        # The margin never eats more than half the lifetime, so a short-lived token is still reused.
        margin = min(self._margin, expires_in / 2)
        await self._store.save(StoredToken(value, now + expires_in, now + expires_in - margin), now)
        log.info("fetched a new WeChat access token (expires in %s s)", expires_in)
        return value


@asynccontextmanager
async def shared_token_store(redis_url: Optional[str], timeout: float,
                             state_path: Optional[Path] = None) -> AsyncIterator[TokenStore]:
    """The token store a process outside the Rasa server uses: Redis when configured, else the machine's state file
    at `state_path` (Settings.local_state_path), so every process shares one token (a token fetched here would
    otherwise replace, and soon invalidate, the server's); memory only when neither is given."""
    async with shared_token_stores(redis_url, timeout, state_path) as store_for:
        yield store_for("")


@asynccontextmanager
async def shared_token_stores(redis_url: Optional[str], timeout: float,
                              state_path: Optional[Path] = None) -> AsyncIterator[Callable[[str], TokenStore]]:
    """Like `shared_token_store`, for several accounts over one connection: `store_for(suffix)` is the store of the
    account whose key ends in `suffix` (bot/wechat/accounts.py `token_key`; "" for the shared account)."""
    if not redis_url:
        if state_path is None:
            memory: Dict[str, TokenStore] = {}
            yield lambda suffix: memory.setdefault(suffix, MemoryTokenStore())
            return
        state = LocalState(state_path)
        try:
            yield lambda suffix: LocalTokenStore(state, key=LOCAL_TOKEN_KEY + suffix)
        finally:
            state.close()
        return
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, socket_timeout=timeout)
    try:
        yield lambda suffix: RedisTokenStore(client, key=REDIS_TOKEN_KEY + suffix)
    finally:
        await client.close()
