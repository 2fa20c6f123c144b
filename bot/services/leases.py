"""Leases: a role that one process at a time holds, such as the dispatcher leader or the Rasa worker that is
loading a new model (bot/services/models.py).

A holder takes a free or expired lease, and renews it before it runs out; when it stops it gives it back, so a
process standing by takes over at once rather than when the lease expires. If the holder dies, the lease
expires after its time to live and the first process standing by takes it. The lease lives in the database
every process already shares (SQLite or PostgreSQL), with the same statements on both.

Times come from the processes' own clocks: machines that share a lease must keep their clocks in step (NTP);
a skew shortens or lengthens a takeover by the skew, no more, because the rows a leader works on are claimed
one by one as well (bot/notify/outbox.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import case, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot.store.db import unit_of_work
from bot.store.models import Lease

DISPATCHER = "dispatcher"


def hold(factory: sessionmaker, name: str, holder: str, ttl: dt.timedelta, now: dt.datetime) -> bool:
    """Take lease `name` for `holder` if it is free, expired or already `holder`'s, until `now + ttl`.

    True when `holder` holds it now; False while another live process does."""
    with unit_of_work(factory) as session:
        taken = session.execute(
            update(Lease)
            .where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
            .values(expires_at=now + ttl, acquired_at=case((Lease.holder == holder, Lease.acquired_at), else_=now),
                    holder=holder)
            .execution_options(synchronize_session=False)
        ).rowcount
    if taken:
        return True
    try:
        with unit_of_work(factory) as session:
            session.add(Lease(name=name, holder=holder, expires_at=now + ttl, acquired_at=now))
    except IntegrityError:
        return False  # somebody holds it (or took it between the two statements)
    return True


def release(factory: sessionmaker, name: str, holder: str) -> bool:
    """Give lease `name` back if `holder` holds it; True if it did."""
    with unit_of_work(factory) as session:
        return bool(session.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder)
                                    .execution_options(synchronize_session=False)).rowcount)


def holder_of(factory: sessionmaker, name: str, now: dt.datetime) -> Optional[str]:
    """Who holds lease `name` right now (None when it is free or expired)."""
    with unit_of_work(factory) as session:
        lease = session.get(Lease, name)
        return lease.holder if lease is not None and lease.expires_at >= now else None
