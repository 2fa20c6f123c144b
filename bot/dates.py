"""Date ranges named in residents' questions (今天, 下周三, 12月5号, 这个月 ...)."""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta
from typing import Optional

from bot.address import normalize_text

__all__ = ["DateRange", "parse_date_range"]

DateRange = tuple[date, date]

_RELATIVE_DAYS = {
    "大后天": (3, 3),
    "明后天": (1, 2),
    "今明两天": (0, 1),
    "今明": (0, 1),
    "后天": (2, 2),
    "明天": (1, 1),
    "明日": (1, 1),
    "明儿": (1, 1),
    "明早": (1, 1),
    "明晚": (1, 1),
    "今天": (0, 0),
    "今日": (0, 0),
    "今儿": (0, 0),
    "今早": (0, 0),
    "今晚": (0, 0),
    "今个": (0, 0),
    "昨天": (-1, -1),
    "前天": (-2, -2),
}

# One alternation, longest forms first, so that 大后天 is not read as 后天 and
# 下周三 is not read as 周三. Chinese numerals are already digits here.
_PATTERN = re.compile(
    r"(?P<ymd>(?<!\d)(?P<y>\d{4})\s*[年/.-]\s*(?P<y_m>\d{1,2})\s*[月/.-]\s*(?P<y_d>\d{1,2})(?!\d)\s*[日号]?)"
    r"|(?P<md>(?<![\d.])(?P<m>\d{1,2})\s*月\s*(?P<m_d>\d{1,2})(?!\d)\s*[日号]?)"
    r"|(?P<mslash>(?<![\d./:-])(?P<s_m>\d{1,2})[./](?P<s_d>\d{1,2})(?![\d./:%]|\s*(?:元|块|米|公里|斤|岁|个)))"
    r"|(?P<monthday>(?P<month_rel>这个?月|本月|下个?月)\s*(?:的\s*)?(?P<md_d>\d{1,2})\s*[日号](?![楼栋幢座院线床门室]))"
    r"|(?P<month>这个?月|本月|下个?月)"
    r"|(?P<wholemonth>(?<![\d.])(?P<wm>\d{1,2})\s*月份?(?!\s*\d)(?![日号]))"
    r"|(?P<rel>" + "|".join(sorted(_RELATIVE_DAYS, key=len, reverse=True)) + r")"
    r"|(?P<week>(?P<wp>下下个?|下个?|这个?|本|上个?)?\s*"
    r"(?:(?:星期|礼拜)(?P<wd1>[1-7日天末])?|周(?P<wd2>[1-7日末])?(?![围边到期岁年刊报转])))"
    r"|(?P<day>(?<![\d./:-])(?P<d>\d{1,2})\s*[日号](?!\s*(?:楼|栋|幢|座|院|线|床|门|室|单元|\d)))"
)


def _month_end(year: int, month: int) -> date:
    """Return the last day of a month."""
    return date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, count: int) -> tuple[int, int]:
    """Return (year, month) shifted by count months."""
    index = year * 12 + (month - 1) + count
    return index // 12, index % 12 + 1


def _safe_date(year: int, month: int, day: int) -> Optional[date]:
    """Return the date, or None when it does not exist (2月30日)."""
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _next_month_day(today: date, day: int) -> Optional[date]:
    """Return the next date with this day of month, today included."""
    for shift in range(0, 13):
        year, month = _add_months(today.year, today.month, shift)
        found = _safe_date(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _weekday(token: Optional[str]) -> Optional[int]:
    """Map 1..7/日/天 to Python weekday numbers (Monday = 0); 末 stays special."""
    if token is None or token == "末":
        return None
    return 6 if token in ("日", "天") else int(token) - 1


def _week(match: re.Match[str], today: date) -> Optional[DateRange]:
    """Resolve 这周, 下周三, 周末, 礼拜六 and friends."""
    prefix = (match.group("wp") or "").rstrip("个")
    token = match.group("wd1") or match.group("wd2")
    monday = today - timedelta(days=today.weekday())
    offset = {"": 0, "这": 0, "本": 0, "下": 7, "下下": 14, "上": -7}[prefix]
    start = monday + timedelta(days=offset)
    if token == "末":
        saturday, sunday = start + timedelta(days=5), start + timedelta(days=6)
        if not prefix or prefix in ("这", "本"):
            saturday = max(saturday, today)
        return saturday, sunday
    weekday = _weekday(token)
    if weekday is None:
        if not prefix:
            return None  # a bare 周 / 礼拜 names no time
        if prefix in ("这", "本"):
            return today, start + timedelta(days=6)
        return start, start + timedelta(days=6)
    if not prefix:
        day = today + timedelta(days=(weekday - today.weekday()) % 7)
    else:
        day = start + timedelta(days=weekday)
    return day, day


def _resolve(match: re.Match[str], today: date) -> Optional[DateRange]:
    """Turn one match into an inclusive date range."""
    kind = match.lastgroup
    if kind == "ymd":
        day = _safe_date(int(match.group("y")), int(match.group("y_m")), int(match.group("y_d")))
        return (day, day) if day else None
    if kind in ("md", "mslash"):
        month = int(match.group("m") or match.group("s_m"))
        dom = int(match.group("m_d") or match.group("s_d"))
        day = _safe_date(today.year, month, dom)
        if day is not None and day < today:
            day = _safe_date(today.year + 1, month, dom)
        return (day, day) if day else None
    if kind == "monthday":
        shift = 1 if match.group("month_rel").startswith("下") else 0
        year, month = _add_months(today.year, today.month, shift)
        day = _safe_date(year, month, int(match.group("md_d")))
        return (day, day) if day else None
    if kind == "month":
        if match.group("month").startswith("下"):
            year, month = _add_months(today.year, today.month, 1)
            return date(year, month, 1), _month_end(year, month)
        return today, _month_end(today.year, today.month)
    if kind == "wholemonth":
        month = int(match.group("wm"))
        if not 1 <= month <= 12:
            return None
        year = today.year if month >= today.month else today.year + 1
        start = today if (year, month) == (today.year, today.month) else date(year, month, 1)
        return start, _month_end(year, month)
    if kind == "rel":
        first, last = _RELATIVE_DAYS[match.group("rel")]
        return today + timedelta(days=first), today + timedelta(days=last)
    if kind == "week":
        return _week(match, today)
    if kind == "day":
        day = _next_month_day(today, int(match.group("d")))
        return (day, day) if day else None
    return None



def parse_date_range(text: str, today: date) -> Optional[DateRange]:
    """Return the inclusive date range a message names, or None for none (or 最近)."""
    if not text:
        return None
    ranges = [
        found
        for match in _PATTERN.finditer(normalize_text(text))
        if (found := _resolve(match, today)) is not None
    ]
    if not ranges:
        return None
    # 明天或者后天 -> both days: span every date mentioned.
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def utc_iso(at: Optional[datetime]) -> Optional[str]:
    """A stored (naive UTC) time as RFC 3339 with Z, to the second, as the console's API gives times."""
    return None if at is None else at.replace(microsecond=0).isoformat() + "Z"
