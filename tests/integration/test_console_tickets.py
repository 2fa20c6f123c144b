"""The grid worker's queue and ticket page, served for real: order, filters, overdue, actions, conflicts, the API."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List

import pytest
from aiohttp import web
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.config import Settings
from bot.services import accounts
from bot.services.tickets import TicketRequest, open_ticket
from bot.store.db import unit_of_work
from bot.store.models import Attachment, Notification, Ticket
from tests.console_kit import ServedConsole, serve_console
from tests.helpers import community_db

SECRET = "test-console-secret-0123456789"
SENDER = "rest:resident-queue"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeRasa:
    """Rasa's tracker endpoint for one conversation (the turns are set by the test)."""

    def __init__(self) -> None:
        self.events: List[Dict[str, Any]] = []
        self.asked: List[str] = []

    async def tracker(self, request: web.Request) -> web.Response:
        """GET /conversations/{sid}/tracker."""
        self.asked.append(request.match_info["sid"])
        return web.json_response({"events": self.events})


@pytest.fixture
async def rasa() -> AsyncIterator[tuple]:
    """A fake Rasa server on a free port."""
    fake = FakeRasa()
    app = web.Application()
    app.router.add_get("/conversations/{sid}/tracker", fake.tracker)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield fake, port
    await runner.cleanup()


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    """The demo community."""
    return community_db(sqlite_url)


def _settings(tmp_path: Path, sqlite_url: str, rasa_port: int) -> Settings:
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path), "HG_CONSOLE_SECRET": SECRET,
                              "HG_CONSOLE_BASE_URL": "http://console.test", "HG_RASA_PORT": str(rasa_port)})


@pytest.fixture
async def console(tmp_path: Path, sqlite_url: str, factory: sessionmaker, clock, rasa) -> AsyncIterator[ServedConsole]:
    """The console, talking to the fake Rasa."""
    async with serve_console(_settings(tmp_path, sqlite_url, rasa[1]), factory, clock) as served:
        yield served


def _open(factory: sessionmaker, clock, kind: str, description: str, building: int, minutes_ago: float,
          sender: str = SENDER, community: str = "吉利花园") -> str:
    return open_ticket(factory, TicketRequest(kind=kind, sender_id=sender, description=description,
                                              address=Address(community, building, 1, 101), contact_name="张阿姨",
                                              contact_phone="13812345678"),
                       now=clock() - dt.timedelta(minutes=minutes_ago)).number


def _order(page_text: str, numbers: List[str]) -> List[str]:
    return sorted((n for n in numbers if f'data-number="{n}"' in page_text),
                  key=lambda n: page_text.index(f'data-number="{n}"'))


