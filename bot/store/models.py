"""SQLAlchemy models: community, residents, tickets with their photos, the notification outbox, delivery failures."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Index,
)
from sqlalchemy.orm import declarative_base, relationship

# Stable constraint names so Alembic migrations work the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
Base = declarative_base(metadata=MetaData(naming_convention=NAMING))


DEFAULT_COMMUNITY = "default"


def community_column() -> Column:
    """The community (社区) a row belongs to: every row that belongs to one carries its key (migration 0011)."""
    return Column(String(32), ForeignKey("communities.key"), nullable=False, default=DEFAULT_COMMUNITY,
                  server_default=DEFAULT_COMMUNITY, index=True)


def utcnow() -> dt.datetime:
    """Current UTC time without tzinfo (stored naive, always UTC)."""
    return dt.datetime.utcnow().replace(microsecond=0)


class Community(Base):
    """A community (社区) of the street office (街道): its name, office and WeChat account. Estates, staff, groups,
    teams, clinics, residents and tickets belong to one; staff see only their own community's rows."""

    __tablename__ = "communities"
    key = Column(String(32), primary_key=True)
    name = Column(String(64), nullable=False)
    office_phone = Column(String(32), nullable=True)
    office_hours = Column(String(128), nullable=True)
    # Lines of the property-phone answer (one per estate: who to call, where, when); None: ask the office.
    property_contacts = Column(JSON, nullable=True)
    # The appid of its own Official Account, if it has one (credentials in HG_WECHAT_ACCOUNTS, bot/wechat/accounts.py;
    # checked against that file); None: residents reach it through the shared account.
    wechat_account = Column(String(32), nullable=True)


class Estate(Base):
    """A housing estate (小区) of the community with its building layout."""

    __tablename__ = "estates"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    name = Column(String(64), nullable=False, unique=True)
    aliases = Column(JSON, nullable=False, default=list)
    property_managed = Column(Boolean, nullable=False, default=True)
    units = Column(Integer, nullable=False)
    floors = Column(Integer, nullable=False)
    rooms_per_floor = Column(Integer, nullable=False)
    buildings = relationship("Building", back_populates="estate", order_by="Building.number")


class ChatGroup(Base):
    """A WeCom group that a group robot posts into."""

    __tablename__ = "chat_groups"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    key = Column(String(64), nullable=False, unique=True)
    name = Column(String(128), nullable=False)
    kind = Column(String(16), nullable=False)  # property | grid | building | office | team
    webhook_key = Column(String(128), nullable=True)


class Staff(Base):
    """A grid worker, grid leader, property manager, duty officer or team lead."""

    __tablename__ = "staff"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    key = Column(String(64), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    role = Column(String(32), nullable=False)
    phone = Column(String(32), nullable=True)
    wecom_userid = Column(String(64), nullable=True)
    on_duty = Column(Boolean, nullable=False, default=False)
    # Property managers' scope: the estates they look after (names); empty for other roles.
    estates = Column(JSON, nullable=False, default=list)
    active = Column(Boolean, nullable=False, default=True)
    # Console account: argon2 hash, lock-out after repeated failures, a bearer token (sha256) for the API.
    password_hash = Column(String(255), nullable=True)
    failed_logins = Column(Integer, nullable=False, default=0)
    locked_until = Column(DateTime, nullable=True)
    api_token_hash = Column(String(64), nullable=True, unique=True)


class StaffSession(Base):
    """A signed-in console session; the cookie carries its id, the row its CSRF token and expiry."""

    __tablename__ = "staff_sessions"
    id = Column(Integer, primary_key=True)
    sid_hash = Column(String(64), nullable=False, unique=True)
    staff_id = Column(Integer, ForeignKey("staff.id"), nullable=False, index=True)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False)
    revoked_at = Column(DateTime, nullable=True)
    staff = relationship("Staff")


class DutyShift(Base):
    """One line of the duty roster: who is on duty on which weekdays between two local times."""

    __tablename__ = "duty_shifts"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    staff_id = Column(Integer, ForeignKey("staff.id"), nullable=False)
    weekdays = Column(JSON, nullable=False, default=list)  # 1 = Monday … 7 = Sunday
    start = Column(String(5), nullable=False)  # "22:00"
    end = Column(String(5), nullable=False)  # "07:00": before start means the next morning
    note = Column(String(64), nullable=True)
    staff = relationship("Staff")


