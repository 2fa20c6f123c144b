"""Ticket numbers stay consecutive and unique when many tickets are opened at once (several action servers)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import sessionmaker

from bot.services import tickets
from bot.services.lifecycle import Context
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Ticket, TicketCounter

NOW = dt.datetime(2026, 12, 3, 6, 0, 0)  # 14:00 in Shanghai


def _open(factory: sessionmaker, i: int) -> str:
    request = tickets.TicketRequest(kind="feedback", sender_id=f"rest:numbers-{i}", description=f"第{i}条建议")
    return tickets.open_ticket(factory, request, now=NOW, ctx=Context(max_open_tickets=0)).number


def test_forty_tickets_opened_at_once_from_four_processes_get_forty_consecutive_numbers(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]  # one connection pool per "action server"
    factories = [make_session_factory(e) for e in engines]
    try:
        with ThreadPoolExecutor(16) as pool:
            numbers = list(pool.map(lambda i: _open(factories[i % 4], i), range(40)))
    finally:
        for engine in engines:
            engine.dispose()
    assert sorted(numbers) == [f"HG-20261203-{n:04d}" for n in range(1, 41)]


def test_the_counter_continues_after_tickets_numbered_before_it_existed(session_factory: sessionmaker) -> None:
    first = _open(session_factory, 1)
    with unit_of_work(session_factory) as s:  # as if the ticket had been numbered before migration 0010
        s.query(TicketCounter).delete()
    assert (first, _open(session_factory, 2), _open(session_factory, 3)) == \
        ("HG-20261203-0001", "HG-20261203-0002", "HG-20261203-0003")
    next_day = tickets.open_ticket(session_factory, tickets.TicketRequest(
        kind="feedback", sender_id="rest:numbers-9", description="第二天的建议"), now=NOW + dt.timedelta(days=1))
    assert next_day.number == "HG-20261204-0001"
    with unit_of_work(session_factory) as s:
        assert s.query(Ticket).count() == 4
