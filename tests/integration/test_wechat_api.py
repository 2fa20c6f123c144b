"""The WeChat API client shares one access token, renews it at the right moments and reports every refusal."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import AsyncIterator, List, Optional

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.devtools.fake_wechat import (
    CUSTOM_SEND_PATH,
    TOKEN_PATH,
    FakeWeChat,
    FakeWeChatServer,
    running_fake_wechat,
)
from bot.wechat.client import WeChatClient
from bot.wechat.errors import WeChatAPIError, WeChatUnavailable
from bot.wechat.token import MemoryTokenStore, RedisTokenStore, TokenStore
from tests.conftest import ensure_redis

APPID = "wx5d2f8e1a9b0c3d4e"
SECRET = "app-secret-9f8e7d6c5b4a"
OPENID = "oResident-api-0001"
REDIS_URL = "redis://127.0.0.1:6379/14"


class ManualClock:
    """Wall-clock seconds that only move when told; shared by the fake and the client."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def api_clock() -> ManualClock:
    """A clock for both sides of the API."""
    return ManualClock()


@pytest.fixture
async def wechat(api_clock: ManualClock) -> AsyncIterator[FakeWeChatServer]:
    """The fake WeChat API on a free 127.0.0.1 port."""
    async with running_fake_wechat(FakeWeChat(appid=APPID, secret=SECRET, clock=api_clock)) as server:
        yield server


def _client(
    http: aiohttp.ClientSession,
    server: FakeWeChatServer,
    clock: ManualClock,
    store: Optional[TokenStore] = None,
    timeout: float = 5.0,
    secret: str = SECRET,
) -> WeChatClient:
    return WeChatClient(http, APPID, secret, server.base_url, store or MemoryTokenStore(), timeout, clock=clock)


def _sends(server: FakeWeChatServer) -> List[Optional[int]]:
    return server.fake.errcodes(CUSTOM_SEND_PATH)


