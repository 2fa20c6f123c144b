"""Volunteer sign-ups: one registration per phone and team; the team lead is told."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot import messages
from bot.errors import NotFound
from bot.notify import outbox
from bot.phone import mask_phone
from bot.services import community, residents, scope
from bot.services.scope import FULL_PHONE_ROLES
from bot.store.db import unit_of_work
from bot.store.models import VolunteerRegistration, VolunteerTeam
from bot.teams import Team


@dataclass(frozen=True)
class SignupResult:
    """The outcome of a sign-up: the team, and whether it was new."""

    team_name: str
    lead_name: str
    created: bool


def home_of(factory: sessionmaker, sender_id: str) -> str:
    """The community serving the resident `sender_id` (see community.resident_community)."""
    with unit_of_work(factory) as session:
        return community.resident_community(session, sender_id)


def team_values(factory: sessionmaker, home: Optional[str] = None) -> List[Team]:
    """The volunteer teams of the community `home` (the deployment's first community without one), as matcher
    values."""
    with unit_of_work(factory) as session:
        home = community.home_community(session, home)
        rows = session.query(VolunteerTeam).filter_by(community_key=home).order_by(VolunteerTeam.number).all()
        return [Team(number=r.number, colour=r.colour, name=r.name, short=r.short) for r in rows]


def _team(session: Session, sender_id: str, team_number: int) -> Optional[VolunteerTeam]:
    home = community.resident_community(session, sender_id)
    return session.query(VolunteerTeam).filter_by(community_key=home, number=team_number).one_or_none()


def sign_up(factory: sessionmaker, sender_id: str, name: str, phone: str, team_number: int) -> SignupResult:
    """Register the resident for the team (numbered within their community) unless this phone is already in it."""
    try:
        with unit_of_work(factory) as session:
            team = _team(session, sender_id, team_number)
            if team is None:
                raise NotFound("no such team", team=team_number)
            lead_name = team.lead.name if team.lead else "队长"
            existing = session.query(VolunteerRegistration).filter_by(team_id=team.id, phone=phone).one_or_none()
            if existing is not None:
                return SignupResult(team.name, lead_name, created=False)
            session.add(VolunteerRegistration(team_id=team.id, name=name[:64], phone=phone, sender_id=sender_id))
            residents.remember(session, sender_id, name=name, phone=phone)
            mentions = [team.lead.wecom_userid] if team.lead and team.lead.wecom_userid else []
            outbox.enqueue(session, group=team.group, purpose="volunteer", mentions=mentions,
                           content=messages.volunteer_card(team.name, name, mask_phone(phone)))
            session.flush()
            return SignupResult(team.name, lead_name, created=True)
    except IntegrityError:
        # The same phone signed up concurrently: the other request won.
        with unit_of_work(factory) as session:
            team = _team(session, sender_id, team_number)
            assert team is not None  # it was there a moment ago, and teams are not deleted
            return SignupResult(team.name, team.lead.name if team.lead else "队长", created=False)


def shown_phone(viewer_role: str, phone: str) -> str:
    """A volunteer's phone as `viewer_role` may see it: in full for FULL_PHONE_ROLES, masked otherwise."""
    return phone if viewer_role in FULL_PHONE_ROLES else mask_phone(phone)


def roster(factory: sessionmaker, viewer: str) -> List[Dict[str, Any]]:
    """Every team (name, lead, group) of the staff member `viewer`'s community (of every community for the street
    office) with its sign-ups, phones as `shown_phone` allows."""
    with unit_of_work(factory) as session:
        actor = scope.actor_by_key(session, viewer)
        viewer_role = actor.role
        teams = scope.of_community(session.query(VolunteerTeam), VolunteerTeam.community_key, actor) \
            .order_by(VolunteerTeam.community_key, VolunteerTeam.number).all()
        signups: Dict[int, List[Dict[str, Any]]] = {t.id: [] for t in teams}
        for row in (session.query(VolunteerRegistration).filter(VolunteerRegistration.team_id.in_(list(signups) or [0]))
                    .order_by(VolunteerRegistration.id)):
            signups.setdefault(row.team_id, []).append(
                {"name": row.name, "phone": shown_phone(viewer_role, row.phone), "created_at": row.created_at})
        return [{"number": t.number, "name": t.name, "colour": t.colour, "short": t.short,
                 "lead": t.lead.name if t.lead else None, "group": t.group.name if t.group else None,
                 "signups": signups[t.id]} for t in teams]


def signups_csv(factory: sessionmaker, viewer: str, team_number: Optional[int] = None) -> str:
    """Sign-ups of the staff member `viewer`'s community as CSV (UTF-8 with a BOM); phones as `shown_phone`
    allows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["队伍", "姓名", "电话", "报名时间"])
    with unit_of_work(factory) as session:
        actor = scope.actor_by_key(session, viewer)
        viewer_role = actor.role
        query = scope.of_community(session.query(VolunteerRegistration).join(VolunteerTeam),
                                   VolunteerTeam.community_key, actor)
        if team_number is not None:
            query = query.filter(VolunteerTeam.number == team_number)
        for row in query.order_by(VolunteerTeam.community_key, VolunteerTeam.number, VolunteerRegistration.id):
            writer.writerow([row.team.name, row.name, shown_phone(viewer_role, row.phone),
                             f"{row.created_at:%Y-%m-%d %H:%M}"])
    return "\ufeff" + out.getvalue()
