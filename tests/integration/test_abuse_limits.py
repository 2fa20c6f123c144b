"""Abuse limits: a cap on the tickets one resident may have open at once, answered politely, nothing half-written."""

from __future__ import annotations

import re

import pytest

from actions import deps
from actions.tickets import ActionSubmitFeedback
from bot import messages
from bot.errors import LimitReached
from bot.services import tickets
from bot.services.lifecycle import Context
from bot.store.db import unit_of_work
from bot.store.models import Notification, Resident, Ticket
from tests.helpers import tracker, use_deps
from tests.integration.test_actions import _submit_leak


@pytest.fixture
def d(database_url, tmp_path):
    yield use_deps(database_url, tmp_path)
    deps.use(None)


def _counts(d) -> tuple:
    with unit_of_work(d.sessions) as s:
        return s.query(Ticket).count(), s.query(Notification).count(), s.query(Resident).count()


async def test_a_resident_with_five_open_tickets_is_told_which_and_gets_no_sixth(d) -> None:
    numbers = []
    for _ in range(5):
        numbers += re.findall(r"HG-\d{8}-\d{4}", await _submit_leak(sender="busy-1"))
    assert len(set(numbers)) == 5
    before = _counts(d)
    reply = await _submit_leak(sender="busy-1")
    assert reply == messages.too_many_open_tickets(numbers)
    assert "5张工单正在处理中" in reply and all(n in reply for n in numbers)
    assert _counts(d) == before  # no ticket, no card, nothing else written
    dispatcher_reply = await _feedback("busy-1", "小区路灯坏了好几天了")
    assert dispatcher_reply == messages.too_many_open_tickets(numbers)
    assert "HG-" in await _submit_leak(sender="other-resident")  # the cap is per resident


async def test_a_finished_ticket_frees_a_place_under_the_cap(d) -> None:
    for _ in range(5):
        await _submit_leak(sender="busy-2")
    with unit_of_work(d.sessions) as s:
        first = s.query(Ticket).filter_by(sender_id="busy-2").order_by(Ticket.id).first()
        number = first.number
    tickets.cancel(d.sessions, "busy-2", number)
    assert re.search(r"HG-\d{8}-\d{4}", await _submit_leak(sender="busy-2"))


def test_the_cap_is_a_setting_and_zero_switches_it_off(d) -> None:
    request = tickets.TicketRequest(kind="feedback", sender_id="busy-3", description="建议多装几个路灯")
    capped, uncapped = Context(max_open_tickets=2), Context(max_open_tickets=0)
    for _ in range(2):
        tickets.open_ticket(d.sessions, request, ctx=capped)
    with pytest.raises(LimitReached) as raised:
        tickets.open_ticket(d.sessions, request, ctx=capped)
    assert len(raised.value.data["numbers"]) == 2
    for _ in range(3):
        tickets.open_ticket(d.sessions, request, ctx=uncapped)


async def _feedback(sender: str, text: str) -> str:
    from rasa_sdk.executor import CollectingDispatcher

    dispatcher = CollectingDispatcher()
    await ActionSubmitFeedback().run(dispatcher, tracker(text, sender=sender), {})
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)