async def test_twenty_concurrent_sends_share_one_token_fetch(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wechat.fake.token_delay = 0.05  # keep the fetch in flight while the other 19 arrive
    client = _client(http, wechat, api_clock)
    await asyncio.gather(*(client.send_text(OPENID, f"第{i}条") for i in range(20)))
    assert len(wechat.fake.token_fetches) == 1
    assert len(wechat.fake.messages) == 20
    assert {m.token for m in wechat.fake.messages} == {wechat.fake.token_fetches[0].token}
    assert {m.payload["text"]["content"] for m in wechat.fake.messages} == {f"第{i}条" for i in range(20)}


async def test_the_token_is_kept_until_the_refresh_margin_and_renewed_before_it_expires(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock)
    await client.send_text(OPENID, "一")
    api_clock.advance(7200 - 300 - 1)
    await client.send_text(OPENID, "二")
    assert len(wechat.fake.token_fetches) == 1
    api_clock.advance(2)  # inside the last five minutes: renew before WeChat says 42001
    await client.send_text(OPENID, "三")
    assert len(wechat.fake.token_fetches) == 2
    assert wechat.fake.messages[-1].token == wechat.fake.token_fetches[1].token
    assert _sends(wechat) == [0, 0, 0]


async def test_a_failed_early_refresh_keeps_using_the_still_valid_token(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock)
    await client.send_text(OPENID, "一")
    api_clock.advance(7200 - 100)
    wechat.fake.fail_next(errcode=-1, path=TOKEN_PATH)
    await client.send_text(OPENID, "二")
    assert len(wechat.fake.messages) == 2
    assert wechat.fake.messages[1].token == wechat.fake.token_fetches[0].token


async def test_an_invalidated_token_is_refetched_once_and_the_call_retried_once(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock)
    await client.send_text(OPENID, "一")
    wechat.fake.invalidate_tokens()  # as if someone else had fetched a token long enough ago
    await client.send_text(OPENID, "二")
    assert _sends(wechat) == [0, 40001, 0]
    assert len(wechat.fake.token_fetches) == 2
    assert [m.payload["text"]["content"] for m in wechat.fake.messages] == ["一", "二"]


async def test_an_expired_token_is_refetched_once_and_the_call_retried_once(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock)
    await client.send_text(OPENID, "一")
    wechat.fake.expire_tokens()  # our clock still thinks the token is fresh
    await client.send_text(OPENID, "二")
    assert _sends(wechat) == [0, 42001, 0]
    assert len(wechat.fake.token_fetches) == 2


async def test_concurrent_callers_hitting_an_invalid_token_refetch_it_once(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock)
    await client.send_text(OPENID, "warm up")
    wechat.fake.invalidate_tokens()
    await asyncio.gather(*(client.send_text(OPENID, str(i)) for i in range(10)))
    assert len(wechat.fake.token_fetches) == 2
    assert len(wechat.fake.messages) == 11


async def test_a_second_token_error_is_raised_not_retried_again(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wechat.fake.fail_next(2, errcode=40001)
    with pytest.raises(WeChatAPIError) as caught:
        await _client(http, wechat, api_clock).send_text(OPENID, "一")
    assert caught.value.errcode == 40001
    assert _sends(wechat) == [40001, 40001]
    assert len(wechat.fake.token_fetches) == 2


async def test_outside_the_48_hour_window_45015_is_raised_and_nothing_is_retried(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wechat.fake.silent_users = {OPENID}
    with pytest.raises(WeChatAPIError) as caught:
        await _client(http, wechat, api_clock).send_text(OPENID, "您的工单已办结")
    assert (caught.value.errcode, caught.value.api) == (45015, CUSTOM_SEND_PATH)
    assert _sends(wechat) == [45015]
    assert len(wechat.fake.token_fetches) == 1
    assert wechat.fake.messages == []


async def test_a_scripted_quota_error_is_raised_once_with_its_errcode(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wechat.fake.fail_next(errcode=45009)
    with pytest.raises(WeChatAPIError) as caught:
        await _client(http, wechat, api_clock).send_text(OPENID, "一")
    assert caught.value.errcode == 45009
    assert _sends(wechat) == [45009]


async def test_template_message_reaches_the_fake_in_the_documented_format(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock)
    msgid = await client.send_template(
        OPENID, "tpl-repair-done", {"first": "您的报修已办结", "keyword1": {"value": "HG-0042", "color": "#173177"}},
        url="https://example.com/t/42",
    )
    assert isinstance(msgid, int)
    assert wechat.fake.templates[0].payload == {
        "touser": OPENID,
        "template_id": "tpl-repair-done",
        "url": "https://example.com/t/42",
        "data": {"first": {"value": "您的报修已办结"}, "keyword1": {"value": "HG-0042", "color": "#173177"}},
    }


async def test_template_for_a_user_who_does_not_follow_raises_43004(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wechat.fake.unfollowed_users = {OPENID}
    with pytest.raises(WeChatAPIError) as caught:
        await _client(http, wechat, api_clock).send_template(OPENID, "tpl", {"first": "x"})
    assert caught.value.errcode == 43004


MENU = {
    "button": [
        {"type": "click", "name": "我要报修", "key": "REPAIR"},
        {"name": "社区服务", "sub_button": [
            {"type": "view", "name": "办事指南", "url": "https://example.com/guide"},
            {"type": "click", "name": "联系网格员", "key": "GRID_WORKER"},
        ]},
    ]
}


async def test_menu_reaches_the_fake_unchanged(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    await _client(http, wechat, api_clock).create_menu(MENU)
    assert wechat.fake.menus[0].payload == MENU


async def test_an_invalid_menu_is_refused_with_wechats_errcode(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    with pytest.raises(WeChatAPIError) as caught:
        await _client(http, wechat, api_clock).create_menu({"button": [{"type": "click", "name": "报修"}]})
    assert caught.value.errcode == 40019


async def test_a_wrong_secret_is_reported_without_the_secret(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wrong = "wrong-secret-4c3b2a1f"
    with pytest.raises(WeChatAPIError) as caught:
        await _client(http, wechat, api_clock, secret=wrong).send_text(OPENID, "一")
    assert (caught.value.errcode, caught.value.api) == (40125, TOKEN_PATH)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value.data)


async def test_a_slow_api_times_out_as_unavailable(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    client = _client(http, wechat, api_clock, timeout=0.2)
    await client.send_text(OPENID, "warm up")
    wechat.fake.fail_next(errcode=0, delay=1.0)
    started = time.perf_counter()
    with pytest.raises(WeChatUnavailable) as caught:
        await client.send_text(OPENID, "一")
    assert time.perf_counter() - started < 0.9
    assert caught.value.reason == "timed out"


async def test_an_http_error_is_reported_as_unavailable(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock
) -> None:
    wechat.fake.fail_next(status=502)
    with pytest.raises(WeChatUnavailable, match="HTTP 502"):
        await _client(http, wechat, api_clock).send_text(OPENID, "一")


async def test_neither_the_secret_nor_a_token_is_ever_logged(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = _client(http, wechat, api_clock)
    await client.send_text(OPENID, "一")
    wechat.fake.invalidate_tokens()
    await client.send_text(OPENID, "二")
    wechat.fake.silent_users = {OPENID}
    with pytest.raises(WeChatAPIError) as caught:
        await client.send_text(OPENID, "三")
    leaked = [SECRET] + [f.token for f in wechat.fake.token_fetches]
    for value in leaked:
        assert value not in caplog.text and value not in str(caught.value) and value not in repr(client)


# --- several processes sharing Redis --------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_available() -> str:
    """The local Redis server (database 14), started when it is installed but not running."""
    ensure_redis(REDIS_URL)
    return REDIS_URL


@pytest.fixture
async def redis_key(redis_available: str) -> AsyncIterator[str]:
    """A token key of its own for this test, deleted afterwards."""
    key = f"hg-test:wechat-token:{uuid.uuid4().hex}"
    yield key
    cleaner = aioredis.from_url(redis_available)
    await cleaner.delete(key, f"{key}:lock")
    await cleaner.close()


async def test_two_processes_sharing_redis_fetch_the_token_once(
    wechat: FakeWeChatServer, api_clock: ManualClock, redis_key: str
) -> None:
    wechat.fake.token_delay = 0.2  # the first fetch is still in flight when the other process asks
    redis_a, redis_b = aioredis.from_url(REDIS_URL), aioredis.from_url(REDIS_URL)
    async with aiohttp.ClientSession() as http_a, aiohttp.ClientSession() as http_b:
        process_a = _client(http_a, wechat, api_clock, store=RedisTokenStore(redis_a, redis_key))
        process_b = _client(http_b, wechat, api_clock, store=RedisTokenStore(redis_b, redis_key))
        await asyncio.gather(*(
            client.send_text(OPENID, f"{name}{i}")
            for i in range(10) for name, client in (("a", process_a), ("b", process_b))
        ))
    try:
        assert len(wechat.fake.token_fetches) == 1
        assert len(wechat.fake.messages) == 20
        assert not await redis_a.exists(f"{redis_key}:lock")
        assert await redis_a.pttl(redis_key) > 0  # Redis drops the token itself when it expires
    finally:
        await redis_a.close()
        await redis_b.close()


async def test_a_token_invalidated_in_one_process_is_renewed_once_for_both(
    wechat: FakeWeChatServer, http: aiohttp.ClientSession, api_clock: ManualClock, redis_key: str
) -> None:
    redis_a, redis_b = aioredis.from_url(REDIS_URL), aioredis.from_url(REDIS_URL)
    try:
        process_a = _client(http, wechat, api_clock, store=RedisTokenStore(redis_a, redis_key))
        process_b = _client(http, wechat, api_clock, store=RedisTokenStore(redis_b, redis_key))
        await process_a.send_text(OPENID, "a")
        await process_b.send_text(OPENID, "b")
        wechat.fake.invalidate_tokens()
        await process_a.send_text(OPENID, "a2")
        await process_b.send_text(OPENID, "b2")  # finds the token process a already renewed
        assert len(wechat.fake.token_fetches) == 2
        assert _sends(wechat) == [0, 0, 40001, 0, 0]
    finally:
        await redis_a.close()
        await redis_b.close()