class Grid(Base):
    """A grid (网格): a set of buildings with its leader, members and groups."""

    __tablename__ = "grids"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    key = Column(String(64), nullable=False, unique=True)
    name = Column(String(64), nullable=False)
    leader_id = Column(Integer, ForeignKey("staff.id"), nullable=True)
    group_id = Column(Integer, ForeignKey("chat_groups.id"), nullable=True)
    property_group_id = Column(Integer, ForeignKey("chat_groups.id"), nullable=True)
    member_keys = Column(JSON, nullable=False, default=list)
    leader = relationship("Staff", foreign_keys=[leader_id])
    group = relationship("ChatGroup", foreign_keys=[group_id])
    property_group = relationship("ChatGroup", foreign_keys=[property_group_id])


class Building(Base):
    """One building of an estate, mapped to its grid and its residents' group."""

    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("estate_id", "number", name="uq_buildings_estate_number"),)
    id = Column(Integer, primary_key=True)
    estate_id = Column(Integer, ForeignKey("estates.id"), nullable=False)
    number = Column(Integer, nullable=False)
    grid_id = Column(Integer, ForeignKey("grids.id"), nullable=True)
    group_id = Column(Integer, ForeignKey("chat_groups.id"), nullable=True)
    estate = relationship("Estate", back_populates="buildings")
    grid = relationship("Grid")
    group = relationship("ChatGroup")


