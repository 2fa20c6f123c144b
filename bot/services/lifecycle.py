"""Moving tickets through their lifecycle (bot/lifecycle.py) for staff, residents and the system clock.

Every change happens in one transaction with its ticket event (who, when, from, to, note) and its outbox
rows: WeCom cards for staff, WeChat messages for the resident. Illegal moves raise IllegalTransition,
out-of-scope tickets NotFound, actions beyond one's role NotAllowed; each edge translates them once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from bot import identity, messages
from bot import lifecycle as lc
from bot.address import Address
from bot.config import EscalationSettings, Settings
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.notify import outbox
from bot.services.scope import StaffActor, actor_by_key, assignable, ticket_in_scope
from bot.store.db import unit_of_work
from bot.store.models import DEFAULT_COMMUNITY, ChatGroup, Staff, Ticket, TicketEvent, utcnow
from bot.triage import priority_for


@dataclass(frozen=True)
class Outcome:
    """What an action did: the ticket's number and new state, and who holds it."""

    number: str
    action: str
    from_status: str
    status: str
    assignee: Optional[str]  # staff key


@dataclass(frozen=True)
class Context:
    """What the lifecycle needs from the settings: deadlines, time zone, where cards link to."""

    deadlines: EscalationSettings = EscalationSettings()
    timezone: str = "Asia/Shanghai"
    link_base: str = "http://127.0.0.1:5010"
    max_open_tickets: int = 5  # per resident at once (HG_MAX_OPEN_TICKETS); 0: no cap

    @classmethod
    def from_settings(cls, settings: Settings) -> "Context":
        """Built from the settings."""
        return cls(deadlines=settings.escalation, timezone=settings.timezone, link_base=settings.console_base_url,
                   max_open_tickets=settings.max_open_tickets)

    def ticket_link(self, number: str) -> str:
        """The ticket's console page."""
        return f"{self.link_base}/tickets/{number}"

    def local(self, at: dt.datetime) -> dt.datetime:
        """A stored (naive UTC) time in the community's time zone."""
        return at.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(self.timezone))


def _address(ticket: Ticket) -> str:
    return Address(ticket.community, ticket.building, ticket.unit, ticket.room).label()


def _clean_note(note: Optional[str]) -> str:
    return (note or "").strip()[: lc.MAX_NOTE]


def office_group(session: Session, community: str = DEFAULT_COMMUNITY) -> Optional[ChatGroup]:
    """The community office's group (handoffs, feedback, the night roster) of `community`."""
    return (session.query(ChatGroup).filter_by(kind="office", community_key=community).order_by(ChatGroup.id)
            .first())


def staff_group(session: Session, ticket: Ticket) -> Optional[ChatGroup]:
    """The group where a ticket's staff talk about it: its grid's group, else the office group."""
    if ticket.grid is not None and ticket.grid.group is not None:
        return ticket.grid.group
    return office_group(session, ticket.community_key)


def _deadline(ctx: Context, ticket: Ticket, start: dt.datetime) -> dt.datetime:
    hours = ctx.deadlines.urgent_resolve_hours if ticket.priority == "urgent" else ctx.deadlines.normal_resolve_hours
    return start + dt.timedelta(hours=hours)


def _when(ctx: Context, ticket: Ticket, eta: str) -> str:
    if eta:
        return f"预计{eta}"
    due = ctx.local(ticket.due_at) if ticket.due_at else None
    return f"会在{due:%m月%d日 %H:%M}前处理" if due else "会尽快联系您"


def _tell_resident(session: Session, ticket: Ticket, purpose: str, text: str, now: dt.datetime) -> None:
    """Queue a WeChat message to the ticket's resident; REST residents read it on their next status query."""
    if not identity.is_wechat(ticket.sender_id):
        return
    outbox.enqueue_resident(session, now=now, recipient=ticket.sender_id, purpose=purpose, text=text, ticket_id=ticket.id,
                            template={"number": ticket.number, "status": lc.STATE_LABELS[ticket.status],
                                      "detail": text})


def _record(session: Session, ticket: Ticket, action: str, actor: str, before: str, note: str,
            now: dt.datetime) -> None:
    session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=actor, kind=action, detail=note or None,
                            from_status=before, to_status=ticket.status))
    ticket.updated_at = now
    if note and action != "cancel":
        ticket.last_note = note


def _pick_assignee(session: Session, ticket: Ticket, key: Optional[str]) -> Staff:
    if not key:
        raise InvalidInput("choose who takes the ticket", field="assignee")
    for staff in assignable(session, ticket):
        if staff.key == key:
            return staff
    raise InvalidInput("that staff member cannot take this ticket", field="assignee", assignee=key)


