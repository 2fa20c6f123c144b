"""The per-sender rate limit counts per clock minute, shared by every process through Redis or the state file."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.local_state import LocalState
from bot.sender_limit import LocalCounter, MemoryCounter, RedisCounter, SenderLimit


class Clock:
    def __init__(self, at: float = 1_796_299_980.0) -> None:  # on a minute boundary
        self.at = at

    def __call__(self) -> float:
        return self.at


async def _sent(limit: SenderLimit, sender: str, n: int) -> list:
    return [await limit.allow(sender) for _ in range(n)]


async def test_twenty_a_minute_then_please_wait_until_the_next_minute() -> None:
    clock = Clock()
    limit = SenderLimit(20, MemoryCounter(clock), clock)
    assert await _sent(limit, "a", 22) == [True] * 20 + [False] * 2
    assert await limit.allow("b")  # per sender
    clock.at += 59.9
    assert not await limit.allow("a")
    clock.at += 0.2  # a new minute
    assert await _sent(limit, "a", 20) == [True] * 20


async def test_two_processes_share_the_count_in_the_state_file(tmp_path: Path) -> None:
    clock = Clock()
    first, second = LocalState(tmp_path / "state.db"), LocalState(tmp_path / "state.db")
    try:
        one, two = SenderLimit(3, LocalCounter(first), clock), SenderLimit(3, LocalCounter(second), clock)
        assert [await one.allow("a"), await two.allow("a"), await one.allow("a"), await two.allow("a")] == \
            [True, True, True, False]
    finally:
        first.close()
        second.close()


async def test_two_replicas_share_the_count_in_redis(redis_url: str) -> None:
    clock = Clock(1_796_300_000.0 + 120 * (hash(redis_url) % 1000))
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    try:
        one, two = (SenderLimit(3, RedisCounter(c), clock) for c in clients)
        assert [await one.allow("r"), await two.allow("r"), await one.allow("r"), await two.allow("r")] == \
            [True, True, True, False]
        key = next(k for k in await clients[0].keys("hongguanjia:sender-rate:r:*"))
        assert 0 < await clients[0].ttl(key) <= 120  # it goes away by itself
    finally:
        for c in clients:
            await c.flushdb()
            await c.close()


async def test_an_unreachable_store_lets_residents_through() -> None:
    unreachable = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    limit = SenderLimit(1, RedisCounter(unreachable))
    assert await _sent(limit, "a", 3) == [True] * 3
    await unreachable.close()


@pytest.mark.parametrize("per_minute", [0, -1])
async def test_zero_switches_the_limit_off(per_minute: int) -> None:
    limit = SenderLimit(per_minute, MemoryCounter())
    assert all(await _sent(limit, "a", 100))
