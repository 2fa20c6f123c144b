"""Loading the community (estates, grids, staff, groups, teams, clinics) from YAML into the database."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml
from sqlalchemy.orm import Session

from bot import address
from bot.errors import InvalidInput
from bot.services.accounts import seed_demo_passwords
from bot.store.models import (
    DEFAULT_COMMUNITY,
    Building,
    ChatGroup,
    Community,
    ClinicEvent,
    DutyShift,
    Estate,
    Grid,
    Resident,
    Staff,
    VolunteerTeam,
)

COMMUNITY_FILE = "community.yml"
COMMUNITY_KEY = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def read_community(folder: Path) -> Dict[str, Any]:
    """Read and minimally check the community file in `folder`."""
    return read_community_file(folder / COMMUNITY_FILE)


def read_community_file(path: Path, raw: Optional[bytes] = None) -> Dict[str, Any]:
    """Read and minimally check one community's file (`raw`: its bytes, already read)."""
    if raw is None:
        if not path.is_file():
            raise InvalidInput(f"community file not found: {path}", field="community_dir")
        raw = path.read_bytes()
    try:
        data = yaml.safe_load(raw.decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text (save the file as UTF-8)", field="community_dir") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise InvalidInput(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}",
                           field="community_dir") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path}: must be a mapping of community, estates, groups, …", field="community_dir")
    for key in ("estates", "groups", "staff", "grids", "volunteer_teams"):
        if not isinstance(data.get(key), list):
            raise InvalidInput(f"{path}: '{key}' must be a list", field=key)
    info = data.get("community") or {}
    if not isinstance(info, dict):
        raise InvalidInput(f"{path}: 'community' must be a mapping", field="community")
    key = str(info.get("key") or DEFAULT_COMMUNITY)
    if not COMMUNITY_KEY.match(key):
        raise InvalidInput(f"{path}: community key {key!r} must be lower-case letters, digits and '-'",
                           field="community.key")
    try:
        _property_contacts(info)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc}", field="community.property_contacts") from None
    return data


def community_files(folder: Path) -> List[Path]:
    """The community files of a deployment: `community.yml` first, then every other `*.yml` in `folder`, one
    community each (a street office with several communities)."""
    first = folder / COMMUNITY_FILE
    if not first.is_file():
        raise InvalidInput(f"community file not found: {first}", field="community_dir")
    return [first, *sorted(p for p in folder.glob("*.yml") if p.name != COMMUNITY_FILE)]


@dataclass(frozen=True)
class CommunityFile:
    """One community file as it was read: where, its bytes (what a load's digest covers) and its checked data."""

    path: Path
    raw: bytes
    data: Dict[str, Any]


def read_community_folder(folder: Path) -> List[CommunityFile]:
    """Every community file in `folder`, listed once, each read once and checked; two files with the same key
    are refused."""
    found: Dict[str, Path] = {}
    files = []
    for path in community_files(folder):
        raw = path.read_bytes()
        data = read_community_file(path, raw)
        key = community_key(data)
        if key in found:
            raise InvalidInput(f"{path} and {found[key]} both describe community {key!r}", field="community.key")
        found[key] = path
        files.append(CommunityFile(path, raw, data))
    return files


def read_communities(folder: Path) -> List[Dict[str, Any]]:
    """The checked data of every community file in `folder` (read_community_folder)."""
    return [f.data for f in read_community_folder(folder)]


def community_key(data: Dict[str, Any]) -> str:
    """The key of the community a (checked) file describes; files without one describe the default community."""
    return str((data.get("community") or {}).get("key") or DEFAULT_COMMUNITY)


def _span(spec: Dict[str, int]) -> range:
    return range(int(spec["from"]), int(spec["to"]) + 1)


