"""What the console and its API show of tickets: a staff member's queue (filtered, in scope) and one ticket.

Scope comes from bot/services/scope.py, the actions one may take from bot/lifecycle.py; this module only
reads. The queue masks phone numbers; only a ticket's own detail carries the full number.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy import case
from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot import vulnerability as vul
from bot.address import Address
from bot.dates import utc_iso
from bot.config import EscalationSettings
from bot.errors import InvalidInput
from bot.messages import KIND_LABELS
from bot.phone import mask_phone
from bot.services.scope import StaffActor, actor_by_key, assignable, ticket_in_scope, visible
from bot.store.db import unit_of_work
from bot.store.models import Attachment, Notification, Ticket

QUEUE_LIMIT = 100
KINDS: Tuple[str, ...] = tuple(KIND_LABELS)
URGENCIES: Tuple[str, ...] = ("urgent", "normal")
URGENCY_LABELS = {"urgent": "紧急", "normal": "普通"}
NOTIFICATION_STATUS_LABELS = {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "undelivered": "未送达"}
NOTIFICATION_PURPOSE_LABELS = {
    "new_ticket": "新工单通知", "pause_water": "暂停用水提醒", "night_duty": "夜间值班通知",
    "vulnerable_resident": "需关照居民通知", "address_corrected": "地址更正通知", "assigned": "派单通知",
    "returned": "退回通知", "reopened": "重新处理通知", "cancelled": "取消通知", "handoff": "转人工通知",
    "resident_assigned": "告知居民已派单", "resident_resolved": "告知居民已办结", "resident_returned": "告知居民已退回",
}
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters: state, kind, urgency (None: any) and "mine" (assigned to me)."""

    state: Optional[str] = None
    kind: Optional[str] = None
    urgency: Optional[str] = None
    mine: bool = False

    @classmethod
    def parse(cls, args: Mapping[str, Optional[str]]) -> "QueueFilter":
        """From query parameters `state`, `type`, `urgency`, `mine`; InvalidInput naming the bad one."""
        def pick(name: str, allowed: Tuple[str, ...]) -> Optional[str]:
            raw = (args.get(name) or "").strip()
            if not raw:
                return None
            if raw not in allowed:
                raise InvalidInput(f"{name} must be one of {list(allowed)}", field=name)
            return raw

        mine_raw = (args.get("mine") or "").strip().lower()
        if mine_raw not in _TRUE + _FALSE:
            raise InvalidInput("mine must be 1 or 0", field="mine")
        return cls(state=pick("state", lc.STATES), kind=pick("type", KINDS), urgency=pick("urgency", URGENCIES),
                   mine=mine_raw in _TRUE)

    def query_string(self, **changes: Any) -> str:
        """These filters (with `changes`) as a query string for links."""
        values = {"state": self.state, "type": self.kind, "urgency": self.urgency, "mine": "1" if self.mine else None}
        values.update(changes)
        parts = [f"{k}={v}" for k, v in values.items() if v]
        return ("?" + "&".join(parts)) if parts else ""


@dataclass(frozen=True)
class QueueRow:
    """One ticket card of the queue (phone masked)."""

    number: str
    kind: str
    kind_label: str
    priority: str
    urgency_label: str
    status: str
    status_label: str
    address: str
    holder: Optional[str]  # the assignee's name
    holder_key: Optional[str]
    created_at: dt.datetime
    age: str
    overdue: bool
    phone: str  # masked

    def as_json(self) -> Dict[str, Any]:
        """The row as the API lists it (schema TicketSummary)."""
        return {"number": self.number, "kind": self.kind, "kind_label": self.kind_label, "priority": self.priority,
                "status": self.status, "status_label": self.status_label, "address": self.address,
                "assignee": self.holder_key, "assignee_name": self.holder, "created_at": _iso(self.created_at),
                "age": self.age, "overdue": self.overdue, "contact_phone": self.phone}


@dataclass(frozen=True)
class Queue:
    """Up to QUEUE_LIMIT rows and how many tickets matched in all."""

    rows: List[QueueRow]
    total: int

    @property
    def more(self) -> bool:
        """Whether more tickets matched than are shown."""
        return self.total > len(self.rows)


@dataclass(frozen=True)
class EventView:
    """One history entry."""

    at: dt.datetime  # local time
    actor: str
    kind: str
    from_label: str
    to_label: str
    note: str


