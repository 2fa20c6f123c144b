"""Admin edits to the community model (staff, chat groups, the duty roster), each recorded in the audit log.

Every change writes an `audit_log` row (who, when, what, before, after) in the same transaction. Only the
roles in `scope.ADMIN_ROLES` may edit. `python -m bot community load` writes the file's values over the
ones it names, so `make run` loads the file only when it changed since the last load (bot/cli.py).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.phone import normalize_phone
from bot.services.scope import ADMIN_ROLES, actor_by_key
from bot.store.db import unit_of_work
from bot.store.models import AuditEntry, ChatGroup, DutyShift, Estate, Staff, utcnow

STAFF_FIELDS = ("name", "role", "phone", "wecom_userid", "on_duty", "active", "estates")
GROUP_FIELDS = ("name", "webhook_key")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _editor(session: Session, actor_key: str) -> str:
    actor = actor_by_key(session, actor_key)
    if actor.role not in ADMIN_ROLES:
        raise NotAllowed("only admins and the community secretary edit the community model", staff=actor_key)
    return actor.key


def audit(session: Session, actor: str, entity: str, key: str, action: str, before: Optional[Dict[str, Any]],
          after: Optional[Dict[str, Any]], now: Optional[dt.datetime] = None) -> None:
    """Record one change (inside the caller's transaction)."""
    session.add(AuditEntry(at=now or utcnow(), actor=actor, entity=entity, entity_key=key, action=action,
                           before=before, after=after))


def _snapshot(row: Any, names: Sequence[str]) -> Dict[str, Any]:
    return {n: getattr(row, n) for n in names}


def _clean_staff(session: Session, changes: Dict[str, Any]) -> Dict[str, Any]:
    clean: Dict[str, Any] = {}
    for name, value in changes.items():
        if name not in STAFF_FIELDS:
            raise InvalidInput(f"{name} cannot be edited here", field=name)
        if name == "name":
            value = str(value or "").strip()
            if not value or len(value) > 20:
                raise InvalidInput("a name of 1-20 characters", field="name")
        elif name == "role" and value not in lc.STAFF_ROLES:
            raise InvalidInput("unknown role", field="role")
        elif name == "phone":
            value = normalize_phone(str(value or "")) if value else None
            if changes.get("phone") and value is None:
                raise InvalidInput("not a phone number", field="phone")
        elif name == "wecom_userid":
            value = str(value or "").strip() or None
        elif name in ("on_duty", "active"):
            value = bool(value)
        elif name == "estates":
            known = {e for (e,) in session.query(Estate.name)}
            value = sorted({str(v) for v in value or []})
            if any(v not in known for v in value):
                raise InvalidInput("unknown estate", field="estates")
        clean[name] = value
    return clean


def update_staff(factory: sessionmaker, actor_key: str, key: str, now: Optional[dt.datetime] = None,
                 **changes: Any) -> Dict[str, Any]:
    """Change a staff member's details; returns what they are now."""
    with unit_of_work(factory) as session:
        actor = _editor(session, actor_key)
        staff = session.query(Staff).filter_by(key=key).one_or_none()
        if staff is None:
            raise NotFound("no such staff member", staff=key)
        clean = _clean_staff(session, changes)
        if key == actor and clean.get("active") is False:
            raise InvalidInput("you cannot deactivate your own account", field="active")
        before = _snapshot(staff, STAFF_FIELDS)
        for name, value in clean.items():
            setattr(staff, name, value)
        after = _snapshot(staff, STAFF_FIELDS)
        if after != before:
            audit(session, actor, "staff", key, "update", before, after, now)
        return after


def update_group(factory: sessionmaker, actor_key: str, key: str, now: Optional[dt.datetime] = None,
                 **changes: Any) -> Dict[str, Any]:
    """Change a chat group's name or robot key (the key is logged masked)."""
    with unit_of_work(factory) as session:
        actor = _editor(session, actor_key)
        group = session.query(ChatGroup).filter_by(key=key).one_or_none()
        if group is None:
            raise NotFound("no such group", group=key)
        for name in changes:
            if name not in GROUP_FIELDS:
                raise InvalidInput(f"{name} cannot be edited here", field=name)
        if "name" in changes and not str(changes["name"] or "").strip():
            raise InvalidInput("a group needs a name", field="name")
        before = _masked(_snapshot(group, GROUP_FIELDS))
        for name, value in changes.items():
            setattr(group, name, (str(value).strip() or None) if value is not None else None)
        after = _masked(_snapshot(group, GROUP_FIELDS))
        if after != before or "webhook_key" in changes:
            audit(session, actor, "group", key, "update", before, after, now)
        return after


def _masked(values: Dict[str, Any]) -> Dict[str, Any]:
    key = values.get("webhook_key")
    if key:
        values["webhook_key"] = key[:4] + "…" + key[-4:] if len(key) > 10 else "…"
    return values


def add_shift(factory: sessionmaker, actor_key: str, staff_key: str, weekdays: Sequence[int], start: str, end: str,
              note: Optional[str] = None, now: Optional[dt.datetime] = None) -> int:
    """Add a duty roster line; returns its id."""
    days = sorted({int(d) for d in weekdays})
    if not days or any(d < 1 or d > 7 for d in days):
        raise InvalidInput("weekdays are 1 (Monday) to 7 (Sunday)", field="weekdays")
    if not _CLOCK.match(start or "") or not _CLOCK.match(end or "") or start == end:
        raise InvalidInput("times look like 22:00 and differ", field="start")
    with unit_of_work(factory) as session:
        actor = _editor(session, actor_key)
        staff = session.query(Staff).filter_by(key=staff_key).one_or_none()
        if staff is None:
            raise NotFound("no such staff member", staff=staff_key)
        shift = DutyShift(staff=staff, weekdays=days, start=start, end=end, note=(note or "").strip()[:64] or None)
        session.add(shift)
        session.flush()
        audit(session, actor, "duty_shift", str(shift.id), "create", None,
              {"staff": staff_key, "weekdays": days, "start": start, "end": end, "note": shift.note}, now)
        return shift.id


def remove_shift(factory: sessionmaker, actor_key: str, shift_id: int, now: Optional[dt.datetime] = None) -> None:
    """Remove a duty roster line."""
    with unit_of_work(factory) as session:
        actor = _editor(session, actor_key)
        shift = session.get(DutyShift, shift_id)
        if shift is None:
            raise NotFound("no such roster line", id=shift_id)
        audit(session, actor, "duty_shift", str(shift_id), "delete",
              {"staff": shift.staff.key, "weekdays": shift.weekdays, "start": shift.start, "end": shift.end,
               "note": shift.note}, None, now)
        session.delete(shift)


def history(factory: sessionmaker, limit: int = 100) -> List[AuditEntry]:
    """The newest audit entries."""
    with unit_of_work(factory) as session:
        return session.query(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).all()
