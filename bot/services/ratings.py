"""A resident's word on a resolved ticket: a 1-5 rating confirms it, "没修好" reopens it."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy.orm import sessionmaker

from bot import lifecycle as lc
from bot import messages
from bot.errors import InvalidState
from bot.ratings import read_answer
from bot.services.lifecycle import Context, resident_action
from bot.store.db import unit_of_work
from bot.store.models import Resident, Ticket, utcnow


def _awaiting(factory: sessionmaker, sender_id: str, now: dt.datetime) -> Optional[tuple]:
    with unit_of_work(factory) as session:
        ticket = (session.query(Ticket).filter(Ticket.sender_id == sender_id, Ticket.status == lc.RESOLVED,
                                               Ticket.resolved_at >= now - lc.REOPEN_WINDOW)
                  .order_by(Ticket.resolved_at.desc(), Ticket.id.desc()).first())
        if ticket is None:
            return None
        resident = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        spoke_since = resident is not None and resident.last_inbound_at is not None and \
            resident.last_inbound_at > ticket.resolved_at
        return ticket.number, spoke_since


def answer(factory: sessionmaker, sender_id: str, text: str, ctx: Context = Context(),
           now: Optional[dt.datetime] = None) -> Optional[str]:
    """If `text` answers the rating question of a resolved ticket, record it and return the reply; else None.

    Call it before the resident's message is recorded as their latest: a bare digit counts as a rating only
    as their first message after the resolution (later, "5" may answer another question).
    """
    now = now or utcnow()
    parsed = read_answer(text)
    if parsed is None:
        return None
    found = _awaiting(factory, sender_id, now)
    if found is None:
        return None
    number, spoke_since = found
    if not parsed.explicit and spoke_since:
        return None
    try:
        if parsed.not_fixed:
            resident_action(factory, sender_id, number, "reopen", comment=parsed.comment, ctx=ctx, now=now)
            return messages.REOPENED
        resident_action(factory, sender_id, number, "confirm", rating=parsed.score, comment=parsed.comment, ctx=ctx,
                        now=now)
    except InvalidState:
        return None  # the ticket moved on meanwhile: let the assistant answer normally
    return messages.RATING_THANKS if (parsed.score or 0) >= 3 else messages.RATING_LOW
