"""Residents' messages from the conversation store, flagged where the assistant probably went wrong, grouped so
that an admin labels a phrasing once, and masked before they leave the database (DESIGN.md story 9).

The source is Rasa's own `events` table (the SQL tracker store, bot/rasa_tracker.py): every user message with
the intent and confidence the model gave it, and the actions that answered it. A message is flagged when

- ``low_confidence``: its intent's confidence is below the FallbackClassifier's threshold (config.yml);
- ``fallback``: it ended in the NLU fallback, the core fallback, or a handoff to a person (``handoff``);
- ``abandoned_form``: it was the last answer in a form that ended without a ticket (cancelled, or left open
  for longer than ``IDLE``);
- ``rephrased``: the resident wrote much the same thing again right after it (they were not understood);
- ``objection``: it says the assistant got it wrong ("不对", "没修好", "答非所问");
- ``retyped``: it asked for a ticket whose kind a staff member later corrected in the console (the message
  that started the ticket's form, the last one outside it before the ticket was opened).

Near-duplicates (character n-gram similarity ≥ ``SIMILAR``) written by one community's residents form one
group, with a count, the model's most common prediction as the suggestion and that community (whose admins may
review it, bot/services/scope.py); groups are ordered worst first. Phones, ID numbers, plates and
names are masked (bot/pii.py) in everything this module returns.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import sessionmaker

from bot.config import PROJECT_ROOT
from bot.pii import Masker
from bot.services.community import home_community
from bot.store.db import unit_of_work
from bot.store.models import Estate, Resident, Staff, Ticket, TicketEvent

LOW_CONFIDENCE, FALLBACK, HANDOFF = "low_confidence", "fallback", "handoff"
ABANDONED_FORM, REPHRASED, OBJECTION, RETYPED = "abandoned_form", "rephrased", "objection", "retyped"
FLAGS = (FALLBACK, LOW_CONFIDENCE, HANDOFF, ABANDONED_FORM, REPHRASED, OBJECTION, RETYPED)
FLAG_LABELS = {FALLBACK: "没听懂", LOW_CONFIDENCE: "把握低", HANDOFF: "转了人工", ABANDONED_FORM: "表单没填完",
               REPHRASED: "居民换了说法", OBJECTION: "居民说不对", RETYPED: "工作人员改了工单类型"}
# How much each flag says the assistant went wrong (the order of the review list).
WEIGHT = {FALLBACK: 3, OBJECTION: 3, RETYPED: 3, REPHRASED: 2, ABANDONED_FORM: 2, HANDOFF: 1, LOW_CONFIDENCE: 1}
RETYPE_LOOKBACK = dt.timedelta(minutes=30)  # the message that asked for a retyped ticket came this soon before it

FALLBACK_ACTIONS = ("action_fallback", "action_default_fallback", "action_two_stage_fallback")
SUBMIT_ACTIONS = ("action_submit_ticket", "action_submit_volunteer", "action_submit_feedback")
IDLE = dt.timedelta(minutes=30)  # a form untouched this long was left
REPHRASE_WITHIN = dt.timedelta(minutes=3)
REPHRASE_OVERLAP = 0.4  # share of the shorter message's character pairs found in the other
REPHRASE_MIN_CHARS = 4
SIMILAR = 0.6
_OBJECTION = re.compile(r"不对|不是这个|没修好|还没修|答非所问|不是我要|你没(?:听|看)懂|听不懂|说的不是|搞错了|错了")
_NOISE = re.compile(r"[\s，,。.！!？?、~～…：:；;“”\"'（）()【】\[\]]+")


def flag_score(flags: Dict[str, int]) -> float:
    """How badly a group of messages went: each flag's weight times how often it was raised."""
    return sum(WEIGHT.get(f, 1) * n for f, n in flags.items())


def fallback_threshold(config: Path = PROJECT_ROOT / "config.yml") -> float:
    """The FallbackClassifier's threshold in config.yml (below it, the model was not sure)."""
    pipeline = yaml.safe_load(config.read_text(encoding="utf-8")).get("pipeline") or []
    for component in pipeline:
        if component.get("name") == "FallbackClassifier":
            return float(component.get("threshold", 0.3))
    return 0.3


@dataclass
class Message:
    """One resident message, as the model understood it, and how the conversation went on."""

    sender_id: str
    at: dt.datetime
    text: str
    intent: str
    confidence: float
    in_form: Optional[str] = None
    answered_by: List[str] = field(default_factory=list)
    flags: List[str] = field(default_factory=list)

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)


@dataclass
class Group:
    """Messages that say much the same thing: one label covers them all."""

    text: str  # the first message of the group (masked)
    suggestion: str  # the intent the model gave most of them
    confidence: float  # the lowest confidence among them
    count: int
    senders: int
    flags: Dict[str, int]
    intents: Dict[str, int]
    examples: List[str]  # up to five different phrasings (masked)
    first_at: str
    last_at: str
    communities: List[str] = field(default_factory=list)  # the community whose residents wrote them (none: unknown)

    @property
    def score(self) -> float:
        return flag_score(self.flags)

    def as_dict(self) -> Dict[str, Any]:
        return {"text": self.text, "suggestion": self.suggestion, "confidence": round(self.confidence, 3),
                "count": self.count, "senders": self.senders, "flags": self.flags, "intents": self.intents,
                "examples": self.examples, "first_at": self.first_at, "last_at": self.last_at,
                "communities": self.communities}


