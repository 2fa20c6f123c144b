"""Handing a conversation to the staff on duty, answering the resident from the console, and handing it back.

`start` opens a handoff (the assistant falls silent: Rasa pauses the conversation); the console's inbox lists
the open ones (`waiting`), shows one (`detail`), answers the resident (`reply`, through the outbox) and hands
it back (`hand_back` → `release`, the one place a handoff is closed). Who may use the inbox is decided here
(`inbox_actor`: scope.HANDOFF_ROLES), so the pages, the API and any other caller get the same answer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Tuple

from sqlalchemy import func
from sqlalchemy.orm import Session, sessionmaker

from bot import identity, messages
from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.notify import outbox
from bot.phone import mask_phone
from bot.services import routing, scope
from bot.services.community import resident_community as community_of_resident
from bot.services.tickets import mask_phones_in
from bot.store.db import unit_of_work
from bot.store.models import Handoff, HandoffReply, Notification, Resident, Staff, utcnow

MAX_REPLY_CHARS = 600
REPLY_PURPOSE = "handoff_reply"


@dataclass(frozen=True)
class WaitingHandoff:
    """One open handoff as the inbox lists it (the resident's phone masked)."""

    id: int
    sender_id: str
    display: str  # bot/identity.py display_sender
    resident_name: Optional[str]
    resident_phone: Optional[str]  # masked: 138****5678
    started_at: dt.datetime  # naive UTC
    reason: str  # phones masked
    replies: int
    can_message: bool  # a WeChat resident (REST residents cannot be messaged)


@dataclass(frozen=True)
class ReplyView:
    """One staff answer and how its delivery went (status None: not queued, e.g. nothing to send it through)."""

    id: int
    at: dt.datetime
    staff_key: str
    staff_name: str
    staff_label: str  # 值班人员马桂兰
    text: str
    status: Optional[str]  # pending | sent | failed | undelivered
    last_error: Optional[str]


@dataclass(frozen=True)
class HandoffDetail:
    """One handoff with the staff replies so far."""

    handoff: WaitingHandoff
    released_at: Optional[dt.datetime]
    released_by: Optional[str]  # who released it, for people (a staff label, or what the CLI was told)
    replies: Tuple[ReplyView, ...]

    @property
    def open(self) -> bool:
        """Whether the conversation is still with the staff."""
        return self.released_at is None


@dataclass(frozen=True)
class HandedBack:
    """The outcome of `hand_back`: whose conversation, and whether this call closed it (False: already released)."""

    handoff_id: int
    sender_id: str
    closed_now: bool


def start(factory: sessionmaker, sender_id: str, reason: str, inbox_link: str = "http://127.0.0.1:5010/handoffs") -> bool:
    """Open a handoff and tell the duty staff; False when one is already open for this sender."""
    with unit_of_work(factory) as session:
        if session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first() is not None:
            return False
        community = community_of_resident(session, sender_id)
        session.add(Handoff(sender_id=sender_id, reason=(reason or "")[:500], community_key=community))
        group = routing.office_group(session, community)
        duty = routing.duty_staff(session, community)
        outbox.enqueue(session, group=group, purpose="handoff",
                       mentions=[s.wecom_userid for s in duty if s.wecom_userid],
                       content=messages.handoff_card(sender_id, mask_phones_in(reason or ""), inbox_link))
        return True


def release(factory: sessionmaker, sender_id: str, by: str, now: Optional[dt.datetime] = None) -> bool:
    """Close the open handoff of this sender, recording who released it; False when there was none."""
    with unit_of_work(factory) as session:
        row = session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first()
        if row is None:
            return False
        row.released_at, row.released_by = now or utcnow(), by[:128]
        return True


def active(factory: sessionmaker, sender_id: str) -> Optional[Handoff]:
    """The open handoff of this sender, if any."""
    with unit_of_work(factory) as session:
        return session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first()


# ---- the console's inbox ------------------------------------------------------------------------------------

def inbox_actor(session: Session, staff_key: str) -> scope.StaffActor:
    """The staff member `staff_key` if the handoff inbox is theirs (scope.HANDOFF_ROLES); NotAllowed otherwise."""
    try:
        actor = scope.actor_by_key(session, staff_key)
    except NotFound:
        raise NotAllowed("no such active staff member", staff=staff_key) from None
    if not actor.handles_handoffs:
        raise NotAllowed("the handoff inbox is for duty staff, the secretary and admins", role=actor.role)
    return actor


def may_use_inbox(factory: sessionmaker, staff_key: str) -> bool:
    """Whether `staff_key` may open the handoff inbox (the same rule as every inbox call)."""
    with unit_of_work(factory) as session:
        try:
            inbox_actor(session, staff_key)
        except NotAllowed:
            return False
        return True


def _summary(session: Session, row: Handoff, replies: int) -> WaitingHandoff:
    resident = session.query(Resident).filter_by(sender_id=row.sender_id).one_or_none()
    phone = mask_phone(resident.phone) if resident is not None and resident.phone else None
    return WaitingHandoff(id=row.id, sender_id=row.sender_id, display=identity.display_sender(row.sender_id),
                          resident_name=resident.name if resident is not None else None, resident_phone=phone,
                          started_at=row.started_at, reason=mask_phones_in(row.reason or ""), replies=replies,
                          can_message=identity.is_wechat(row.sender_id))


def waiting(factory: sessionmaker, staff_key: str) -> List[WaitingHandoff]:
    """The open handoffs, oldest first, for someone the inbox is for."""
    with unit_of_work(factory) as session:
        actor = inbox_actor(session, staff_key)
        counts = dict(session.query(HandoffReply.handoff_id, func.count(HandoffReply.id))
                      .join(Handoff, Handoff.id == HandoffReply.handoff_id)
                      .filter(Handoff.released_at.is_(None)).group_by(HandoffReply.handoff_id).all())
        rows = scope.of_community(session.query(Handoff), Handoff.community_key, actor) \
            .filter(Handoff.released_at.is_(None)).order_by(Handoff.started_at, Handoff.id).all()
        return [_summary(session, row, counts.get(row.id, 0)) for row in rows]


def _released_by(session: Session, by: Optional[str]) -> Optional[str]:
    if not by:
        return by
    staff = session.query(Staff).filter_by(key=by).one_or_none()
    return f"{scope.actor_for(session, staff).label}" if staff is not None else by


def _handoff(session: Session, actor: scope.StaffActor, handoff_id: int) -> Handoff:
    row = session.get(Handoff, handoff_id)
    if row is None or not scope.in_community(actor, row.community_key):
        raise NotFound("no such handoff", handoff_id=handoff_id)
    return row


def detail(factory: sessionmaker, staff_key: str, handoff_id: int) -> HandoffDetail:
    """One handoff (open or released) with its replies and their delivery status; NotFound for an unknown id."""
    with unit_of_work(factory) as session:
        actor = inbox_actor(session, staff_key)
        row = _handoff(session, actor, handoff_id)
        replies = []
        for reply in row.replies:
            note = session.get(Notification, reply.notification_id) if reply.notification_id else None
            staff = reply.staff
            replies.append(ReplyView(
                id=reply.id, at=reply.at, staff_key=staff.key, staff_name=staff.name,
                staff_label=f"{scope.actor_for(session, staff).label}", text=reply.text,
                status=note.status if note is not None else None, last_error=note.last_error if note else None))
        return HandoffDetail(handoff=_summary(session, row, len(replies)), released_at=row.released_at,
                             released_by=_released_by(session, row.released_by), replies=tuple(replies))


def reply_text(label: str, text: str) -> str:
    """What the resident receives: who answers, then the answer (社区值班人员马桂兰：…)."""
    return f"社区{label}：{text}"


def reply(factory: sessionmaker, handoff_id: int, staff_key: str, text: str,
          now: Optional[dt.datetime] = None) -> ReplyView:
    """Answer the resident of an open handoff: the reply row and its WeChat message, in one transaction.

    InvalidInput for empty or too long text and for REST residents (nothing can reach them); InvalidState
    once the handoff is released.
    """
    now = now or utcnow()
    body = (text or "").strip()
    if not body:
        raise InvalidInput("the reply is empty", field="text")
    if len(body) > MAX_REPLY_CHARS:
        raise InvalidInput(f"the reply is over {MAX_REPLY_CHARS} characters", field="text")
    with unit_of_work(factory) as session:
        actor = inbox_actor(session, staff_key)
        row = _handoff(session, actor, handoff_id)
        if row.released_at is not None:
            raise InvalidState("the handoff was already handed back to the assistant", handoff_id=handoff_id)
        if not identity.is_wechat(row.sender_id):
            raise InvalidInput("this resident talks over the REST API and cannot be messaged; only WeChat "
                               "residents receive replies")
        message = reply_text(actor.label, body)
        note = outbox.enqueue_resident(session, recipient=row.sender_id, purpose=REPLY_PURPOSE, text=message,
                                       template={"status": "社区工作人员回复", "detail": message[:200]}, now=now)
        session.flush()
        saved = HandoffReply(handoff_id=row.id, staff_id=actor.id, at=now, text=body, notification_id=note.id)
        session.add(saved)
        session.flush()
        return ReplyView(id=saved.id, at=now, staff_key=actor.key, staff_name=actor.name, staff_label=actor.label,
                         text=body, status=note.status, last_error=None)


def hand_back(factory: sessionmaker, handoff_id: int, staff_key: str,
              now: Optional[dt.datetime] = None) -> HandedBack:
    """Release the handoff `handoff_id` as `staff_key` (through `release`); a released one stays as it was.

    The caller then resumes the conversation in Rasa (also when it was already released: a retry).
    """
    with unit_of_work(factory) as session:
        actor = inbox_actor(session, staff_key)
        row = _handoff(session, actor, handoff_id)
        sender_id, is_open = row.sender_id, row.released_at is None
        if not is_open and session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first():
            raise InvalidState("the resident asked for staff again: a newer handoff is open", handoff_id=handoff_id)
    closed = is_open and release(factory, sender_id, by=staff_key, now=now)
    return HandedBack(handoff_id=handoff_id, sender_id=sender_id, closed_now=closed)
