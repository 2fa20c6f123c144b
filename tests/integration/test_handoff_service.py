"""The handoff inbox's service on SQLite and PostgreSQL: who may use it, replies through the outbox, release."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import sessionmaker

from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.services import handoff, residents
from bot.store.db import unit_of_work
from bot.store.models import Handoff, HandoffReply, Notification, Staff
from tests.helpers import NOW, community_db

OPENID = "oWX_handoff_resident"
REST_ID = "rest:resident-7"


@pytest.fixture
def factory(database_url: str) -> sessionmaker:
    """The demo community in the parametrised database (SQLite and PostgreSQL)."""
    return community_db(database_url)


def _open(factory: sessionmaker, sender: str, reason: str, at: dt.datetime) -> int:
    assert handoff.start(factory, sender, reason)
    with unit_of_work(factory) as session:
        row = session.query(Handoff).filter_by(sender_id=sender, released_at=None).one()
        row.started_at = at
        return row.id


def _notifications(factory: sessionmaker, purpose: str) -> list:
    with unit_of_work(factory) as session:
        return session.query(Notification).filter_by(purpose=purpose).order_by(Notification.id).all()


def test_the_inbox_lists_open_handoffs_oldest_first_with_the_residents_masked_phone(factory: sessionmaker) -> None:
    with unit_of_work(factory) as session:
        residents.remember(session, OPENID, name="张阿姨", phone="13812345678")
    newer = _open(factory, REST_ID, "转人工", NOW - dt.timedelta(minutes=2))
    older = _open(factory, OPENID, "我要找真人 13812345678", NOW - dt.timedelta(minutes=30))
    released = _open(factory, "oWX_done", "转人工", NOW - dt.timedelta(hours=2))
    handoff.release(factory, "oWX_done", by="maguilan")

    rows = handoff.waiting(factory, "maguilan")

    assert [r.id for r in rows] == [older, newer] and released not in [r.id for r in rows]
    first, second = rows
    assert (first.resident_name, first.resident_phone) == ("张阿姨", "138****5678")
    assert "13812345678" not in first.reason and "138****5678" in first.reason
    assert first.can_message and not second.can_message
    assert second.display == "resident-7 (REST)" and second.resident_name is None and second.replies == 0


@pytest.mark.parametrize("key", ["zhouming", "wangjianguo", "chenjing", "hexiaoyu", "nobody"])
def test_staff_outside_the_handoff_roles_are_refused_every_inbox_call(factory: sessionmaker, key: str) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    for call in (lambda: handoff.waiting(factory, key), lambda: handoff.detail(factory, key, hid),
                 lambda: handoff.reply(factory, hid, key, "您好", NOW), lambda: handoff.hand_back(factory, hid, key)):
        with pytest.raises(NotAllowed):
            call()
    assert not handoff.may_use_inbox(factory, key)
    assert handoff.active(factory, OPENID) is not None and _notifications(factory, "handoff_reply") == []


@pytest.mark.parametrize("key", ["maguilan", "gaohong", "admin"])
def test_duty_staff_the_secretary_and_admins_may_use_the_inbox(factory: sessionmaker, key: str) -> None:
    _open(factory, OPENID, "转人工", NOW)
    assert handoff.may_use_inbox(factory, key) and len(handoff.waiting(factory, key)) == 1


def test_a_reply_to_a_wechat_resident_is_stored_and_queued_with_who_answers(factory: sessionmaker) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    saved = handoff.reply(factory, hid, "maguilan", "  您好，请问有什么可以帮您？ ", NOW)

    [note] = _notifications(factory, "handoff_reply")
    assert note.channel == "wechat" and note.recipient == OPENID and note.status == "pending"
    assert note.payload["text"] == "社区值班人员马桂兰：您好，请问有什么可以帮您？"
    with unit_of_work(factory) as session:
        [row] = session.query(HandoffReply).all()
        assert (row.handoff_id, row.notification_id, row.text) == (hid, note.id, "您好，请问有什么可以帮您？")
    shown = handoff.detail(factory, "maguilan", hid)
    assert shown.open and shown.handoff.replies == 1
    [view] = shown.replies
    assert (view.id, view.staff_label, view.status, view.text) == (saved.id, "值班人员马桂兰", "pending", row.text)


def test_a_reply_shows_its_delivery_failure(factory: sessionmaker) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    handoff.reply(factory, hid, "gaohong", "您好", NOW)
    with unit_of_work(factory) as session:
        note = session.query(Notification).filter_by(purpose="handoff_reply").one()
        note.status, note.last_error = "failed", "WeChat errcode 45015"
    [view] = handoff.detail(factory, "gaohong", hid).replies
    assert (view.status, view.last_error, view.staff_label) == ("failed", "WeChat errcode 45015", "社区书记高红")


@pytest.mark.parametrize("text", ["", "   \n ", "字" * 601])
def test_an_empty_or_too_long_reply_is_refused_and_nothing_is_written(factory: sessionmaker, text: str) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    with pytest.raises(InvalidInput) as refused:
        handoff.reply(factory, hid, "maguilan", text, NOW)
    assert refused.value.field == "text"
    assert handoff.detail(factory, "maguilan", hid).replies == () and _notifications(factory, "handoff_reply") == []


def test_a_reply_of_exactly_600_characters_is_accepted(factory: sessionmaker) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    assert handoff.reply(factory, hid, "maguilan", "字" * 600, NOW).text == "字" * 600


def test_a_rest_resident_cannot_be_answered_and_the_reason_says_so(factory: sessionmaker) -> None:
    hid = _open(factory, REST_ID, "转人工", NOW)
    with pytest.raises(InvalidInput) as refused:
        handoff.reply(factory, hid, "maguilan", "您好", NOW)
    assert "REST" in refused.value.message and "cannot be messaged" in refused.value.message
    assert handoff.detail(factory, "maguilan", hid).replies == () and _notifications(factory, "handoff_reply") == []


def test_replying_to_a_released_handoff_is_an_invalid_state(factory: sessionmaker) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    handoff.hand_back(factory, hid, "maguilan", NOW)
    with pytest.raises(InvalidState):
        handoff.reply(factory, hid, "maguilan", "还在吗", NOW)
    assert _notifications(factory, "handoff_reply") == []


def test_an_unknown_handoff_is_not_found(factory: sessionmaker) -> None:
    with pytest.raises(NotFound):
        handoff.detail(factory, "maguilan", 999_999)
    with pytest.raises(NotFound):
        handoff.reply(factory, 999_999, "maguilan", "您好", NOW)
    with pytest.raises(NotFound):
        handoff.hand_back(factory, 999_999, "maguilan", NOW)


def test_handing_back_records_who_released_it_and_a_second_call_changes_nothing(factory: sessionmaker) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    first = handoff.hand_back(factory, hid, "maguilan", NOW)
    later = NOW + dt.timedelta(minutes=5)
    again = handoff.hand_back(factory, hid, "admin", later)

    assert (first.sender_id, first.closed_now, again.closed_now) == (OPENID, True, False)
    shown = handoff.detail(factory, "admin", hid)
    assert not shown.open and shown.released_at == NOW and shown.released_by == "值班人员马桂兰"
    assert handoff.active(factory, OPENID) is None and handoff.waiting(factory, "admin") == []


def test_retrying_an_old_hand_back_is_refused_once_the_resident_asked_for_staff_again(factory: sessionmaker) -> None:
    old = _open(factory, OPENID, "转人工", NOW)
    handoff.hand_back(factory, old, "maguilan", NOW)
    _open(factory, OPENID, "又要找人", NOW + dt.timedelta(minutes=1))
    with pytest.raises(InvalidState):
        handoff.hand_back(factory, old, "maguilan", NOW + dt.timedelta(minutes=2))
    assert handoff.active(factory, OPENID) is not None


def test_the_cli_release_still_closes_a_handoff_by_sender(factory: sessionmaker) -> None:
    hid = _open(factory, OPENID, "转人工", NOW)
    assert handoff.release(factory, OPENID, by="admin") and not handoff.release(factory, OPENID, by="admin")
    with unit_of_work(factory) as session:
        admin = session.query(Staff).filter_by(key="admin").one().name
    assert handoff.detail(factory, "admin", hid).released_by == f"管理员{admin}"
