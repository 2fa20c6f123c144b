"""The WeCom robot client sorts every answer into delivered, retry later, or give up."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from bot.devtools.fake_wecom import FakeWeComServer
from bot.errors import DeliveryError
from bot.notify.wecom import WeComRobotClient, mask_key

KEY = "client-key-5d2f8e1a9b"
PAYLOAD = {"msgtype": "markdown", "markdown": {"content": "测试"}}


async def _failure(client: WeComRobotClient, key: str = KEY) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await client.send(key, PAYLOAD)
    return caught.value


async def test_errcode_zero_is_a_delivery(wecom: FakeWeComServer, http: aiohttp.ClientSession) -> None:
    await WeComRobotClient(http, wecom.url).send(KEY, PAYLOAD)
    assert wecom.fake.messages[0].payload == PAYLOAD


@pytest.mark.parametrize(
    ("script", "retryable", "errcode"),
    [
        ({"errcode": 93000}, False, 93000),
        ({"errcode": 45009}, True, 45009),
        ({"errcode": 40058}, True, 40058),
        ({"status": 500}, True, None),
        ({"status": 503}, True, None),
        ({"status": 429}, True, None),
        ({"status": 400}, False, None),
        ({"status": 404}, False, None),
    ],
)
async def test_failures_are_sorted_into_retryable_or_not(
    wecom: FakeWeComServer, http: aiohttp.ClientSession, script: dict, retryable: bool, errcode
) -> None:
    wecom.fake.fail_next(1, **script)
    error = await _failure(WeComRobotClient(http, wecom.url))
    assert (error.retryable, error.errcode) == (retryable, errcode)
    assert KEY not in error.message and mask_key(KEY) in error.message


async def test_a_slow_robot_times_out_as_a_retryable_error(wecom: FakeWeComServer, http: aiohttp.ClientSession) -> None:
    wecom.fake.fail_next(1, errcode=0, errmsg="ok", delay=0.5)
    error = await _failure(WeComRobotClient(http, wecom.url, timeout=0.1))
    assert error.retryable and "timed out" in error.message


async def test_an_unreachable_robot_is_a_retryable_error(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = await _failure(WeComRobotClient(http, f"http://127.0.0.1:{port}/cgi-bin/webhook/send", timeout=1))
    assert error.retryable and KEY not in error.message


def test_masked_keys_never_show_the_whole_key() -> None:
    assert mask_key(KEY) == "clie****"
    assert mask_key("short") == "****"
