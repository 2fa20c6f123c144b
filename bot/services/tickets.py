"""Opening, listing, correcting and cancelling tickets; opening and correcting also write the outbox rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot import vulnerability
from bot.address import Address
from bot.errors import InvalidInput, InvalidState, LimitReached, NotFound
from bot.phone import mask_phones_in
from bot.services import attachments, community, residents, routing
from bot.services.lifecycle import Context, resident_action
from bot.store.db import unit_of_work
from bot.store.models import Resident, Ticket, TicketCounter, TicketEvent, utcnow
from bot.triage import needs_water_pause, priority_for

__all__ = ["KINDS", "TicketRequest", "TicketView", "cancel", "correct_address", "find_ticket_number", "mask_phones_in",
           "open_ticket", "ticket_of", "tickets_of"]

KINDS = ("leak", "repair", "help", "feedback")
# What a resident's "查进度" lists: everything not finished, and resolved tickets awaiting their word.
LISTED_STATUSES = (*lc.ACTIVE, lc.RESOLVED)
TICKET_NUMBER = re.compile(r"HG-\d{8}-\d{4}", re.IGNORECASE)
MAX_DESCRIPTION = 1000
MAX_SAID = 20  # earlier messages of the conversation read for signs of a vulnerable resident
# Leaks and help requests are about the writer's own home; a repair is usually a shared facility seen by anyone.
REMEMBERED_FROM = ("leak", "help")
FROM_PROFILE = "居民档案"


@dataclass(frozen=True)
class TicketRequest:
    """What a resident asked for, as collected by a form."""

    kind: str
    sender_id: str
    description: str
    address: Optional[Address] = None
    contact_name: Optional[str] = None
    contact_phone: Optional[str] = None
    facility: Optional[str] = None
    said: Tuple[str, ...] = ()  # what else the resident wrote in this conversation (read for vulnerability only)


@dataclass(frozen=True)
class TicketView:
    """A ticket as shown to the resident who opened it."""

    number: str
    kind: str
    priority: str
    status: str
    address: str
    description: str
    handler: str
    created_at: dt.datetime
    water_pause: bool = False
    attachments: int = 0  # photos attached when the ticket was opened (sent before it existed)
    last_note: Optional[str] = None
    vulnerability: Tuple[str, ...] = ()  # bot/vulnerability.py kinds
    notified: Tuple[routing.Told, ...] = ()  # who was told when it was opened (only right after opening)


def find_ticket_number(text: str) -> Optional[str]:
    """The first ticket number in `text`, upper-cased, if any."""
    match = TICKET_NUMBER.search(text or "")
    return match.group(0).upper() if match else None


def _next_number(session: Session, day: dt.date) -> str:
    """The day's next ticket number. The day's counter row is locked until the ticket's transaction ends, so
    tickets opened at once on several action servers queue for it instead of colliding; the first ticket of a
    day creates the row (two creating it at once: the loser's transaction is retried by `open_ticket`)."""
    key = f"{day:%Y%m%d}"
    taken = session.execute(update(TicketCounter).where(TicketCounter.day == key)
                            .values(last=TicketCounter.last + 1)
                            .execution_options(synchronize_session=False)).rowcount
    if taken:
        seq = session.query(TicketCounter.last).filter(TicketCounter.day == key).scalar()
    else:  # the day's first ticket (or the first since this counter was introduced): continue after the last one
        last = (session.query(Ticket.number).filter(Ticket.number.like(f"HG-{key}-%"))
                .order_by(Ticket.number.desc()).limit(1).scalar())
        seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
        session.add(TicketCounter(day=key, last=seq))
        session.flush()
    return f"HG-{key}-{seq:04d}"


def _handler_label(ticket: Ticket) -> str:
    if ticket.assignee is not None:
        return ticket.assignee.name
    if ticket.grid is not None and ticket.grid.leader is not None:
        return f"{ticket.grid.name}网格长{ticket.grid.leader.name}"
    return "社区值班人员"


def _view(ticket: Ticket) -> TicketView:
    return TicketView(
        number=ticket.number, kind=ticket.kind, priority=ticket.priority, status=ticket.status,
        address=Address(ticket.community, ticket.building, ticket.unit, ticket.room).label(),
        description=ticket.description, handler=_handler_label(ticket), created_at=ticket.created_at,
        water_pause=needs_water_pause(ticket.kind, ticket.description), last_note=ticket.last_note,
        vulnerability=vulnerability.ordered(ticket.vulnerability or []))


def _vulnerability(session: Session, resident: Resident, kind: str, texts: Sequence[str]) -> Tuple[List[str], Optional[str]]:
    """The ticket's vulnerability kinds and note, from what the resident wrote and their profile (updated here)."""
    if kind == "feedback":  # suggestions speak of residents in general, not of the writer's home
        return [], None
    found = vulnerability.detect("\n".join(texts))
    before = set(resident.vulnerability or [])
    kinds = vulnerability.ordered((before | found.kinds) - found.denied)
    if kind in REMEMBERED_FROM:  # only what the writer said of themselves goes to their profile
        residents.note_vulnerability(resident, vulnerability.ordered((before | found.own_kinds) - found.denied))
    if not kinds:
        return [], None
    note = "、".join(found.phrases)
    if set(kinds) - found.kinds:
        note = f"{note}；{FROM_PROFILE}" if note else FROM_PROFILE
    return list(kinds), note[:200]


def open_ticket(factory: sessionmaker, request: TicketRequest, timezone: str = "Asia/Shanghai",
                now: Optional[dt.datetime] = None, ctx: Optional[Context] = None) -> TicketView:
    """Write the ticket, its first events and its notifications in one transaction."""
    ctx = ctx or Context(timezone=timezone)
    if request.kind not in KINDS:
        raise InvalidInput(f"unknown ticket kind {request.kind!r}", field="kind")
    description = (request.description or "").strip()[:MAX_DESCRIPTION]
    if not description:
        raise InvalidInput("a ticket needs a description", field="description")
    now = now or utcnow()
    local_day = now.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone)).date()
    addr = request.address or Address()
    for attempt in range(5):
        try:
            with unit_of_work(factory) as session:
                building = (community.building_for(session, addr.community, addr.building)
                            if addr.community and addr.building is not None else None)
                _within_open_limit(session, request.sender_id, ctx.max_open_tickets)
                resident = residents.remember(session, request.sender_id, name=request.contact_name,
                                              phone=request.contact_phone,
                                              address=addr if addr.room is not None else None)
                kinds, note = _vulnerability(session, resident, request.kind,
                                             [description, *request.said[-MAX_SAID:]])
                ticket = Ticket(
                    community_key=community.community_of(session, addr.community, resident.community_key),
                    number=_next_number(session, local_day), kind=request.kind,
                    priority=priority_for(request.kind, description), status="open",
                    sender_id=request.sender_id, resident_id=resident.id, community=addr.community,
                    building=addr.building, unit=addr.unit, room=addr.room, facility=request.facility,
                    description=description, contact_name=request.contact_name,
                    contact_phone=request.contact_phone, grid=building.grid if building else None,
                    vulnerability=kinds, vulnerability_note=note, created_at=now, updated_at=now)
                session.add(ticket)
                session.flush()
                session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=f"resident:{request.sender_id}",
                                        kind="opened", detail=f"{ticket.kind}/{ticket.priority}",
                                        to_status=lc.OPEN))
                photos = attachments.attach_pending(session, request.sender_id, ticket, now)
                recipients = routing.route(session, ticket, building.group if building else None, ctx)
                told = routing.enqueue(session, ticket, recipients, now)
                session.add(TicketEvent(ticket_id=ticket.id, at=now, actor="system", kind="notified",
                                        detail=routing.history_line(told)))
                session.flush()
                return dataclasses.replace(_view(ticket), attachments=photos, notified=told)
        except IntegrityError:
            # Two tickets raced for the same number: take the next one.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _within_open_limit(session: Session, sender_id: str, limit: int) -> None:
    """LimitReached (with the open numbers) when the resident already has `limit` tickets being worked on."""
    if limit <= 0:
        return
    numbers = [n for (n,) in session.query(Ticket.number).filter(Ticket.sender_id == sender_id,
                                                                  Ticket.status.in_(lc.ACTIVE))
               .order_by(Ticket.id).limit(limit).all()]
    if len(numbers) >= limit:
        raise LimitReached(f"{sender_id} already has {len(numbers)} open tickets", numbers=numbers, limit=limit)


