"""Residents' profiles (name, address, phone) and whether they still follow the account, by sender id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from bot.address import Address
from bot.store.db import unit_of_work
from bot.store.models import Estate, Resident, utcnow


@dataclass(frozen=True)
class Profile:
    """What the assistant remembers about a resident."""

    name: Optional[str]
    phone: Optional[str]
    address: Optional[Address]
    vulnerability: Tuple[str, ...] = ()  # bot/vulnerability.py kinds the resident told us about

    @property
    def complete(self) -> bool:
        """True when both a full home address and a phone are known."""
        return self.phone is not None and self.address is not None and self.address.room is not None


def remember(session: Session, sender_id: str, *, name: Optional[str] = None, phone: Optional[str] = None,
             address: Optional[Address] = None) -> Resident:
    """Create or update the resident's profile with whatever is given (inside the caller's transaction)."""
    resident = _row(session, sender_id)
    if name:
        resident.name = name[:64]
    if phone:
        resident.phone = phone
    if address is not None and address.building is not None:
        resident.community, resident.building = address.community, address.building
        resident.unit, resident.room = address.unit, address.room
        estate = session.query(Estate).filter_by(name=address.community).one_or_none()
        if estate is not None:  # a resident lives in the community of their estate
            resident.community_key = estate.community_key
    resident.updated_at = utcnow()
    session.flush()
    return resident


def _row(session: Session, sender_id: str) -> Resident:
    """The resident's row, created if missing without ever failing the caller's transaction: when another process
    creates it at the same moment (the WeChat channel notes a first message while its turn opens a ticket), the
    insert waits for that one and does nothing, and the row it made is updated instead."""
    resident = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
    if resident is not None:
        return resident
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:  # another database: a plain insert (a concurrent first insert fails the caller)
        resident = Resident(sender_id=sender_id)
        session.add(resident)
        return resident
    now = utcnow()
    session.execute(_INSERTS[dialect](Resident).values(sender_id=sender_id, created_at=now, updated_at=now)
                    .on_conflict_do_nothing(index_elements=["sender_id"]))
    return session.query(Resident).filter_by(sender_id=sender_id).one()


_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}


def note_vulnerability(resident: Resident, kinds: Sequence[str]) -> None:
    """Remember what the resident said about themselves (alone, elderly, …) for their next tickets."""
    if list(resident.vulnerability or []) != list(kinds):
        resident.vulnerability = list(kinds)
        resident.updated_at = utcnow()


def profile(factory: sessionmaker, sender_id: str) -> Optional[Profile]:
    """The stored profile of this sender, or None for a first-time resident."""
    with unit_of_work(factory) as session:
        r = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        if r is None:
            return None
        addr = Address(r.community, r.building, r.unit, r.room) if r.building is not None else None
        return Profile(name=r.name, phone=r.phone, address=addr, vulnerability=tuple(r.vulnerability or ()))


def record_unsubscribe(factory: sessionmaker, sender_id: str, now: Optional[dt.datetime] = None) -> None:
    """Note that the resident unfollowed the Official Account (nothing can reach them until they follow again)."""
    at = now or utcnow()
    with unit_of_work(factory) as session:
        remember(session, sender_id).unsubscribed_at = at


def record_subscribe(factory: sessionmaker, sender_id: str) -> None:
    """Note that the resident follows the Official Account (again)."""
    with unit_of_work(factory) as session:
        resident = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        if resident is not None and resident.unsubscribed_at is not None:
            resident.unsubscribed_at = None
            resident.updated_at = utcnow()


def is_unsubscribed(factory: sessionmaker, sender_id: str) -> bool:
    """Whether the resident's last recorded follow event was an unfollow."""
    with unit_of_work(factory) as session:
        resident = session.query(Resident).filter_by(sender_id=sender_id).one_or_none()
        return resident is not None and resident.unsubscribed_at is not None


def record_inbound(factory: sessionmaker, sender_id: str, now: Optional[dt.datetime] = None, *,
                   community_key: Optional[str] = None, appid: Optional[str] = None) -> None:
    """Note the resident's latest message (it opens WeChat's 48-hour customer-service window) and the account it
    came to: a community's own account (`community_key`, `appid`; bot/wechat/accounts.py) makes the resident that
    community's until they give an estate, and later messages to them go out through that account; None is the
    shared account."""
    now = now or utcnow()
    with unit_of_work(factory) as session:
        resident = _row(session, sender_id)  # a first message and its retry may arrive together
        resident.last_inbound_at = now
        resident.wechat_appid = appid if community_key else None
        if community_key and resident.building is None:  # an estate, once given, decides (see `remember`)
            resident.community_key = community_key


def clear_vulnerability(factory: sessionmaker, staff_key: str, number: str, note: str,
                        now: Optional[dt.datetime] = None) -> Tuple[str, ...]:
    """A lead clears what the profile of ticket `number`'s resident remembers (alone, elderly, …), with why;
    recorded in the ticket's history. Returns what was cleared."""
    from bot import lifecycle as lc
    from bot import vulnerability as vul
    from bot.errors import InvalidInput, InvalidState, NotAllowed
    from bot.services.scope import actor_by_key, ticket_in_scope
    from bot.store.models import TicketEvent

    now = now or utcnow()
    note = " ".join((note or "").split())[:200]
    with unit_of_work(factory) as session:
        actor = actor_by_key(session, staff_key)
        ticket = ticket_in_scope(session, actor, number)
        if actor.role not in lc.PROFILE_EDITORS:
            raise NotAllowed("only leads clear a resident's profile", staff=staff_key)
        if not note:
            raise InvalidInput("say why (e.g. what the visit found)", field="note")
        resident = ticket.resident
        cleared = tuple(vul.ordered(resident.vulnerability or [])) if resident is not None else ()
        if not cleared:
            raise InvalidState("the resident's profile holds nothing to clear", number=number)
        note_vulnerability(resident, [])
        session.add(TicketEvent(ticket_id=ticket.id, at=now, actor=actor.label, kind="profile_cleared",
                                detail=f"居民档案不再标注：{vul.label(list(cleared))}（{note}）",
                                from_status=ticket.status, to_status=ticket.status))
        return cleared
