"""The schema migrates on SQLite and PostgreSQL and enforces its unique keys."""

import pytest
from sqlalchemy.exc import IntegrityError

from bot.store.db import unit_of_work
from bot.store.models import ChatGroup, Ticket


def test_migrated_schema_accepts_a_ticket(session_factory) -> None:
    with unit_of_work(session_factory) as s:
        s.add(Ticket(number="HG-20261128-0001", kind="leak", sender_id="u1", description="漏水"))
    with unit_of_work(session_factory) as s:
        assert s.query(Ticket).one().status == "open"


def test_ticket_numbers_are_unique(session_factory) -> None:
    with unit_of_work(session_factory) as s:
        s.add(Ticket(number="HG-20261128-0001", kind="leak", sender_id="u1", description="a"))
    with pytest.raises(IntegrityError):
        with unit_of_work(session_factory) as s:
            s.add(Ticket(number="HG-20261128-0001", kind="repair", sender_id="u2", description="b"))


def test_failed_unit_of_work_writes_nothing(session_factory) -> None:
    with pytest.raises(RuntimeError):
        with unit_of_work(session_factory) as s:
            s.add(ChatGroup(key="g", name="群", kind="office"))
            s.flush()
            raise RuntimeError("boom")
    with unit_of_work(session_factory) as s:
        assert s.query(ChatGroup).count() == 0