async def test_the_queue_lists_urgent_tickets_first_and_newest_first_within_each(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    old_repair = _open(factory, clock, "repair", "楼道灯坏了", 2, 50)
    old_leak = _open(factory, clock, "leak", "厨房漏水", 3, 40)
    new_repair = _open(factory, clock, "repair", "单元门坏了", 4, 30)
    new_leak = _open(factory, clock, "leak", "阳台漏水", 5, 20)
    page = await (await console.signed_in("zhouming")).get("/")
    assert page.status == 200
    assert _order(page.text, [old_repair, old_leak, new_repair, new_leak]) == [new_leak, old_leak, new_repair,
                                                                               old_repair]
    assert "漏水报修" in page.text and "吉利花园3号楼1单元101室" in page.text and "待受理" in page.text
    assert "13812345678" not in page.text


async def test_the_queue_filters_by_state_type_urgency_and_mine(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    repair = _open(factory, clock, "repair", "楼道灯坏了", 2, 10)
    leak = _open(factory, clock, "leak", "厨房漏水", 3, 5)
    browser = await console.signed_in("zhouming")
    token = (await browser.get(f"/tickets/{leak}")).csrf_token()
    assert (await browser.post(f"/tickets/{leak}/accept", {"csrf_token": token})).status == 303
    both = [repair, leak]
    assert _order((await browser.get("/?type=repair")).text, both) == [repair]
    assert _order((await browser.get("/?urgency=urgent")).text, both) == [leak]
    assert _order((await browser.get("/?state=open")).text, both) == [repair]
    assert _order((await browser.get("/?mine=1")).text, both) == [leak]
    assert _order((await browser.get("/?state=assigned&mine=1")).text, both) == [leak]
    assert _order((await browser.get("/?state=closed")).text, both) == []


@pytest.mark.parametrize("query", ["state=done", "type=leaks", "urgency=high", "mine=maybe"])
async def test_an_invalid_filter_is_a_400_page_naming_the_filter(console: ServedConsole, query: str) -> None:
    page = await (await console.signed_in("zhouming")).get(f"/?{query}")
    assert page.status == 400
    assert query.split("=")[0] in page.text and "有误" in page.text


async def test_overdue_tickets_are_highlighted(console: ServedConsole, factory: sessionmaker, clock) -> None:
    late_leak = _open(factory, clock, "leak", "厨房漏水", 3, 16)  # nobody accepted it within 15 minutes
    fresh_leak = _open(factory, clock, "leak", "阳台漏水", 5, 5)
    fresh_repair = _open(factory, clock, "repair", "楼道灯坏了", 2, 60)  # 24 hours to accept a normal one
    with unit_of_work(factory) as session:  # accepted, but past its deadline
        past_due = session.query(Ticket).filter_by(number=fresh_repair).one()
        past_due.status, past_due.due_at = "assigned", clock() - dt.timedelta(minutes=1)
    page = (await (await console.signed_in("zhouming")).get("/")).text

    def classes(number: str) -> str:
        start = page.rindex("<li", 0, page.index(f'data-number="{number}"'))
        return page[start:page.index(">", start)]

    assert "overdue" in classes(late_leak) and "overdue" in classes(fresh_repair)
    assert "overdue" not in classes(fresh_leak)


async def test_more_than_a_hundred_matching_tickets_show_a_hundred_and_say_so(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    first = _open(factory, clock, "repair", "楼道灯坏了", 2, 200)
    with unit_of_work(factory) as session:
        template = session.query(Ticket).filter_by(number=first).one()
        grid_id = template.grid_id
        for i in range(101):
            session.add(Ticket(number=f"HG-20200101-{i:04d}", kind="repair", priority="normal", status="open",
                               sender_id=SENDER, community="吉利花园", building=2, description="批量", grid_id=grid_id,
                               created_at=clock() - dt.timedelta(minutes=i), updated_at=clock()))
    page = await (await console.signed_in("zhouming")).get("/")
    assert page.text.count('data-number="') == 100
    assert "共有 102 张工单符合条件" in page.text


async def test_the_ticket_page_shows_the_conversation_photos_full_contact_history_and_failed_messages(
        console: ServedConsole, factory: sessionmaker, clock, rasa) -> None:
    fake, _ = rasa
    number = _open(factory, clock, "leak", "洗衣机下水管堵了，阳台都是水", 3, 5, sender="wx-openid-abc")
    created = clock() - dt.timedelta(minutes=5)
    at = lambda seconds: (created + dt.timedelta(seconds=seconds)).replace(tzinfo=dt.timezone.utc).timestamp()  # noqa: E731
    fake.events = [{"event": "user", "text": "洗衣机下水管堵了，阳台都是水", "timestamp": at(-60)},
                   {"event": "bot", "text": "请告诉我地址", "timestamp": at(-50)},
                   {"event": "user", "text": "后来的一句话", "timestamp": at(600)}]
    with unit_of_work(factory) as session:
        ticket = session.query(Ticket).filter_by(number=number).one()
        session.add(Attachment(sender_id="wx-openid-abc", ticket_id=ticket.id, url="https://img.example/leak.jpg"))
        session.add(Notification(channel="wechat", recipient="wx-openid-abc", purpose="resident_assigned",
                                 payload={}, ticket_id=ticket.id, status="failed", attempts=3,
                                 last_error="errcode 45015: response out of time limit"))
    page = await (await console.signed_in("zhouming")).get(f"/tickets/{number}")
    assert page.status == 200
    assert fake.asked == ["wx-openid-abc"]
    assert "请告诉我地址" in page.text and "后来的一句话" not in page.text  # only up to a minute after it opened
    assert '<img src="https://img.example/leak.jpg"' in page.text
    assert 'href="tel:13812345678"' in page.text and "张阿姨" in page.text
    assert "45015" in page.text and "发送失败" in page.text
    assert "待受理" in page.text and "居民" in page.text  # the opening event


@pytest.mark.parametrize("sender", ["wx-openid-abc", "rest:has space"])
async def test_the_ticket_page_says_the_conversation_is_unreadable_when_rasa_is_down_or_the_id_unaddressable(
        tmp_path: Path, sqlite_url: str, factory: sessionmaker, clock, sender: str) -> None:
    number = _open(factory, clock, "repair", "楼道灯坏了", 2, 5, sender=sender)
    async with serve_console(_settings(tmp_path, sqlite_url, _free_port()), factory, clock) as console:
        page = await (await console.signed_in("zhouming")).get(f"/tickets/{number}")
    assert page.status == 200 and "对话记录暂时无法读取" in page.text


async def test_a_worker_accepts_starts_and_resolves_with_only_the_allowed_forms_shown(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    number = _open(factory, clock, "leak", "厨房漏水", 3, 5)
    browser = await console.signed_in("zhouming")
    page = await browser.get(f"/tickets/{number}")
    assert f'action="/tickets/{number}/accept"' in page.text and "预计上门时间" in page.text
    assert f'action="/tickets/{number}/assign"' not in page.text  # a grid member hands out nothing
    assert f'action="/tickets/{number}/start"' not in page.text
    token = page.csrf_token()
    done = await browser.post(f"/tickets/{number}/accept", {"csrf_token": token, "eta": "今天下午3点"})
    assert done.status == 303 and done.location == f"/tickets/{number}?done=accept"
    page = await browser.get(done.location)
    assert "已接单" in page.text and f'action="/tickets/{number}/start"' in page.text
    assert f'action="/tickets/{number}/accept"' not in page.text
    assert (await browser.post(f"/tickets/{number}/start", {"csrf_token": token})).status == 303
    missing = await browser.post(f"/tickets/{number}/resolve", {"csrf_token": token, "note": "  "})
    assert missing.status == 400 and "处理结果" in missing.text
    resolved = await browser.post(f"/tickets/{number}/resolve", {"csrf_token": token, "note": "疏通了下水管"})
    assert resolved.status == 303
    page = await browser.get(resolved.location)
    assert "已办结" in page.text and "疏通了下水管" in page.text and "处理中 → 已办结" in page.text
    with factory() as session:
        assert session.query(Ticket).filter_by(number=number).one().status == "resolved"


async def test_the_second_of_two_workers_accepting_gets_a_409_saying_it_was_taken(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    number = _open(factory, clock, "leak", "厨房漏水", 3, 5)
    first, second = await console.signed_in("zhouming"), await console.signed_in("wangjianguo")
    first_token = (await first.get(f"/tickets/{number}")).csrf_token()
    second_token = (await second.get(f"/tickets/{number}")).csrf_token()  # both saw the accept button
    assert (await first.post(f"/tickets/{number}/accept", {"csrf_token": first_token})).status == 303
    late = await second.post(f"/tickets/{number}/accept", {"csrf_token": second_token})
    assert late.status == 409 and "工单已被接单" in late.text and "周明" in late.text


async def test_a_leader_assigns_from_the_assignable_list_and_reassigning_needs_a_reason(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    number = _open(factory, clock, "repair", "楼道灯坏了", 2, 5)
    browser = await console.signed_in("wangjianguo")
    page = await browser.get(f"/tickets/{number}")
    assert '<option value="zhouming">网格员周明</option>' in page.text
    assert 'value="wuxia"' not in page.text  # another grid's member
    token = page.csrf_token()
    assert (await browser.post(f"/tickets/{number}/assign", {"csrf_token": token, "assignee": "wuxia"})).status == 400
    assert (await browser.post(f"/tickets/{number}/assign", {"csrf_token": token, "assignee": "zhouming"})).status == 303
    no_reason = await browser.post(f"/tickets/{number}/reassign", {"csrf_token": token, "assignee": "chenjing"})
    assert no_reason.status == 400 and "转派原因" in no_reason.text
    moved = await browser.post(f"/tickets/{number}/reassign", {"csrf_token": token, "assignee": "chenjing",
                                                              "note": "需要物业处理"})
    assert moved.status == 303
    assert "陈静" in (await browser.get(f"/tickets/{number}")).text


async def test_the_handoff_link_shows_only_for_the_roles_that_handle_handoffs(console: ServedConsole) -> None:
    assert 'href="/handoffs"' in (await (await console.signed_in("maguilan")).get("/")).text
    assert 'href="/handoffs"' not in (await (await console.signed_in("zhouming")).get("/")).text


async def test_the_ticket_api_lists_details_and_acts_with_the_same_rules(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    number = _open(factory, clock, "leak", "厨房漏水", 3, 5)
    browser = console.browser()
    auth = {"Authorization": f"Bearer {accounts.issue_api_token(factory, 'zhouming')}"}
    listed = await browser.get("/api/tickets?urgency=urgent", headers=auth)
    assert listed.status == 200 and [t["number"] for t in listed.json()["tickets"]] == [number]
    assert listed.json()["tickets"][0]["contact_phone"] == "138****5678"
    assert (await browser.get("/api/tickets?state=bogus", headers=auth)).json()["field"] == "state"
    detail = (await browser.get(f"/api/tickets/{number}", headers=auth)).json()
    assert detail["allowed_actions"] == ["accept", "note"] and detail["contact_phone"] == "13812345678"
    assert detail["events"][0]["to"] == "待受理"
    accepted = await browser.request("POST", f"/api/tickets/{number}/actions/accept", headers=auth,
                                     json_body={"eta": "半小时内"})
    assert accepted.status == 200
    assert accepted.json() == {"number": number, "action": "accept", "from_status": "open", "status": "assigned",
                               "assignee": "zhouming"}
    again = await browser.request("POST", f"/api/tickets/{number}/actions/accept", headers=auth, json_body={})
    assert again.status == 409 and again.json()["code"] == "illegal_transition"
    bad = await browser.request("POST", f"/api/tickets/{number}/actions/resolve", headers=auth, json_body={"x": 1})
    assert bad.status == 400 and bad.json()["field"] == "x"
    unknown = await browser.request("POST", f"/api/tickets/{number}/actions/fly", headers=auth, json_body={})
    assert unknown.status == 400 and unknown.json()["field"] == "action"
    doc = (await browser.get("/api/openapi.json")).json()
    assert {"/api/tickets", "/api/tickets/{number}", "/api/tickets/{number}/actions/{action}"} <= set(doc["paths"])
    assert "409" in doc["paths"]["/api/tickets/{number}/actions/{action}"]["post"]["responses"]
