"""Replies that could not reach a resident, recorded so staff can see them and follow up."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy.orm import sessionmaker

from bot.store.db import unit_of_work
from bot.store.models import DeliveryFailure, utcnow

MAX_TEXT = 4000
MAX_ERRMSG = 500


@dataclass(frozen=True)
class FailureView:
    """One undelivered reply as staff see it."""

    id: int
    sender_id: str
    channel: str
    errcode: Optional[int]
    errmsg: str
    text: str
    created_at: dt.datetime


def record_failure(factory: sessionmaker, sender_id: str, channel: str, errcode: Optional[int], errmsg: str,
                   text: str, now: Optional[dt.datetime] = None) -> int:
    """Store one undelivered reply and return its id."""
    with unit_of_work(factory) as session:
        row = DeliveryFailure(sender_id=sender_id[:128], channel=channel[:16], errcode=errcode,
                              errmsg=(errmsg or "")[:MAX_ERRMSG], text=text[:MAX_TEXT], created_at=now or utcnow())
        session.add(row)
        session.flush()
        return row.id


def recent_failures(factory: sessionmaker, sender_id: Optional[str] = None, limit: int = 50) -> List[FailureView]:
    """The newest undelivered replies (of one resident, or of everyone)."""
    with unit_of_work(factory) as session:
        query = session.query(DeliveryFailure)
        if sender_id is not None:
            query = query.filter(DeliveryFailure.sender_id == sender_id)
        rows = query.order_by(DeliveryFailure.id.desc()).limit(limit).all()
        return [FailureView(r.id, r.sender_id, r.channel, r.errcode, r.errmsg, r.text, r.created_at) for r in rows]
