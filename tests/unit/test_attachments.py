"""Photos join the resident's latest open ticket, or wait for the next ticket they open (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import sessionmaker

from bot.services import attachments, deliveries, residents, tickets
from bot.store.db import unit_of_work
from bot.store.models import TicketEvent


def _open(factory: sessionmaker, sender: str, description: str = "楼道灯坏了") -> tickets.TicketView:
    return tickets.open_ticket(factory, tickets.TicketRequest(kind="repair", sender_id=sender, description=description))


def test_a_photo_joins_the_latest_open_ticket(session_factory: sessionmaker) -> None:
    _open(session_factory, "o1", "旧的")
    latest = _open(session_factory, "o1", "新的")
    _open(session_factory, "o2", "别人的")
    result = attachments.attach_image(session_factory, "o1", "media-1", "http://p/1")
    assert result.ticket_number == latest.number and not result.pending
    assert [a.media_id for a in attachments.attachments_of(session_factory, latest.number)] == ["media-1"]
    with unit_of_work(session_factory) as s:
        assert s.query(TicketEvent).filter_by(kind="attachment").count() == 1


def test_a_photo_skips_closed_tickets_and_waits(session_factory: sessionmaker) -> None:
    view = _open(session_factory, "o1")
    tickets.cancel(session_factory, "o1", view.number)
    assert attachments.attach_image(session_factory, "o1", "media-1", None).pending
    assert [a.media_id for a in attachments.pending_of(session_factory, "o1")] == ["media-1"]


def test_pending_photos_join_the_next_ticket_in_its_transaction(session_factory: sessionmaker) -> None:
    attachments.attach_image(session_factory, "o1", "media-1", "http://p/1")
    attachments.attach_image(session_factory, "o1", "media-2", "http://p/2")
    attachments.attach_image(session_factory, "o2", "media-3", "http://p/3")
    view = _open(session_factory, "o1")
    assert view.attachments == 2
    assert [a.media_id for a in attachments.attachments_of(session_factory, view.number)] == ["media-1", "media-2"]
    assert attachments.pending_of(session_factory, "o1") == []
    assert len(attachments.pending_of(session_factory, "o2")) == 1


def test_a_photo_from_days_ago_does_not_join_a_new_ticket(session_factory: sessionmaker) -> None:
    old = dt.datetime.utcnow() - dt.timedelta(days=3)
    attachments.attach_image(session_factory, "o1", "media-old", None, now=old)
    assert _open(session_factory, "o1").attachments == 0


def test_unfollowing_is_recorded_and_following_again_clears_it(session_factory: sessionmaker) -> None:
    assert not residents.is_unsubscribed(session_factory, "o1")
    residents.record_unsubscribe(session_factory, "o1")
    assert residents.is_unsubscribed(session_factory, "o1")
    residents.record_subscribe(session_factory, "o1")
    assert not residents.is_unsubscribed(session_factory, "o1")


def test_delivery_failures_are_listed_newest_first(session_factory: sessionmaker) -> None:
    deliveries.record_failure(session_factory, "o1", "wechat", 45015, "out of time limit", "第一条")
    deliveries.record_failure(session_factory, "o2", "wechat", None, "timed out", "第二条")
    assert [f.text for f in deliveries.recent_failures(session_factory)] == ["第二条", "第一条"]
    assert [f.errcode for f in deliveries.recent_failures(session_factory, "o1")] == [45015]
