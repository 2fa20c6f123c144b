"""Admin edits to the community model (staff, groups, duty roster, estates, buildings, grids), each audited.

Every change writes an `audit_log` row (who, when, what, before, after) in the same transaction. Only the
roles in `scope.ADMIN_ROLES` may edit. `python -m bot community load` writes the file's values over the
ones it names, so `make run` loads the file only when it changed since the last load (bot/cli.py).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import partial
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy.orm import Session, sessionmaker

from bot import lifecycle as lc
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.phone import normalize_phone
from bot.services.scope import ADMIN_ROLES, ALL_COMMUNITIES, StaffActor, actor_by_key, of_community
from bot.store.db import unit_of_work
from bot.store.models import AuditEntry, Building, ChatGroup, DutyShift, Estate, Grid, Staff, utcnow

STAFF_FIELDS = ("name", "role", "phone", "wecom_userid", "on_duty", "active", "estates")
GROUP_FIELDS = ("name", "webhook_key")
ESTATE_FIELDS = ("aliases", "units", "floors", "rooms_per_floor")
# Sane bounds of an estate's layout and building numbers (the address parser checks residents' rooms against them).
LAYOUT_BOUNDS = {"units": (1, 20), "floors": (1, 60), "rooms_per_floor": (1, 20), "number": (1, 999)}
MAX_ALIASES = 10
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SEPARATORS = re.compile(r"[,，、;；\s]+")


def editor(session: Session, actor_key: str) -> str:
    """The key of `actor_key` if they may edit the community model (scope.ADMIN_ROLES); NotAllowed otherwise."""
    return editor_actor(session, actor_key).key


def editor_actor(session: Session, actor_key: str) -> StaffActor:
    """The scope of `actor_key` if they may edit the community model (scope.ADMIN_ROLES); NotAllowed otherwise."""
    actor = actor_by_key(session, actor_key)
    if actor.role not in ADMIN_ROLES:
        raise NotAllowed("only admins and the community secretary edit the community model", staff=actor_key)
    return actor


def audit(session: Session, actor: str, entity: str, key: str, action: str, before: Optional[Dict[str, Any]],
          after: Optional[Dict[str, Any]], now: Optional[dt.datetime] = None) -> None:
    """Record one change (inside the caller's transaction)."""
    session.add(AuditEntry(at=now or utcnow(), actor=actor, entity=entity, entity_key=key, action=action,
                           before=before, after=after))


def split_list(raw: Any) -> List[str]:
    """A list typed as text ("眼科、内科, 中医") or given as a list: stripped, empty parts and repeats dropped."""
    parts = raw if isinstance(raw, (list, tuple)) else _SEPARATORS.split(str(raw or ""))
    out: List[str] = []
    for part in parts:
        item = str(part).strip()
        if item and item not in out:
            out.append(item)
    return out


def _snapshot(row: Any, names: Sequence[str]) -> Dict[str, Any]:
    return {n: getattr(row, n) for n in names}


def _clean_staff(session: Session, changes: Dict[str, Any], me: StaffActor, staff: Staff) -> Dict[str, Any]:
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
        elif name == "role" and value in ALL_COMMUNITIES and not me.all_communities:
            raise NotAllowed("only the street office gives a role that sees every community", field="role")
        elif name == "phone":
            value = normalize_phone(str(value or "")) if value else None
            if changes.get("phone") and value is None:
                raise InvalidInput("not a phone number", field="phone")
        elif name == "wecom_userid":
            value = str(value or "").strip() or None
        elif name in ("on_duty", "active"):
            value = bool(value)
        elif name == "estates":
            # the staff member's own community's estates (a street-office editor sees every community's)
            known = {e for (e,) in session.query(Estate.name).filter(Estate.community_key == staff.community_key)}
            value = sorted({str(v) for v in value or []})
            if any(v not in known for v in value):
                raise InvalidInput("unknown estate", field="estates")
        clean[name] = value
    return clean


def update_staff(factory: sessionmaker, actor_key: str, key: str, now: Optional[dt.datetime] = None,
                 **changes: Any) -> Dict[str, Any]:
    """Change a staff member's details; returns what they are now."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, actor_key)
        actor = me.key
        staff = _mine(session, me, Staff, key=key)
        if staff is None:
            raise NotFound("no such staff member", staff=key)
        clean = _clean_staff(session, changes, me, staff)
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
        me = editor_actor(session, actor_key)
        actor = me.key
        group = _mine(session, me, ChatGroup, key=key)
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
        me = editor_actor(session, actor_key)
        actor = me.key
        staff = _mine(session, me, Staff, key=staff_key)
        if staff is None:
            raise NotFound("no such staff member", staff=staff_key)
        shift = DutyShift(staff=staff, community_key=staff.community_key, weekdays=days, start=start, end=end, note=(note or "").strip()[:64] or None)
        session.add(shift)
        session.flush()
        audit(session, actor, "duty_shift", str(shift.id), "create", None,
              {"staff": staff_key, "weekdays": days, "start": start, "end": end, "note": shift.note}, now)
        return shift.id


def remove_shift(factory: sessionmaker, actor_key: str, shift_id: int, now: Optional[dt.datetime] = None) -> None:
    """Remove a duty roster line."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, actor_key)
        actor = me.key
        shift = _mine(session, me, DutyShift, id=shift_id)
        if shift is None:
            raise NotFound("no such roster line", id=shift_id)
        audit(session, actor, "duty_shift", str(shift_id), "delete",
              {"staff": shift.staff.key, "weekdays": shift.weekdays, "start": shift.start, "end": shift.end,
               "note": shift.note}, None, now)
        session.delete(shift)


def history(factory: sessionmaker, viewer: str, limit: int = 100, entities: Optional[Sequence[str]] = None
            ) -> List[AuditEntry]:
    """The newest audit entries made by staff of `viewer`'s community (every entry for the street office; only of
    `entities` when given)."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, viewer)
        query = session.query(AuditEntry)
        if not me.all_communities:
            query = query.filter(AuditEntry.actor.in_(
                session.query(Staff.key).filter(Staff.community_key == me.community).scalar_subquery()))
        if entities is not None:
            query = query.filter(AuditEntry.entity.in_(list(entities)))
        return query.order_by(AuditEntry.id.desc()).limit(limit).all()


def _rows(session: Session, me: StaffActor, model: Any) -> Any:
    """The rows of `model` in the communities `me` may see (a query)."""
    return of_community(session.query(model), model.community_key, me)


def community_model(factory: sessionmaker, viewer: str) -> Dict[str, Any]:
    """What /admin/community shows `viewer`: their community's staff, groups, roster and estate names."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, viewer)
        rows = partial(_rows, session, me)
        return {
            "staff": [{"key": s.key, "name": s.name, "role": s.role, "phone": s.phone or "",
                       "wecom_userid": s.wecom_userid or "", "on_duty": s.on_duty, "active": s.active,
                       "estates": list(s.estates or [])} for s in rows(Staff).order_by(Staff.id)],
            "groups": [{"key": g.key, "name": g.name, "kind": g.kind, "has_key": bool(g.webhook_key)}
                       for g in rows(ChatGroup).filter(ChatGroup.kind != "building").order_by(ChatGroup.id)],
            "shifts": [{"id": d.id, "staff": d.staff.name, "weekdays": d.weekdays, "start": d.start, "end": d.end,
                        "note": d.note or ""} for d in rows(DutyShift).order_by(DutyShift.id)],
            "estates": [e.name for e in rows(Estate).order_by(Estate.id)],
        }


def layout_model(factory: sessionmaker, viewer: str) -> Dict[str, Any]:
    """What /admin/community/layout shows `viewer`: their community's estates (with buildings) and grids."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, viewer)
        rows = partial(_rows, session, me)
        return {
            "estates": [{"name": e.name, "aliases": list(e.aliases or []), "units": e.units, "floors": e.floors,
                         "rooms_per_floor": e.rooms_per_floor,
                         "buildings": [{"number": b.number, "grid": b.grid.key if b.grid else ""} for b in e.buildings]}
                        for e in rows(Estate).order_by(Estate.id)],
            "grids": [{"key": g.key, "name": g.name, "leader": g.leader.key if g.leader else "",
                       "members": list(g.member_keys or [])} for g in rows(Grid).order_by(Grid.id)],
            "staff": [{"key": s.key, "name": s.name} for s in rows(Staff).filter(Staff.active.is_(True))
                      .order_by(Staff.id)],
        }


def _bounded(name: str, value: Any) -> int:
    low, high = LAYOUT_BOUNDS[name]
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a whole number", field=name) from None
    if not low <= number <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}", field=name)
    return number


def _mine(session: Session, me: StaffActor, model: Any, **keys: Any) -> Any:
    """The row of `model` with `keys` if it belongs to a community `me` may see; None otherwise."""
    return _rows(session, me, model).filter_by(**keys).one_or_none()


def _same_community(row: Any, other: Any, field: str = "grid") -> None:
    """Refuse tying rows of two communities together (only the street office could even try)."""
    if other is not None and other.community_key != row.community_key:
        raise InvalidInput("that belongs to another community", field=field)


def _estate(session: Session, name: str, me: StaffActor) -> Estate:
    estate = _mine(session, me, Estate, name=name)
    if estate is None:
        raise NotFound("no such estate", estate=name)
    return estate


def _grid(session: Session, key: str, me: StaffActor) -> Grid:
    grid = _mine(session, me, Grid, key=key)
    if grid is None:
        raise NotFound("no such grid", grid=key)
    return grid


def update_estate(factory: sessionmaker, actor_key: str, name: str, now: Optional[dt.datetime] = None,
                  **changes: Any) -> Dict[str, Any]:
    """Change an estate's aliases or layout (units, floors, rooms per floor); returns what it is now."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, actor_key)
        actor = me.key
        estate = _estate(session, name, me)
        clean: Dict[str, Any] = {}
        for field, value in changes.items():
            if field not in ESTATE_FIELDS:
                raise InvalidInput(f"{field} cannot be edited here", field=field)
            if field == "aliases":
                aliases = [a for a in split_list(value) if a != estate.name]
                if len(aliases) > MAX_ALIASES or any(len(a) > 20 for a in aliases):
                    raise InvalidInput(f"at most {MAX_ALIASES} aliases of up to 20 characters", field="aliases")
                taken = {n: e.name for e in session.query(Estate).filter(Estate.id != estate.id)
                         for n in (e.name, *(e.aliases or []))}
                clash = next((a for a in aliases if a in taken), None)
                if clash is not None:
                    raise InvalidInput(f"{clash} already names {taken[clash]}", field="aliases")
                clean[field] = aliases
            else:
                clean[field] = _bounded(field, value)
        before = _snapshot(estate, ESTATE_FIELDS)
        for field, value in clean.items():
            setattr(estate, field, value)
        after = _snapshot(estate, ESTATE_FIELDS)
        if after != before:
            audit(session, actor, "estate", name, "update", before, after, now)
        return after


def _building_values(building: Building) -> Dict[str, Any]:
    return {"estate": building.estate.name, "number": building.number,
            "grid": building.grid.key if building.grid else None}


def add_building(factory: sessionmaker, actor_key: str, estate_name: str, number: Any,
                 grid_key: Optional[str] = None, now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Add building `number` to an estate, in a grid if one is named; refuses a number the estate has."""
    value = _bounded("number", number)
    with unit_of_work(factory) as session:
        me = editor_actor(session, actor_key)
        actor = me.key
        estate = _estate(session, estate_name, me)
        if any(b.number == value for b in estate.buildings):
            raise InvalidInput(f"{estate_name} already has building {value}", field="number")
        grid = _grid(session, grid_key, me) if grid_key else None
        _same_community(estate, grid)
        building = Building(estate=estate, number=value, grid=grid)
        session.add(building)
        session.flush()
        after = _building_values(building)
        audit(session, actor, "building", f"{estate_name}-{value}", "create", None, after, now)
        return after


def move_building(factory: sessionmaker, actor_key: str, estate_name: str, number: Any, grid_key: str,
                  now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """Put a building into another grid (new tickets from it go to that grid)."""
    value = _bounded("number", number)
    with unit_of_work(factory) as session:
        me = editor_actor(session, actor_key)
        actor = me.key
        estate = _estate(session, estate_name, me)
        building = next((b for b in estate.buildings if b.number == value), None)
        if building is None:
            raise NotFound("no such building", estate=estate_name, number=value)
        if not grid_key:
            raise InvalidInput("choose a grid", field="grid")
        grid = _grid(session, grid_key, me)
        _same_community(estate, grid)
        before = _building_values(building)
        building.grid = grid
        after = _building_values(building)
        if after != before:
            audit(session, actor, "building", f"{estate_name}-{value}", "update", before, after, now)
        return after


def _grid_values(grid: Grid) -> Dict[str, Any]:
    return {"name": grid.name, "leader": grid.leader.key if grid.leader else None,
            "members": list(grid.member_keys or [])}


def _active_staff(session: Session, key: str, field: str, me: StaffActor) -> Staff:
    staff = _mine(session, me, Staff, key=key)
    if staff is None or not staff.active:
        raise InvalidInput(f"{key} is not an active staff member", field=field)
    return staff


def update_grid(factory: sessionmaker, actor_key: str, key: str, now: Optional[dt.datetime] = None,
                name: Optional[str] = None, leader: Optional[str] = None,
                members: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Change a grid's name, leader (an active staff member's key) or members; returns what it is now."""
    with unit_of_work(factory) as session:
        me = editor_actor(session, actor_key)
        actor = me.key
        grid = _grid(session, key, me)
        before = _grid_values(grid)
        if name is not None:
            clean_name = str(name).strip()
            if not clean_name or len(clean_name) > 64:
                raise InvalidInput("a grid name of 1-64 characters", field="name")
            grid.name = clean_name
        if leader is not None:
            if not str(leader).strip():
                raise InvalidInput("a grid needs a leader", field="leader")
            grid.leader = _active_staff(session, str(leader).strip(), "leader", me)
            _same_community(grid, grid.leader, "leader")
        if members is not None:
            keys = split_list(members)
            for member in keys:
                _same_community(grid, _active_staff(session, member, "members", me), "members")
            grid.member_keys = keys
        if grid.leader is not None and grid.leader.key in (grid.member_keys or []):
            raise InvalidInput("the leader is not also a member", field="members")
        after = _grid_values(grid)
        if after != before:
            audit(session, actor, "grid", key, "update", before, after, now)
        return after
