"""End to end: the real action server, Rasa server and dispatcher with a local fake WeCom robot.

The stack (tests/e2e/conftest.py) is shared with the other e2e modules; every test speaks as its own sender.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Iterator

import pytest
from sqlalchemy.orm import sessionmaker

from bot import messages
from bot.address import Address
from bot.devtools.stack import Stack
from bot.identity import rest_sender
from bot.services import tickets
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Notification, Ticket, TicketEvent
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sessions(stack: Stack) -> Iterator[sessionmaker]:
    engine = make_engine(stack.settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def _text(replies) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def test_leak_reported_over_rest_opens_ticket_and_reaches_the_property_group(stack: Stack, sessions) -> None:
    first = _text(stack.say("e2e-leak", "洗衣机下水管堵了，阳台都是水"))
    assert "进水阀" in first and "地址" in first
    assert "电话" in _text(stack.say("e2e-leak", "吉利花园3号楼2单元501"))
    receipt = _text(stack.say("e2e-leak", "13812345678"))
    assert "工单号：HG-" in receipt and "王建国" in receipt

    with unit_of_work(sessions) as s:
        ticket = s.query(Ticket).filter_by(sender_id=rest_sender("e2e-leak")).one()
        assert (ticket.kind, ticket.priority, ticket.status) == ("leak", "urgent", "open")
        assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("吉利花园", 3, 2, 501)
        assert ticket.contact_phone == "13812345678" and ticket.number in receipt
        assert [e.kind for e in s.query(TicketEvent).filter_by(ticket_id=ticket.id).order_by(TicketEvent.id)] == [
            "opened", "notified"]
        number = ticket.number

    def delivered():
        return [m for m in stack.wecom_messages() if number in m["payload"]["markdown"]["content"]]

    cards = wait_for(lambda: len(delivered()) >= 2 and delivered())
    assert cards, "no webhook delivery for the ticket"
    content = cards[0]["payload"]["markdown"]["content"]
    assert cards[0]["payload"]["msgtype"] == "markdown"
    assert "<@WangJianGuo>" in content and "138****5678" in content and "13812345678" not in content
    assert wait_for(lambda: [m for m in stack.wecom_messages() if "暂停用水" in m["payload"]["markdown"]["content"]])

    def notifications():
        with unit_of_work(sessions) as s:
            return {(n.purpose, n.status) for n in s.query(Notification).join(Ticket).filter(Ticket.number == number)}

    # The stack is shared and other tests report leaks in this building too: the pause notice must be this ticket's.
    assert wait_for(lambda: ("pause_water", "sent") in notifications()), notifications()
    # every one of them goes out (the dispatcher may still be sending the last when the pause notice is out)
    assert wait_for(lambda: {status for _, status in notifications()} == {"sent"}), notifications()


def _release(stack: Stack, sender_id: str) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ, DATABASE_URL=stack.settings.database_url, HG_RASA_PORT=str(stack.settings.rasa_port),
               HG_RASA_TOKEN=stack.token, HG_VAR_DIR=str(stack.settings.var_dir))
    return subprocess.run([sys.executable, "-m", "bot", "handoff", "release", sender_id], env=env,
                          capture_output=True, text=True, timeout=60)


def test_the_running_assistant_names_the_residents_community_from_the_database(stack: Stack) -> None:
    """endpoints.yml's response generator (bot/nlg.py) fills the community's name, phone, hours and property
    contacts in."""
    greeting = _text(stack.say("e2e-community", "你好"))
    assert "我是红星社区的" in greeting and "{" not in greeting, greeting
    hours = _text(stack.say("e2e-community", "社区办公时间是几点到几点"))
    assert "红星社区办公时间：周一至周五 8:30-17:30" in hours and "022-23456789" in hours and "{" not in hours, hours
    phones = _text(stack.say("e2e-community", "物业电话多少"))
    assert "吉利花园物业服务中心：022-23451188" in phones and "{" not in phones, phones


def test_handoff_silences_the_assistant_until_released(stack: Stack) -> None:
    assert "值班" in _text(stack.say("e2e-handoff", "我要找真人，转人工"))
    assert stack.say("e2e-handoff", "你好？有人吗") == []
    # The REST client's own name is not the stored conversation: the command says which one is.
    wrong = _release(stack, "e2e-handoff")
    assert wrong.returncode == 1 and "rest:e2e-handoff" in wrong.stderr
    assert stack.say("e2e-handoff", "你好？有人吗") == []
    done = _release(stack, rest_sender("e2e-handoff"))
    assert done.returncode == 0, done.stderr
    assert stack.say("e2e-handoff", "你好") != []


VICTIM = "oWX3s5V9mJ2kq7-e2eVictim01"  # a WeChat resident's OpenID


def _open_ticket(sessions, sender_id: str, address: Address, phone: str) -> str:
    view = tickets.open_ticket(sessions, tickets.TicketRequest(
        kind="leak", sender_id=sender_id, description="厨房水管漏水", address=address, contact_name="王秀英",
        contact_phone=phone))
    return view.number


def _status(sessions, number: str) -> str:
    with unit_of_work(sessions) as s:
        return s.query(Ticket).filter_by(number=number).one().status


def test_a_wechat_residents_openid_cannot_be_borrowed_over_rest(stack: Stack, sessions) -> None:
    number = _open_ticket(sessions, VICTIM, Address("金穗园", 2, 1, 1503), "13912345678")
    checked = _text(stack.say(VICTIM, "查进度"))
    assert messages.NO_OPEN_TICKETS in checked and number not in checked and "金穗园" not in checked
    refused = _text(stack.say(VICTIM, f"取消 {number}"))
    assert "没有查到您名下的工单" in refused and "金穗园" not in refused
    stack.say(VICTIM, f'/cancel_ticket{{"ticket_id": "{number}"}}')  # the button payload, past the NLU
    assert _status(sessions, number) == "open"
    asked = _text(stack.say(VICTIM, "洗衣机下水管堵了，阳台都是水"))
    assert "地址" in asked
    for leak in ("这次还用这些信息吗", "金穗园", "1503", "139****5678", "13912345678", "王秀英"):
        assert leak not in asked
    with unit_of_work(sessions) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        assert ticket.status == "open"
        assert "cancelled" not in {e.kind for e in s.query(TicketEvent).filter_by(ticket_id=ticket.id)}


def test_a_rest_client_sees_and_cancels_its_own_tickets_and_profile(stack: Stack, sessions) -> None:
    # The same requests as above, from the REST client the ticket belongs to: they do reach it.
    number = _open_ticket(sessions, rest_sender("e2e-own"), Address("吉利花园", 3, 2, 501), "13700001111")
    assert number in _text(stack.say("e2e-own", "查进度"))
    stack.say("e2e-own", f"取消 {number}")
    assert _status(sessions, number) == "cancelled"
    offered = _text(stack.say("e2e-own", "洗衣机下水管堵了，阳台都是水"))
    assert "这次还用这些信息吗" in offered and "吉利花园3号楼2单元501室" in offered


BAD_INPUTS = {
    "empty": "",
    "whitespace": "   \n\t  ",
    "very long": "漏水" * 2500,
    "emoji only": "😀😀🙏🙏",
    "english": "Hello, is anyone there? My sink is broken.",
    "sql": "'; DROP TABLE tickets; -- 1号楼",
    "control characters": "\x00\x01\x07\x1b[31m报修\x7f",
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_gets_an_answer_and_writes_nothing_half_done(stack: Stack, sessions, name: str) -> None:
    with unit_of_work(sessions) as s:
        before = (s.query(Ticket).count(), s.query(TicketEvent).count(), s.query(Notification).count())
    replies = stack.say(f"e2e-bad-{name.replace(' ', '-')}", BAD_INPUTS[name])
    assert replies and all(r.get("text") for r in replies), replies
    assert stack.healthy()
    with unit_of_work(sessions) as s:
        tickets = s.query(Ticket).count()
        after = (tickets, s.query(TicketEvent).count(), s.query(Notification).count())
    # A message alone never completes a form, so no ticket, event or notification may appear.
    assert after == before


def test_an_address_in_pieces_and_a_correction_reach_the_ticket(stack: Stack, sessions) -> None:
    sender = "e2e-pieces"
    stack.say(sender, "洗衣机下水管堵了，阳台都是水")
    assert _text(stack.say(sender, "吉利花园")) == "吉利花园，几号楼几单元几号？"
    assert _text(stack.say(sender, "5号楼")) == "吉利花园5号楼，几单元几号？"
    asked = stack.say(sender, "2单元301")
    assert len(asked) == 1 and "吉利花园5号楼2单元301室" in _text(asked) and "电话" in _text(asked)
    again = stack.say(sender, "不对，是4号楼")
    assert len(again) == 1 and "吉利花园4号楼2单元301室" in _text(again) and messages.INVALID_PHONE not in _text(again)
    receipt = _text(stack.say(sender, "13812345678"))
    assert "工单号：HG-" in receipt
    with unit_of_work(sessions) as s:
        ticket = s.query(Ticket).filter_by(sender_id=rest_sender(sender)).one()
        assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("吉利花园", 4, 2, 301)


def test_answers_that_never_fit_the_question_reach_a_person_instead_of_a_loop(stack: Stack, sessions) -> None:
    sender = "e2e-misses"
    _open_ticket(sessions, rest_sender(sender), Address("吉利花园", 3, 2, 501), "13700002222")
    with unit_of_work(sessions) as s:
        before = s.query(Ticket).filter_by(sender_id=rest_sender(sender)).count()
    assert "这次还用这些信息吗" in _text(stack.say(sender, "厨房水管漏了"))
    first = _text(stack.say(sender, "我也不知道"))
    assert "这次还用这些信息吗" in first and "请问您需要办理什么事" not in first
    second = stack.say(sender, "哈哈哈")
    assert "转人工" in [b["title"] for r in second for b in r.get("buttons", [])]
    assert _text(stack.say(sender, "我不太懂")) == messages.HANDOFF_AFTER_MISSES
    assert stack.say(sender, "有人吗") == []  # a person has the conversation now
    with unit_of_work(sessions) as s:
        assert s.query(Ticket).filter_by(sender_id=rest_sender(sender)).count() == before
