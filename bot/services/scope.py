"""What a staff member may see and act on — tickets, review items, the model — the one place the console, the
API and the CLI ask.

Every staff member belongs to one community (社区) and sees only its rows; street-office staff (街道) see every
community's. Within the community, grid staff see the tickets of their grids; property managers those of their
estates; duty staff urgent tickets (and the handoff inbox); volunteer team leads help tickets; the secretary and
admins everything. A row outside one's scope does not exist for them (NotFound), so its existence is not disclosed.
Admins review their own community's residents' messages (`reviews`); with several communities loaded only the
street office retrains and deploys the one model every community shares (`manages_models`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Sequence

from sqlalchemy import false, or_
from sqlalchemy.orm import Query, Session
from sqlalchemy.sql.elements import ColumnElement

from bot import lifecycle as lc
from bot.errors import NotAllowed, NotFound
from bot.store.models import DEFAULT_COMMUNITY, Community, Grid, Staff, Ticket

EVERYTHING = frozenset({lc.SECRETARY, lc.ADMIN, lc.STREET})
# Who sees every community of the deployment (the rest see their own community only).
ALL_COMMUNITIES = frozenset({lc.STREET})
HANDOFF_ROLES = frozenset({lc.DUTY, lc.SECRETARY, lc.ADMIN, lc.STREET})
# The admin pages: statistics, announcements, exports.
ADMIN_ROLES = EVERYTHING
# Who sees volunteers' full phone numbers (on the volunteer page and in its CSV export); others see them masked.
FULL_PHONE_ROLES = frozenset({lc.ADMIN})


@dataclass(frozen=True)
class StaffActor:
    """A signed-in staff member with what their scope is made of."""

    id: int
    key: str
    name: str
    role: str
    grid_ids: FrozenSet[int]
    estates: FrozenSet[str]
    community: str = DEFAULT_COMMUNITY

    @property
    def all_communities(self) -> bool:
        """Whether the actor sees every community (the street office), not only their own."""
        return self.role in ALL_COMMUNITIES

    @property
    def label(self) -> str:
        """How the actor appears in a ticket's history: 网格长王建国."""
        return f"{lc.ROLE_LABELS.get(self.role, '')}{self.name}"

    @property
    def handles_handoffs(self) -> bool:
        """Whether the handoff inbox is theirs."""
        return self.role in HANDOFF_ROLES


def actor_for(session: Session, staff: Staff) -> StaffActor:
    """The scope of one staff row."""
    grids = [g.id for g in session.query(Grid).all() if g.leader_id == staff.id or staff.key in (g.member_keys or [])]
    return StaffActor(id=staff.id, key=staff.key, name=staff.name, role=staff.role, grid_ids=frozenset(grids),
                      estates=frozenset(staff.estates or []), community=staff.community_key)


def actor_by_key(session: Session, key: str) -> StaffActor:
    """The scope of the active staff member `key`; NotFound otherwise."""
    staff = session.query(Staff).filter_by(key=key).one_or_none()
    if staff is None or not staff.active:
        raise NotFound("no such staff member", staff=key)
    return actor_for(session, staff)


def in_community(actor: StaffActor, community: str) -> bool:
    """Whether rows of `community` are the actor's to see at all."""
    return actor.all_communities or community == actor.community


def of_community(query: Query, column: ColumnElement, actor: StaffActor) -> Query:
    """`query` narrowed to the rows whose community `column` the actor may see (the SQL twin of in_community)."""
    return query if actor.all_communities else query.filter(column == actor.community)


def reviews(actor: StaffActor, communities: Sequence[str]) -> bool:
    """Whether a review item (residents' masked messages, bot/services/review.py) written by residents of
    `communities` is the actor's to see and label: an admin's when one of them is their community, the street
    office's always. An item collected before items knew their communities (none recorded) stays with every
    admin, as before."""
    return actor.role in ADMIN_ROLES and (actor.all_communities or not communities or actor.community in communities)


def manages_models(actor: StaffActor, communities: int) -> bool:
    """Whether the actor retrains the assistant and deploys or rolls back its model. One model serves every
    community of the deployment: with one community its admins and secretary do; with several, only the street
    office (街道), since a change reaches every community's residents."""
    return actor.role in ADMIN_ROLES and (communities <= 1 or actor.all_communities)


def model_manager(session: Session, staff_key: str) -> StaffActor:
    """The active staff member `staff_key` if they manage the model (`manages_models`); NotAllowed with why."""
    actor = actor_by_key(session, staff_key)
    communities = session.query(Community.key).count()
    if not manages_models(actor, communities):
        raise NotAllowed("several communities share the assistant's model: only the street office (街道) retrains, "
                         "deploys or rolls it back" if communities > 1 and actor.role in ADMIN_ROLES
                         else "only an admin retrains, deploys or rolls back the model", staff=staff_key)
    return actor


def sees(actor: StaffActor, ticket: Ticket) -> bool:
    """Whether `ticket` is inside the actor's scope."""
    if not in_community(actor, ticket.community_key):
        return False
    if actor.role in EVERYTHING:
        return True
    if actor.role in (lc.GRID_LEADER, lc.GRID_MEMBER):
        return ticket.grid_id in actor.grid_ids
    if actor.role == lc.PROPERTY_MANAGER:
        return ticket.community in actor.estates
    if actor.role == lc.DUTY:
        return ticket.priority == "urgent"
    if actor.role == lc.TEAM_LEAD:
        return ticket.kind == "help"
    return False


def visible(query: Query, actor: StaffActor) -> Query:
    """`query` over Ticket narrowed to the actor's scope (the SQL twin of `sees`)."""
    query = of_community(query, Ticket.community_key, actor)
    if actor.role in EVERYTHING:
        return query
    if actor.role in (lc.GRID_LEADER, lc.GRID_MEMBER):
        return query.filter(Ticket.grid_id.in_(sorted(actor.grid_ids))) if actor.grid_ids else query.filter(false())
    if actor.role == lc.PROPERTY_MANAGER:
        return query.filter(Ticket.community.in_(sorted(actor.estates))) if actor.estates else query.filter(false())
    if actor.role == lc.DUTY:
        return query.filter(Ticket.priority == "urgent")
    if actor.role == lc.TEAM_LEAD:
        return query.filter(Ticket.kind == "help")
    return query.filter(false())


def ticket_in_scope(session: Session, actor: StaffActor, number: str) -> Ticket:
    """The ticket `number` if the actor may see it; NotFound whether it is missing or out of scope."""
    ticket = session.query(Ticket).filter_by(number=(number or "").upper()).one_or_none()
    if ticket is None or not sees(actor, ticket):
        raise NotFound("no such ticket", number=number)
    return ticket


def assignable(session: Session, ticket: Ticket) -> List[Staff]:
    """Who a ticket may be given to: its grid's leader and members and the property managers of its estate (all of
    the ticket's community)."""
    keys: List[str] = []
    grid = ticket.grid
    if grid is not None:
        if grid.leader is not None:
            keys.append(grid.leader.key)
        keys.extend(grid.member_keys or [])
    rows = session.query(Staff).filter(Staff.active.is_(True), Staff.community_key == ticket.community_key).filter(
        or_(Staff.key.in_(keys or [""]), Staff.role == lc.PROPERTY_MANAGER)).order_by(Staff.id).all()
    return [s for s in rows if s.role != lc.PROPERTY_MANAGER or (ticket.community in (s.estates or []))]
