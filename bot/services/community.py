"""Loading the community (estates, grids, staff, groups, teams, clinics) from YAML into the database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml
from sqlalchemy.orm import Session

from bot import address
from bot.errors import InvalidInput
from bot.services.accounts import seed_demo_passwords
from bot.store.models import (
    Building,
    ChatGroup,
    ClinicEvent,
    DutyShift,
    Estate,
    Grid,
    Staff,
    VolunteerTeam,
)

COMMUNITY_FILE = "community.yml"


def read_community(folder: Path) -> Dict[str, Any]:
    """Read and minimally check the community file in `folder`."""
    path = folder / COMMUNITY_FILE
    if not path.is_file():
        raise InvalidInput(f"community file not found: {path}", field="community_dir")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for key in ("estates", "groups", "staff", "grids", "volunteer_teams"):
        if not isinstance(data.get(key), list):
            raise InvalidInput(f"{path}: '{key}' must be a list", field=key)
    return data


def _span(spec: Dict[str, int]) -> range:
    return range(int(spec["from"]), int(spec["to"]) + 1)


def _upsert(session: Session, model: type, key_field: str, key: Any, **values: Any) -> Any:
    row = session.query(model).filter(getattr(model, key_field) == key).one_or_none()
    if row is None:
        row = model(**{key_field: key})
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    return row


def load_community(session: Session, data: Dict[str, Any], today: dt.date) -> Dict[str, int]:
    """Upsert everything in `data` (idempotent); returns counts of what the file holds."""
    groups = {
        g["key"]: _upsert(session, ChatGroup, "key", g["key"], name=g["name"], kind=g["kind"],
                          webhook_key=g.get("webhook_key"))
        for g in data["groups"]
    }
    staff = {
        s["key"]: _upsert(session, Staff, "key", s["key"], name=s["name"], role=s["role"],
                          phone=str(s.get("phone") or "") or None, wecom_userid=s.get("wecom_userid"),
                          on_duty=bool(s.get("on_duty", False)), estates=list(s.get("estates", [])),
                          active=bool(s.get("active", True)))
        for s in data["staff"]
    }
    session.flush()
    console = data.get("console") or {}
    if not isinstance(console, dict):
        raise InvalidInput("'console' must be a mapping", field="console")
    demo_password = console.get("demo_password")
    # Accounts without a real password get the demo one (and lose it when the file drops it).
    demo_accounts = seed_demo_passwords(session, str(demo_password) if demo_password else None)
    estates = {}
    for e in data["estates"]:
        estates[e["name"]] = _upsert(
            session, Estate, "name", e["name"], aliases=list(e.get("aliases", [])),
            property_managed=bool(e.get("property_managed", True)), units=int(e["units"]),
            floors=int(e["floors"]), rooms_per_floor=int(e["rooms_per_floor"]))
    session.flush()

    bg = data.get("building_groups") or {}
    buildings = 0
    for e in data["estates"]:
        estate = estates[e["name"]]
        for number in _span(e["buildings"]):
            row = session.query(Building).filter_by(estate_id=estate.id, number=number).one_or_none()
            if row is None:
                row = Building(estate=estate, number=number)
                session.add(row)
            if bg:
                estate_key = bg.get("estate_keys", {}).get(e["name"], e["name"])
                gkey = f"building-{estate_key}-{number}"
                row.group = _upsert(
                    session, ChatGroup, "key", gkey, kind="building",
                    name=bg["name"].format(estate=e["name"], building=number),
                    webhook_key=bg["webhook_key"].format(estate_key=estate_key, building=number))
            buildings += 1

    for g in data["grids"]:
        grid = _upsert(session, Grid, "key", g["key"], name=g["name"], leader=staff.get(g.get("leader")),
                       group=groups.get(g.get("group")), property_group=groups.get(g.get("property_group")),
                       member_keys=list(g.get("members", [])))
        estate = estates[g["estate"]]
        session.flush()
        for number in _span(g["buildings"]):
            session.query(Building).filter_by(estate_id=estate.id, number=number).update({"grid_id": grid.id})

    help_team = data.get("help_team")
    for t in data["volunteer_teams"]:
        _upsert(session, VolunteerTeam, "number", int(t["number"]), colour=t["colour"], name=t["name"],
                short=t["short"], lead=staff.get(t.get("lead")), group=groups.get(t.get("group")),
                handles_help=help_team is not None and int(t["number"]) == int(help_team))

    # The roster is replaced as a whole: it is the file's, not edited row by row.
    session.query(DutyShift).delete(synchronize_session=False)
    for shift in data.get("duty_roster") or []:
        if shift.get("staff") not in staff:
            raise InvalidInput(f"duty_roster names unknown staff {shift.get('staff')!r}", field="duty_roster")
        session.add(DutyShift(staff=staff[shift["staff"]], weekdays=[int(d) for d in shift.get("weekdays") or []],
                              start=str(shift["from"]), end=str(shift["to"]), note=shift.get("note")))

    clinics = load_clinics(session, data, today)
    session.flush()
    return {"estates": len(estates), "buildings": buildings, "groups": len(groups), "staff": len(staff),
            "grids": len(data["grids"]), "teams": len(data["volunteer_teams"]), "clinics": clinics,
            "demo accounts": demo_accounts}


def load_clinics(session: Session, data: Dict[str, Any], today: dt.date) -> int:
    """Upsert the file's clinic events (`days_from_now` counts from `today`); returns how many it holds.

    Rows are the file's by `file_key` (the entry's title). Once an admin edited, cancelled or deleted one in the
    console (`edited_by` set), that entry is the console's: it is no longer written, on this date or (its date
    moving with `today`) any other. Events added in the console have no `file_key` and are never touched.
    """
    taken = {key for (key,) in session.query(ClinicEvent.file_key)
             .filter(ClinicEvent.file_key.isnot(None), ClinicEvent.edited_by.isnot(None))}
    clinics = 0
    for c in data.get("clinic_events", []):
        clinics += 1
        if c["title"] in taken:
            continue
        when = dt.date.fromisoformat(str(c["date"])) if "date" in c else today + dt.timedelta(days=int(c["days_from_now"]))
        row = session.query(ClinicEvent).filter_by(file_key=c["title"], date=when).one_or_none()
        if row is None:
            row = ClinicEvent(title=c["title"], file_key=c["title"], date=when, status="scheduled")
            session.add(row)
        row.start, row.end, row.place = str(c["start"]), str(c["end"]), c["place"]
        row.specialties = list(c.get("specialties", []))
        row.services, row.bring, row.organizer = c.get("services", ""), c.get("bring", ""), c.get("organizer")
    return clinics


def estates(session: Session) -> List[address.Estate]:
    """The estates as address-parser values, for parsing and checking addresses."""
    rows = session.query(Estate).order_by(Estate.id).all()
    return [
        address.Estate(name=r.name, aliases=tuple(r.aliases or ()), buildings=tuple(b.number for b in r.buildings),
                       units=r.units, floors=r.floors, rooms_per_floor=r.rooms_per_floor)
        for r in rows
    ]


def building_for(session: Session, community: str, number: int) -> Building | None:
    """The building row of an estate, if it exists."""
    return (session.query(Building).join(Estate).filter(Estate.name == community, Building.number == number)
            .one_or_none())


def teams(session: Session) -> Sequence[VolunteerTeam]:
    """All volunteer teams in number order."""
    return session.query(VolunteerTeam).order_by(VolunteerTeam.number).all()
