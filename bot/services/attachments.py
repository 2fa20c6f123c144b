"""Photos residents send: attached to their latest open ticket, or kept pending for the next ticket they open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot.store.db import unit_of_work
from bot.store.models import Attachment, Ticket, TicketEvent, utcnow

OPEN_STATUSES = lc.ACTIVE
# A photo sent long before the resident opens a ticket probably belongs to something else.
PENDING_WINDOW = dt.timedelta(hours=24)
MAX_URL = 1024
MAX_MEDIA_ID = 128


@dataclass(frozen=True)
class AttachmentView:
    """A photo as staff see it."""

    id: int
    sender_id: str
    ticket_number: Optional[str]
    kind: str
    media_id: Optional[str]
    url: Optional[str]
    created_at: dt.datetime


@dataclass(frozen=True)
class AttachResult:
    """Where a photo went: the ticket number it was attached to, or None when it waits for the next ticket."""

    attachment_id: int
    ticket_number: Optional[str]

    @property
    def pending(self) -> bool:
        """Whether the photo waits for the resident's next ticket."""
        return self.ticket_number is None


def attach_image(factory: sessionmaker, sender_id: str, media_id: Optional[str], url: Optional[str],
                 now: Optional[dt.datetime] = None) -> AttachResult:
    """Attach a photo to the resident's latest open ticket, or keep it pending when they have none."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        ticket = (session.query(Ticket)
                  .filter(Ticket.sender_id == sender_id, Ticket.status.in_(OPEN_STATUSES))
                  .order_by(Ticket.id.desc()).first())
        attachment = Attachment(sender_id=sender_id, kind="image", media_id=(media_id or "")[:MAX_MEDIA_ID] or None,
                                url=(url or "")[:MAX_URL] or None, created_at=now)
        session.add(attachment)
        if ticket is not None:
            attachment.ticket_id = ticket.id
            attachment.attached_at = now
            session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=f"resident:{sender_id}", kind="attachment",
                                    detail="居民补充照片 1 张"))
        session.flush()
        return AttachResult(attachment.id, ticket.number if ticket is not None else None)


def attach_pending(session: Session, sender_id: str, ticket: Ticket, now: dt.datetime) -> int:
    """Attach the resident's recent pending photos to `ticket` (inside the caller's transaction); returns how many."""
    pending = (session.query(Attachment)
               .filter(Attachment.sender_id == sender_id, Attachment.ticket_id.is_(None),
                       Attachment.created_at >= now - PENDING_WINDOW)
               .order_by(Attachment.id).all())
    for attachment in pending:
        attachment.ticket_id = ticket.id
        attachment.attached_at = now
    if pending:
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=f"resident:{sender_id}", kind="attachment",
                                detail=f"居民先前发送的照片 {len(pending)} 张"))
    return len(pending)


def attachments_of(factory: sessionmaker, ticket_number: str) -> List[AttachmentView]:
    """The photos attached to a ticket, oldest first."""
    with unit_of_work(factory) as session:
        rows = (session.query(Attachment).join(Ticket, Attachment.ticket_id == Ticket.id)
                .filter(Ticket.number == ticket_number.upper()).order_by(Attachment.id).all())
        return [_view(a, ticket_number.upper()) for a in rows]


def pending_of(factory: sessionmaker, sender_id: str) -> List[AttachmentView]:
    """The resident's photos that wait for their next ticket, oldest first."""
    with unit_of_work(factory) as session:
        rows = (session.query(Attachment)
                .filter(Attachment.sender_id == sender_id, Attachment.ticket_id.is_(None))
                .order_by(Attachment.id).all())
        return [_view(a, None) for a in rows]


def _view(attachment: Attachment, ticket_number: Optional[str]) -> AttachmentView:
    return AttachmentView(id=attachment.id, sender_id=attachment.sender_id, ticket_number=ticket_number,
                          kind=attachment.kind, media_id=attachment.media_id, url=attachment.url,
                          created_at=attachment.created_at)