def tickets_of(factory: sessionmaker, sender_id: str, only_open: bool = True) -> List[TicketView]:
    """The resident's tickets, newest first (`only_open`: not finished, or resolved and awaiting their word)."""
    with unit_of_work(factory) as session:
        query = session.query(Ticket).filter(Ticket.sender_id == sender_id)
        if only_open:
            query = query.filter(Ticket.status.in_(LISTED_STATUSES))
        return [_view(t) for t in query.order_by(Ticket.id.desc()).limit(10).all()]


def ticket_of(factory: sessionmaker, sender_id: str, number: str) -> TicketView:
    """One ticket of this resident; NotFound when it does not exist or is someone else's."""
    with unit_of_work(factory) as session:
        ticket = session.query(Ticket).filter_by(number=number.upper()).one_or_none()
        if ticket is None or ticket.sender_id != sender_id:
            raise NotFound("no such ticket for this resident", number=number)
        return _view(ticket)


def cancel(factory: sessionmaker, sender_id: str, number: str, now: Optional[dt.datetime] = None,
           ctx: Optional[Context] = None) -> TicketView:
    """Cancel one of the resident's unfinished tickets and tell the groups that had it."""
    resident_action(factory, sender_id, number, "cancel", ctx=ctx or Context(), now=now)
    return ticket_of(factory, sender_id, number)


