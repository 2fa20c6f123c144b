"""Fixtures for delivery tests: a controllable clock and the fake WeCom robot on a real port."""

from __future__ import annotations

import datetime as dt
from typing import AsyncIterator

import aiohttp
import pytest

from bot.devtools.fake_wecom import FakeWeCom, FakeWeComServer, running_fake_wecom


class FakeClock:
    """A UTC clock that only moves when told; shared by the dispatcher and the fake robot."""

    def __init__(self) -> None:
        # A little ahead of the real time: rows queued during the test (stamped with the real,
        # second-rounded time) must already be due when the dispatcher looks.
        self.now = dt.datetime.utcnow() + dt.timedelta(seconds=5)

    def __call__(self) -> dt.datetime:
        return self.now

    def seconds(self) -> float:
        """The same instant as a float, for the fake robot's rate window."""
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    """A clock starting just ahead of now, moving only when the test says so."""
    return FakeClock()


@pytest.fixture
async def wecom(clock: FakeClock) -> AsyncIterator[FakeWeComServer]:
    """The fake WeCom robot webhook, listening on a free 127.0.0.1 port."""
    async with running_fake_wecom(FakeWeCom(clock=clock.seconds)) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session
