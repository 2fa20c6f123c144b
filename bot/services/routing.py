"""Who is told about a new ticket: one decision that both queues the cards and words the resident's reply."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from sqlalchemy.orm import Session

from bot import lifecycle as lc
from bot import messages
from bot import vulnerability as vul
from bot.address import Address
from bot.notify import outbox
from bot.phone import mask_phone, mask_phones_in
from bot.services import duty
from bot.services.lifecycle import Context, office_group
from bot.store.models import DEFAULT_COMMUNITY, ChatGroup, Grid, Notification, Staff, Ticket, VolunteerTeam
from bot.triage import needs_water_pause

NEW_TICKET, PAUSE_WATER, NIGHT_DUTY, VULNERABLE = "new_ticket", "pause_water", "night_duty", "vulnerable_resident"
ADDRESS_CORRECTED = "address_corrected"


@dataclass(frozen=True)
class Recipient:
    """One card for one group: why it is sent, who in the group is @-mentioned (WeCom ids and names)."""

    group: Optional[ChatGroup]
    purpose: str
    content: str
    mentions: Tuple[str, ...] = ()
    people: Tuple[str, ...] = ()  # "网格长王建国"

    @property
    def group_name(self) -> Optional[str]:
        """The group's name, None when no group is configured for it."""
        return self.group.name if self.group is not None else None


@dataclass(frozen=True)
class Told:
    """What the resident may be told about one card that was queued (no ids, no contents)."""

    purpose: str
    group: Optional[str]
    people: Tuple[str, ...] = ()


def help_group(session: Session, community: str = DEFAULT_COMMUNITY) -> Optional[ChatGroup]:
    """The neighbourhood-help team's group of `community`; without one marked, its first volunteer-team group."""
    team = (session.query(VolunteerTeam).filter(VolunteerTeam.community_key == community,
                                                VolunteerTeam.handles_help.is_(True), VolunteerTeam.group_id.isnot(None))
            .order_by(VolunteerTeam.number).first())
    if team is not None:
        return team.group
    return session.query(ChatGroup).filter_by(kind="team", community_key=community).order_by(ChatGroup.id).first()


def duty_staff(session: Session, community: str = DEFAULT_COMMUNITY) -> List[Staff]:
    """The staff marked on duty in `community` (the day's duty officers)."""
    return session.query(Staff).filter_by(on_duty=True, community_key=community).order_by(Staff.id).all()


def _address(ticket: Ticket) -> str:
    return Address(ticket.community, ticket.building, ticket.unit, ticket.room).label()


def _flags(ticket: Ticket) -> Tuple[str, ...]:
    words = vul.label(ticket.vulnerability or [])
    return (f"⚠ {words}",) if words else ()


def night_for(ticket: Ticket, ctx: Context) -> bool:
    """Whether the night roster must hear of this ticket: urgent, or a vulnerable resident's leak, at night."""
    if not duty.in_span(ctx.local(ticket.created_at), ctx.deadlines.night_start, ctx.deadlines.night_end):
        return False
    return ticket.priority == "urgent" or (ticket.kind == "leak" and bool(ticket.vulnerability))


def _who(staff: Sequence[Optional[Staff]]) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    present = [s for s in staff if s is not None]
    return (tuple(s.wecom_userid for s in present if s.wecom_userid),
            tuple(f"{lc.ROLE_LABELS.get(s.role, '')}{s.name}" for s in present))


