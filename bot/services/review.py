"""Admins label what the assistant misunderstood (DESIGN.md story 9): flagged groups of residents' messages become
review items; an accepted item becomes a training example in `data/nlu/reviewed/<date>.yml`.

- `collect` turns a transcript export (bot/services/transcripts.py: flagged, grouped per community, masked)
  into pending items, one per phrasing and community; a phrasing already reviewed in a community is not asked
  there again. An item records the community whose residents wrote it: an admin lists, counts and decides only
  items of their own community, the street office all of them (scope.reviews); another community's item does
  not exist for them (NotFound), and one community's decision never decides another's item.
- `decide` accepts (with the intent, corrected or confirmed, and the entities marked) or ignores one item. The
  item's `version` is checked and bumped in the same UPDATE, so of two admins deciding the same item at once
  exactly one succeeds and the other is told (Conflict): no label is lost or written twice.
- An example that is already in the training data or in a held-out file is refused with the reason (the
  held-out files are never written to).
- The YAML file of a day is written from the database (every item accepted that day, in id order), to a
  temporary file renamed over the old one: it always holds exactly the accepted labels, whatever ran at once.
"""

from __future__ import annotations

import collections
import datetime as dt
import fcntl
import functools
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Sequence, Tuple

import yaml
from sqlalchemy import update
from sqlalchemy.orm import sessionmaker

from bot import nlu_data
from bot import pii
from bot.config import PROJECT_ROOT
from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.services import scope, transcripts
from bot.services.scope import ADMIN_ROLES, actor_by_key
from bot.store.db import unit_of_work
from bot.store.models import Community, ReviewItem, utcnow

NLU_DIR = PROJECT_ROOT / "data" / "nlu"
REVIEWED_DIR = NLU_DIR / "reviewed"
HELDOUT_DIR = PROJECT_ROOT / "tests" / "nlu"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"
PENDING, ACCEPTED, IGNORED = "pending", "accepted", "ignored"
STATUS_LABELS = {PENDING: "待审核", ACCEPTED: "已采纳", IGNORED: "已忽略"}
ACCEPT, IGNORE = "accept", "ignore"
# What a masked placeholder becomes in a training example: a made-up value of the same shape, so the model
# learns that a phone or a name stands there (no real resident's data goes into the data files).
FILLERS = {pii.PHONE: "13800000000", pii.NAME: "张某", pii.ID_CARD: "120101199001010000", pii.PLATE: "津A00000"}
ENTITY_LABELS = {"community": "小区", "building": "楼号", "unit": "单元", "room": "房号", "phone": "电话",
                 "facility": "设施", "team": "志愿队", "specialty": "科室", "date": "日期", "ticket_id": "工单号"}


class Conflict(InvalidState):
    """Someone else decided the item first (or it changed since the page was loaded)."""


@dataclass(frozen=True)
class ItemView:
    id: int
    text: str
    examples: Tuple[str, ...]
    suggestion: str
    confidence: float
    count: int
    flags: Dict[str, int]
    status: str
    intent: Optional[str]
    entities: Tuple[Dict[str, str], ...]
    reviewer: Optional[str]
    version: int
    source: str
    community: Optional[str] = None  # the name of the community whose residents wrote it (None: not known)

    @property
    def score(self) -> float:
        return transcripts.flag_score(self.flags)

    @property
    def flag_labels(self) -> List[str]:
        return [f"{transcripts.FLAG_LABELS.get(f, f)} {n}" for f, n in self.flags.items()]


def _key(text: str, community: Optional[str] = None) -> str:
    """The item's key: the normalised phrasing's digest, within its community when one is known."""
    normed = nlu_data.norm(text)
    return hashlib.sha256((f"{community}\n{normed}" if community else normed).encode("utf-8")).hexdigest()[:64]


def _view(row: ReviewItem, names: Optional[Dict[str, str]] = None) -> ItemView:
    community = next(iter(row.communities or ()), None)
    return ItemView(id=row.id, text=row.text, examples=tuple(row.examples or ()), suggestion=row.suggestion,
                    confidence=row.confidence, count=row.count, flags=dict(row.flags or {}), status=row.status,
                    intent=row.intent, entities=tuple(row.entities or ()),
                    reviewer=row.reviewer.name if row.reviewer else None, version=row.version, source=row.source,
                    community=(names or {}).get(community, community) if community else None)


# --- what may be chosen ----------------------------------------------------------------------------------

def intents(nlu_dir: Path = NLU_DIR) -> List[str]:
    """The intents an item may be labelled with: those the training data has (retrieval intents in full)."""
    return sorted(nlu_data.examples_by_intent(nlu_dir))


def entity_names(domain_file: Path = DOMAIN_FILE) -> List[str]:
    return list((yaml.safe_load(domain_file.read_text(encoding="utf-8")) or {}).get("entities") or [])


# --- collecting ------------------------------------------------------------------------------------------

