"""Announcements: an admin's safety tip, clinic notice or water-stop notice for chosen estates or buildings.

Sending queues one WeChat message per resident who follows the account, lives in the audience (by the
address they gave), and has not said "退订提醒" — each resident at most once (a unique row per
announcement and resident), staggered to `per_minute` so the WeChat API is not flooded. The dispatcher
delivers them like any resident message (customer-service inside 48 hours, template outside).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy import func
from sqlalchemy.orm import Session, sessionmaker

from bot import identity
from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.notify import outbox
from bot.services.scope import ADMIN_ROLES, StaffActor, actor_by_key, in_community, of_community
from bot.store.db import unit_of_work
from bot.store.models import Announcement, AnnouncementRecipient, Estate, Notification, Resident, utcnow

KINDS = {"safety": "安全提示", "clinic": "义诊通知", "water_stop": "停水通知"}
AUTHORS = ADMIN_ROLES
MAX_TITLE, MAX_BODY = 30, 500
DEFAULT_PER_MINUTE = 60


@dataclass(frozen=True)
class AnnouncementView:
    """An announcement with its delivery count."""

    id: int
    kind: str
    title: str
    body: str
    audience: List[Dict[str, Any]]
    author: str
    created_at: dt.datetime
    sent_at: Optional[dt.datetime]
    recipients: int
    delivered: int
    failed: int


def _author(session: Session, staff_key: str) -> StaffActor:
    actor = actor_by_key(session, staff_key)
    if actor.role not in AUTHORS:
        raise NotAllowed("only admins and the community secretary send announcements", staff=staff_key)
    return actor


def _audience(session: Session, audience: Sequence[Dict[str, Any]], actor: StaffActor) -> List[Dict[str, Any]]:
    """The audience checked: estates of the author's community (every community's for the street office)."""
    if not audience:
        raise InvalidInput("choose at least one estate", field="audience")
    known = {e.name: e for e in of_community(session.query(Estate), Estate.community_key, actor).all()}
    clean: List[Dict[str, Any]] = []
    for part in audience:
        estate = known.get(str(part.get("estate") or ""))
        if estate is None:
            raise InvalidInput(f"unknown estate {part.get('estate')!r}", field="audience")
        numbers = {b.number for b in estate.buildings}
        buildings = sorted({int(b) for b in part.get("buildings") or []})
        if any(b not in numbers for b in buildings):
            raise InvalidInput(f"{estate.name} has no such building", field="audience")
        clean.append({"estate": estate.name, "buildings": buildings})
    return clean


def audience_choices(factory: sessionmaker, viewer: str) -> List[Dict[str, Any]]:
    """The estates (with their building numbers) the staff member `viewer` may address."""
    with unit_of_work(factory) as session:
        query = of_community(session.query(Estate), Estate.community_key, _author(session, viewer))
        return [{"name": e.name, "buildings": [b.number for b in e.buildings]} for e in query.order_by(Estate.id)]


def create(factory: sessionmaker, staff_key: str, *, kind: str, title: str, body: str,
           audience: Sequence[Dict[str, Any]], now: Optional[dt.datetime] = None) -> int:
    """Store a draft announcement; returns its id."""
    if kind not in KINDS:
        raise InvalidInput("unknown kind of announcement", field="kind")
    title, body = (title or "").strip(), (body or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput(f"a title of 1-{MAX_TITLE} characters", field="title")
    if not body or len(body) > MAX_BODY:
        raise InvalidInput(f"a text of 1-{MAX_BODY} characters", field="body")
    with unit_of_work(factory) as session:
        author = _author(session, staff_key)
        row = Announcement(kind=kind, title=title, body=body, audience=_audience(session, audience, author),
                           author_id=author.id, community_key=author.community, created_at=now or utcnow())
        session.add(row)
        session.flush()
        return row.id


def recipients(session: Session, audience: Sequence[Dict[str, Any]]) -> List[str]:
    """Sender ids of the WeChat residents in the audience who follow the account and want reminders."""
    found: List[str] = []
    query = session.query(Resident).filter(Resident.unsubscribed_at.is_(None), Resident.reminders_off.is_(False))
    for resident in query.order_by(Resident.id):
        if not identity.is_wechat(resident.sender_id) or resident.community is None:
            continue
        for part in audience:
            if resident.community == part["estate"] and (not part["buildings"]
                                                          or resident.building in part["buildings"]):
                found.append(resident.sender_id)
                break
    return found


def send(factory: sessionmaker, staff_key: str, announcement_id: int, *, per_minute: int = DEFAULT_PER_MINUTE,
         now: Optional[dt.datetime] = None) -> int:
    """Queue the announcement for every resident in its audience (once each); returns how many were queued."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        author = _author(session, staff_key)
        row = session.query(Announcement).filter_by(id=announcement_id).with_for_update().one_or_none()
        if row is None or not in_community(author, row.community_key):
            raise NotFound("no such announcement", id=announcement_id)
        if row.sent_at is not None:
            raise InvalidState("this announcement was sent already", id=announcement_id)
        already = {s for (s,) in session.query(AnnouncementRecipient.sender_id).filter_by(announcement_id=row.id)}
        text = f"【{KINDS[row.kind]}】{row.title}\n{row.body}\n（回复“退订提醒”不再接收社区通知）"
        queued = 0
        for sender_id in recipients(session, row.audience):
            if sender_id in already:
                continue
            due = now + dt.timedelta(seconds=60 * queued / max(1, per_minute))
            notification = outbox.enqueue_resident(session, recipient=sender_id, purpose="announcement", text=text,
                                                   template={"number": KINDS[row.kind], "status": row.title,
                                                             "detail": row.body}, now=due)
            session.flush()
            session.add(AnnouncementRecipient(announcement_id=row.id, sender_id=sender_id,
                                              notification_id=notification.id))
            queued += 1
        row.sent_at = now
        return queued


