"""Upcoming free clinics (义诊), filtered by specialty or date; cancelled and deleted events are never offered."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Tuple

from sqlalchemy.orm import sessionmaker

from bot.services import community
from bot.store.db import unit_of_work
from bot.store.models import ClinicEvent

SCHEDULED, CANCELLED, DELETED = "scheduled", "cancelled", "deleted"
STATUS_LABELS = {SCHEDULED: "如期举行", CANCELLED: "已取消"}

# Residents' words for a specialty -> the specialty as the clinic data names it.
SPECIALTY_WORDS = {
    "眼": "眼科", "视力": "眼科", "白内障": "眼科", "青光眼": "眼科",
    "牙": "口腔科", "口腔": "口腔科", "龋齿": "口腔科",
    "中医": "中医", "把脉": "中医", "针灸": "中医", "推拿": "中医",
    "血压": "内科", "血糖": "内科", "内科": "内科", "慢病": "内科", "糖尿病": "内科", "高血压": "内科",
    "骨": "骨科", "腰": "骨科", "关节": "骨科",
    "皮肤": "皮肤科", "耳鼻": "耳鼻喉科", "听力": "耳鼻喉科", "妇科": "妇科", "儿科": "儿科", "心理": "心理",
}


@dataclass(frozen=True)
class ClinicView:
    """A clinic event as shown to residents."""

    title: str
    date: dt.date
    start: str
    end: str
    place: str
    specialties: Tuple[str, ...]
    services: str
    bring: str


def specialty_in(text: str, entity: Optional[str] = None) -> Optional[str]:
    """The specialty a resident asked about, from an NLU entity or from words in the text."""
    for source in (entity or "", text or ""):
        for word, specialty in SPECIALTY_WORDS.items():
            if word in source:
                return specialty
        if source.endswith("科") and 1 < len(source) <= 5:
            return source
    return None


def upcoming(factory: sessionmaker, today: dt.date, specialty: Optional[str] = None,
             between: Optional[Tuple[dt.date, dt.date]] = None, limit: int = 5,
             sender_id: Optional[str] = None) -> List[ClinicView]:
    """Scheduled clinic events from today on of the community serving `sender_id`, soonest first, optionally
    filtered."""
    start, end = between if between else (today, today + dt.timedelta(days=366))
    start = max(start, today)
    with unit_of_work(factory) as session:
        home = community.resident_community(session, sender_id or "")
        rows = (session.query(ClinicEvent).filter(ClinicEvent.community_key == home, ClinicEvent.date >= start,
                                                  ClinicEvent.date <= end, ClinicEvent.status == SCHEDULED)
                .order_by(ClinicEvent.date, ClinicEvent.start).all())
        found = []
        for r in rows:
            specialties = tuple(r.specialties or ())
            if specialty and specialty not in specialties and specialty.rstrip("科") not in (r.services or ""):
                continue
            found.append(ClinicView(r.title, r.date, r.start, r.end, r.place, specialties, r.services, r.bring))
        return found[:limit]
