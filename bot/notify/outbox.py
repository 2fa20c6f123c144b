"""The notification outbox table: queuing messages and moving them through their states.

Actions call `enqueue` inside their own unit of work, so a notification is stored exactly when
the ticket it belongs to is. The dispatcher calls the other functions, each inside a short
unit of work of its own; every state change is a conditional UPDATE so that several dispatcher
processes can share one table.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Collection, Dict, List, Optional, Sequence, Tuple

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.store.models import ChatGroup, Notification, utcnow

__all__ = [
    "MARKDOWN_MAX_BYTES",
    "PENDING",
    "SENT",
    "FAILED",
    "UNDELIVERED",
    "DueNotification",
    "claim",
    "due",
    "enqueue",
    "enqueue_resident",
    "WECHAT",
    "fit_utf8",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "mark_undelivered",
    "markdown_payload",
    "payload_content",
    "recent_sends",
]

# WeCom rejects markdown content longer than this many UTF-8 bytes (errcode 40058).
MARKDOWN_MAX_BYTES = 4096
ELLIPSIS = "…"

WECOM_ROBOT = "wecom_robot"
WECHAT = "wechat"  # a message to a resident: customer-service inside 48 hours, template outside

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
UNDELIVERED = "undelivered"


@dataclass(frozen=True)
class DueNotification:
    """A pending outbox row as the dispatcher sees it (plain data, no session attached)."""

    id: int
    webhook_key: Optional[str]
    purpose: str
    ticket_id: Optional[int]
    payload: Dict[str, Any]
    attempts: int
    next_attempt_at: dt.datetime
    channel: str = WECOM_ROBOT
    recipient: Optional[str] = None


def fit_utf8(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-8 bytes on a character boundary, ending with "…" if cut."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode("utf-8"))
    if room <= 0:
        return ""
    # The input is valid UTF-8, so only a character split at the very end can be dropped here.
    return encoded[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def markdown_payload(content: str, mentions: Sequence[str] = ()) -> Dict[str, Any]:
    """The WeCom robot markdown message for `content`, with `<@userid>` mentions appended."""
    userids = [u for u in dict.fromkeys(m.strip() for m in mentions) if u]
    suffix = ("\n" + " ".join(f"<@{u}>" for u in userids)) if userids else ""
    # Mentions are why a grid worker's phone buzzes, so the body is cut before they are.
    body_limit = MARKDOWN_MAX_BYTES - len(suffix.encode("utf-8"))
    if body_limit > len(ELLIPSIS.encode("utf-8")):
        text = fit_utf8(content, body_limit) + suffix
    else:
        text = fit_utf8(content + suffix, MARKDOWN_MAX_BYTES)
    return {"msgtype": "markdown", "markdown": {"content": text}}


def payload_content(payload: Dict[str, Any]) -> str:
    """The human-readable text of a payload (a robot's markdown or text, or a resident message)."""
    if "msgtype" not in payload and isinstance(payload.get("text"), str):
        return payload["text"]
    msgtype = payload.get("msgtype")
    body = payload.get(msgtype) if isinstance(msgtype, str) else None
    if isinstance(body, dict) and isinstance(body.get("content"), str):
        return body["content"]
    return ""


def enqueue(
    session: Session,
    *,
    group: Optional[ChatGroup],
    purpose: str,
    content: str,
    ticket_id: Optional[int] = None,
    mentions: Sequence[str] = (),
    now: Optional[dt.datetime] = None,
) -> Notification:
    """Add a pending markdown notification for `group` to `session` (the caller commits); due from `now`."""
    webhook_key = ((group.webhook_key or "").strip() or None) if group is not None else None
    # The key is copied, so editing the group later does not redirect a message already queued.
    return _add(session, now, channel=WECOM_ROBOT, group=group, webhook_key=webhook_key, purpose=purpose,
                payload=markdown_payload(content, mentions), ticket_id=ticket_id)


def _add(session: Session, now: Optional[dt.datetime], **fields: Any) -> Notification:
    """Add a pending row, due from `now`."""
    now = now or utcnow()
    notification = Notification(status=PENDING, attempts=0, next_attempt_at=now, created_at=now, **fields)
    session.add(notification)
    return notification


def enqueue_resident(
    session: Session,
    *,
    recipient: str,
    purpose: str,
    text: str,
    ticket_id: Optional[int] = None,
    template: Optional[Dict[str, str]] = None,
    now: Optional[dt.datetime] = None,
) -> Notification:
    """Add a pending WeChat message for the resident `recipient` (an OpenID) to `session` (the caller commits).

    `template` holds the values for a template message (our field names: number, status, detail), used when
    the resident is outside the 48-hour customer-service window.
    """
    return _add(session, now, channel=WECHAT, recipient=recipient, purpose=purpose,
                payload={"text": text, "template": dict(template or {})}, ticket_id=ticket_id)


def due(
    session: Session, now: dt.datetime, limit: int, skip_keys: Collection[str] = ()
) -> List[DueNotification]:
    """Pending rows whose time has come, oldest first, leaving out the webhook keys in `skip_keys`."""
    n = Notification
    stmt = (
        select(n.id, n.webhook_key, n.purpose, n.ticket_id, n.payload, n.attempts, n.next_attempt_at, n.channel,
               n.recipient)
        .where(n.status == PENDING, n.next_attempt_at <= now)
        .order_by(n.next_attempt_at, n.id)
        .limit(limit)
    )
    if skip_keys:
        # NOT IN alone would also drop the rows without a key (NULL is never "not in").
        stmt = stmt.where(or_(n.webhook_key.is_(None), n.webhook_key.notin_(sorted(skip_keys))))
    return [DueNotification(*row) for row in session.execute(stmt)]


def recent_sends(session: Session, since: dt.datetime) -> List[Tuple[str, dt.datetime]]:
    """(webhook key, sent_at) of the rows delivered after `since`."""
    n = Notification
    stmt = select(n.webhook_key, n.sent_at).where(
        n.status == SENT, n.sent_at > since, n.webhook_key.isnot(None)
    )
    return [(key, sent_at) for key, sent_at in session.execute(stmt)]


def _update_pending(session: Session, notification_id: int, version: dt.datetime, **values: Any) -> bool:
    """Update a row only while it is pending with next_attempt_at == `version`; True if it was."""
    stmt = (
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == PENDING,
            Notification.next_attempt_at == version,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1


def claim(session: Session, notification_id: int, seen_next_attempt_at: dt.datetime, lease: dt.datetime) -> bool:
    """Take a due row for this process by moving its next attempt to `lease`; False if another got it."""
    # The old next_attempt_at is the version the claim is conditioned on; the new one (`lease`)
    # becomes the token the later state changes are conditioned on.
    return _update_pending(session, notification_id, seen_next_attempt_at, next_attempt_at=lease)


def mark_sent(session: Session, notification_id: int, lease: dt.datetime, at: dt.datetime, attempts: int) -> bool:
    """Record a claimed row as delivered."""
    return _update_pending(
        session, notification_id, lease, status=SENT, sent_at=at, attempts=attempts, last_error=None
    )


def mark_retry(
    session: Session, notification_id: int, lease: dt.datetime, *, attempts: int, error: str, next_attempt_at: dt.datetime
) -> bool:
    """Put a claimed row back in the queue for a later attempt."""
    return _update_pending(
        session, notification_id, lease, attempts=attempts, last_error=error, next_attempt_at=next_attempt_at
    )


def mark_failed(session: Session, notification_id: int, lease: dt.datetime, *, attempts: int, error: str) -> bool:
    """Give up on a claimed row; it stays in the table as 'failed'."""
    return _update_pending(session, notification_id, lease, status=FAILED, attempts=attempts, last_error=error)


def mark_undelivered(session: Session, notification_id: int, lease: dt.datetime, reason: str) -> bool:
    """Record a claimed row that has nowhere to go (written to the notify log instead, or not sendable)."""
    return _update_pending(session, notification_id, lease, status=UNDELIVERED, last_error=reason)