class Resident(Base):
    """A resident known by their WeChat/REST sender id, with the profile they gave."""

    __tablename__ = "residents"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    sender_id = Column(String(128), nullable=False, unique=True)
    name = Column(String(64), nullable=True)
    phone = Column(String(32), nullable=True)
    community = Column(String(64), nullable=True)
    building = Column(Integer, nullable=True)
    unit = Column(Integer, nullable=True)
    room = Column(Integer, nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    # Set when the resident unfollows the Official Account (nothing reaches them then); cleared on re-follow.
    unsubscribed_at = Column(DateTime, nullable=True)
    # The resident's last message to the account: customer-service messages are allowed for 48 hours after it.
    last_inbound_at = Column(DateTime, nullable=True)
    # The Official Account the resident writes to when it is a community's own (bot/wechat/accounts.py); None: the
    # shared account. Late replies and ticket updates go out through it.
    wechat_appid = Column(String(32), nullable=True)
    # "退订提醒": no announcements until "恢复提醒".
    reminders_off = Column(Boolean, nullable=False, default=False)
    # What the resident said about themselves (bot/vulnerability.py kinds: alone, elderly, …); kept for later tickets.
    vulnerability = Column(JSON, nullable=False, default=list)


class Ticket(Base):
    """A leak, repair, help or feedback request and where it stands."""

    __tablename__ = "tickets"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    number = Column(String(32), nullable=False, unique=True)  # HG-YYYYMMDD-NNNN
    kind = Column(String(16), nullable=False)  # leak | repair | help | feedback
    priority = Column(String(16), nullable=False, default="normal")  # urgent | normal
    # bot/services/lifecycle.py: open | assigned | in_progress | resolved | closed | cancelled
    status = Column(String(16), nullable=False, default="open")
    sender_id = Column(String(128), nullable=False, index=True)
    resident_id = Column(Integer, ForeignKey("residents.id"), nullable=True)
    community = Column(String(64), nullable=True)
    building = Column(Integer, nullable=True)
    unit = Column(Integer, nullable=True)
    room = Column(Integer, nullable=True)
    facility = Column(String(64), nullable=True)
    description = Column(Text, nullable=False)
    contact_name = Column(String(64), nullable=True)
    contact_phone = Column(String(32), nullable=True)
    grid_id = Column(Integer, ForeignKey("grids.id"), nullable=True)
    assignee_id = Column(Integer, ForeignKey("staff.id"), nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    accepted_at = Column(DateTime, nullable=True)
    due_at = Column(DateTime, nullable=True)  # when it should be resolved by (set on acceptance)
    resolved_at = Column(DateTime, nullable=True)
    closed_at = Column(DateTime, nullable=True)
    resolution = Column(Text, nullable=True)  # what was done
    last_note = Column(Text, nullable=True)
    rating = Column(Integer, nullable=True)  # 1-5 from the resident
    rating_comment = Column(Text, nullable=True)
    confirmed_at = Column(DateTime, nullable=True)
    reopened = Column(Integer, nullable=False, default=0)
    # A vulnerable resident (bot/vulnerability.py kinds) and the words that showed it, or "居民档案" (the profile).
    vulnerability = Column(JSON, nullable=False, default=list)
    vulnerability_note = Column(String(200), nullable=True)
    grid = relationship("Grid")
    assignee = relationship("Staff")
    resident = relationship("Resident")
    events = relationship("TicketEvent", back_populates="ticket", order_by="TicketEvent.id")


class TicketEvent(Base):
    """One append-only entry of a ticket's history: who did what, when."""

    __tablename__ = "ticket_events"
    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), nullable=False, index=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    actor = Column(String(128), nullable=False)
    kind = Column(String(32), nullable=False)  # opened | notified | an action of bot/services/lifecycle.py
    detail = Column(Text, nullable=True)  # the note or reason
    from_status = Column(String(16), nullable=True)
    to_status = Column(String(16), nullable=True)
    ticket = relationship("Ticket", back_populates="events")


class ClinicEvent(Base):
    """A free clinic (义诊) or health event."""

    __tablename__ = "clinic_events"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    title = Column(String(128), nullable=False)
    date = Column(Date, nullable=False, index=True)
    start = Column(String(8), nullable=False)
    end = Column(String(8), nullable=False)
    place = Column(String(128), nullable=False)
    specialties = Column(JSON, nullable=False, default=list)
    services = Column(Text, nullable=False, default="")
    bring = Column(Text, nullable=False, default="")
    organizer = Column(String(128), nullable=True)
    # The title of the community file's entry the row was made from (kept when an admin renames it); None for
    # an event added in the console.
    file_key = Column(String(128), nullable=True)
    status = Column(String(16), nullable=False, default="scheduled")  # scheduled | cancelled | deleted
    # The admin who last changed it; set means the console owns the row and the file's refresh leaves it alone.
    edited_by = Column(String(64), nullable=True)


class VolunteerTeam(Base):
    """A volunteer team residents can join."""

    __tablename__ = "volunteer_teams"
    __table_args__ = (UniqueConstraint("community_key", "number", name="uq_volunteer_teams_community_number"),
                      UniqueConstraint("community_key", "name", name="uq_volunteer_teams_community_name"))
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    number = Column(Integer, nullable=False)
    colour = Column(String(16), nullable=False)
    name = Column(String(64), nullable=False)
    short = Column(String(32), nullable=False)
    lead_id = Column(Integer, ForeignKey("staff.id"), nullable=True)
    group_id = Column(Integer, ForeignKey("chat_groups.id"), nullable=True)
    # The neighbourhood-help team (community.yml `help_team`): help tickets and vulnerable residents reach its group.
    handles_help = Column(Boolean, nullable=False, default=False)
    lead = relationship("Staff")
    group = relationship("ChatGroup")


class VolunteerRegistration(Base):
    """A resident's sign-up for a volunteer team (one per phone and team)."""

    __tablename__ = "volunteer_registrations"
    __table_args__ = (UniqueConstraint("team_id", "phone", name="uq_volunteer_registrations_team_phone"),)
    id = Column(Integer, primary_key=True)
    team_id = Column(Integer, ForeignKey("volunteer_teams.id"), nullable=False)
    name = Column(String(64), nullable=False)
    phone = Column(String(32), nullable=False)
    sender_id = Column(String(128), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    team = relationship("VolunteerTeam")


class Handoff(Base):
    """A conversation handed to a person; the assistant is silent until released."""

    __tablename__ = "handoffs"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    sender_id = Column(String(128), nullable=False, index=True)
    reason = Column(Text, nullable=True)
    started_at = Column(DateTime, nullable=False, default=utcnow)
    released_at = Column(DateTime, nullable=True)
    released_by = Column(String(128), nullable=True)
    replies = relationship("HandoffReply", back_populates="handoff", order_by="HandoffReply.id")


class HandoffReply(Base):
    """A staff member's answer to a resident during a handoff (sent through the outbox)."""

    __tablename__ = "handoff_replies"
    id = Column(Integer, primary_key=True)
    handoff_id = Column(Integer, ForeignKey("handoffs.id"), nullable=False, index=True)
    staff_id = Column(Integer, ForeignKey("staff.id"), nullable=False)
    at = Column(DateTime, nullable=False, default=utcnow)
    text = Column(Text, nullable=False)
    notification_id = Column(Integer, ForeignKey("notifications.id"), nullable=True)
    handoff = relationship("Handoff", back_populates="replies")
    staff = relationship("Staff")


class Notification(Base):
    """One outbox message: for a WeCom group robot, or (channel "wechat") for a resident (delivered by the dispatcher)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_due", "status", "next_attempt_at"),)
    id = Column(Integer, primary_key=True)
    channel = Column(String(16), nullable=False, default="wecom_robot")  # wecom_robot | wechat
    recipient = Column(String(128), nullable=True)  # the resident's OpenID (channel "wechat")
    group_id = Column(Integer, ForeignKey("chat_groups.id"), nullable=True)
    webhook_key = Column(String(128), nullable=True)
    purpose = Column(String(32), nullable=False)  # new_ticket | pause_water | handoff | volunteer | cancelled
    payload = Column(JSON, nullable=False)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), nullable=True, index=True)
    status = Column(String(16), nullable=False, default="pending")  # pending | sent | failed | undelivered
    attempts = Column(Integer, nullable=False, default=0)
    next_attempt_at = Column(DateTime, nullable=False, default=utcnow)
    last_error = Column(Text, nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime, nullable=True)
    group = relationship("ChatGroup")


class Attachment(Base):
    """A photo a resident sent: on a ticket, or pending (no ticket yet) until they open their next one."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_pending", "sender_id", "ticket_id"),)
    id = Column(Integer, primary_key=True)
    sender_id = Column(String(128), nullable=False)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), nullable=True, index=True)
    kind = Column(String(16), nullable=False, default="image")
    media_id = Column(String(128), nullable=True)  # WeChat keeps uploaded media for 3 days
    url = Column(Text, nullable=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    attached_at = Column(DateTime, nullable=True)
    ticket = relationship("Ticket")


class DeliveryFailure(Base):
    """A reply that could not reach a resident (e.g. WeChat 45015: outside the 48-hour window), for staff."""

    __tablename__ = "delivery_failures"
    id = Column(Integer, primary_key=True)
    sender_id = Column(String(128), nullable=False, index=True)
    channel = Column(String(16), nullable=False, default="wechat")
    errcode = Column(Integer, nullable=True)  # None when the API could not be reached at all
    errmsg = Column(Text, nullable=False, default="")
    text = Column(Text, nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)


class Escalation(Base):
    """An escalation that fired for a ticket; one row per ticket and level, so each fires once."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("ticket_id", "level", name="uq_escalations_ticket_level"),)
    id = Column(Integer, primary_key=True)
    ticket_id = Column(Integer, ForeignKey("tickets.id"), nullable=False)
    level = Column(String(32), nullable=False)  # unaccepted | overdue
    fired_at = Column(DateTime, nullable=False, default=utcnow)


class AuditEntry(Base):
    """A change an admin made to the community model: who, when, before and after."""

    __tablename__ = "audit_log"
    id = Column(Integer, primary_key=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    actor = Column(String(128), nullable=False)
    entity = Column(String(32), nullable=False)
    entity_key = Column(String(128), nullable=False)
    action = Column(String(16), nullable=False)  # create | update | cancel | delete | load
    before = Column(JSON, nullable=True)
    after = Column(JSON, nullable=True)


class Announcement(Base):
    """A notice an admin sends to the residents of chosen estates or buildings (safety tip, clinic, water stop)."""

    __tablename__ = "announcements"
    id = Column(Integer, primary_key=True)
    community_key = community_column()
    kind = Column(String(16), nullable=False)  # safety | clinic | water_stop
    title = Column(String(64), nullable=False)
    body = Column(Text, nullable=False)
    # Where it goes: [{"estate": "吉利花园", "buildings": [3, 4]}]; no buildings means the whole estate.
    audience = Column(JSON, nullable=False, default=list)
    author_id = Column(Integer, ForeignKey("staff.id"), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    sent_at = Column(DateTime, nullable=True)
    author = relationship("Staff")


class AnnouncementRecipient(Base):
    """One resident an announcement was queued for: at most once per resident, with its outbox row."""

    __tablename__ = "announcement_recipients"
    __table_args__ = (UniqueConstraint("announcement_id", "sender_id", name="uq_announcement_recipients_sender"),)
    id = Column(Integer, primary_key=True)
    announcement_id = Column(Integer, ForeignKey("announcements.id"), nullable=False, index=True)
    sender_id = Column(String(128), nullable=False)
    notification_id = Column(Integer, ForeignKey("notifications.id"), nullable=False)
    notification = relationship("Notification")


class ReviewItem(Base):
    """One group of residents' messages for an admin to label (bot/services/review.py): masked, never personal."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("key", name="uq_review_items_key"),)
    id = Column(Integer, primary_key=True)
    key = Column(String(64), nullable=False)  # the normalised text's digest: one item per phrasing
    text = Column(Text, nullable=False)  # masked
    examples = Column(JSON, nullable=False, default=list)  # other phrasings of the group (masked)
    suggestion = Column(String(64), nullable=False)  # the model's intent
    confidence = Column(Float, nullable=False, default=0.0)
    count = Column(Integer, nullable=False, default=1)
    flags = Column(JSON, nullable=False, default=dict)
    source = Column(String(200), nullable=False)  # where the messages came from (export window)
    status = Column(String(16), nullable=False, default="pending")  # pending | accepted | ignored
    intent = Column(String(64), nullable=True)
    entities = Column(JSON, nullable=False, default=list)  # [{"entity": "community", "text": "吉利花园"}]
    # Keys of the communities whose residents wrote these messages: whose admins may review it (scope.reviews).
    communities = Column(JSON, nullable=False, default=list)
    reviewer_id = Column(Integer, ForeignKey("staff.id"), nullable=True)
    reviewed_at = Column(DateTime, nullable=True)
    version = Column(Integer, nullable=False, default=1)  # bumped by every change: a stale form is refused
    created_at = Column(DateTime, nullable=False, default=utcnow)
    updated_at = Column(DateTime, nullable=False, default=utcnow)
    reviewer = relationship("Staff")


class ModelVersion(Base):
    """A trained Rasa model known to the registry (bot/services/models.py): the file, the data it was trained
    from, and its figures from the gate."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("sha256", name="uq_model_versions_sha256"),)
    id = Column(Integer, primary_key=True)  # the version number shown to admins (v1, v2, …)
    file = Column(String(200), nullable=False)
    path = Column(Text, nullable=False)
    sha256 = Column(String(64), nullable=False)  # the file's digest; Rasa workers report it back as their model
    data_hash = Column(String(64), nullable=False)  # the training inputs' fingerprint (bot/training.py)
    gate_passed = Column(Boolean, nullable=True)  # None: never gated
    metrics = Column(JSON, nullable=False, default=dict)  # {"tests/nlu/heldout.yml": 0.956, …, "stories_failed": 0}
    report = Column(Text, nullable=True)  # the gate report's folder
    gated_against_id = Column(Integer, ForeignKey("model_versions.id"), nullable=True)
    registered_by = Column(String(64), nullable=False)
    registered_at = Column(DateTime, nullable=False, default=utcnow)


class ModelDeployment(Base):
    """One deploy or rollback: which model every Rasa worker is to serve from then on, who decided it, when."""

    __tablename__ = "model_deployments"
    id = Column(Integer, primary_key=True)
    model_id = Column(Integer, ForeignKey("model_versions.id"), nullable=False)
    action = Column(String(16), nullable=False)  # deploy | rollback | restore (a deploy that did not take)
    actor = Column(String(64), nullable=False)  # a staff key, or "make run"
    reason = Column(Text, nullable=True)
    at = Column(DateTime, nullable=False, default=utcnow)
    rolled_back_at = Column(DateTime, nullable=True)  # a deploy undone by a later rollback
    model = relationship("ModelVersion")


class ModelWorker(Base):
    """What one Rasa worker last said it serves, when it asked the registry for the deployed model."""

    __tablename__ = "model_workers"
    worker = Column(String(120), primary_key=True)  # host:pid
    sha256 = Column(String(64), nullable=True)  # the model it serves (None before its first model)
    fetching = Column(String(64), nullable=True)  # the model it downloaded last and is loading
    seen_at = Column(DateTime, nullable=False, default=utcnow)
    fetched_at = Column(DateTime, nullable=True)


class Lease(Base):
    """A named role that one process at a time holds until `expires_at` (the dispatcher leader, bot/services/leases.py)."""

    __tablename__ = "leases"
    name = Column(String(64), primary_key=True)
    holder = Column(String(120), nullable=False)  # host:pid of the process that holds it
    expires_at = Column(DateTime, nullable=False)
    acquired_at = Column(DateTime, nullable=False)  # when this holder took it over (renewals keep it)


class TicketCounter(Base):
    """The last ticket number given out on one local day (HG-<day>-<last>): taking the next one locks this row, so
    concurrent tickets on several action servers get consecutive numbers without colliding."""

    __tablename__ = "ticket_counters"
    day = Column(String(8), primary_key=True)  # YYYYMMDD, the community's local day
    last = Column(Integer, nullable=False)
