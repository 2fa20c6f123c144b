"""A community with an Official Account of its own: its server URL is verified with its own token and key, its
residents belong to it from the first message, and every later message to them goes out through the same account,
never the shared one's (issue 10)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import AsyncIterator, Dict, Optional

import pytest

from bot import messages
from bot.channels.wechat import WeChatInput
from bot.config import Settings
from bot.devtools.fake_wechat import FakeWeChat, FakeWeChatServer, running_fake_wechat
from bot.errors import DeliveryError
from bot.notify.resident import resident_sender
from bot.services import residents
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Community, Resident
from bot.wechat.accounts import Account
from bot.wechat.runtime import WeChatConfig
from tests.wechat_kit import (
    AES_KEY,
    APPID,
    OPENID,
    SECRET,
    TOKEN,
    ServedChannel,
    StubAssistant,
    crypto,
    envelope,
    eventually,
    message_xml,
    open_reply,
    serve_channel,
    signed_query,
    text_xml,
)

TOKEN_B = "jinxiu-token-77aa"
APPID_B = "wxjinxiu00000b001"
SECRET_B = "jinxiu-secret-31c9"
AES_B = "UXDdCeGRRgYircM8GK5NDs+bYenqurowlazg4tjOODI"
ACCOUNT_B = "gh_jinxiu000001"
OPENID_B = "oJinxiu-resident-0001"
BOX_B = crypto(TOKEN_B, AES_B, APPID_B)
PASSIVE = 1.0


@pytest.fixture
async def fakes() -> AsyncIterator[Dict[str, FakeWeChatServer]]:
    """WeChat's API as the shared account and as 锦绣社区's own account see it."""
    async with running_fake_wechat(FakeWeChat(appid=APPID, secret=SECRET)) as shared, \
            running_fake_wechat(FakeWeChat(appid=APPID_B, secret=SECRET_B)) as own:
        yield {"shared": shared, "own": own}


def _account(fakes: Dict[str, FakeWeChatServer], community: str = "jinxiu") -> Account:
    return Account(community=community, token=TOKEN_B, appid=APPID_B, secret=SECRET_B, aes_key=AES_B,
                   template_id="TPL-jinxiu", api_base=fakes["own"].base_url)


def _load_jinxiu(url: str, wechat_account: Optional[str] = APPID_B) -> None:
    with unit_of_work(make_session_factory(make_engine(url))) as session:
        session.add(Community(key="jinxiu", name="锦绣社区", wechat_account=wechat_account))


def _channel(fakes: Dict[str, FakeWeChatServer], url: str, community: str = "jinxiu") -> WeChatInput:
    config = WeChatConfig(token=TOKEN, appid=APPID, secret=SECRET, aes_key=AES_KEY,
                          api_base=fakes["shared"].base_url, database_url=url, passive_seconds=PASSIVE)
    return WeChatInput(config, accounts={community: _account(fakes, community)})


@pytest.fixture
async def served(fakes: Dict[str, FakeWeChatServer], sqlite_url: str) -> AsyncIterator[ServedChannel]:
    _load_jinxiu(sqlite_url)
    async with serve_channel(_channel(fakes, sqlite_url), StubAssistant()) as server:
        yield server


async def _push_own(served: ServedChannel, content: str, mode: str = "safe", token: str = TOKEN_B):
    xml = message_xml("text", OPENID_B, to_user=ACCOUNT_B, Content=content)
    query, body = envelope(xml, mode, signed_query(token), box=BOX_B, token=token,
                           to_user=ACCOUNT_B)
    async with served.http.post(served.url + "/jinxiu", params=query, data=body) as resp:
        return resp.status, await resp.text(), query


def _resident(url: str, sender_id: str) -> Optional[Resident]:
    with unit_of_work(make_session_factory(make_engine(url))) as session:
        row = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        if row is not None:
            session.expunge(row)
        return row


async def test_each_server_url_is_verified_with_its_own_accounts_token_only(served: ServedChannel) -> None:
    own = served.url + "/jinxiu"
    async with served.http.get(own, params={**signed_query(TOKEN_B), "echostr": "4711"}) as resp:
        assert (resp.status, await resp.text()) == (200, "4711")
    async with served.http.get(own, params={**signed_query(TOKEN), "echostr": "4711"}) as resp:
        assert resp.status == 403 and "4711" not in await resp.text()
    async with served.http.get(served.url, params={**signed_query(TOKEN_B), "echostr": "4711"}) as resp:
        assert resp.status == 403
    async with served.http.get(served.url, params={**signed_query(TOKEN), "echostr": "4712"}) as resp:
        assert (resp.status, await resp.text()) == (200, "4712")
    async with served.http.get(served.url + "/heping", params={**signed_query(TOKEN), "echostr": "1"}) as resp:
        assert resp.status == 404 and "heping" in await resp.text()


async def test_a_push_to_a_communitys_account_is_answered_in_its_keys_and_places_the_resident_there(
        served: ServedChannel, sqlite_url: str) -> None:
    status, body, query = await _push_own(served, "楼道灯坏了")
    assert status == 200, body
    fields = open_reply(body, query, box=BOX_B, token=TOKEN_B)  # signed and encrypted for 锦绣社区's account
    assert fields["Content"] == "您说：楼道灯坏了\n\n还有什么可以帮您？" and fields["ToUserName"] == OPENID_B
    await eventually(lambda: _resident(sqlite_url, OPENID_B) is not None)
    row = _resident(sqlite_url, OPENID_B)
    assert (row.community_key, row.wechat_appid) == ("jinxiu", APPID_B)
    # a resident of the shared account stays the default community's, with no account of their own
    assert (await served.reply_to(text_xml("你好")))
    await eventually(lambda: _resident(sqlite_url, OPENID) is not None)
    assert (_resident(sqlite_url, OPENID).community_key, _resident(sqlite_url, OPENID).wechat_appid) == (
        "default", None)


async def test_a_push_signed_with_the_shared_token_is_refused_at_a_communitys_url(served: ServedChannel) -> None:
    for mode in ("plain", "safe"):
        status, _body, _query = await _push_own(served, "你好", mode, token=TOKEN)
        assert status == 403
    assert served.assistant.turns == []


async def test_a_late_reply_goes_out_through_the_communitys_account(served: ServedChannel,
                                                                   fakes: Dict[str, FakeWeChatServer]) -> None:
    status, body, _query = await _push_own(served, "慢一点")
    assert (status, body) == (200, "success")
    await eventually(lambda: len(fakes["own"].fake.messages) == 1)
    assert fakes["own"].fake.messages[0].payload["touser"] == OPENID_B
    await asyncio.sleep(0.2)
    assert fakes["shared"].fake.messages == [] and fakes["shared"].fake.token_fetches == []


async def test_an_account_of_a_community_that_is_not_loaded_answers_503_with_why(
        fakes: Dict[str, FakeWeChatServer], sqlite_url: str) -> None:
    async with serve_channel(_channel(fakes, sqlite_url, community="jinxiu"), StubAssistant()) as server:
        status, body, _query = await _push_own(server, "你好")
        assert status == 503 and "not loaded" in body
        assert server.assistant.turns == []


async def test_a_community_loaded_after_start_up_is_served_without_a_restart(
        fakes: Dict[str, FakeWeChatServer], sqlite_url: str) -> None:
    channel = _channel(fakes, sqlite_url, community="jinxiu")
    async with serve_channel(channel, StubAssistant()) as server:
        assert (await _push_own(server, "你好"))[0] == 503
        _load_jinxiu(sqlite_url)
        # within the recheck interval the refusal stands (one lookup serves all the pushes in between) …
        assert (await _push_own(server, "你好"))[0] == 503
        # … after it, the community is looked up again and its resident is answered
        channel.recheck_seconds = 0.0
        status, body, query = await _push_own(server, "你好")
        assert status == 200, body
        assert open_reply(body, query, box=BOX_B, token=TOKEN_B)["Content"] == "您说：你好\n\n还有什么可以帮您？"
        assert len(server.assistant.turns) == 1


async def test_a_communitys_account_corrected_to_another_appid_is_refused_from_the_next_check(
        fakes: Dict[str, FakeWeChatServer], sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    _load_jinxiu(sqlite_url)
    channel = _channel(fakes, sqlite_url)
    channel.recheck_seconds = 0.0
    factory = make_session_factory(make_engine(sqlite_url))

    def name_account(appid: str) -> None:
        with unit_of_work(factory) as session:
            session.query(Community).filter_by(key="jinxiu").one().wechat_account = appid

    def check_logs() -> list:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("WeChat: community")]

    caplog.set_level(logging.INFO, logger="bot.channels.wechat")
    async with serve_channel(channel, StubAssistant()) as server:
        assert (await _push_own(server, "你好"))[0] == 200
        name_account("wxsomeoneelse0001")
        for _ in range(3):  # looked up again before each push, refused each time …
            status, body, _query = await _push_own(server, "你好")
            assert status == 503 and "wxsomeoneelse0001" in body
        assert len(server.assistant.turns) == 1
        # … but the lookup logs the reason once, when it changes, not every time it finds it unchanged
        assert len(check_logs()) == 1 and "wxsomeoneelse0001" in check_logs()[0]
        name_account(APPID_B)
        assert (await _push_own(server, "你好"))[0] == 200
        assert check_logs()[1:] == ["WeChat: community 'jinxiu' is served on its own account again"]


async def test_an_account_other_than_the_one_the_community_names_answers_503(
        fakes: Dict[str, FakeWeChatServer], sqlite_url: str) -> None:
    _load_jinxiu(sqlite_url, wechat_account="wxsomeoneelse0001")
    async with serve_channel(_channel(fakes, sqlite_url), StubAssistant()) as server:
        status, body, _query = await _push_own(server, "你好")
        assert status == 503 and "wxsomeoneelse0001" in body
        assert server.assistant.turns == []


def test_an_estate_once_given_decides_the_residents_community_not_the_account(sqlite_url: str) -> None:
    _load_jinxiu(sqlite_url)
    factory = make_session_factory(make_engine(sqlite_url))
    with unit_of_work(factory) as session:
        session.add(Resident(sender_id=OPENID_B, community="吉利花园", building=3, community_key="default"))
    residents.record_inbound(factory, OPENID_B, community_key="jinxiu", appid=APPID_B)
    row = _resident(sqlite_url, OPENID_B)
    assert (row.community_key, row.wechat_appid) == ("default", APPID_B)


async def test_ticket_updates_reach_each_resident_through_the_account_they_write_to(
        fakes: Dict[str, FakeWeChatServer], sqlite_url: str, tmp_path: Path) -> None:
    import aiohttp

    _load_jinxiu(sqlite_url)
    accounts = tmp_path / "wechat_accounts.yml"
    accounts.write_text(f"jinxiu:\n  token: {TOKEN_B}\n  appid: {APPID_B}\n  secret: {SECRET_B}\n"
                        f"  template_id: TPL-jinxiu\n  api_base: {fakes['own'].base_url}\n", encoding="utf-8")
    settings = Settings.from_env(env={
        "HG_VAR_DIR": str(tmp_path), "DATABASE_URL": sqlite_url, "WECHAT_APPID": APPID, "WECHAT_SECRET": SECRET,
        "WECHAT_API_BASE": fakes["shared"].base_url, "HG_WECHAT_ACCOUNTS": str(accounts),
        "HG_WECHAT_TEMPLATE_ID": "TPL-shared"})
    factory = make_session_factory(make_engine(sqlite_url))
    residents.record_inbound(factory, OPENID_B, community_key="jinxiu", appid=APPID_B)
    residents.record_inbound(factory, OPENID)
    with unit_of_work(factory) as session:  # a resident of an account no longer in the file
        session.add(Resident(sender_id="oGone-0001", wechat_appid="wxgone00000000001",
                             last_inbound_at=session.query(Resident).first().last_inbound_at))
    async with aiohttp.ClientSession() as http, resident_sender(settings, factory, http) as sender:
        assert sender is not None
        await sender.send(OPENID_B, {"text": "您的工单已受理（锦绣）"})
        await sender.send(OPENID, {"text": "您的工单已受理（共用）"})
        with pytest.raises(DeliveryError, match="wxgone00000000001") as refused:
            await sender.send("oGone-0001", {"text": "x"})
        assert refused.value.retryable is False
    assert [(c.payload["touser"], c.payload["text"]["content"]) for c in fakes["own"].fake.messages] == [
        (OPENID_B, "您的工单已受理（锦绣）")]
    assert [(c.payload["touser"], c.payload["text"]["content"]) for c in fakes["shared"].fake.messages] == [
        (OPENID, "您的工单已受理（共用）")]


async def test_a_new_follower_of_a_communitys_account_is_welcomed_by_that_community(served: ServedChannel) -> None:
    xml = message_xml("event", OPENID_B, to_user=ACCOUNT_B, Event="subscribe")
    query, body = envelope(xml, "safe", signed_query(TOKEN_B), box=BOX_B, token=TOKEN_B, to_user=ACCOUNT_B)
    async with served.http.post(served.url + "/jinxiu", params=query, data=body) as resp:
        assert resp.status == 200
        fields = open_reply(await resp.text(), query, box=BOX_B, token=TOKEN_B)
    assert fields["Content"] == messages.wechat_welcome("锦绣社区")
    shared = await served.reply_to(message_xml("event", Event="subscribe"))
    assert shared == messages.wechat_welcome("社区")  # the shared account: the (empty) deployment's first community