# --- reading the conversation store ------------------------------------------------------------------------

def _ts(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(value), dt.timezone.utc).replace(tzinfo=None)


def read_messages(tracker_url: str, since: dt.datetime, until: Optional[dt.datetime] = None) -> List[Message]:
    """Every resident message stored from `since` (UTC) up to `until`, flagged; in the order they were sent."""
    engine = sa.create_engine(tracker_url)
    try:
        if not sa.inspect(engine).has_table("events"):
            return []
        events = sa.table("events", sa.column("id"), sa.column("sender_id"), sa.column("timestamp"),
                          sa.column("data"))
        query = sa.select(events.c.sender_id, events.c.data).where(events.c.timestamp >= since.replace(
            tzinfo=dt.timezone.utc).timestamp())
        if until is not None:
            query = query.where(events.c.timestamp < until.replace(tzinfo=dt.timezone.utc).timestamp())
        with engine.connect() as conn:
            rows = conn.execute(query.order_by(events.c.sender_id, events.c.id)).all()
    finally:
        engine.dispose()
    by_sender: Dict[str, List[Dict[str, Any]]] = collections.OrderedDict()
    for sender_id, data in rows:
        by_sender.setdefault(sender_id, []).append(json.loads(data) if isinstance(data, str) else data)
    threshold = fallback_threshold()
    now = until or dt.datetime.utcnow()
    messages: List[Message] = []
    for sender_id, stream in by_sender.items():
        messages.extend(_conversation(sender_id, stream, threshold, now))
    messages.sort(key=lambda m: m.at)
    return messages


def _conversation(sender_id: str, stream: Sequence[Dict[str, Any]], threshold: float,
                  now: dt.datetime) -> List[Message]:
    """One resident's messages with their flags, from their events in order."""
    out: List[Message] = []
    form: Optional[str] = None
    form_messages: List[Message] = []
    last_at: Optional[dt.datetime] = None
    ending: Optional[List[Message]] = None  # the messages of a form that just closed, until we see what follows
    for event in stream:
        kind = event.get("event")
        if kind == "user":
            if ending is not None:  # the form closed and no submit came: it was left
                _abandoned(ending)
                ending = None
            parse = event.get("parse_data") or {}
            intent = parse.get("intent") or {}
            text = (event.get("text") or "").strip()
            if not text or text.startswith("/"):  # button payloads are no words of the resident
                continue
            message = Message(sender_id, _ts(event.get("timestamp") or 0), text, str(intent.get("name") or ""),
                              float(intent.get("confidence") or 0.0), in_form=form)
            if message.intent == "nlu_fallback":
                message.flag(FALLBACK)
            elif message.confidence < threshold:
                message.flag(LOW_CONFIDENCE)
            if _OBJECTION.search(text):
                message.flag(OBJECTION)
            previous = out[-1] if out else None
            if previous is not None and message.at - previous.at <= REPHRASE_WITHIN and \
                    previous.in_form is None and rephrases(previous.text, text):
                previous.flag(REPHRASED)
            out.append(message)
            if form is not None:
                form_messages.append(message)
            last_at = message.at
        elif kind == "action":
            name = event.get("name") or ""
            if out and name != "action_listen":
                out[-1].answered_by.append(name)
                if name in FALLBACK_ACTIONS:
                    out[-1].flag(FALLBACK)
                elif name == "action_handoff":
                    out[-1].flag(HANDOFF)
            if name in SUBMIT_ACTIONS:
                ending = None
            elif name == "action_reset_form" and ending is not None:
                _abandoned(ending)
                ending = None
        elif kind == "active_loop":
            name = event.get("name")
            if name:
                if name != form:  # the message that opened the form is its first
                    form, form_messages = name, out[-1:]
            elif form is not None:
                ending, form, form_messages = form_messages, None, []
    if ending is not None:
        _abandoned(ending)
    if form is not None and form_messages and last_at is not None and now - last_at >= IDLE:
        _abandoned(form_messages)
    return out


def _abandoned(messages: List[Message]) -> None:
    if messages:
        messages[-1].flag(ABANDONED_FORM)


def flag_retyped(messages: Sequence[Message], factory: sessionmaker) -> None:
    """Flag the message behind each ticket whose kind staff corrected ("retype" in its history)."""
    by_sender: Dict[str, List[Message]] = {}
    for m in messages:
        by_sender.setdefault(m.sender_id, []).append(m)
    if not by_sender:
        return
    with unit_of_work(factory) as session:
        retyped = (session.query(Ticket.sender_id, Ticket.created_at).join(TicketEvent)
                   .filter(TicketEvent.kind == "retype", Ticket.sender_id.in_(list(by_sender))).distinct().all())
    for sender_id, opened in retyped:
        before = [m for m in by_sender[sender_id] if opened - RETYPE_LOOKBACK <= m.at <= opened]
        asked = [m for m in before if m.in_form is None] or before
        if asked:
            asked[-1].flag(RETYPED)