@dataclass(frozen=True)
class NotificationView:
    """One outbox message about the ticket."""

    channel: str
    purpose: str
    purpose_label: str
    status: str
    status_label: str
    attempts: int
    last_error: str
    created_at: dt.datetime  # local time


@dataclass(frozen=True)
class Detail:
    """Everything the ticket page shows (full phone included) and what the viewer may do."""

    row: QueueRow
    sender_id: str
    created_at_utc: dt.datetime
    description: str
    facility: str
    contact_name: str
    contact_phone: str  # full
    resolution: str
    rating: Optional[int]
    rating_comment: str
    due_at: Optional[dt.datetime]  # local
    photos: List[str]
    events: List[EventView]
    notifications: List[NotificationView]
    actions: Tuple[str, ...]
    assignable: List[Tuple[str, str]] = field(default_factory=list)  # (key, "网格员周明")
    vulnerability: Tuple[str, ...] = ()  # bot/vulnerability.py kinds
    vulnerability_note: str = ""  # the resident's words, or "居民档案"
    profile_vulnerability: Tuple[str, ...] = ()  # what the resident's profile remembers now
    may_clear_profile: bool = False  # the viewer may clear it (lifecycle.PROFILE_EDITORS)

    @property
    def vulnerability_label(self) -> str:
        """"独居老人，行动不便", empty for a resident who said nothing of the kind."""
        return vul.label(self.vulnerability)

    @property
    def profile_vulnerability_label(self) -> str:
        return vul.label(self.profile_vulnerability)

    def as_json(self) -> Dict[str, Any]:
        """The detail as the API shows it (schema TicketDetail)."""
        out = self.row.as_json()
        out.update({
            "description": self.description, "facility": self.facility or None,
            "contact_name": self.contact_name or None, "contact_phone": self.contact_phone or None,
            "resolution": self.resolution or None, "rating": self.rating,
            "due_at": _iso(self.due_at) if self.due_at else None, "photos": list(self.photos),
            "events": [{"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "from": e.from_label or None,
                        "to": e.to_label or None, "note": e.note or None} for e in self.events],
            "notifications": [{"channel": n.channel, "purpose": n.purpose, "status": n.status,
                               "attempts": n.attempts, "last_error": n.last_error or None,
                               "created_at": _iso(n.created_at)} for n in self.notifications],
            "allowed_actions": list(self.actions),
            "assignable": [{"key": k, "label": label} for k, label in self.assignable],
            "vulnerability": list(self.vulnerability), "vulnerability_label": self.vulnerability_label or None,
            "vulnerability_note": self.vulnerability_note or None,
        })
        return out


def _iso(at: dt.datetime) -> str:
    return utc_iso(at) or ""


def _local(at: dt.datetime, timezone: str) -> dt.datetime:
    return at.replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(timezone))


