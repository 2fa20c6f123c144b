"""Ticket statistics for admins: per estate or grid, per type and week — counts, time to accept and to resolve
(median and p90), escalations and satisfaction — as rows for a table, a chart and a CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from dataclasses import asdict, dataclass, fields
from typing import Dict, Iterable, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy.orm import sessionmaker

from bot import messages
from bot.errors import InvalidInput
from bot.store.db import unit_of_work
from bot.services import scope
from bot.store.models import Community, Escalation, Ticket

GROUPINGS = ("estate", "grid", "community")


@dataclass(frozen=True)
class StatRow:
    """One group (an estate, a grid or a community), one ticket type, one ISO week."""

    group: str
    kind: str
    week: str  # "2026-W48"
    tickets: int
    accepted: int
    median_accept_minutes: Optional[float]
    p90_accept_minutes: Optional[float]
    resolved: int
    median_resolve_hours: Optional[float]
    p90_resolve_hours: Optional[float]
    escalations: int
    rated: int
    mean_rating: Optional[float]


CSV_HEADER = {"group": "分组", "kind": "类型", "week": "周", "tickets": "工单数", "accepted": "已接单",
              "median_accept_minutes": "接单用时中位数(分钟)", "p90_accept_minutes": "接单用时P90(分钟)",
              "resolved": "已办结", "median_resolve_hours": "办结用时中位数(小时)",
              "p90_resolve_hours": "办结用时P90(小时)", "escalations": "催办次数", "rated": "评价数",
              "mean_rating": "平均评分"}


def p90(values: List[float]) -> Optional[float]:
    """The 90th percentile by nearest rank (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def _median(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 1)


def ticket_stats(factory: sessionmaker, *, since: dt.date, until: dt.date, by: str = "estate",
                 timezone: str = "Asia/Shanghai", staff: Optional[str] = None) -> List[StatRow]:
    """Rows for tickets opened on local days `since`..`until` (inclusive), grouped `by` estate, grid or community.

    With `staff`, only the tickets in that staff member's scope count (their community's, or every community's for
    the street office); without it (the CLI, run by whoever runs the deployment), every ticket does."""
    if by not in GROUPINGS:
        raise InvalidInput(f"group by one of {', '.join(GROUPINGS)}", field="by")
    if until < since:
        raise InvalidInput("the period ends before it starts", field="until")
    if (until - since).days > 366:
        raise InvalidInput("at most one year at a time", field="since")
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(since, dt.time(), zone).astimezone(dt.timezone.utc).replace(tzinfo=None)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.timezone.utc) \
        .replace(tzinfo=None)
    buckets: Dict[Tuple[str, str, str], List[Ticket]] = {}
    with unit_of_work(factory) as session:
        query = session.query(Ticket).filter(Ticket.created_at >= start, Ticket.created_at < end)
        if staff is not None:
            query = scope.visible(query, scope.actor_by_key(session, staff))
        tickets = query.all()
        names = {c.key: c.name for c in session.query(Community)}
        escalated: Dict[int, int] = {}
        for (ticket_id,) in session.query(Escalation.ticket_id).filter(
                Escalation.ticket_id.in_([t.id for t in tickets] or [0])):
            escalated[ticket_id] = escalated.get(ticket_id, 0) + 1
        for t in tickets:
            if by == "estate":
                group = t.community or "（无地址）"
            elif by == "grid":
                group = t.grid.name if t.grid else "（未分网格）"
            else:
                group = names.get(t.community_key) or t.community_key
            year, week, _ = t.created_at.replace(tzinfo=dt.timezone.utc).astimezone(zone).isocalendar()
            buckets.setdefault((group, t.kind, f"{year}-W{week:02d}"), []).append(t)
        rows = [_row(key, items, escalated) for key, items in sorted(buckets.items())]
    return rows


def _row(key: Tuple[str, str, str], items: List[Ticket], escalated: Dict[int, int]) -> StatRow:
    accept = [(t.accepted_at - t.created_at).total_seconds() / 60 for t in items if t.accepted_at]
    resolve = [(t.resolved_at - t.created_at).total_seconds() / 3600 for t in items if t.resolved_at]
    ratings = [t.rating for t in items if t.rating]
    return StatRow(group=key[0], kind=key[1], week=key[2], tickets=len(items), accepted=len(accept),
                   median_accept_minutes=_round(_median(accept)), p90_accept_minutes=_round(p90(accept)),
                   resolved=len(resolve), median_resolve_hours=_round(_median(resolve)),
                   p90_resolve_hours=_round(p90(resolve)), escalations=sum(escalated.get(t.id, 0) for t in items),
                   rated=len(ratings), mean_rating=_round(statistics.mean(ratings)) if ratings else None)


def to_csv(rows: Iterable[StatRow]) -> str:
    """The rows as CSV with Chinese headers (UTF-8 with a BOM, so spreadsheet programs read it right)."""
    out = io.StringIO()
    writer = csv.writer(out)
    names = [f.name for f in fields(StatRow)]
    writer.writerow([CSV_HEADER[n] for n in names])
    for row in rows:
        values = asdict(row)
        values["kind"] = messages.KIND_LABELS.get(row.kind, row.kind)
        writer.writerow(["" if values[n] is None else values[n] for n in names])
    return "\ufeff" + out.getvalue()


def weekly_counts(rows: Iterable[StatRow]) -> Dict[str, Dict[str, int]]:
    """Tickets per week per type, for the chart: {week: {kind: count}}."""
    table: Dict[str, Dict[str, int]] = {}
    for row in rows:
        week = table.setdefault(row.week, {})
        week[row.kind] = week.get(row.kind, 0) + row.tickets
    return dict(sorted(table.items()))