def route(session: Session, ticket: Ticket, building_group: Optional[ChatGroup], ctx: Context) -> List[Recipient]:
    """Every card a new ticket sends, each group once per purpose, in the order they are queued."""
    grid: Optional[Grid] = ticket.grid
    link = ctx.ticket_link(ticket.number)
    address = _address(ticket)
    contact = f"{ticket.contact_name or '居民'} {mask_phone(ticket.contact_phone) if ticket.contact_phone else ''}"
    card = messages.ticket_card(
        number=ticket.number, kind=ticket.kind, priority=ticket.priority, address=address or "（未提供）",
        grid=grid.name if grid else None, contact=contact.strip(), description=mask_phones_in(ticket.description),
        facility=ticket.facility, link=link, flags=_flags(ticket))
    mentions, people = _who([grid.leader if grid else None])
    targets: List[Optional[ChatGroup]]
    if ticket.kind in ("leak", "repair"):
        targets = [grid.property_group if grid else None, grid.group if grid else None]
    elif ticket.kind == "help":
        targets = [help_group(session, ticket.community_key), grid.group if grid else None]
    else:  # feedback
        targets = [office_group(session, ticket.community_key)]
        mentions, people = _who(duty_staff(session, ticket.community_key))
    if not any(targets):
        targets = [office_group(session, ticket.community_key)]
    recipients: List[Recipient] = []
    for group in dict.fromkeys(targets):  # each group once, first place kept
        recipients.append(Recipient(group, NEW_TICKET, card, mentions, people))
    if ticket.vulnerability and ticket.kind != "feedback":
        team = help_group(session, ticket.community_key)
        if team is not None and team not in targets:
            recipients.append(Recipient(team, VULNERABLE, messages.vulnerable_resident_card(
                ticket.number, ticket.kind, address, vul.label(ticket.vulnerability), link)))
    if needs_water_pause(ticket.kind, ticket.description) and ticket.building is not None:
        recipients.append(Recipient(building_group, PAUSE_WATER, messages.water_pause_notice(
            ticket.community or "", ticket.building, ticket.unit)))
    if night_for(ticket, ctx):
        night = duty.on_duty(session, ctx.local(ticket.created_at), ticket.community_key)
        if night:
            ids, names = _who(night)
            card = messages.night_duty_card(ticket.number, address, link, _flags(ticket))
            recipients.append(Recipient(office_group(session, ticket.community_key), NIGHT_DUTY, card, ids, names))
    return recipients


def rerouted(session: Session, ticket: Ticket, building_group: Optional[ChatGroup], before: str,
             ctx: Context) -> List[Recipient]:
    """The cards a corrected address sends: a correction to every group that had one of the ticket's cards, and
    the new address's own cards to the groups it routes to that had none (the night roster, told once, is not
    told again)."""
    had = {n.group_id for n in session.query(Notification).filter_by(ticket_id=ticket.id, channel=outbox.WECOM_ROBOT)}
    grid: Optional[Grid] = ticket.grid
    card = messages.address_corrected_card(ticket.number, before, _address(ticket), grid.name if grid else None,
                                           ctx.ticket_link(ticket.number))
    mentions, people = _who([grid.leader if grid else None])
    told_again = [Recipient(g, ADDRESS_CORRECTED, card, mentions, people)
                  for g in session.query(ChatGroup).filter(ChatGroup.id.in_(had)).order_by(ChatGroup.id)]
    fresh = [r for r in route(session, ticket, building_group, ctx)
             if r.purpose != NIGHT_DUTY and (r.group.id if r.group is not None else None) not in had]
    return told_again + fresh


def enqueue(session: Session, ticket: Ticket, recipients: Sequence[Recipient], now: dt.datetime) -> Tuple[Told, ...]:
    """Queue every card of the routing; returns what was told, for the ticket's history and the reply."""
    for r in recipients:
        outbox.enqueue(session, now=now, group=r.group, purpose=r.purpose, content=r.content, ticket_id=ticket.id,
                       mentions=list(r.mentions))
    return tuple(Told(r.purpose, r.group_name, r.people) for r in recipients)


def history_line(told: Sequence[Told]) -> str:
    """The "notified" event's detail for staff: every group (and the night roster by name)."""
    parts = []
    for t in told:
        if t.purpose == NIGHT_DUTY:
            parts.append("夜间值班：" + "、".join(t.people))
        elif t.group is None:
            parts.append("楼栋群（未配置）" if t.purpose == PAUSE_WATER else "未配置的群")
        else:
            parts.append(t.group)
    return "、".join(parts)


def reply(number: str, kind: str, priority: str, told: Sequence[Told]) -> str:
    """The resident's receipt, naming exactly who the routing told (groups configured, people @-mentioned)."""
    new = [t for t in told if t.purpose == NEW_TICKET and t.group is not None]
    if kind == "feedback":
        return messages.feedback_receipt(number, [t.group for t in new if t.group])
    people = list(dict.fromkeys(p for t in new for p in t.people))
    help_group = next((t.group for t in told if t.purpose == VULNERABLE and t.group), None)
    night = [p for t in told if t.purpose == NIGHT_DUTY for p in t.people]
    pause = next((t.group for t in told if t.purpose == PAUSE_WATER and t.group), None)
    return messages.ticket_receipt(number, kind, priority, [t.group for t in new if t.group], people,
                                   help_group=help_group, night_staff=night, pause_group=pause)
