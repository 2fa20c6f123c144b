"""A resident's row is created once, whoever gets there first: a profile written while another process creates the
same resident's row (the WeChat channel noting a first message while the turn opens a ticket) updates that row
instead of failing the ticket's transaction (issue 10)."""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.services import residents
from bot.store.db import unit_of_work
from bot.store.models import Resident

SENDER = "wechat:oRace-0001"
ARRIVED = dt.datetime(2026, 12, 6, 23, 0)


def test_a_profile_written_while_another_process_creates_the_row_updates_that_row(
        session_factory: sessionmaker) -> None:
    other = session_factory()
    other.add(Resident(sender_id=SENDER, last_inbound_at=ARRIVED))
    other.flush()  # inserted, not yet committed: the other process holds the row
    outcome = {}

    def open_ticket() -> None:
        try:
            with unit_of_work(session_factory) as session:
                residents.remember(session, SENDER, name="刘桂兰", phone="13920005678",
                                   address=Address("吉利花园", 3, 2, 202))
            outcome["done"] = True
        except Exception as exc:  # noqa: BLE001 - the test reports what went wrong
            outcome["error"] = repr(exc)

    writer = threading.Thread(target=open_ticket)
    writer.start()
    time.sleep(0.5)
    assert writer.is_alive()  # waiting for the other process's insert
    other.commit()
    other.close()
    writer.join(30)
    assert outcome == {"done": True}
    with unit_of_work(session_factory) as session:
        rows = session.query(Resident).filter_by(sender_id=SENDER).all()
        assert [(r.name, r.phone, r.building, r.room, r.last_inbound_at) for r in rows] == [
            ("刘桂兰", "13920005678", 3, 202, ARRIVED)]


def test_a_new_resident_is_created_with_what_they_gave(session_factory: sessionmaker) -> None:
    with unit_of_work(session_factory) as session:
        made = residents.remember(session, "rest:new", phone="13920005679")
        assert made.id is not None
    with unit_of_work(session_factory) as session:
        row = session.query(Resident).filter_by(sender_id="rest:new").one()
        assert (row.phone, row.community_key) == ("13920005679", "default")
        assert row.created_at is not None and row.updated_at >= row.created_at
