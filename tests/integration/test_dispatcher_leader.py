"""One dispatcher leads, another stands by and takes over when the leader stops or dies (bot/services/leases.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import random

import aiohttp
import pytest
from sqlalchemy.orm import sessionmaker

from bot.notify.dispatcher import Dispatcher, Leadership
from bot.notify.wecom import WeComRobotClient
from bot.services import leases
from tests.integration.test_dispatcher import contents_received, queue, rows, settings  # noqa: F401 - fixture

TTL = dt.timedelta(seconds=10)


def test_a_lease_is_held_by_one_holder_until_it_expires_or_is_given_back(session_factory: sessionmaker) -> None:
    now = dt.datetime(2026, 12, 3, 14, 0, 0)
    assert leases.hold(session_factory, "dispatcher", "a:1", TTL, now)
    assert not leases.hold(session_factory, "dispatcher", "b:2", TTL, now + dt.timedelta(seconds=5))
    assert leases.hold(session_factory, "dispatcher", "a:1", TTL, now + dt.timedelta(seconds=9))  # renewed
    assert not leases.hold(session_factory, "dispatcher", "b:2", TTL, now + dt.timedelta(seconds=18))
    assert leases.holder_of(session_factory, "dispatcher", now + dt.timedelta(seconds=18)) == "a:1"
    # a:1 died: its lease runs out 10 s after its last renewal, and b:2 takes it
    assert leases.hold(session_factory, "dispatcher", "b:2", TTL, now + dt.timedelta(seconds=20))
    assert not leases.hold(session_factory, "dispatcher", "a:1", TTL, now + dt.timedelta(seconds=21))
    assert not leases.release(session_factory, "dispatcher", "a:1")  # not a:1's to give back
    assert leases.release(session_factory, "dispatcher", "b:2")
    assert leases.holder_of(session_factory, "dispatcher", now + dt.timedelta(seconds=21)) is None
    assert leases.hold(session_factory, "dispatcher", "a:1", TTL, now + dt.timedelta(seconds=21))
    assert leases.hold(session_factory, "other-role", "b:2", TTL, now + dt.timedelta(seconds=21))  # names apart


async def test_only_the_leader_sends_and_the_one_standing_by_takes_over_when_it_stops(
        settings, session_factory: sessionmaker, wecom, http: aiohttp.ClientSession, clock) -> None:  # noqa: F811
    def dispatcher(holder: str) -> Dispatcher:
        client = WeComRobotClient(http, settings.wecom_webhook_url, timeout=settings.http_timeout)
        return Dispatcher(settings, session_factory, client, clock=clock, rng=random.Random(7),
                          leadership=Leadership(session_factory, 10, holder=holder, clock=clock))

    first, second = dispatcher("host-a:1"), dispatcher("host-b:2")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    leader = asyncio.create_task(first.run_forever(stop_first))
    await _until(lambda: leases.holder_of(session_factory, "dispatcher", clock.now) == "host-a:1")
    standby = asyncio.create_task(second.run_forever(stop_second))
    queue(session_factory, ["第一批"])
    await _until(lambda: contents_received(wecom) == ["第一批"])
    assert leases.holder_of(session_factory, "dispatcher", clock.now) == "host-a:1"

    stop_first.set()  # the leader stops and gives the lease back: the other takes over at once
    await asyncio.wait_for(leader, timeout=5)
    queue(session_factory, ["第二批"])
    await _until(lambda: contents_received(wecom) == ["第一批", "第二批"])
    assert leases.holder_of(session_factory, "dispatcher", clock.now) == "host-b:2"
    stop_second.set()
    await asyncio.wait_for(standby, timeout=5)
    assert {(r.status, r.attempts) for r in rows(session_factory).values()} == {("sent", 1)}


async def test_a_leader_that_dies_is_replaced_when_its_lease_runs_out(
        settings, session_factory: sessionmaker, wecom, http: aiohttp.ClientSession, clock) -> None:  # noqa: F811
    assert leases.hold(session_factory, "dispatcher", "dead-host:9", TTL, clock.now)  # died without giving it back
    client = WeComRobotClient(http, settings.wecom_webhook_url, timeout=settings.http_timeout)
    standby = Dispatcher(settings, session_factory, client, clock=clock, rng=random.Random(7),
                         leadership=Leadership(session_factory, 10, holder="host-b:2", clock=clock))
    stop = asyncio.Event()
    task = asyncio.create_task(standby.run_forever(stop))
    queue(session_factory, ["等接班"])
    await asyncio.sleep(0.3)
    assert contents_received(wecom) == []  # the lease is still the dead leader's
    clock.advance(11)
    await _until(lambda: contents_received(wecom) == ["等接班"])
    stop.set()
    await asyncio.wait_for(task, timeout=5)


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.02)
