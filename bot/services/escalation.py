"""Escalation: tickets nobody accepted in time, and accepted tickets past their deadline, reach someone senior.

Run by the dispatcher loop (no cron). Each ticket escalates at most once per level: the `escalations`
row (unique per ticket and level) is written in the same transaction as its outbox rows, so a restart
or a second dispatcher never fires a level twice.
"""

from __future__ import annotations

import datetime as dt
from typing import List, Optional, Tuple

from sqlalchemy import and_, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot import messages
from bot.address import Address
from bot.notify import outbox
from bot.services import duty, routing
from bot.services.lifecycle import Context, staff_group
from bot.store.db import unit_of_work
from bot.store.models import Escalation, Staff, Ticket, utcnow

UNACCEPTED = "unaccepted"
OVERDUE = "overdue"
BATCH = 50


def _waited(since: dt.datetime, now: dt.datetime) -> str:
    minutes = max(0, int((now - since).total_seconds() // 60))
    return f"{minutes}分钟" if minutes < 120 else f"{minutes // 60}小时{minutes % 60}分钟"


def _candidates(session: Session, now: dt.datetime, ctx: Context) -> List[Tuple[int, str]]:
    d = ctx.deadlines
    fired_unaccepted = session.query(Escalation.ticket_id).filter(Escalation.level == UNACCEPTED)
    fired_overdue = session.query(Escalation.ticket_id).filter(Escalation.level == OVERDUE)
    unaccepted = (session.query(Ticket.id).filter(
        Ticket.status == lc.OPEN, Ticket.id.notin_(fired_unaccepted),
        or_(and_(Ticket.priority == "urgent", Ticket.created_at <= now - dt.timedelta(minutes=d.urgent_accept_minutes)),
            and_(Ticket.priority != "urgent", Ticket.created_at <= now - dt.timedelta(hours=d.normal_accept_hours))))
        .order_by(Ticket.id).limit(BATCH).all())
    overdue = (session.query(Ticket.id).filter(
        Ticket.status.in_((lc.ASSIGNED, lc.IN_PROGRESS)), Ticket.due_at.isnot(None), Ticket.due_at <= now,
        Ticket.id.notin_(fired_overdue)).order_by(Ticket.id).limit(BATCH).all())
    return [(i, UNACCEPTED) for (i,) in unaccepted] + [(i, OVERDUE) for (i,) in overdue]


def _fire(session: Session, ticket: Ticket, level: str, now: dt.datetime, ctx: Context) -> None:
    session.add(Escalation(ticket_id=ticket.id, level=level, fired_at=now))
    session.flush()  # the unique (ticket, level) row first: a second dispatcher fails here, before any message
    address = Address(ticket.community, ticket.building, ticket.unit, ticket.room).label()
    content = messages.escalation_card(ticket.number, ticket.kind, address, level,
                                       _waited(ticket.created_at, now), ctx.ticket_link(ticket.number))
    leader = ticket.grid.leader if ticket.grid is not None else None
    mentions = [s.wecom_userid for s in (leader, ticket.assignee if level == OVERDUE else None)
                if s is not None and s.wecom_userid]
    outbox.enqueue(session, now=now, group=staff_group(session, ticket), purpose=f"escalation_{level}", ticket_id=ticket.id,
                   mentions=mentions, content=content)
    if level == UNACCEPTED:
        community = ticket.community_key
        office = routing.office_group(session, community)
        seniors = session.query(Staff).filter(Staff.role == lc.SECRETARY, Staff.active.is_(True),
                                              Staff.community_key == community).all()
        on_duty = duty.on_duty(session, ctx.local(now), community) + routing.duty_staff(session, community)
        people = list(dict.fromkeys(s.wecom_userid for s in seniors + on_duty if s.wecom_userid))
        if office is not None and office is not staff_group(session, ticket):
            outbox.enqueue(session, now=now, group=office, purpose=f"escalation_{level}", ticket_id=ticket.id,
                           mentions=people, content=content)


def run(factory: sessionmaker, ctx: Context, now: Optional[dt.datetime] = None) -> List[Tuple[str, str]]:
    """Fire every escalation that is due; returns (ticket number, level) for each one fired here."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        due = _candidates(session, now, ctx)
    fired: List[Tuple[str, str]] = []
    for ticket_id, level in due:
        try:
            with unit_of_work(factory) as session:
                ticket = session.get(Ticket, ticket_id)
                if ticket is None:
                    continue
                _fire(session, ticket, level, now, ctx)
                fired.append((ticket.number, level))
        except IntegrityError:
            continue  # another dispatcher fired this one a moment ago
    return fired
