"""Volunteer sign-ups: one registration per phone and team; the team lead is told."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from bot import messages
from bot.errors import NotFound
from bot.notify import outbox
from bot.phone import mask_phone
from bot.services import residents
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


def team_values(factory: sessionmaker) -> List[Team]:
    """The volunteer teams as matcher values."""
    with unit_of_work(factory) as session:
        rows = session.query(VolunteerTeam).order_by(VolunteerTeam.number).all()
        return [Team(number=r.number, colour=r.colour, name=r.name, short=r.short) for r in rows]


def sign_up(factory: sessionmaker, sender_id: str, name: str, phone: str, team_number: int) -> SignupResult:
    """Register the resident for the team unless this phone is already in it."""
    try:
        with unit_of_work(factory) as session:
            team = session.query(VolunteerTeam).filter_by(number=team_number).one_or_none()
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
            team = session.query(VolunteerTeam).filter_by(number=team_number).one()
            return SignupResult(team.name, team.lead.name if team.lead else "队长", created=False)


def shown_phone(viewer_role: str, phone: str) -> str:
    """A volunteer's phone as `viewer_role` may see it: in full for FULL_PHONE_ROLES, masked otherwise."""
    return phone if viewer_role in FULL_PHONE_ROLES else mask_phone(phone)


def roster(factory: sessionmaker, viewer_role: str) -> List[Dict[str, Any]]:
    """Every team (name, lead, group) with its sign-ups, phones as `shown_phone` allows."""
    with unit_of_work(factory) as session:
        teams = session.query(VolunteerTeam).order_by(VolunteerTeam.number).all()
        signups: Dict[int, List[Dict[str, Any]]] = {t.id: [] for t in teams}
        for row in session.query(VolunteerRegistration).order_by(VolunteerRegistration.id):
            signups.setdefault(row.team_id, []).append(
                {"name": row.name, "phone": shown_phone(viewer_role, row.phone), "created_at": row.created_at})
        return [{"number": t.number, "name": t.name, "colour": t.colour, "short": t.short,
                 "lead": t.lead.name if t.lead else None, "group": t.group.name if t.group else None,
                 "signups": signups[t.id]} for t in teams]


def signups_csv(factory: sessionmaker, viewer_role: str, team_number: Optional[int] = None) -> str:
    """Sign-ups as CSV (UTF-8 with a BOM); phones as `shown_phone` allows."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["队伍", "姓名", "电话", "报名时间"])
    with unit_of_work(factory) as session:
        query = session.query(VolunteerRegistration).join(VolunteerTeam)
        if team_number is not None:
            query = query.filter(VolunteerTeam.number == team_number)
        for row in query.order_by(VolunteerTeam.number, VolunteerRegistration.id):
            writer.writerow([row.team.name, row.name, shown_phone(viewer_role, row.phone),
                             f"{row.created_at:%Y-%m-%d %H:%M}"])
    return "\ufeff" + out.getvalue()
