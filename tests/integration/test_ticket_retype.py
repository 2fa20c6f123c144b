"""A lead corrects a ticket the assistant filed under the wrong kind; the review export then flags the message that
asked for it, so an admin can teach the assistant."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.config import Settings
from bot.errors import InvalidInput, NotAllowed
from bot.services import lifecycle, tickets, transcripts
from bot.store.db import unit_of_work
from bot.store.models import Ticket, TicketEvent
from tests.console_kit import serve_console
from tests.helpers import community_db
from tests.integration.test_transcripts import START, Conversation, _store

SENDER = "wx:retype"


@pytest.fixture
def factory(database_url: str) -> sessionmaker:
    return community_db(database_url)


def _open(factory: sessionmaker, at: dt.datetime = START) -> str:
    request = tickets.TicketRequest(kind="leak", sender_id=SENDER, description="楼道的灯坏了，晚上黑乎乎的",
                                    address=Address("吉利花园", 3, 2, 501))
    return tickets.open_ticket(factory, request, now=at).number


def _state(factory: sessionmaker, number: str):
    with unit_of_work(factory) as s:
        t = s.query(Ticket).filter_by(number=number).one()
        events = [(e.kind, e.detail) for e in s.query(TicketEvent).filter_by(ticket_id=t.id).order_by(TicketEvent.id)]
        return t.kind, t.priority, t.status, events


def test_a_lead_retypes_a_ticket_and_only_the_kind_and_priority_change(factory) -> None:
    number = _open(factory)
    assert _state(factory, number)[:3] == ("leak", "urgent", "open")
    with pytest.raises(NotAllowed):
        lifecycle.perform(factory, "zhouming", number, "retype", kind="repair")  # a grid member is no lead
    with pytest.raises(InvalidInput):
        lifecycle.perform(factory, "wangjianguo", number, "retype", kind="pizza")
    with pytest.raises(InvalidInput):
        lifecycle.perform(factory, "wangjianguo", number, "retype", kind="leak")  # already a leak
    outcome = lifecycle.perform(factory, "wangjianguo", number, "retype", kind="repair", note="是楼道灯，不是漏水")
    assert (outcome.from_status, outcome.status) == ("open", "open")
    kind, priority, status, events = _state(factory, number)
    assert (kind, priority, status) == ("repair", "normal", "open")
    assert events[-1] == ("retype", "类型：漏水报修 → 设施报修（是楼道灯，不是漏水）")


def test_the_review_export_flags_the_message_behind_a_retyped_ticket(factory, tmp_path) -> None:
    conversation = (Conversation(SENDER)
                    .says("楼道的灯坏了，晚上黑乎乎的", "report_leak", 0.62).bot("utter_leak_safety", "leak_form",
                                                                           "loop:leak_form")
                    .says("吉利花园3号楼2单元501", "inform").bot("leak_form", "loop:", "action_submit_ticket"))
    url = _store([conversation], tmp_path / "tracker.db")
    opened = dt.datetime.utcfromtimestamp(conversation.t)
    number = _open(factory, opened)
    report = transcripts.export(url, factory, START - dt.timedelta(hours=1))
    assert report["flags"]["retyped"] == 0
    lifecycle.perform(factory, "wangjianguo", number, "retype", kind="repair")
    report = transcripts.export(url, factory, START - dt.timedelta(hours=1))
    assert report["flags"]["retyped"] == 1
    assert report["groups"][0]["text"] == "楼道的灯坏了，晚上黑乎乎的" and report["groups"][0]["suggestion"] == "report_leak"


async def test_the_console_offers_retype_to_a_lead_and_applies_it(tmp_path, sqlite_url, clock) -> None:
    factory = community_db(sqlite_url)
    number = _open(factory, clock.now - dt.timedelta(minutes=5))
    settings = Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                                  "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})
    async with serve_console(settings, factory, clock) as console:
        leader = console.browser()
        assert (await leader.login("wangjianguo")).status == 303
        page = await leader.get(f"/tickets/{number}")
        assert 'action="/tickets/' + number + '/retype"' in page.text and '<option value="repair">' in page.text
        csrf = page.csrf_token()
        missing = await leader.post(f"/tickets/{number}/retype", {"csrf_token": csrf, "kind": ""})
        assert missing.status == 400 and "新类型" in missing.text
        done = await leader.post(f"/tickets/{number}/retype", {"csrf_token": csrf, "kind": "repair"})
        assert done.status == 303 and done.location.endswith("?done=retype")
        assert "设施报修" in (await leader.get(done.location)).text
        member = console.browser()
        assert (await member.login("zhouming")).status == 303
        assert '/retype"' not in (await member.get(f"/tickets/{number}")).text
    assert _state(factory, number)[0] == "repair"
