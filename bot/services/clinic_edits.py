"""Admin edits to the clinic events (义诊): add, edit, cancel, delete — each recorded in the audit log.

Only the roles in `scope.ADMIN_ROLES` may edit (community_edits.editor), and only their own community's events
(the street office every community's; a new event belongs to the editor's community). A row an admin touched carries
`edited_by`, so `community load` (bot/services/community.load_clinics) never writes over it or brings a
deleted one back; a deleted event stays as a row with status "deleted" for that reason and is shown nowhere.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Dict, List, Mapping, Optional

from sqlalchemy.orm import Session, sessionmaker

from bot.errors import InvalidInput, InvalidState, NotFound
from bot.services.clinics import CANCELLED, DELETED, SCHEDULED
from bot.services.community_edits import audit, editor_actor, split_list
from bot.services.scope import StaffActor, in_community, of_community
from bot.store.db import unit_of_work
from bot.store.models import ClinicEvent

FIELDS = ("title", "date", "start", "end", "place", "specialties", "services", "bring", "organizer")
REQUIRED = ("title", "date", "start", "end", "place")
# The admin list shows events from this many days back on (what just happened, and everything to come).
RECENT_DAYS = 30
MAX_SPECIALTIES = 10
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_LIMITS = {"title": 128, "place": 128, "organizer": 128, "services": 500, "bring": 500}


def _text(values: Mapping[str, Any], name: str) -> str:
    value = str(values.get(name) or "").strip()
    if len(value) > _LIMITS[name]:
        raise InvalidInput(f"{name} is at most {_LIMITS[name]} characters", field=name)
    return value


def _time(values: Mapping[str, Any], name: str) -> str:
    match = _TIME.match(str(values.get(name) or "").strip())
    if match is None:
        raise InvalidInput("times look like 09:00", field=name)
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def _date(values: Mapping[str, Any]) -> dt.date:
    raw = values.get("date")
    if isinstance(raw, dt.date):
        return raw
    try:
        return dt.date.fromisoformat(str(raw or "").strip())
    except ValueError:
        raise InvalidInput("dates look like 2026-12-05", field="date") from None


def clean(values: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of a clinic event checked and normalised; InvalidInput naming the first bad field."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"{unknown[0]} cannot be set here", field=unknown[0])
    out: Dict[str, Any] = {}
    for name in REQUIRED:
        if not str(values.get(name) or "").strip():
            raise InvalidInput(f"{name} is required", field=name)
    out["title"], out["place"] = _text(values, "title"), _text(values, "place")
    out["date"] = _date(values)
    out["start"], out["end"] = _time(values, "start"), _time(values, "end")
    if out["start"] >= out["end"]:
        raise InvalidInput("the clinic ends after it starts", field="end")
    specialties = split_list(values.get("specialties"))
    if len(specialties) > MAX_SPECIALTIES or any(len(s) > 16 for s in specialties):
        raise InvalidInput(f"at most {MAX_SPECIALTIES} specialties of up to 16 characters", field="specialties")
    out["specialties"] = specialties
    out["services"], out["bring"] = _text(values, "services"), _text(values, "bring")
    out["organizer"] = _text(values, "organizer") or None
    return out


def as_json(row: ClinicEvent) -> Dict[str, Any]:
    """A clinic event as the admin pages, the API and the audit log show it."""
    return {"id": row.id, "title": row.title, "date": row.date.isoformat(), "start": row.start, "end": row.end,
            "place": row.place, "specialties": list(row.specialties or []), "services": row.services or "",
            "bring": row.bring or "", "organizer": row.organizer, "status": row.status,
            "origin": "file" if row.file_key else "console",
            "edited_by": row.edited_by}


def _logged(row: ClinicEvent) -> Dict[str, Any]:
    values = as_json(row)
    values.pop("id")
    values.pop("edited_by")
    return values


def _event(session: Session, clinic_id: int, actor: StaffActor) -> ClinicEvent:
    row = session.get(ClinicEvent, clinic_id)
    if row is None or row.status == DELETED or not in_community(actor, row.community_key):
        raise NotFound("no such clinic event", id=clinic_id)
    return row


def listing(factory: sessionmaker, viewer: str, today: dt.date, recent_days: int = RECENT_DAYS
            ) -> List[Dict[str, Any]]:
    """The clinic events of the staff member `viewer`'s community from `recent_days` ago on (cancelled ones
    included, deleted ones not), soonest first."""
    with unit_of_work(factory) as session:
        actor = editor_actor(session, viewer)
        rows = (of_community(session.query(ClinicEvent), ClinicEvent.community_key, actor)
                .filter(ClinicEvent.date >= today - dt.timedelta(days=recent_days), ClinicEvent.status != DELETED)
                .order_by(ClinicEvent.date, ClinicEvent.start, ClinicEvent.id).all())
        return [as_json(r) for r in rows]


def get(factory: sessionmaker, viewer: str, clinic_id: int) -> Dict[str, Any]:
    """One clinic event (NotFound if missing, deleted or of another community)."""
    with unit_of_work(factory) as session:
        return as_json(_event(session, clinic_id, editor_actor(session, viewer)))


def create(factory: sessionmaker, actor_key: str, values: Mapping[str, Any],
           now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Add a clinic event; returns it."""
    fields = clean(values)
    with unit_of_work(factory) as session:
        staff = editor_actor(session, actor_key)
        actor = staff.key
        row = ClinicEvent(**fields, community_key=staff.community, file_key=None, status=SCHEDULED, edited_by=actor)
        session.add(row)
        session.flush()
        audit(session, actor, "clinic", str(row.id), "create", None, _logged(row), now)
        return as_json(row)


def update(factory: sessionmaker, actor_key: str, clinic_id: int, values: Mapping[str, Any],
           now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Replace a clinic event's details (a cancelled one stays cancelled); returns it."""
    fields = clean(values)
    with unit_of_work(factory) as session:
        staff = editor_actor(session, actor_key)
        actor = staff.key
        row = _event(session, clinic_id, staff)
        before = _logged(row)
        for name, value in fields.items():
            setattr(row, name, value)
        after = _logged(row)
        if after != before:
            row.edited_by = actor
            audit(session, actor, "clinic", str(row.id), "update", before, after, now)
        return as_json(row)


def cancel(factory: sessionmaker, actor_key: str, clinic_id: int, now: Optional[dt.datetime] = None
           ) -> Dict[str, Any]:
    """Cancel a clinic event: it stays on the admin list, residents are no longer offered it."""
    with unit_of_work(factory) as session:
        staff = editor_actor(session, actor_key)
        actor = staff.key
        row = _event(session, clinic_id, staff)
        if row.status == CANCELLED:
            raise InvalidState("the clinic event is already cancelled", id=clinic_id)
        before = _logged(row)
        row.status, row.edited_by = CANCELLED, actor
        audit(session, actor, "clinic", str(row.id), "cancel", before, _logged(row), now)
        return as_json(row)


def delete(factory: sessionmaker, actor_key: str, clinic_id: int, now: Optional[dt.datetime] = None) -> None:
    """Delete a clinic event (kept as a hidden row so the community file's refresh does not bring it back)."""
    with unit_of_work(factory) as session:
        staff = editor_actor(session, actor_key)
        actor = staff.key
        row = _event(session, clinic_id, staff)
        audit(session, actor, "clinic", str(row.id), "delete", _logged(row), None, now)
        row.status, row.edited_by = DELETED, actor
