"""The web chat page speaks to the WeChat channel exactly as WeChat does, and only on the demo account."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Tuple

import pytest

from bot.channels import wechat as wechat_channel
from bot.channels import webchat
from bot.channels.wechat import WeChatInput
from bot.channels.webchat import ASSET_DIR, openid_for
from bot.config import Settings
from bot.devtools.fake_wechat import FakeWeChat, FakeWeChatServer, running_fake_wechat
from bot.runner import demo_wechat_env
from bot.wechat.crypto import MessageCrypto
from bot.wechat.demo import DEMO_ACCOUNT, DEMO_AES_KEY, DEMO_APPID, DEMO_SECRET, DEMO_TOKEN
from bot.wechat.envelope import Push
from bot.wechat.runtime import WeChatConfig
from bot.wechat.signature import verify
from bot.wechat.xmlsafe import parse_xml
from tests.helpers import community_db
from tests.wechat_kit import ServedChannel, StubAssistant, eventually, serve_channel

CLIENT = "browser0client1"
ROUTES = [("GET", "/chat"), ("GET", "/chat/static/webchat.js"), ("POST", "/chat/send"), ("GET", "/chat/inbox")]


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeWeChatServer]:
    """The fake WeChat API for the demo account."""
    async with running_fake_wechat(FakeWeChat(appid=DEMO_APPID, secret=DEMO_SECRET)) as server:
        yield server


def _demo_config(api_base: str, database_url: str, **overrides: Any) -> WeChatConfig:
    values: Dict[str, Any] = dict(token=DEMO_TOKEN, appid=DEMO_APPID, secret=DEMO_SECRET, aes_key=DEMO_AES_KEY,
                                  api_base=api_base, database_url=database_url, passive_seconds=0.5)
    values.update(overrides)
    return WeChatConfig(**values)


def _base(served: ServedChannel) -> str:
    return served.url.rsplit("/webhook", 1)[0]


@pytest.fixture
async def page(fake_api: FakeWeChatServer, sqlite_url: str) -> AsyncIterator[ServedChannel]:
    """The channel on the demo account with the web chat page on (the demo community loaded), and the stub
    assistant behind it."""
    community_db(sqlite_url)
    channel = WeChatInput(_demo_config(fake_api.base_url, sqlite_url), webchat=True)
    async with serve_channel(channel, StubAssistant()) as served:
        yield served


async def _send(served: ServedChannel, text: str, client: str = CLIENT) -> Tuple[int, Dict[str, Any]]:
    async with served.http.post(f"{_base(served)}/chat/send", json={"client": client, "text": text}) as resp:
        return resp.status, await resp.json()


async def _inbox(served: ServedChannel, client: str = CLIENT, after: int = 0) -> List[Dict[str, Any]]:
    async with served.http.get(f"{_base(served)}/chat/inbox", params={"client": client, "after": str(after)}) as resp:
        assert resp.status == 200
        return (await resp.json())["messages"]


async def _statuses(served: ServedChannel) -> List[Tuple[int, str]]:
    answers = []
    for method, path in ROUTES:
        async with served.http.request(method, _base(served) + path, json={"client": CLIENT, "text": "你好"}
                                       if method == "POST" else None) as resp:
            answers.append((resp.status, await resp.text()))
    return answers


# Guard ------------------------------------------------------------------------------------------

async def test_page_is_off_unless_hg_webchat_is_set(fake_api: FakeWeChatServer, sqlite_url: str) -> None:
    channel = WeChatInput(_demo_config(fake_api.base_url, sqlite_url))
    async with serve_channel(channel, StubAssistant()) as served:
        answers = await _statuses(served)
    assert all(status == 404 and "HG_WEBCHAT=1" in text for status, text in answers), answers
    assert served.assistant.turns == []


@pytest.mark.parametrize("overrides", [
    {"token": "a-real-accounts-token"},
    {"appid": "wx1234567890abcdef"},
    {"aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"},
], ids=["real-token", "real-appid", "real-aes-key"])
async def test_page_refuses_with_real_credentials_even_when_enabled(fake_api: FakeWeChatServer, sqlite_url: str,
                                                                    overrides: Dict[str, str]) -> None:
    channel = WeChatInput(_demo_config(fake_api.base_url, sqlite_url, **overrides), webchat=True)
    async with serve_channel(channel, StubAssistant()) as served:
        answers = await _statuses(served)
    assert all(status == 403 and "real credentials" in text for status, text in answers), answers
    assert not any(secret in text for _, text in answers for secret in overrides.values())
    assert served.assistant.turns == [] and fake_api.fake.exchanges == []


async def test_page_refuses_when_the_api_base_is_real_wechat(sqlite_url: str) -> None:
    channel = WeChatInput(_demo_config("https://api.weixin.qq.com", sqlite_url), webchat=True)
    async with serve_channel(channel, StubAssistant()) as served:
        answers = await _statuses(served)
    assert all(status == 403 and "WECHAT_API_BASE" in text for status, text in answers), answers


def test_make_run_demo_environment_is_exactly_what_the_page_accepts(tmp_path: Path) -> None:
    settings = Settings.from_env(demo_wechat_env(), env_file=tmp_path / ".env")
    assert settings.webchat
    assert webchat.refusal(WeChatConfig.from_settings(settings), settings.webchat) is None
    real = Settings.from_env({**demo_wechat_env(), "WECHAT_TOKEN": "real"}, env_file=tmp_path / ".env")
    assert webchat.refusal(WeChatConfig.from_settings(real), real.webchat).status == 403
    off = Settings.from_env({}, env_file=tmp_path / ".env")
    assert not off.webchat


# Page ---------------------------------------------------------------------------------------------

async def test_page_and_its_assets_are_served_locally_without_secrets(page: ServedChannel) -> None:
    async with page.http.get(f"{_base(page)}/chat") as resp:
        html = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/html"
    assert "红星社区" in html and "发送" in html
    texts = [html]
    for name in webchat.ASSETS:
        async with page.http.get(f"{_base(page)}/chat/static/{name}") as resp:
            assert resp.status == 200
            texts.append(await resp.text())
    for text in texts:  # nothing from a CDN or the internet, and no token or key in what the browser gets
        fetched = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # an SVG namespace name, never fetched
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", fetched, re.I)
        assert DEMO_TOKEN not in text and DEMO_AES_KEY not in text
    async with page.http.get(f"{_base(page)}/chat/static/..%2F..%2Fwechat.py") as resp:
        assert resp.status == 404
    assert {p.name for p in ASSET_DIR.iterdir()} == {"index.html", *webchat.ASSETS}


# Send -------------------------------------------------------------------------------------------

async def test_send_posts_a_signed_safe_mode_push_and_shows_the_decrypted_passive_reply(
        page: ServedChannel, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: List[Tuple[Dict[str, str], bytes, Push]] = []
    real_open_push = wechat_channel.open_push

    def recording_open_push(query: Any, body: bytes, crypto: Any, cap: int) -> Push:
        push = real_open_push(query, body, crypto, cap)
        seen.append((dict(query), body, push))
        return push

    monkeypatch.setattr("bot.channels.wechat.open_push", recording_open_push)
    status, answer = await _send(page, "楼道灯坏了")
    assert status == 200
    assert answer["reply"] == "您说：楼道灯坏了\n\n还有什么可以帮您？"
    assert page.assistant.turns == [(openid_for(CLIENT), "楼道灯坏了")]
    assert DEMO_TOKEN not in str(answer) and DEMO_AES_KEY not in str(answer)

    (query, body, push), = seen
    assert push.encrypted
    assert query["encrypt_type"] == "aes"
    assert verify(DEMO_TOKEN, query["signature"], query["timestamp"], query["nonce"])
    outer = parse_xml(body)
    assert set(outer) == {"ToUserName", "Encrypt"}, "safe mode carries no plaintext copy"
    assert verify(DEMO_TOKEN, query["msg_signature"], query["timestamp"], query["nonce"], outer["Encrypt"])
    inner = parse_xml(MessageCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID).decrypt(outer["Encrypt"]).encode())
    assert inner["ToUserName"] == DEMO_ACCOUNT and inner["FromUserName"] == openid_for(CLIENT)
    assert (inner["MsgType"], inner["Content"]) == ("text", "楼道灯坏了") and inner["MsgId"].isdecimal()


async def test_typing_a_number_chooses_the_numbered_option(page: ServedChannel) -> None:
    _, offered = await _send(page, "要按钮")
    assert "1. 是的，就用这个" in offered["reply"] or "1.是的，就用这个" in offered["reply"].replace(" ", "")
    _, chosen = await _send(page, "1")
    assert chosen["reply"] == "收到指令 /affirm"


@pytest.mark.parametrize("body", [
    {"client": "short", "text": "你好"},
    {"client": "../../etc/passwd", "text": "你好"},
    {"client": CLIENT, "text": "  "},
    {"client": CLIENT, "text": "字" * 601},
    {"client": CLIENT},
], ids=["short-client", "path-client", "blank", "too-long", "no-text"])
async def test_send_rejects_bad_input_before_anything_is_pushed(page: ServedChannel, body: Dict[str, str]) -> None:
    async with page.http.post(f"{_base(page)}/chat/send", json=body) as resp:
        assert resp.status == 400
    assert page.assistant.turns == []


# Inbox ------------------------------------------------------------------------------------------

async def test_slow_reply_comes_through_customer_service_and_shows_in_the_inbox(
        page: ServedChannel, fake_api: FakeWeChatServer) -> None:
    _, answer = await _send(page, "慢一点")  # the stub takes 1.5 s; the passive budget is 0.5 s
    assert answer["reply"] is None
    await eventually(lambda: bool(fake_api.fake.messages), timeout=5)
    messages = await _inbox(page)
    assert [m["text"] for m in messages] == ["让您久等了，这是答复。"]
    assert await _inbox(page, after=messages[-1]["seq"]) == []
    assert await _inbox(page, client="someone0else") == []


async def test_inbox_is_502_when_the_fake_api_is_gone(sqlite_url: str) -> None:
    async with running_fake_wechat(FakeWeChat(appid=DEMO_APPID, secret=DEMO_SECRET)) as gone:
        base = gone.base_url
    channel = WeChatInput(_demo_config(base, sqlite_url), webchat=True)
    async with serve_channel(channel, StubAssistant()) as served:
        async with served.http.get(f"{_base(served)}/chat/inbox", params={"client": CLIENT}) as resp:
            assert resp.status == 502


async def test_the_page_is_titled_with_the_community_the_shared_account_serves(fake_api: FakeWeChatServer,
                                                                              sqlite_url: str) -> None:
    from bot.store.db import unit_of_work
    from bot.store.models import Community

    factory = community_db(sqlite_url)
    with unit_of_work(factory) as session:  # community.yml renamed (and a name that must be escaped)
        session.get(Community, "default").name = "白云<社区>"
    channel = WeChatInput(_demo_config(fake_api.base_url, sqlite_url), webchat=True)
    async with serve_channel(channel, StubAssistant()) as served:
        async with served.http.get(f"{_base(served)}/chat") as resp:
            assert resp.status == 200 and resp.content_type == "text/html"
            page_html = await resp.text()
    assert "<title>白云&lt;社区&gt; · 红管家</title>" in page_html
    assert 'data-title="白云&lt;社区&gt;">白云&lt;社区&gt;</h1>' in page_html
    assert "红星社区" not in page_html and "__TITLE__" not in page_html
