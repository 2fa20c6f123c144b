"""Date ranges named in clinic questions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Optional

import pytest

from bot.dates import parse_date_range

# Wednesday 25 November 2026.
WED = date(2026, 11, 25)
SAT = date(2026, 11, 28)
SUN = date(2026, 11, 29)


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # single days
        ("今天", (d(11, 25), d(11, 25))),
        ("今天有义诊吗", (d(11, 25), d(11, 25))),
        ("今儿个", (d(11, 25), d(11, 25))),
        ("明天", (d(11, 26), d(11, 26))),
        ("明儿有没有义诊", (d(11, 26), d(11, 26))),
        ("后天", (d(11, 27), d(11, 27))),
        ("大后天", (d(11, 28), d(11, 28))),
        # spans of days
        ("明后天", (d(11, 26), d(11, 27))),
        ("今明两天", (d(11, 25), d(11, 26))),
        ("明天或者后天", (d(11, 26), d(11, 27))),
        # this week: today to Sunday
        ("这周", (d(11, 25), d(11, 29))),
        ("本周", (d(11, 25), d(11, 29))),
        ("这个礼拜", (d(11, 25), d(11, 29))),
        ("这礼拜", (d(11, 25), d(11, 29))),
        ("这星期", (d(11, 25), d(11, 29))),
        ("这个星期有义诊吗", (d(11, 25), d(11, 29))),
        ("本星期", (d(11, 25), d(11, 29))),
        # next week: Monday to Sunday
        ("下周", (d(11, 30), d(12, 6))),
        ("下个礼拜", (d(11, 30), d(12, 6))),
        ("下礼拜", (d(11, 30), d(12, 6))),
        ("下星期", (d(11, 30), d(12, 6))),
        ("下个星期", (d(11, 30), d(12, 6))),
        ("下下周", (d(12, 7), d(12, 13))),
        # weekends
        ("周末", (d(11, 28), d(11, 29))),
        ("这周末", (d(11, 28), d(11, 29))),
        ("这个周末", (d(11, 28), d(11, 29))),
        ("本周末", (d(11, 28), d(11, 29))),
        ("下周末", (d(12, 5), d(12, 6))),
        # weekdays: the next such day, today included
        ("周六", (d(11, 28), d(11, 28))),
        ("星期六", (d(11, 28), d(11, 28))),
        ("礼拜六", (d(11, 28), d(11, 28))),
        ("周日", (d(11, 29), d(11, 29))),
        ("星期天", (d(11, 29), d(11, 29))),
        ("礼拜天", (d(11, 29), d(11, 29))),
        ("星期日", (d(11, 29), d(11, 29))),
        ("周三", (d(11, 25), d(11, 25))),
        ("周一", (d(11, 30), d(11, 30))),
        ("星期二", (d(12, 1), d(12, 1))),
        # next week's weekday
        ("下周三", (d(12, 2), d(12, 2))),
        ("下礼拜三", (d(12, 2), d(12, 2))),
        ("下星期一", (d(11, 30), d(11, 30))),
        ("下周日", (d(12, 6), d(12, 6))),
        ("这周五", (d(11, 27), d(11, 27))),
        # calendar dates
        ("12月5日", (d(12, 5), d(12, 5))),
        ("12月5号", (d(12, 5), d(12, 5))),
        ("12月5", (d(12, 5), d(12, 5))),
        ("十二月五日", (d(12, 5), d(12, 5))),
        ("十二月五号", (d(12, 5), d(12, 5))),
        ("１２月５日", (d(12, 5), d(12, 5))),
        ("12.5", (d(12, 5), d(12, 5))),
        ("12/5", (d(12, 5), d(12, 5))),
        ("2026年12月5日", (d(12, 5), d(12, 5))),
        ("2026-12-05", (d(12, 5), d(12, 5))),
        ("2027-01-10", (d(1, 10, 2027), d(1, 10, 2027))),
        ("11月25日", (d(11, 25), d(11, 25))),
        ("11月1日", (d(11, 1, 2027), d(11, 1, 2027))),  # past: next year
        ("1月3号", (d(1, 3, 2027), d(1, 3, 2027))),
        # day of month: this month unless past
        ("5号", (d(12, 5), d(12, 5))),
        ("25号", (d(11, 25), d(11, 25))),
        ("30号", (d(11, 30), d(11, 30))),
        ("31号", (d(12, 31), d(12, 31))),
        ("二十号", (d(12, 20), d(12, 20))),
        ("5号那天有义诊吗", (d(12, 5), d(12, 5))),
        # months
        ("这个月", (d(11, 25), d(11, 30))),
        ("本月", (d(11, 25), d(11, 30))),
        ("这月", (d(11, 25), d(11, 30))),
        ("下个月", (d(12, 1), d(12, 31))),
        ("下月", (d(12, 1), d(12, 31))),
        ("下个月5号", (d(12, 5), d(12, 5))),
        ("这个月30号", (d(11, 30), d(11, 30))),
        ("12月", (d(12, 1), d(12, 31))),
        ("11月份", (d(11, 25), d(11, 30))),
        ("二月份的义诊", (d(2, 1, 2027), d(2, 28, 2027))),
    ],
)
def test_date_words_become_inclusive_ranges(text: str, expected: tuple[date, date]) -> None:
    assert parse_date_range(text, WED) == expected


@pytest.mark.parametrize(
    "text",
    [
        "最近",
        "近期",
        "最近有义诊吗",
        "近期有什么活动",
        "有义诊吗",
        "眼科义诊在哪",
        "",
        "   ",
        "😀",
        "hello next week",
        "'; DROP TABLE clinic_events; --",
        "啊" * 5000,
        "1" * 5000,
        "1." * 2500,
        "一" * 5000,
        "3号楼2单元501",
        "5号楼",
        "坐3号线",
        "这周围有药店吗",
        "一周年",
        "做礼拜",
        "2月30日",
        "13月5日",
        "0号",
        "32号",
        "3.5公里",
        "HG-20261128-0001",
        "13812345678",
    ],
)
def test_messages_without_a_date_give_no_range(text: str) -> None:
    assert parse_date_range(text, WED) is None


def test_the_weekend_on_sunday_is_just_today() -> None:
    assert parse_date_range("周末", SUN) == (SUN, SUN)
    assert parse_date_range("这周", SUN) == (SUN, SUN)


def test_the_weekend_on_saturday_starts_today() -> None:
    assert parse_date_range("这周末", SAT) == (SAT, SUN)


def test_a_weekday_named_on_that_day_is_today() -> None:
    assert parse_date_range("周六", SAT) == (SAT, SAT)


def test_next_week_from_sunday_starts_tomorrow() -> None:
    assert parse_date_range("下周", SUN) == (SUN + timedelta(days=1), SUN + timedelta(days=7))


def test_next_month_in_december_is_january() -> None:
    assert parse_date_range("下个月", date(2026, 12, 10)) == (date(2027, 1, 1), date(2027, 1, 31))


def test_this_month_ends_on_the_last_day_of_february() -> None:
    assert parse_date_range("这个月", date(2028, 2, 10)) == (date(2028, 2, 10), date(2028, 2, 29))


def test_a_day_missing_from_this_month_moves_to_the_next_month_that_has_it() -> None:
    assert parse_date_range("31号", date(2026, 2, 3)) == (date(2026, 3, 31), date(2026, 3, 31))


def test_a_past_day_of_month_in_december_moves_to_january() -> None:
    assert parse_date_range("5号", date(2026, 12, 20)) == (date(2027, 1, 5), date(2027, 1, 5))


def test_every_day_of_a_year_resolves_weekdays_within_the_next_seven_days() -> None:
    for offset in range(366):
        today = date(2026, 1, 1) + timedelta(days=offset)
        for number, name in enumerate("一二三四五六日"):
            result = parse_date_range(f"星期{name}", today)
            assert result is not None
            start, end = result
            assert start == end
            assert start.weekday() == number
            assert 0 <= (start - today).days < 7
            nxt = parse_date_range(f"下周{name}", today)
            assert nxt is not None and nxt[0].weekday() == number
            assert 1 <= (nxt[0] - today).days <= 13


@pytest.mark.parametrize("text", ["明天", "下周", "这个月", "12月5日", "5号"])
def test_ranges_never_end_before_they_start(text: str) -> None:
    for offset in range(0, 400, 7):
        today = date(2026, 1, 1) + timedelta(days=offset)
        result: Optional[tuple[date, date]] = parse_date_range(text, today)
        assert result is not None
        assert result[0] <= result[1]
        assert result[1] >= today
