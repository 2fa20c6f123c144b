"""Handing a conversation to the staff on duty, and handing it back."""

from __future__ import annotations

from typing import Optional

from sqlalchemy.orm import sessionmaker

from bot import messages
from bot.notify import outbox
from bot.services.tickets import mask_phones_in
from bot.store.db import unit_of_work
from bot.store.models import ChatGroup, Handoff, Staff, utcnow


def start(factory: sessionmaker, sender_id: str, reason: str, inbox_link: str = "http://127.0.0.1:5010/handoffs") -> bool:
    """Open a handoff and tell the duty staff; False when one is already open for this sender."""
    with unit_of_work(factory) as session:
        if session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first() is not None:
            return False
        session.add(Handoff(sender_id=sender_id, reason=(reason or "")[:500]))
        group = session.query(ChatGroup).filter_by(kind="office").order_by(ChatGroup.id).first()
        duty = session.query(Staff).filter_by(on_duty=True).all()
        outbox.enqueue(session, group=group, purpose="handoff",
                       mentions=[s.wecom_userid for s in duty if s.wecom_userid],
                       content=messages.handoff_card(sender_id, mask_phones_in(reason or ""), inbox_link))
        return True


def release(factory: sessionmaker, sender_id: str, by: str) -> bool:
    """Close the open handoff of this sender; False when there was none."""
    with unit_of_work(factory) as session:
        row = session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first()
        if row is None:
            return False
        row.released_at, row.released_by = utcnow(), by[:128]
        return True


def active(factory: sessionmaker, sender_id: str) -> Optional[Handoff]:
    """The open handoff of this sender, if any."""
    with unit_of_work(factory) as session:
        return session.query(Handoff).filter_by(sender_id=sender_id, released_at=None).first()