def overview(factory: sessionmaker, viewer: str, limit: int = 50) -> List[AnnouncementView]:
    """The newest announcements of the staff member `viewer`'s community with how many residents each reached."""
    with unit_of_work(factory) as session:
        rows = (of_community(session.query(Announcement), Announcement.community_key, _author(session, viewer))
                .order_by(Announcement.id.desc()).limit(limit).all())
        counts: Dict[int, Dict[str, int]] = {}
        for announcement_id, status, n in (session.query(AnnouncementRecipient.announcement_id, Notification.status,
                                                         func.count())
                                           .join(Notification, AnnouncementRecipient.notification_id == Notification.id)
                                           .group_by(AnnouncementRecipient.announcement_id, Notification.status)):
            counts.setdefault(announcement_id, {})[status] = n
        return [AnnouncementView(id=r.id, kind=r.kind, title=r.title, body=r.body, audience=list(r.audience),
                                 author=r.author.name, created_at=r.created_at, sent_at=r.sent_at,
                                 recipients=sum(counts.get(r.id, {}).values()),
                                 delivered=counts.get(r.id, {}).get(outbox.SENT, 0),
                                 failed=counts.get(r.id, {}).get(outbox.FAILED, 0)
                                 + counts.get(r.id, {}).get(outbox.UNDELIVERED, 0)) for r in rows]


_REMINDER_COMMANDS = {"退订提醒": False, "退订": False, "取消提醒": False, "恢复提醒": True, "订阅提醒": True}


def reminder_command(text: str) -> Optional[bool]:
    """False for "退订提醒", True for "恢复提醒", None for anything else."""
    return _REMINDER_COMMANDS.get((text or "").strip().rstrip("。.!！"))


def set_reminders(factory: sessionmaker, sender_id: str, on: bool) -> None:
    """A resident's "退订提醒" (off) or "恢复提醒" (on)."""
    with unit_of_work(factory) as session:
        resident = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        if resident is None:
            resident = Resident(sender_id=sender_id)
            session.add(resident)
        resident.reminders_off = not on
