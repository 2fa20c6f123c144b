"""The handoff inbox served for real: who may use it, the conversation from Rasa, replies, release, Rasa down."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator, Callable, Dict, List

import pytest
from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.services import accounts, handoff, residents
from bot.store.db import unit_of_work
from bot.store.models import Handoff, HandoffReply, Notification
from tests.console_kit import ServedConsole, serve_console
from tests.helpers import community_db

SECRET = "test-console-secret-0123456789"
OPENID = "oWX_inbox_resident"
REST_ID = "rest:inbox-7"


@dataclass
class FakeRasa:
    """Rasa's tracker and resume routes: events per sender, and the resumes it was sent."""

    events: Dict[str, List[dict]] = field(default_factory=dict)
    resumed: List[str] = field(default_factory=list)
    port: int = 0

    async def tracker(self, request: web.Request) -> web.Response:
        return web.json_response({"events": self.events.get(request.match_info["sender"], [])})

    async def append(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body == [{"event": "resume"}, {"event": "action", "name": "action_listen"}]
        self.resumed.append(request.match_info["sender"])
        return web.json_response({})


@pytest.fixture
async def rasa() -> AsyncIterator[FakeRasa]:
    """A fake Rasa HTTP API on a free port."""
    fake = FakeRasa()
    app = web.Application()
    app.router.add_get("/conversations/{sender}/tracker", fake.tracker)
    app.router.add_post("/conversations/{sender}/tracker/events", fake.append)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake
    await runner.cleanup()


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _settings(tmp_path: Path, url: str, rasa_port: int) -> Settings:
    return Settings.from_env({"DATABASE_URL": url, "HG_VAR_DIR": str(tmp_path), "HG_CONSOLE_SECRET": SECRET,
                              "HG_CONSOLE_BASE_URL": "http://console.test", "HG_RASA_PORT": str(rasa_port),
                              "HG_RASA_TOKEN": "rasa-test-token"})


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    """The demo community (every account on the demo password)."""
    return community_db(sqlite_url)


@pytest.fixture
async def console(tmp_path: Path, sqlite_url: str, factory: sessionmaker, rasa: FakeRasa,
                  clock: Callable[[], dt.datetime]) -> AsyncIterator[ServedConsole]:
    """The console talking to the fake Rasa."""
    async with serve_console(_settings(tmp_path, sqlite_url, rasa.port), factory, clock) as served:
        yield served


@pytest.fixture
async def console_rasa_down(tmp_path: Path, sqlite_url: str, factory: sessionmaker,
                            clock: Callable[[], dt.datetime]) -> AsyncIterator[ServedConsole]:
    """The console with Rasa's port closed."""
    async with serve_console(_settings(tmp_path, sqlite_url, _closed_port()), factory, clock) as served:
        yield served


def _open(factory: sessionmaker, sender: str, reason: str, at: dt.datetime) -> int:
    assert handoff.start(factory, sender, reason)
    with unit_of_work(factory) as session:
        row = session.query(Handoff).filter_by(sender_id=sender, released_at=None).one()
        row.started_at = at
        return row.id


def _event(kind: str, text: str, at: dt.datetime) -> dict:
    return {"event": kind, "text": text, "timestamp": at.replace(tzinfo=dt.timezone.utc).timestamp()}


def _replies(factory: sessionmaker) -> List[HandoffReply]:
    with unit_of_work(factory) as session:
        return session.query(HandoffReply).order_by(HandoffReply.id).all()


def _bearer(factory: sessionmaker, key: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {accounts.issue_api_token(factory, key)}"}


async def test_the_inbox_lists_waiting_residents_oldest_first_with_how_long_they_waited(
        console: ServedConsole, factory: sessionmaker, clock: Callable[[], dt.datetime]) -> None:
    with unit_of_work(factory) as session:
        residents.remember(session, OPENID, name="张阿姨", phone="13812345678")
    _open(factory, REST_ID, "转人工", clock() - dt.timedelta(minutes=3))
    _open(factory, OPENID, "我要找真人", clock() - dt.timedelta(hours=1, minutes=5))
    page = await (await console.signed_in("maguilan")).get("/handoffs")
    assert page.status == 200
    assert page.text.index("张阿姨") < page.text.index("inbox-7 (REST)")
    assert "138****5678" in page.text and "13812345678" not in page.text
    assert "已等待 1 小时 5 分钟" in page.text and "已等待 3 分钟" in page.text
    assert 'href="/static/handoff.css"' in page.text
    css = await console.browser().get("/static/handoff.css")
    assert css.status == 200 and ".conversation" in css.text


async def test_a_grid_member_is_refused_the_inbox_its_pages_and_the_api(
        console: ServedConsole, factory: sessionmaker, clock: Callable[[], dt.datetime]) -> None:
    hid = _open(factory, OPENID, "转人工", clock())
    browser = await console.signed_in("zhouming")
    token = await browser.csrf()
    assert (await browser.get("/handoffs")).status == 403
    assert (await browser.get(f"/handoffs/{hid}")).status == 403
    assert (await browser.post(f"/handoffs/{hid}/reply", {"csrf_token": token, "text": "您好"})).status == 403
    assert (await browser.post(f"/handoffs/{hid}/release", {"csrf_token": token})).status == 403
    auth = _bearer(factory, "zhouming")
    api = console.browser()
    assert (await api.get("/api/handoffs", headers=auth)).status == 403
    assert (await api.get(f"/api/handoffs/{hid}", headers=auth)).json()["code"] == "not_allowed"
    assert (await api.request("POST", f"/api/handoffs/{hid}/reply", headers=auth,
                              json_body={"text": "您好"})).status == 403
    assert (await api.request("POST", f"/api/handoffs/{hid}/release", headers=auth, json_body=None)).status == 403
    assert _replies(factory) == [] and handoff.active(factory, OPENID) is not None


async def test_an_unknown_handoff_is_404_on_the_page_and_the_api(console: ServedConsole, factory: sessionmaker) -> None:
    browser = await console.signed_in("maguilan")
    assert (await browser.get("/handoffs/424242")).status == 404
    token = await browser.csrf()
    assert (await browser.post("/handoffs/424242/reply", {"csrf_token": token, "text": "您好"})).status == 404
    reply = await console.browser().get("/api/handoffs/424242", headers=_bearer(factory, "admin"))
    assert reply.status == 404 and reply.json()["code"] == "not_found"


async def test_the_conversation_page_merges_rasa_turns_with_staff_replies_in_time_order(
        console: ServedConsole, factory: sessionmaker, rasa: FakeRasa, clock: Callable[[], dt.datetime]) -> None:
    t0 = clock() - dt.timedelta(minutes=10)
    hid = _open(factory, OPENID, "我要找真人，转人工", t0)
    handoff.reply(factory, hid, "gaohong", "您好，我是高红", t0 + dt.timedelta(minutes=2))
    with unit_of_work(factory) as session:
        note = session.query(Notification).filter_by(purpose="handoff_reply").one()
        note.status, note.last_error = "failed", "WeChat errcode 45015"
    rasa.events[OPENID] = [_event("user", "我要找真人，转人工", t0), _event("bot", "好的，已通知社区值班工作人员", t0),
                           _event("user", "你好？有人吗", t0 + dt.timedelta(minutes=1)),
                           _event("user", "我家停水了", t0 + dt.timedelta(minutes=3))]
    page = await (await console.signed_in("maguilan")).get(f"/handoffs/{hid}")
    assert page.status == 200
    order = [page.text.index(s) for s in ("好的，已通知", "你好？有人吗", "您好，我是高红", "我家停水了")]
    assert order == sorted(order)
    assert "社区书记高红" in page.text and "发送失败：WeChat errcode 45015" in page.text
    assert "对话记录暂时无法读取" not in page.text
    assert 'action="/handoffs/%d/reply"' % hid in page.text and "交还助手" in page.text


async def test_a_reply_from_the_page_is_queued_for_the_resident_and_shown_as_pending(
        console: ServedConsole, factory: sessionmaker, clock: Callable[[], dt.datetime]) -> None:
    hid = _open(factory, OPENID, "转人工", clock())
    browser = await console.signed_in("maguilan")
    token = (await browser.get(f"/handoffs/{hid}")).csrf_token()
    done = await browser.post(f"/handoffs/{hid}/reply", {"csrf_token": token, "text": "您好，请问有什么可以帮您？"})
    assert done.status == 303 and done.location.startswith(f"/handoffs/{hid}?sent=1#reply-")
    with unit_of_work(factory) as session:
        note = session.query(Notification).filter_by(purpose="handoff_reply").one()
        assert note.recipient == OPENID and note.payload["text"] == "社区值班人员马桂兰：您好，请问有什么可以帮您？"
    page = await browser.get(done.location.split("#")[0])
    assert "您好，请问有什么可以帮您？" in page.text and "发送中" in page.text and "回复已提交" in page.text


@pytest.mark.parametrize("token", [None, "forged"])
async def test_a_reply_without_the_sessions_csrf_token_is_refused_and_nothing_is_sent(
        console: ServedConsole, factory: sessionmaker, clock: Callable[[], dt.datetime], token: str) -> None:
    hid = _open(factory, OPENID, "转人工", clock())
    browser = await console.signed_in("maguilan")
    form = {"text": "您好"} if token is None else {"text": "您好", "csrf_token": token}
    assert (await browser.post(f"/handoffs/{hid}/reply", form)).status == 403
    assert (await browser.post(f"/handoffs/{hid}/release", {k: v for k, v in form.items() if k != "text"})).status == 403
    assert _replies(factory) == [] and handoff.active(factory, OPENID) is not None


async def test_an_empty_reply_comes_back_with_a_reason_and_a_rest_resident_cannot_be_answered(
        console: ServedConsole, factory: sessionmaker, clock: Callable[[], dt.datetime]) -> None:
    hid = _open(factory, OPENID, "转人工", clock())
    rest = _open(factory, REST_ID, "转人工", clock())
    browser = await console.signed_in("maguilan")
    token = await browser.csrf()
    empty = await browser.post(f"/handoffs/{hid}/reply", {"csrf_token": token, "text": "   "})
    assert empty.status == 400 and "请填写回复内容" in empty.text
    long = await browser.post(f"/handoffs/{hid}/reply", {"csrf_token": token, "text": "字" * 601})
    assert long.status == 400 and "最多 600 个字" in long.text and "字" * 601 in long.text  # the draft is kept
    page = await browser.get(f"/handoffs/{rest}")
    assert "工作台无法给他发消息" in page.text and f'action="/handoffs/{rest}/reply"' not in page.text
    refused = await browser.post(f"/handoffs/{rest}/reply", {"csrf_token": token, "text": "您好"})
    assert refused.status == 400 and "工作台无法给他发消息" in refused.text
    api = await console.browser().request("POST", f"/api/handoffs/{rest}/reply", headers=_bearer(factory, "admin"),
                                          json_body={"text": "您好"})
    assert api.status == 400 and "cannot be messaged" in api.json()["detail"]
    assert _replies(factory) == []


async def test_handing_back_releases_resumes_rasa_and_returns_to_the_inbox_with_a_success_line(
        console: ServedConsole, factory: sessionmaker, rasa: FakeRasa, clock: Callable[[], dt.datetime]) -> None:
    with unit_of_work(factory) as session:
        residents.remember(session, OPENID, name="张阿姨")
    hid = _open(factory, OPENID, "转人工", clock())
    browser = await console.signed_in("maguilan")
    done = await browser.post(f"/handoffs/{hid}/release", {"csrf_token": await browser.csrf()})
    assert done.status == 303 and done.location == f"/handoffs?released={hid}"
    assert rasa.resumed == [OPENID] and handoff.active(factory, OPENID) is None
    inbox = await browser.get(done.location)
    assert "已交还助手：张阿姨。" in inbox.text and "现在没有等待人工回复的居民" in inbox.text
    page = await browser.get(f"/handoffs/{hid}")
    assert "由 值班人员马桂兰 交还助手" in page.text and f'action="/handoffs/{hid}/reply"' not in page.text
    again = await browser.post(f"/handoffs/{hid}/reply", {"csrf_token": await browser.csrf(), "text": "还在吗"})
    assert again.status == 409 and _replies(factory) == []


async def test_with_rasa_down_the_page_still_shows_the_replies_and_a_release_says_the_resume_failed(
        console_rasa_down: ServedConsole, factory: sessionmaker, clock: Callable[[], dt.datetime]) -> None:
    console = console_rasa_down
    hid = _open(factory, OPENID, "转人工", clock())
    handoff.reply(factory, hid, "maguilan", "您好，我是马桂兰", clock())
    browser = await console.signed_in("maguilan")
    page = await browser.get(f"/handoffs/{hid}")
    assert page.status == 200 and "对话记录暂时无法读取" in page.text and "您好，我是马桂兰" in page.text
    done = await browser.post(f"/handoffs/{hid}/release", {"csrf_token": page.csrf_token()})
    assert done.status == 200 and "助手暂时没有接管这段对话" in done.text and "重新交还助手" in done.text
    assert handoff.active(factory, OPENID) is None  # released in the database all the same
    retry = await browser.post(f"/handoffs/{hid}/release", {"csrf_token": page.csrf_token()})
    assert retry.status == 200 and "重新交还助手" in retry.text
    api = await console.browser().request("POST", f"/api/handoffs/{hid}/release", headers=_bearer(factory, "admin"),
                                          json_body=None)
    body = api.json()
    assert api.status == 200 and body["released"] and not body["resumed"] and not body["closed_now"]
    assert "unreachable" in body["resume_error"]
    detail = (await console.browser().get(f"/api/handoffs/{hid}", headers=_bearer(factory, "admin"))).json()
    assert detail["conversation"] is None and [r["text"] for r in detail["reply_list"]] == ["您好，我是马桂兰"]


async def test_the_api_lists_shows_answers_and_releases_a_handoff(
        console: ServedConsole, factory: sessionmaker, rasa: FakeRasa, clock: Callable[[], dt.datetime]) -> None:
    hid = _open(factory, OPENID, "转人工", clock() - dt.timedelta(minutes=5))
    rasa.events[OPENID] = [_event("user", "你好？有人吗", clock() - dt.timedelta(minutes=4))]
    auth = _bearer(factory, "maguilan")
    api = console.browser()
    listed = (await api.get("/api/handoffs", headers=auth)).json()["handoffs"]
    assert [(h["id"], h["sender_id"], h["can_message"]) for h in listed] == [(hid, OPENID, True)]
    sent = await api.request("POST", f"/api/handoffs/{hid}/reply", headers=auth, json_body={"text": "您好"})
    assert sent.status == 201 and sent.json()["status"] == "pending" and sent.json()["staff_label"] == "值班人员马桂兰"
    too_long = await api.request("POST", f"/api/handoffs/{hid}/reply", headers=auth, json_body={"text": "字" * 601})
    assert too_long.status == 400 and too_long.json()["field"] == "text"
    shown = (await api.get(f"/api/handoffs/{hid}", headers=auth)).json()
    assert shown["open"] and [t["text"] for t in shown["conversation"]] == ["你好？有人吗"]
    assert [r["text"] for r in shown["reply_list"]] == ["您好"]
    released = (await api.request("POST", f"/api/handoffs/{hid}/release", headers=auth, json_body=None)).json()
    assert released["resumed"] and released["closed_now"] and rasa.resumed == [OPENID]
    assert (await api.get("/api/handoffs", headers=auth)).json()["handoffs"] == []
    spec = (await api.get("/api/openapi.json")).json()
    assert {"/api/handoffs", "/api/handoffs/{id}", "/api/handoffs/{id}/reply",
            "/api/handoffs/{id}/release"} <= set(spec["paths"])
