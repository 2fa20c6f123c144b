"""Opening, listing and cancelling tickets; opening also writes the ticket's outbox rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from typing import List, Optional
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot import messages
from bot.address import Address
from bot.errors import InvalidInput, NotFound
from bot.notify import outbox
from bot.phone import mask_phone
from bot.services import attachments, community, duty, residents
from bot.services.lifecycle import Context, resident_action
from bot.store.db import unit_of_work
from bot.store.models import ChatGroup, Grid, Staff, Ticket, TicketEvent, utcnow
from bot.triage import needs_water_pause, priority_for

KINDS = ("leak", "repair", "help", "feedback")
# What a resident's "查进度" lists: everything not finished, and resolved tickets awaiting their word.
LISTED_STATUSES = (*lc.ACTIVE, lc.RESOLVED)
TICKET_NUMBER = re.compile(r"HG-\d{8}-\d{4}", re.IGNORECASE)
_PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
MAX_DESCRIPTION = 1000


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


def mask_phones_in(text: str) -> str:
    """Mask every mobile number inside free text (for group messages)."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def find_ticket_number(text: str) -> Optional[str]:
    """The first ticket number in `text`, upper-cased, if any."""
    match = TICKET_NUMBER.search(text or "")
    return match.group(0).upper() if match else None


def _next_number(session: Session, day: dt.date) -> str:
    prefix = f"HG-{day:%Y%m%d}-"
    last = (session.query(Ticket.number).filter(Ticket.number.like(prefix + "%"))
            .order_by(Ticket.number.desc()).limit(1).scalar())
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:04d}"


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
        water_pause=needs_water_pause(ticket.kind, ticket.description), last_note=ticket.last_note)


def _office_group(session: Session) -> Optional[ChatGroup]:
    return session.query(ChatGroup).filter_by(kind="office").order_by(ChatGroup.id).first()


def _duty_staff(session: Session) -> List[Staff]:
    return session.query(Staff).filter_by(on_duty=True).order_by(Staff.id).all()


def _enqueue_for_new_ticket(session: Session, ticket: Ticket, building_group: Optional[ChatGroup],
                            ctx: Context) -> List[str]:
    """Queue the group messages for a new ticket; returns the names of the groups told."""
    grid: Optional[Grid] = ticket.grid
    leader = grid.leader if grid else None
    link = ctx.ticket_link(ticket.number)
    content = messages.ticket_card(
        number=ticket.number, kind=ticket.kind, priority=ticket.priority,
        address=_view(ticket).address or "（未提供）", grid=grid.name if grid else None,
        contact=f"{ticket.contact_name or '居民'} {mask_phone(ticket.contact_phone) if ticket.contact_phone else ''}".strip(),
        description=mask_phones_in(ticket.description), facility=ticket.facility, link=link)
    mentions = [leader.wecom_userid] if leader is not None and leader.wecom_userid else []
    targets: List[Optional[ChatGroup]] = []
    if ticket.kind in ("leak", "repair"):
        targets = [grid.property_group if grid else None, grid.group if grid else None]
    elif ticket.kind == "help":
        team_group = session.query(ChatGroup).filter_by(kind="team").order_by(ChatGroup.id).first()
        targets = [team_group, grid.group if grid else None]
    else:  # feedback
        targets = [_office_group(session)]
        mentions = [s.wecom_userid for s in _duty_staff(session) if s.wecom_userid]
    if not any(targets):
        targets = [_office_group(session)]
    told: List[str] = []
    seen = set()
    for group in targets:
        key = group.id if group is not None else None
        if key in seen:
            continue
        seen.add(key)
        outbox.enqueue(session, now=ticket.created_at, group=group, purpose="new_ticket", content=content,
                       ticket_id=ticket.id, mentions=mentions)
        told.append(group.name if group is not None else "未配置的群")
    if needs_water_pause(ticket.kind, ticket.description) and ticket.building is not None:
        outbox.enqueue(session, now=ticket.created_at, group=building_group, purpose="pause_water",
                       content=messages.water_pause_notice(ticket.community or "", ticket.building, ticket.unit),
                       ticket_id=ticket.id)
        told.append(building_group.name if building_group is not None else "楼栋群（未配置）")
    local = ctx.local(ticket.created_at)
    if ticket.priority == "urgent" and duty.in_span(local, ctx.deadlines.night_start, ctx.deadlines.night_end):
        night = duty.on_duty(session, local)
        if night:
            office = _office_group(session)
            outbox.enqueue(session, now=ticket.created_at, group=office, purpose="night_duty", ticket_id=ticket.id,
                           mentions=[s.wecom_userid for s in night if s.wecom_userid],
                           content=messages.night_duty_card(ticket.number, _view(ticket).address, link))
            told.append("夜间值班：" + "、".join(s.name for s in night))
    return told


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
                resident = residents.remember(session, request.sender_id, name=request.contact_name,
                                              phone=request.contact_phone,
                                              address=addr if addr.room is not None else None)
                ticket = Ticket(
                    number=_next_number(session, local_day), kind=request.kind,
                    priority=priority_for(request.kind, description), status="open",
                    sender_id=request.sender_id, resident_id=resident.id, community=addr.community,
                    building=addr.building, unit=addr.unit, room=addr.room, facility=request.facility,
                    description=description, contact_name=request.contact_name,
                    contact_phone=request.contact_phone, grid=building.grid if building else None,
                    created_at=now, updated_at=now)
                session.add(ticket)
                session.flush()
                session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=f"resident:{request.sender_id}",
                                        kind="opened", detail=f"{ticket.kind}/{ticket.priority}",
                                        to_status=lc.OPEN))
                photos = attachments.attach_pending(session, request.sender_id, ticket, now)
                told = _enqueue_for_new_ticket(session, ticket, building.group if building else None, ctx)
                session.add(TicketEvent(ticket_id=ticket.id, at=now, actor="system", kind="notified",
                                        detail="、".join(told)))
                session.flush()
                return dataclasses.replace(_view(ticket), attachments=photos)
        except IntegrityError:
            # Two tickets raced for the same number: take the next one.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


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