def correct_address(factory: sessionmaker, sender_id: str, number: str, address: Address,
                    now: Optional[dt.datetime] = None, ctx: Optional[Context] = None) -> TicketView:
    """Change the address of a ticket the resident just opened ("不对，是4号楼"), in one transaction: the ticket
    moves to the grid of its new building, every group that had one of its cards is told of the correction, a
    group the new address routes to that had none gets the ticket's card, and a profile that held the old
    address holds the new one. NotFound for someone else's ticket; InvalidState once the window has passed or
    work has started (lifecycle.correctable); InvalidInput for an address that is no home of the community or
    that changes nothing."""
    ctx = ctx or Context()
    now = now or utcnow()
    with unit_of_work(factory) as session:
        ticket = session.query(Ticket).filter_by(number=number.upper()).one_or_none()
        if ticket is None or ticket.sender_id != sender_id:
            raise NotFound("no such ticket for this resident", number=number)
        if not lc.correctable(ticket.status, ticket.created_at, now):
            raise InvalidState("the ticket's address can no longer be corrected", status=ticket.status)
        before = Address(ticket.community, ticket.building, ticket.unit, ticket.room)
        if address == before:
            raise InvalidInput("the corrected address is the same as before", field="address")
        building = (community.building_for(session, address.community, address.building)
                    if address.community and address.building is not None else None)
        if building is None:
            raise InvalidInput("the corrected address is not a building of the community", field="address")
        resident = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        if resident is not None and before.room is not None and address.room is not None and \
                Address(resident.community, resident.building, resident.unit, resident.room) == before:
            residents.remember(session, sender_id, address=address)
        ticket.community, ticket.building, ticket.unit, ticket.room = (address.community, address.building,
                                                                      address.unit, address.room)
        ticket.grid = building.grid
        ticket.community_key = building.estate.community_key  # an estate of another community moves it there
        ticket.updated_at = now
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=f"resident:{sender_id}", kind="corrected",
                                detail=f"地址：{before.label() or '（未提供）'} → {address.label()}"))
        session.flush()
        told = routing.enqueue(session, ticket, routing.rerouted(session, ticket, building.group, before.label(), ctx),
                               now)
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor="system", kind="notified",
                                detail=routing.history_line(told)))
        session.flush()
        return dataclasses.replace(_view(ticket), notified=told)
