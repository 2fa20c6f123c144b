"""A correction right after a ticket was opened ("不对，是8号楼"): the ticket, its grid, its cards and the resident's
profile follow the corrected address; anything else outside a form gets the usual reply and changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Dict, List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import sessionmaker

from actions import deps
from actions.corrections import ActionCorrectTicket
from actions.tickets import ActionSubmitTicket
from bot import lifecycle as lc
from bot import messages
from bot.address import Address
from bot.errors import InvalidInput, InvalidState, NotFound
from bot.services import lifecycle, residents, tickets
from bot.store.db import unit_of_work
from bot.store.models import Notification, Ticket, TicketEvent
from tests.helpers import tracker, use_deps

NOON = dt.datetime(2026, 11, 28, 4, 0)  # 12:00 in Tianjin
SLOTS = {"address": "吉利花园3号楼2单元501室", "phone": "13812345678", "use_profile": None,
         "description": "洗衣机下水管堵了，阳台都是水"}
SENDER = "resident-c"


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(database_url, tmp_path):
    c = Clock(NOON)
    d = use_deps(database_url, tmp_path, now=NOON)
    deps.use(deps.Deps(settings=d.settings, sessions=d.sessions, now=c))
    yield c
    deps.use(None)


def _texts(dispatcher: CollectingDispatcher) -> str:
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)


async def _open_leak() -> str:
    dispatcher = CollectingDispatcher()
    await ActionSubmitTicket().run(dispatcher, tracker(SLOTS["description"], sender=SENDER, slots=SLOTS,
                                                       active_loop="leak_form"), {})
    number = tickets.find_ticket_number(_texts(dispatcher))
    assert number
    return number


async def _say(text: str, intent: str = "deny") -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    await ActionCorrectTicket().run(dispatcher, tracker(text, intent=intent, sender=SENDER), {})
    return dispatcher


def _factory() -> sessionmaker:
    return deps.get().sessions


def _ticket(number: str) -> Ticket:
    with unit_of_work(_factory()) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        s.expunge(ticket)
        return ticket


def _cards(number: str) -> Dict[str, List[str]]:
    """purpose:group key -> contents, for one ticket, in the order queued."""
    out: Dict[str, List[str]] = {}
    with unit_of_work(_factory()) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        for n in s.query(Notification).filter_by(ticket_id=ticket.id).order_by(Notification.id):
            out.setdefault(f"{n.purpose}:{n.group.key if n.group else '-'}", []).append(
                n.payload["markdown"]["content"])
    return out


def _grid(number: str) -> Optional[str]:
    with unit_of_work(_factory()) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        return ticket.grid.name if ticket.grid else None


async def test_a_building_corrected_right_after_the_ticket_moves_it_to_the_new_grid_and_tells_everyone(clock) -> None:
    number = await _open_leak()
    assert _grid(number) == "第一网格"
    before = _cards(number)
    assert set(before) == {"new_ticket:jili-property", "new_ticket:grid-1", "pause_water:building-jili-3"}

    clock.now = NOON + dt.timedelta(minutes=3)
    reply = _texts(await _say("不对，是8号楼"))

    ticket = _ticket(number)
    assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("吉利花园", 8, 2, 501)
    assert _grid(number) == "第二网格"
    after = _cards(number)
    # Every group that had a card hears of the correction; the new grid and the new building are told afresh.
    corrected = [k for k in after if k.startswith("address_corrected:")]
    assert sorted(corrected) == sorted(["address_corrected:grid-1", "address_corrected:building-jili-3",
                                        "address_corrected:jili-property"])
    card = after["address_corrected:grid-1"][0]
    assert "吉利花园3号楼2单元501" in card and "吉利花园8号楼2单元501" in card and "第二网格" in card
    assert "吉利花园8号楼2单元501" in after["new_ticket:grid-2"][0]
    assert "pause_water:building-jili-8" in after
    assert len(after["new_ticket:jili-property"]) == 1  # the property group had the ticket: not sent twice
    assert number in reply and "吉利花园8号楼2单元501" in reply and "第二网格工作群" in reply
    with unit_of_work(_factory()) as s:
        events = [(e.kind, e.detail) for e in s.query(TicketEvent).filter_by(ticket_id=ticket.id)
                  .order_by(TicketEvent.id)]
    assert ("corrected", "地址：吉利花园3号楼2单元501室 → 吉利花园8号楼2单元501室") in events
    profile = residents.profile(_factory(), SENDER)
    assert profile is not None and profile.address == Address("吉利花园", 8, 2, 501)


async def test_a_room_corrected_by_saying_which_part_was_wrong(clock) -> None:
    number = await _open_leak()
    reply = _texts(await _say("错了，是502不是501", intent="inform"))
    ticket = _ticket(number)
    assert (ticket.building, ticket.unit, ticket.room) == (3, 2, 502)
    assert _grid(number) == "第一网格"
    cards = _cards(number)
    assert "new_ticket:grid-2" not in cards and len(cards["new_ticket:grid-1"]) == 1
    assert "address_corrected:grid-1" in cards and "502" in reply


async def test_too_late_or_not_a_correction_gets_the_usual_reply_and_changes_nothing(clock) -> None:
    number = await _open_leak()
    cards = _cards(number)
    plain = await _say("8号楼", intent="inform")  # no sign of a correction
    assert plain.messages[0].get("text") == messages.INFORM_WITHOUT_CONTEXT
    clock.now = NOON + dt.timedelta(hours=3)
    late = await _say("不对，是8号楼")
    assert late.messages[0].get("response") == "utter_anything_else"
    assert _ticket(number).building == 3 and _cards(number) == cards


async def test_a_corrected_address_that_is_no_home_here_is_refused_with_a_reason(clock) -> None:
    number = await _open_leak()
    cards = _cards(number)
    reply = _texts(await _say("不对，是30号楼"))
    assert "没有改" in reply and "30号楼" in reply
    same = _texts(await _say("不对，是3号楼"))
    assert "不用改" in same
    assert _ticket(number).building == 3 and _cards(number) == cards


async def test_the_service_refuses_someone_elses_ticket_work_in_progress_and_no_change(clock) -> None:
    number = await _open_leak()
    factory = _factory()
    with pytest.raises(NotFound):
        tickets.correct_address(factory, "someone-else", number, Address("吉利花园", 8, 2, 501), NOON)
    with pytest.raises(InvalidInput):
        tickets.correct_address(factory, SENDER, number, Address("吉利花园", 3, 2, 501), NOON)
    with pytest.raises(InvalidInput):
        tickets.correct_address(factory, SENDER, number, Address("吉利花园", 30, 2, 501), NOON)
    lifecycle.perform(factory, "wangjianguo", number, "accept", now=NOON)
    lifecycle.perform(factory, "wangjianguo", number, "start", now=NOON)
    with pytest.raises(InvalidState):
        tickets.correct_address(factory, SENDER, number, Address("吉利花园", 8, 2, 501), NOON)
    assert _ticket(number).building == 3


@given(status=st.sampled_from(lc.STATES), minutes=st.integers(-10, 400))
def test_an_address_may_be_corrected_only_before_work_starts_and_within_two_hours(status: str, minutes: int) -> None:
    now = NOON + dt.timedelta(minutes=minutes)
    assert lc.correctable(status, NOON, now) == (status in ("open", "assigned") and 0 <= minutes <= 120)
