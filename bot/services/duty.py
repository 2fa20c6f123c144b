"""Who is on duty now, from the duty roster, and whether it is night (urgent tickets then reach the roster)."""

from __future__ import annotations

import datetime as dt
from typing import List

from sqlalchemy.orm import Session

from bot.store.models import DEFAULT_COMMUNITY, DutyShift, Staff


def _minutes(clock: str) -> int:
    hours, _, minutes = clock.partition(":")
    return int(hours) * 60 + int(minutes)


def in_span(local: dt.datetime, start: str, end: str) -> bool:
    """Whether the local time of day falls in [start, end); a span past midnight runs into the next morning."""
    now, a, b = local.hour * 60 + local.minute, _minutes(start), _minutes(end)
    return a <= now < b if a <= b else (now >= a or now < b)


def shift_covers(weekdays: List[int], start: str, end: str, local: dt.datetime) -> bool:
    """Whether a roster line covers `local`; the morning part of a night shift belongs to the day it began."""
    if not in_span(local, start, end):
        return False
    began = local.date()
    if _minutes(start) > _minutes(end) and local.hour * 60 + local.minute < _minutes(end):
        began -= dt.timedelta(days=1)
    return began.isoweekday() in weekdays


def on_duty(session: Session, local: dt.datetime, community: str = DEFAULT_COMMUNITY) -> List[Staff]:
    """Active staff of `community` whose roster line covers the local time `local`, in roster order."""
    shifts = session.query(DutyShift).filter_by(community_key=community).order_by(DutyShift.id).all()
    found: List[Staff] = []
    for shift in shifts:
        if shift.staff.active and shift.staff not in found and shift_covers(shift.weekdays or [], shift.start,
                                                                             shift.end, local):
            found.append(shift.staff)
    return found