# --- grouping ---------------------------------------------------------------------------------------------

def _grams(text: str) -> frozenset:
    folded = re.sub(r"\d+", "0", _NOISE.sub("", text.lower()))
    if len(folded) < 2:
        return frozenset({folded}) if folded else frozenset()
    return frozenset(folded[i:i + n] for n in (2, 3) for i in range(len(folded) - n + 1))


def rephrases(first: str, second: str) -> bool:
    """Whether `second` says `first` again in other words: different texts of some length that share most
    character pairs of the shorter one."""
    a, b = _NOISE.sub("", first), _NOISE.sub("", second)
    if a == b or min(len(a), len(b)) < REPHRASE_MIN_CHARS:
        return False
    pa, pb = ({x[i:i + 2] for i in range(len(x) - 1)} for x in (a, b))
    return len(pa & pb) / min(len(pa), len(pb)) >= REPHRASE_OVERLAP


def _jaccard(ga: frozenset, gb: frozenset) -> float:
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the character 2- and 3-grams (digits folded, punctuation ignored)."""
    return _jaccard(_grams(a), _grams(b))


def group(messages: Sequence[Message], masker: Masker, only_flagged: bool = True,
          community_of: Optional[Callable[[str], str]] = None) -> List[Group]:
    """Near-duplicate messages grouped, worst first (flag weight × count, then the lowest confidence).
    `community_of` names each sender's community; a group then holds one community's residents' messages only,
    so what one community's admin reviews never shows another community's residents' words (none known
    without it: one group for everyone's)."""
    chosen = [m for m in messages if m.flags or not only_flagged]
    buckets: List[Tuple[Optional[str], frozenset, List[Message]]] = []
    for m in chosen:
        grams, home = _grams(m.text), community_of(m.sender_id) if community_of else None
        for community, key, members in buckets:
            if community == home and _jaccard(grams, key) >= SIMILAR:
                members.append(m)
                break
        else:
            buckets.append((home, grams, [m]))
    groups = []
    for home, _, members in buckets:
        intents = collections.Counter(m.intent for m in members)
        flags = collections.Counter(f for m in members for f in m.flags)
        phrasings = list(dict.fromkeys(masker.mask(m.text) for m in members))
        groups.append(Group(
            text=phrasings[0], suggestion=intents.most_common(1)[0][0], confidence=min(m.confidence for m in members),
            count=len(members), senders=len({m.sender_id for m in members}),
            flags={f: flags[f] for f in FLAGS if flags[f]}, intents=dict(intents.most_common()),
            examples=phrasings[:5], first_at=min(m.at for m in members).isoformat(timespec="seconds"),
            last_at=max(m.at for m in members).isoformat(timespec="seconds"),
            communities=[home] if home else []))
    groups.sort(key=lambda g: (-g.score, g.confidence, g.text))
    return groups


# --- masking with the community's names -------------------------------------------------------------------

def community_masker(factory: sessionmaker) -> Masker:
    """A masker that knows the names of residents, staff and ticket contacts, and the estates' names."""
    with unit_of_work(factory) as session:
        names: Iterable[str] = [
            *(n for (n,) in session.query(Resident.name).filter(Resident.name.isnot(None))),
            *(n for (n,) in session.query(Staff.name)),
            *(n for (n,) in session.query(Ticket.contact_name).filter(Ticket.contact_name.isnot(None)).distinct()),
        ]
        places = [p for e in session.query(Estate) for p in (e.name, *(e.aliases or []))]
        return Masker(names=list(names), places=places)


def sender_communities(factory: sessionmaker, senders: Iterable[str]) -> Dict[str, str]:
    """The community serving each of `senders` (community.resident_community, in one query per 500)."""
    wanted = sorted(set(senders))
    stored: Dict[str, Optional[str]] = {}
    with unit_of_work(factory) as session:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            stored.update(session.query(Resident.sender_id, Resident.community_key)
                          .filter(Resident.sender_id.in_(chunk)))
        homes = {key: home_community(session, key) for key in set(stored.values()) | {None}}
    return {sender: homes[stored.get(sender)] for sender in wanted}


def export(tracker_url: str, factory: sessionmaker, since: dt.datetime, until: Optional[dt.datetime] = None,
           only_flagged: bool = True) -> Dict[str, Any]:
    """What an export file holds: counts per flag and the candidate groups, every text masked."""
    messages = read_messages(tracker_url, since, until)
    flag_retyped(messages, factory)
    communities = sender_communities(factory, (m.sender_id for m in messages))
    groups = group(messages, community_masker(factory), only_flagged=only_flagged, community_of=communities.get)
    flags = collections.Counter(f for m in messages for f in m.flags)
    return {"since": since.isoformat(timespec="seconds"), "until": until.isoformat(timespec="seconds") if until else None,
            "messages": len(messages), "flagged": sum(1 for m in messages if m.flags),
            "flags": {f: flags[f] for f in FLAGS}, "groups": [g.as_dict() for g in groups]}
