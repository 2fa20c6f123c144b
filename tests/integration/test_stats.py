"""Admin statistics: counts, accept/resolve times, escalations and ratings per estate or grid and week, as CSV and chart."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.console.charts import weekly_tickets_svg
from bot.errors import InvalidInput
from bot.services import escalation, lifecycle, stats, tickets
from bot.services.lifecycle import Context
from tests.helpers import community_db

START = dt.datetime(2026, 11, 23, 2, 0)  # Monday 10:00 in Tianjin, ISO week 48


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    return community_db(sqlite_url)


def _open(factory, kind: str, estate: str, building: int, at: dt.datetime, sender: str) -> str:
    request = tickets.TicketRequest(kind=kind, sender_id=sender, description="卫生间漏水" if kind == "leak" else "路灯坏了",
                                    address=Address(estate, building, 1, 101))
    return tickets.open_ticket(factory, request, now=at).number


def test_statistics_give_counts_times_escalations_and_ratings_per_estate_and_week(factory) -> None:
    times = []
    for i, minutes in enumerate([5, 10, 30]):
        number = _open(factory, "leak", "吉利花园", 3, START + dt.timedelta(hours=i), f"o{i}")
        created = START + dt.timedelta(hours=i)
        lifecycle.perform(factory, "zhouming", number, "accept", now=created + dt.timedelta(minutes=minutes))
        lifecycle.perform(factory, "zhouming", number, "resolve", note="修好了", now=created + dt.timedelta(hours=2))
        lifecycle.resident_action(factory, f"o{i}", number, "confirm", rating=[5, 4, 3][i],
                                  now=created + dt.timedelta(hours=3))
        times.append(minutes)
    _open(factory, "repair", "金穗园", 2, START + dt.timedelta(days=1), "o9")
    late = _open(factory, "leak", "吉利花园", 4, START + dt.timedelta(days=7), "o10")  # week 49, never accepted
    escalation.run(factory, Context(), START + dt.timedelta(days=7, hours=1))

    rows = stats.ticket_stats(factory, since=dt.date(2026, 11, 23), until=dt.date(2026, 12, 6))
    by_key = {(r.group, r.kind, r.week): r for r in rows}
    leaks = by_key[("吉利花园", "leak", "2026-W48")]
    assert (leaks.tickets, leaks.accepted, leaks.resolved, leaks.rated) == (3, 3, 3, 3)
    assert (leaks.median_accept_minutes, leaks.p90_accept_minutes) == (10.0, 30.0)
    assert leaks.median_resolve_hours == 2.0 and leaks.mean_rating == 4.0 and leaks.escalations == 0
    later = by_key[("吉利花园", "leak", "2026-W49")]
    assert (later.tickets, later.accepted, later.escalations, later.median_accept_minutes) == (1, 0, 1, None)
    assert by_key[("金穗园", "repair", "2026-W48")].tickets == 1
    assert late

    grids = {(r.group, r.week) for r in stats.ticket_stats(factory, since=dt.date(2026, 11, 23),
                                                           until=dt.date(2026, 12, 6), by="grid")}
    assert ("第一网格", "2026-W48") in grids and ("第四网格", "2026-W48") in grids

    parsed = list(csv.reader(io.StringIO(stats.to_csv(rows).lstrip("\ufeff"))))
    assert parsed[0][:3] == ["分组", "类型", "周"] and len(parsed) == len(rows) + 1
    assert ["吉利花园", "漏水报修", "2026-W48", "3", "3", "10.0", "30.0"] == parsed[1][:7]

    svg = weekly_tickets_svg(stats.weekly_counts(rows)).decode("utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "每周工单" in svg and "漏水报修" in svg
    assert "href=\"http" not in svg and "url(http" not in svg  # nothing fetched from elsewhere


def test_a_bad_period_or_grouping_is_refused_with_the_field(factory) -> None:
    with pytest.raises(InvalidInput) as bad_by:
        stats.ticket_stats(factory, since=dt.date(2026, 11, 1), until=dt.date(2026, 11, 30), by="street")
    assert bad_by.value.field == "by"
    with pytest.raises(InvalidInput):
        stats.ticket_stats(factory, since=dt.date(2026, 11, 30), until=dt.date(2026, 11, 1))


def test_p90_is_the_nearest_rank() -> None:
    assert stats.p90([]) is None
    assert stats.p90([1.0]) == 1.0
    assert stats.p90([float(i) for i in range(1, 11)]) == 9.0
    assert stats.p90([float(i) for i in range(1, 12)]) == 10.0