def collect(factory: sessionmaker, tracker_url: str, since: dt.datetime, until: Optional[dt.datetime] = None,
            now: Optional[dt.datetime] = None) -> int:
    """Pending items for the flagged groups of a window; returns how many are new. A pending item seen again
    takes the larger count and the new flags; a reviewed one is left as it is."""
    report = transcripts.export(tracker_url, factory, since, until)
    now = now or utcnow()
    source = f"对话记录 {since:%Y-%m-%d %H:%M}起"[:200]
    new = 0
    with unit_of_work(factory) as session:
        known = {row.key: row for row in session.query(ReviewItem)}
        for group in report["groups"]:
            community = next(iter(group.get("communities") or ()), None)
            key = _key(group["text"], community)
            row = known.get(key)
            if row is None and community:  # kept under the phrasing alone before items were per community
                legacy = known.get(_key(group["text"]))
                row = legacy if legacy is not None and list(legacy.communities or ()) == [community] else None
            if row is None:
                row = ReviewItem(key=key, text=group["text"], examples=group["examples"],
                                 suggestion=group["suggestion"], confidence=group["confidence"],
                                 count=group["count"], flags=group["flags"], source=source, status=PENDING,
                                 entities=[], communities=[community] if community else [], version=1,
                                 created_at=now, updated_at=now)
                session.add(row)
                known[key] = row
                new += 1
            elif row.status == PENDING:
                if group["count"] >= row.count:
                    row.count, row.flags, row.examples = group["count"], group["flags"], group["examples"]
                    row.confidence = min(row.confidence, group["confidence"])
                    row.updated_at = now
    return new


def _reviewer(session: Any, staff_key: Optional[str]) -> Optional[scope.StaffActor]:
    """The actor `staff_key` may review as (None: no staff member named, every item); NotAllowed for staff who
    do not review."""
    if staff_key is None:
        return None
    actor = actor_by_key(session, staff_key)
    if actor.role not in ADMIN_ROLES:
        raise NotAllowed("only admins and the community secretary review messages", staff=staff_key)
    return actor


def items(factory: sessionmaker, status: str = PENDING, limit: int = 50,
          staff_key: Optional[str] = None) -> List[ItemView]:
    """Items of one status (those `staff_key` may review, when given); pending ones worst first (flag weight ×
    count, then the lowest confidence)."""
    with unit_of_work(factory) as session:
        actor = _reviewer(session, staff_key)
        names = dict(session.query(Community.key, Community.name))
        rows = [_view(r, names) for r in session.query(ReviewItem).filter_by(status=status).order_by(ReviewItem.id)
                if actor is None or scope.reviews(actor, r.communities or ())]
    if status == PENDING:
        rows.sort(key=lambda v: (-v.score, v.confidence, v.id))
    else:
        rows.sort(key=lambda v: -v.id)
    return rows[:limit]


def counts(factory: sessionmaker, staff_key: Optional[str] = None) -> Dict[str, int]:
    """How many items there are of each status (of those `staff_key` may review, when given)."""
    with unit_of_work(factory) as session:
        actor = _reviewer(session, staff_key)
        found = collections.Counter(s for s, communities in session.query(ReviewItem.status, ReviewItem.communities)
                                    if actor is None or scope.reviews(actor, communities or ()))
    return {s: found.get(s, 0) for s in (PENDING, ACCEPTED, IGNORED)}


# --- deciding --------------------------------------------------------------------------------------------

def training_text(masked: str) -> str:
    """The text a training example gets: placeholders filled with made-up values of their kind."""
    for placeholder, filler in FILLERS.items():
        masked = masked.replace(placeholder, filler)
    return " ".join(masked.split())


def annotate(text: str, entities: Sequence[Dict[str, str]], allowed: Sequence[str]) -> str:
    """The example with Rasa's entity markup ("[吉利花园](community)"); each span is the first free occurrence."""
    spans: List[Tuple[int, int, str]] = []
    for entity in entities:
        name, span = (entity.get("entity") or "").strip(), (entity.get("text") or "").strip()
        if name not in allowed:
            raise InvalidInput(f"unknown entity {name!r}", field="entities")
        if not span or "[" in span or "]" in span:
            raise InvalidInput("an entity needs the words it stands for", field="entities")
        start = text.find(span)
        while start != -1 and any(start < e and start + len(span) > s for s, e, _ in spans):
            start = text.find(span, start + 1)
        if start == -1:
            raise InvalidInput(f"“{span}”不在这句话里", field="entities")
        spans.append((start, start + len(span), name))
    out, last = [], 0
    for start, end, name in sorted(spans):
        out.append(text[last:start] + f"[{text[start:end]}]({name})")
        last = end
    return "".join(out) + text[last:]