def age_label(created_at: dt.datetime, now: dt.datetime) -> str:
    """How long ago: 刚刚, 12分钟前, 3小时前, 2天前."""
    minutes = max(0, int((now - created_at).total_seconds() // 60))
    if minutes < 1:
        return "刚刚"
    if minutes < 60:
        return f"{minutes}分钟前"
    if minutes < 24 * 60:
        return f"{minutes // 60}小时前"
    return f"{minutes // (24 * 60)}天前"


def is_overdue(ticket: Ticket, now: dt.datetime, deadlines: EscalationSettings) -> bool:
    """Active and past its due time, or still open past the escalation limit for accepting it."""
    if ticket.status not in lc.ACTIVE:
        return False
    if ticket.due_at is not None and now > ticket.due_at:
        return True
    if ticket.status == lc.OPEN:
        limit = (dt.timedelta(minutes=deadlines.urgent_accept_minutes) if ticket.priority == "urgent"
                 else dt.timedelta(hours=deadlines.normal_accept_hours))
        return now - ticket.created_at > limit
    return False


def _row(ticket: Ticket, now: dt.datetime, deadlines: EscalationSettings) -> QueueRow:
    holder = ticket.assignee
    return QueueRow(
        number=ticket.number, kind=ticket.kind, kind_label=KIND_LABELS.get(ticket.kind, ticket.kind),
        priority=ticket.priority, urgency_label=URGENCY_LABELS.get(ticket.priority, ticket.priority),
        status=ticket.status, status_label=lc.STATE_LABELS.get(ticket.status, ticket.status),
        address=Address(ticket.community, ticket.building, ticket.unit, ticket.room).label() or (ticket.facility or ""),
        holder=holder.name if holder is not None else None, holder_key=holder.key if holder is not None else None,
        created_at=ticket.created_at, age=age_label(ticket.created_at, now),
        overdue=is_overdue(ticket, now, deadlines),
        phone=mask_phone(ticket.contact_phone) if ticket.contact_phone else "")


def queue(factory: sessionmaker, actor_key: str, filters: QueueFilter, now: dt.datetime,
          deadlines: EscalationSettings = EscalationSettings(), limit: int = QUEUE_LIMIT) -> Queue:
    """The tickets in the actor's scope matching `filters`, urgent first, newest first within each."""
    with unit_of_work(factory) as session:
        actor = actor_by_key(session, actor_key)
        query = visible(session.query(Ticket), actor)
        if filters.state:
            query = query.filter(Ticket.status == filters.state)
        if filters.kind:
            query = query.filter(Ticket.kind == filters.kind)
        if filters.urgency:
            query = query.filter(Ticket.priority == filters.urgency)
        if filters.mine:
            query = query.filter(Ticket.assignee_id == actor.id)
        total = query.count()
        rows = (query.order_by(case((Ticket.priority == "urgent", 0), else_=1), Ticket.created_at.desc(),
                               Ticket.id.desc()).limit(limit).all())
        return Queue([_row(t, now, deadlines) for t in rows], total)


def _staff_label(role: str, name: str) -> str:
    return f"{lc.ROLE_LABELS.get(role, '')}{name}"


def _actor_label(actor: str) -> str:
    if actor.startswith("resident:"):
        return "居民"
    if actor == "system":
        return "系统"
    return actor


def _detail(session: Session, actor: StaffActor, ticket: Ticket, now: dt.datetime, deadlines: EscalationSettings,
            timezone: str) -> Detail:
    photos = [a.url for a in session.query(Attachment).filter_by(ticket_id=ticket.id).order_by(Attachment.id)
              if a.url]
    events = [EventView(at=_local(e.at, timezone), actor=_actor_label(e.actor), kind=e.kind,
                        from_label=lc.STATE_LABELS.get(e.from_status or "", ""),
                        to_label=lc.STATE_LABELS.get(e.to_status or "", ""), note=e.detail or "")
              for e in ticket.events]
    notes = [NotificationView(channel=n.channel, purpose=n.purpose,
                              purpose_label=NOTIFICATION_PURPOSE_LABELS.get(n.purpose, n.purpose), status=n.status,
                              status_label=NOTIFICATION_STATUS_LABELS.get(n.status, n.status),
                              attempts=n.attempts or 0, last_error=n.last_error or "",
                              created_at=_local(n.created_at, timezone))
             for n in session.query(Notification).filter_by(ticket_id=ticket.id).order_by(Notification.id)]
    actions = lc.allowed_actions(ticket.status, actor.role, holds=ticket.assignee_id == actor.id)
    people = [(s.key, _staff_label(s.role, s.name)) for s in assignable(session, ticket)] \
        if {"assign", "reassign"} & set(actions) else []
    return Detail(row=_row(ticket, now, deadlines), sender_id=ticket.sender_id, created_at_utc=ticket.created_at,
                  description=ticket.description, facility=ticket.facility or "",
                  contact_name=ticket.contact_name or "", contact_phone=ticket.contact_phone or "",
                  resolution=ticket.resolution or "", rating=ticket.rating, rating_comment=ticket.rating_comment or "",
                  due_at=_local(ticket.due_at, timezone) if ticket.due_at else None, photos=photos, events=events,
                  notifications=notes, actions=actions, assignable=people,
                  vulnerability=vul.ordered(ticket.vulnerability or []), vulnerability_note=ticket.vulnerability_note or "",
                  profile_vulnerability=vul.ordered(ticket.resident.vulnerability or []) if ticket.resident else (),
                  may_clear_profile=actor.role in lc.PROFILE_EDITORS)


def detail(factory: sessionmaker, actor_key: str, number: str, now: dt.datetime,
           deadlines: EscalationSettings = EscalationSettings(), timezone: str = "Asia/Shanghai") -> Detail:
    """Ticket `number` as the actor sees it; NotFound when missing or outside their scope."""
    with unit_of_work(factory) as session:
        actor = actor_by_key(session, actor_key)
        ticket = ticket_in_scope(session, actor, number)
        return _detail(session, actor, ticket, now, deadlines, timezone)