def perform(factory: sessionmaker, actor_key: str, number: str, action: str, *, note: Optional[str] = None,
            assignee: Optional[str] = None, eta: Optional[str] = None, kind: Optional[str] = None,
            ctx: Context = Context(), now: Optional[dt.datetime] = None) -> Outcome:
    """A staff member takes `action` on ticket `number` (see bot/lifecycle.py for the rules)."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        actor = actor_by_key(session, actor_key)
        ticket = ticket_in_scope(session, actor, number)
        return _perform(session, actor, ticket, action, _clean_note(note), assignee, _clean_note(eta)[:64], ctx, now,
                        kind)


def _perform(session: Session, actor: StaffActor, ticket: Ticket, action: str, note: str, assignee_key: Optional[str],
             eta: str, ctx: Context, now: dt.datetime, kind: Optional[str] = None) -> Outcome:
    t = lc.transition(action)
    holds = ticket.assignee_id == actor.id
    if not lc.may(action, actor.role, holds=holds):
        raise NotAllowed(f"a {actor.role} may not {action} this ticket", action=action, number=ticket.number)
    before = ticket.status
    target = lc.target_of(action, before, resolved_at=ticket.resolved_at, now=now)
    if t.needs_note and not note:
        raise InvalidInput("this action needs a note" if action == "note" else "please give a reason or what was done",
                           field="note", action=action)
    if t.needs_kind and (kind not in messages.KIND_LABELS or kind == ticket.kind):
        raise InvalidInput("choose the ticket's new kind" if kind != ticket.kind else "the ticket already has this kind",
                           field="kind", action=action)
    previous = ticket.assignee
    if t.needs_assignee:
        new_holder = _pick_assignee(session, ticket, assignee_key)
        if action == "reassign" and previous is not None and new_holder.id == previous.id:
            raise InvalidInput("the ticket is already theirs", field="assignee")
    elif action == "accept":
        new_holder = session.get(Staff, actor.id)
    else:
        new_holder = previous
    ticket.status = target
    link = ctx.ticket_link(ticket.number)
    if action in ("accept", "assign", "reassign"):
        ticket.assignee = new_holder
        ticket.accepted_at = ticket.accepted_at or now
        ticket.due_at = ticket.due_at or _deadline(ctx, ticket, now)
        _record(session, ticket, action, actor.label, before, note or (f"负责人：{new_holder.name}" if new_holder else ""),
                now)
        if action != "accept":
            outbox.enqueue(session, now=now, group=staff_group(session, ticket), purpose="assigned", ticket_id=ticket.id,
                           mentions=[new_holder.wecom_userid] if new_holder and new_holder.wecom_userid else [],
                           content=messages.ticket_assigned_card(ticket.number, _address(ticket), new_holder.name,
                                                                 actor.label, link))
        if previous is None or previous.id != new_holder.id:
            text = (messages.resident_reassigned if previous is not None else messages.resident_assigned)(
                ticket.number, new_holder.name, _when(ctx, ticket, eta))
            _tell_resident(session, ticket, "resident_assigned", text, now)
    elif action == "retype":
        detail = f"类型：{messages.KIND_LABELS[ticket.kind]} → {messages.KIND_LABELS[kind]}"
        ticket.kind, ticket.priority = kind, priority_for(kind, ticket.description)
        _record(session, ticket, action, actor.label, before, f"{detail}（{note}）" if note else detail, now)
    elif action == "start":
        _record(session, ticket, action, actor.label, before, note, now)
    elif action == "note":
        _record(session, ticket, action, actor.label, before, note, now)
    elif action == "resolve":
        ticket.resolved_at, ticket.resolution = now, note
        _record(session, ticket, action, actor.label, before, note, now)
        _tell_resident(session, ticket, "resident_resolved", messages.resident_resolved(ticket.number, note), now)
    elif action == "return":
        ticket.assignee = None
        _record(session, ticket, action, actor.label, before, note, now)
        leader = ticket.grid.leader if ticket.grid is not None else None
        outbox.enqueue(session, now=now, group=staff_group(session, ticket), purpose="returned", ticket_id=ticket.id,
                       mentions=[leader.wecom_userid] if leader is not None and leader.wecom_userid else [],
                       content=messages.ticket_returned_card(ticket.number, _address(ticket), actor.label, note, link))
        _tell_resident(session, ticket, "resident_returned", messages.resident_returned(ticket.number), now)
    else:  # pragma: no cover - the table's staff actions are all handled above
        raise NotAllowed(f"{action} is not a staff action", action=action)
    session.flush()
    return Outcome(ticket.number, action, before, ticket.status, ticket.assignee.key if ticket.assignee else None)


def resident_action(factory: sessionmaker, sender_id: str, number: str, action: str, *, rating: Optional[int] = None,
                    comment: Optional[str] = None, ctx: Context = Context(),
                    now: Optional[dt.datetime] = None) -> Outcome:
    """The resident cancels, confirms (with an optional 1-5 rating and comment) or reopens one of their tickets."""
    now = now or utcnow()
    if action not in ("cancel", "confirm", "reopen"):
        raise NotAllowed(f"a resident may not {action} a ticket", action=action)
    if rating is not None and not 1 <= rating <= 5:
        raise InvalidInput("a rating is 1 to 5", field="rating")
    with unit_of_work(factory) as session:
        ticket = session.query(Ticket).filter_by(number=(number or "").upper()).one_or_none()
        if ticket is None or ticket.sender_id != sender_id:
            raise NotFound("no such ticket for this resident", number=number)
        before = ticket.status
        ticket.status = lc.target_of(action, before, resolved_at=ticket.resolved_at, now=now)
        note = _clean_note(comment)
        link = ctx.ticket_link(ticket.number)
        actor = f"resident:{sender_id}"
        if action == "cancel":
            _record(session, ticket, action, actor, before, note or "居民取消", now)
            group = (ticket.grid.property_group if ticket.grid and ticket.kind in ("leak", "repair") else None) or \
                staff_group(session, ticket)
            outbox.enqueue(session, now=now, group=group, purpose="cancelled", ticket_id=ticket.id,
                           content=messages.ticket_cancelled_card(ticket.number, _address(ticket)))
        elif action == "confirm":
            ticket.confirmed_at = ticket.closed_at = now
            if rating is not None:
                ticket.rating = rating
            if note:
                ticket.rating_comment = note
            _record(session, ticket, action, actor, before,
                    f"评分 {rating}" + (f"：{note}" if note else "") if rating is not None else note, now)
        else:  # reopen
            ticket.reopened = (ticket.reopened or 0) + 1
            previous = ticket.assignee
            ticket.assignee, ticket.resolved_at, ticket.closed_at, ticket.confirmed_at = None, None, None, None
            ticket.due_at = None
            _record(session, ticket, action, actor, before, note or "居民反映没修好", now)
            mentions = [s.wecom_userid for s in (ticket.grid.leader if ticket.grid else None, previous)
                        if s is not None and s.wecom_userid]
            outbox.enqueue(session, now=now, group=staff_group(session, ticket), purpose="reopened", ticket_id=ticket.id,
                           mentions=mentions, content=messages.ticket_reopened_card(ticket.number, _address(ticket), link))
        session.flush()
        return Outcome(ticket.number, action, before, ticket.status, ticket.assignee.key if ticket.assignee else None)


def awaiting_confirmation(factory: sessionmaker, sender_id: str, now: Optional[dt.datetime] = None) -> Optional[str]:
    """The number of the resident's most recently resolved ticket that still awaits their word (within 7 days)."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        ticket = (session.query(Ticket).filter(Ticket.sender_id == sender_id, Ticket.status == lc.RESOLVED,
                                               Ticket.resolved_at >= now - lc.REOPEN_WINDOW)
                  .order_by(Ticket.resolved_at.desc(), Ticket.id.desc()).first())
        return ticket.number if ticket is not None else None


def close_resolved(factory: sessionmaker, now: Optional[dt.datetime] = None, limit: int = 100) -> List[str]:
    """Close tickets resolved more than 72 hours ago that the resident never confirmed; returns their numbers."""
    now = now or utcnow()
    closed: List[str] = []
    with unit_of_work(factory) as session:
        rows: Sequence[Ticket] = (session.query(Ticket).filter(Ticket.status == lc.RESOLVED,
                                                               Ticket.resolved_at <= now - lc.AUTO_CLOSE_AFTER)
                                  .order_by(Ticket.id).limit(limit).all())
        for ticket in rows:
            before = ticket.status
            ticket.status = lc.target_of("close", before, resolved_at=ticket.resolved_at, now=now)
            ticket.closed_at = now
            _record(session, ticket, "close", "system", before, "办结72小时后自动关闭", now)
            closed.append(ticket.number)
    return closed
