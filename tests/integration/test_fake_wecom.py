"""The fake WeCom robot validates and answers like the real webhook, in tests and as a demo."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.devtools.fake_wecom import SEND_PATH, FakeWeComServer
from bot.config import PROJECT_ROOT


async def _post(http: aiohttp.ClientSession, server: FakeWeComServer, body, key: str = "k-1") -> dict:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    async with http.post(server.url, params={"key": key}, data=data) as response:
        assert response.status == 200
        return await response.json()


def _text(content: str, **extra) -> dict:
    return {"msgtype": "text", "text": {"content": content, **extra}}


def _markdown(content: str) -> dict:
    return {"msgtype": "markdown", "markdown": {"content": content}}


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        (_text("你好", mentioned_list=["zhangwei", "@all"], mentioned_mobile_list=["13800138000"]), 0),
        (_text("字" * 682 + "ab"), 0),  # 2048 bytes
        (_text("字" * 683), 40058),  # 2049 bytes
        (_text("hi", mentioned_list="zhangwei"), 40058),
        (_markdown("字" * 1365 + "a"), 0),  # 4096 bytes
        (_markdown("字" * 1366), 40058),  # 4098 bytes
        (_markdown(""), 44004),
        ({"msgtype": "markdown"}, 44004),
        ({"msgtype": "image", "image": {}}, 40008),
        ([1, 2], 40008),
        (b"{not json", 40008),
        (b"", 44002),
    ],
)
async def test_messages_are_validated_like_wecom(
    wecom: FakeWeComServer, http: aiohttp.ClientSession, body, errcode: int
) -> None:
    answer = await _post(http, wecom, body)
    assert answer["errcode"] == errcode
    assert len(wecom.fake.messages) == (1 if errcode == 0 else 0)


async def test_unknown_keys_get_93000_when_an_allow_list_is_set(wecom: FakeWeComServer, http) -> None:
    wecom.fake.allowed_keys = {"good"}
    assert (await _post(http, wecom, _markdown("x"), key="bad"))["errcode"] == 93000
    assert (await _post(http, wecom, _markdown("x"), key="good"))["errcode"] == 0


async def test_a_21st_message_within_a_minute_gets_45009(wecom: FakeWeComServer, http, clock) -> None:
    codes = [(await _post(http, wecom, _markdown(f"m{i}")))["errcode"] for i in range(21)]
    assert codes == [0] * 20 + [45009]
    assert (await _post(http, wecom, _markdown("other"), key="k-2"))["errcode"] == 0
    clock.advance(60)
    assert (await _post(http, wecom, _markdown("later")))["errcode"] == 0


async def test_command_line_fake_prints_and_logs_each_message(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path / "demo" / "wecom.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.devtools.fake_wecom", "--port", str(port), "--log", str(log),
        cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), timeout=10)  # the banner
        url = f"http://127.0.0.1:{port}{SEND_PATH}"
        for _ in range(100):
            try:
                async with http.post(url, params={"key": "demo-key-123456"}, json=_markdown("演示消息")) as r:
                    assert (await r.json())["errcode"] == 0
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        printed = json.loads(await asyncio.wait_for(proc.stdout.readline(), timeout=5))
    finally:
        proc.terminate()
        await proc.wait()
    assert printed["payload"] == _markdown("演示消息") and printed["key"] == "demo****"
    assert json.loads(log.read_text(encoding="utf-8")) == printed