def _upsert(session: Session, model: type, community: str, key_field: str, key: Any, scoped: bool = False,
            **values: Any) -> Any:
    """The row of `model` whose `key_field` is `key`, created or updated, in `community`. Keys are unique across
    the deployment (one community's file cannot take over another's row) unless `scoped` (unique per community)."""
    query = session.query(model).filter(getattr(model, key_field) == key)
    if scoped:
        query = query.filter(model.community_key == community)
    row = query.one_or_none()
    if row is not None and row.community_key != community:
        raise InvalidInput(f"{model.__tablename__} {key!r} already belongs to community {row.community_key!r}",
                           field=key_field)
    if row is None:
        row = model(**{key_field: key}, community_key=community)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    return row


def load_community(session: Session, data: Dict[str, Any], today: dt.date) -> Dict[str, int]:
    """Upsert everything in `data`, one community's file, (idempotent); returns counts of what the file holds."""
    ck = community_key(data)
    info = data.get("community") or {}
    row = session.get(Community, ck)
    if row is None:
        row = Community(key=ck)
        session.add(row)
    row.name = str(info.get("name") or "社区")
    row.office_phone = str(info.get("office_phone") or "") or None
    row.office_hours = str(info.get("office_hours") or "") or None
    row.wechat_account = str(info.get("wechat_account") or "") or None
    row.property_contacts = _property_contacts(info) or None
    session.flush()
    groups = {
        g["key"]: _upsert(session, ChatGroup, ck, "key", g["key"], name=g["name"], kind=g["kind"],
                          webhook_key=g.get("webhook_key"))
        for g in data["groups"]
    }
    staff = {
        s["key"]: _upsert(session, Staff, ck, "key", s["key"], name=s["name"], role=s["role"],
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
    demo_accounts = seed_demo_passwords(session, str(demo_password) if demo_password else None, ck)
    estates = {}
    for e in data["estates"]:
        estates[e["name"]] = _upsert(
            session, Estate, ck, "name", e["name"], aliases=list(e.get("aliases", [])),
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
                    session, ChatGroup, ck, "key", gkey, kind="building",
                    name=bg["name"].format(estate=e["name"], building=number),
                    webhook_key=bg["webhook_key"].format(estate_key=estate_key, building=number))
            buildings += 1

    for g in data["grids"]:
        grid = _upsert(session, Grid, ck, "key", g["key"], name=g["name"], leader=staff.get(g.get("leader")),
                       group=groups.get(g.get("group")), property_group=groups.get(g.get("property_group")),
                       member_keys=list(g.get("members", [])))
        if g["estate"] not in estates:
            raise InvalidInput(f"grid {g['key']!r} names estate {g['estate']!r}, not one of this file's",
                               field="grids")
        estate = estates[g["estate"]]
        session.flush()
        for number in _span(g["buildings"]):
            session.query(Building).filter_by(estate_id=estate.id, number=number).update({"grid_id": grid.id})

    help_team = data.get("help_team")
    for t in data["volunteer_teams"]:
        _upsert(session, VolunteerTeam, ck, "number", int(t["number"]), scoped=True, colour=t["colour"], name=t["name"],
                short=t["short"], lead=staff.get(t.get("lead")), group=groups.get(t.get("group")),
                handles_help=help_team is not None and int(t["number"]) == int(help_team))

    # The roster is replaced as a whole: it is the file's, not edited row by row.
    session.query(DutyShift).filter_by(community_key=ck).delete(synchronize_session=False)
    for shift in data.get("duty_roster") or []:
        if shift.get("staff") not in staff:
            raise InvalidInput(f"duty_roster names unknown staff {shift.get('staff')!r}", field="duty_roster")
        session.add(DutyShift(community_key=ck, staff=staff[shift["staff"]], weekdays=[int(d) for d in shift.get("weekdays") or []],
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
    ck = community_key(data)
    taken = {key for (key,) in session.query(ClinicEvent.file_key)
             .filter(ClinicEvent.community_key == ck, ClinicEvent.file_key.isnot(None),
                     ClinicEvent.edited_by.isnot(None))}
    clinics = 0
    for c in data.get("clinic_events", []):
        clinics += 1
        if c["title"] in taken:
            continue
        when = dt.date.fromisoformat(str(c["date"])) if "date" in c else today + dt.timedelta(days=int(c["days_from_now"]))
        row = session.query(ClinicEvent).filter_by(community_key=ck, file_key=c["title"], date=when).one_or_none()
        if row is None:
            row = ClinicEvent(community_key=ck, title=c["title"], file_key=c["title"], date=when, status="scheduled")
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


def community_of(session: Session, estate: Optional[str], fallback: Optional[str] = None) -> str:
    """The community (key) a row about `estate` belongs to: the estate's; without a known estate, `fallback` (the
    resident's community) as `home_community` reads it."""
    if estate:
        key = session.query(Estate.community_key).filter(Estate.name == estate).scalar()
        if key is not None:
            return key
    return home_community(session, fallback)


def home_community(session: Session, key: Optional[str]) -> str:
    """`key` if it names a community with estates; otherwise the deployment's first community (the one whose
    estates were loaded first, community.yml's) — where a resident who never gave an address is served."""
    if key and session.query(Estate.id).filter(Estate.community_key == key).first() is not None:
        return key
    first = session.query(Estate.community_key).order_by(Estate.id).first()
    return first[0] if first else DEFAULT_COMMUNITY


def resident_community(session: Session, sender_id: str) -> str:
    """The community that serves the resident `sender_id` (their estate's, once known)."""
    row = session.query(Resident.community_key).filter(Resident.sender_id == sender_id).first()
    return home_community(session, row[0] if row else None)


def _property_contacts(info: Dict[str, Any]) -> List[str]:
    """The `property_contacts` lines of a community file's `community` section (a list of non-empty texts)."""
    lines = info.get("property_contacts")
    if lines is None:
        return []
    if not isinstance(lines, list) or not all(isinstance(line, str) and line.strip() for line in lines):
        raise InvalidInput("'community.property_contacts' must be a list of texts, one line per estate",
                           field="community.property_contacts")
    return [line.strip() for line in lines]


def property_answer(name: str, office_phone: str, lines: Optional[Sequence[str]]) -> str:
    """The property-phone answer's first part ({property_contacts}): the community's own lines, or — for a
    community whose file gives none — its office, never another community's property phones."""
    if lines:
        return "各小区物业联系方式：\n" + "\n".join(f"· {line}" for line in lines)
    if office_phone:
        return f"您所在小区的物业联系方式，可以打{name}办公室电话 {office_phone} 询问。"
    return f"您所在小区的物业联系方式，可以到{name}办公室询问。"


def office_texts(session: Session) -> Dict[str, Dict[str, str]]:
    """Each community's name, office phone, hours and property contacts by key, for the responses (domain.yml's
    {community_name}, {office_phone}, {office_hours}, {property_contacts}; bot/nlg.py); a community that leaves out
    its phone or hours gets the deployment's first community's (its office serves the street then)."""
    rows = session.query(Community).order_by(Community.key).all()
    first_key = home_community(session, None)
    first = next((r for r in rows if r.key == first_key), None)
    texts: Dict[str, Dict[str, str]] = {}
    for row in rows:
        phone = row.office_phone or (first.office_phone if first else None) or ""
        texts[row.key] = {
            "community_name": row.name,
            "office_phone": phone,
            "office_hours": row.office_hours or (first.office_hours if first else None) or "",
            "property_contacts": property_answer(row.name, phone, row.property_contacts),
        }
    return texts


def shipped_office_texts(folder: Path) -> Dict[str, str]:
    """The same texts from the community file itself (when the database cannot be read)."""
    info = read_community(folder).get("community") or {}
    name, phone = str(info.get("name") or "社区"), str(info.get("office_phone") or "")
    return {"community_name": name, "office_phone": phone, "office_hours": str(info.get("office_hours") or ""),
            "property_contacts": property_answer(name, phone, _property_contacts(info))}


def building_for(session: Session, community: str, number: int) -> Building | None:
    """The building row of an estate, if it exists."""
    return (session.query(Building).join(Estate).filter(Estate.name == community, Building.number == number)
            .one_or_none())


def teams(session: Session) -> Sequence[VolunteerTeam]:
    """All volunteer teams in number order."""
    return session.query(VolunteerTeam).order_by(VolunteerTeam.number).all()