@functools.lru_cache(maxsize=256)
def _normed_examples(file: Path, _mtime_ns: int, _size: int) -> FrozenSet[str]:
    """The normalised examples of one NLU file; the cache key includes its mtime and size, so an edit re-reads it."""
    return frozenset(nlu_data.norm(example) for example, _ in nlu_data.examples(file))


def _duplicate_of(text: str, nlu_dir: Path, heldout_dir: Path, reviewed_dir: Path) -> Optional[str]:
    """Where an example with the same words already is (a training or held-out file), if anywhere."""
    wanted = nlu_data.norm(text)
    sources = [p for p in nlu_data.nlu_files(nlu_dir) if reviewed_dir not in p.parents]
    sources += sorted(heldout_dir.glob("*.yml")) if heldout_dir.is_dir() else []
    for file in sources:
        stat = file.stat()
        if wanted in _normed_examples(file, stat.st_mtime_ns, stat.st_size):
            try:
                return str(file.relative_to(PROJECT_ROOT))
            except ValueError:
                return str(file)
    return None


def decide(factory: sessionmaker, item_id: int, staff_key: str, *, version: int, action: str,
           intent: Optional[str] = None, entities: Sequence[Dict[str, str]] = (), nlu_dir: Path = NLU_DIR,
           heldout_dir: Path = HELDOUT_DIR, reviewed_dir: Path = REVIEWED_DIR,
           now: Optional[dt.datetime] = None) -> ItemView:
    """Accept (with `intent` and `entities`) or ignore one pending item, as of the `version` the admin saw."""
    now = now or utcnow()
    if action not in (ACCEPT, IGNORE):
        raise InvalidInput("accept or ignore", field="action")
    with unit_of_work(factory) as session:
        actor = _reviewer(session, staff_key)
        row = session.get(ReviewItem, item_id)
        if row is None or not scope.reviews(actor, row.communities or ()):
            raise NotFound("no such review item", item=item_id)
        values: Dict[str, Any] = {"status": IGNORED}
        if action == ACCEPT:
            if intent not in intents(nlu_dir):
                raise InvalidInput("choose one of the assistant's intents", field="intent")
            text = training_text(row.text)
            annotate(text, entities, entity_names())  # refuses a span that is not in the text
            where = _duplicate_of(text, nlu_dir, heldout_dir, reviewed_dir)
            if where is not None:
                raise InvalidInput(f"这句话已经在 {where} 里了", field="text", duplicate_of=where)
            values = {"status": ACCEPTED, "intent": intent,
                      "entities": [{"entity": e["entity"].strip(), "text": e["text"].strip()} for e in entities]}
        changed = session.execute(
            update(ReviewItem).where(ReviewItem.id == item_id, ReviewItem.version == version,
                                     ReviewItem.status == PENDING)
            .values(**values, reviewer_id=actor.id, reviewed_at=now, updated_at=now, version=version + 1)
            .execution_options(synchronize_session=False)).rowcount
        if changed != 1:
            raise Conflict("the item was decided or changed by someone else", item=item_id)
    if action == ACCEPT:
        write_day(factory, now.date(), reviewed_dir)
    with unit_of_work(factory) as session:
        return _view(session.get(ReviewItem, item_id))


def write_day(factory: sessionmaker, day: dt.date, reviewed_dir: Path = REVIEWED_DIR) -> Optional[Path]:
    """Write `<reviewed_dir>/<day>.yml` from every item accepted that day (UTC), atomically; None if none.
    Writers take turns (a lock file beside it), so a write that read the database earlier never lands last."""
    reviewed_dir.mkdir(parents=True, exist_ok=True)
    with open(reviewed_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _write_day(factory, day, reviewed_dir)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_day(factory: sessionmaker, day: dt.date, reviewed_dir: Path) -> Optional[Path]:
    start = dt.datetime.combine(day, dt.time())
    with unit_of_work(factory) as session:
        rows = (session.query(ReviewItem).filter(ReviewItem.status == ACCEPTED, ReviewItem.reviewed_at >= start,
                                                 ReviewItem.reviewed_at < start + dt.timedelta(days=1))
                .order_by(ReviewItem.id).all())
        blocks: List[str] = []
        for row in rows:
            line = annotate(training_text(row.text), row.entities or [], entity_names())
            reviewer = row.reviewer.name if row.reviewer else "?"
            blocks.append(f"  # 审核 #{row.id}：{reviewer}，{row.reviewed_at:%Y-%m-%d %H:%M}，{row.source}，"
                          f"{row.count} 条消息\n  - intent: {row.intent}\n    examples: |\n      - {line}\n")
    if not blocks:
        return None
    head = f'version: "3.1"\n# 管理员在工作台审核过的居民消息（{day.isoformat()}），由系统从数据库写出，请勿手工修改。\nnlu:\n'
    body = [head, *blocks]
    target = reviewed_dir / f"{day.isoformat()}.yml"
    fd, tmp = tempfile.mkstemp(dir=reviewed_dir, prefix=".review-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(body))
    os.replace(tmp, target)
    return target
