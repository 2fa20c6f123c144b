"""The admin pages: statistics with chart and CSV, announcements, the volunteer export — for admins and the secretary only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.config import Settings
from bot.services import lifecycle, residents, tickets
from bot.store.db import unit_of_work
from bot.store.models import Notification
from tests.console_kit import ServedConsole, serve_console
from tests.helpers import community_db


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                              "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})


@pytest.fixture
def factory(sqlite_url: str, clock) -> sessionmaker:
    f = community_db(sqlite_url)
    number = tickets.open_ticket(f, tickets.TicketRequest(kind="leak", sender_id="oA", description="卫生间漏水",
                                                          address=Address("吉利花园", 3, 2, 501)),
                                 now=clock.now - dt.timedelta(hours=2)).number
    lifecycle.perform(f, "zhouming", number, "accept", now=clock.now - dt.timedelta(hours=1, minutes=50))
    with unit_of_work(f) as s:
        residents.remember(s, "oA", address=Address("吉利花园", 3, 2, 501))
        residents.remember(s, "oB", address=Address("金穗园", 1, 1, 101))
    return f


@pytest.fixture
async def console(settings: Settings, factory: sessionmaker, clock: Callable[[], dt.datetime]
                  ) -> AsyncIterator[ServedConsole]:
    async with serve_console(settings, factory, clock) as served:
        yield served


async def test_the_secretary_sees_statistics_with_a_chart_and_downloads_them_as_csv(console) -> None:
    browser = await console.signed_in("gaohong")
    page = await browser.get("/admin/stats")
    assert page.status == 200 and "吉利花园" in page.text and "漏水报修" in page.text and "10.0" in page.text
    chart = await browser.get("/admin/stats/weekly.svg")
    assert chart.status == 200 and chart.headers["Content-Type"].startswith("image/svg+xml") and "<svg" in chart.text
    table = await browser.get("/admin/stats.csv?by=grid")
    assert table.status == 200 and "第一网格" in table.text and table.headers["Content-Type"].startswith("text/csv")
    bad = await browser.get("/admin/stats?since=yesterday")
    assert bad.status == 400


async def test_an_admin_sends_an_announcement_to_one_estate_and_sees_how_many_it_reaches(console, factory) -> None:
    browser = await console.signed_in("admin")
    token = (await browser.get("/admin/announcements")).csrf_token()
    sent = await browser.request("POST", "/admin/announcements", data=[
        ("csrf_token", token), ("kind", "safety"), ("title", "冬季防火"), ("body", "出门记得关燃气。"),
        ("estate", "吉利花园"), ("buildings-吉利花园", "3")])
    assert sent.status == 303 and sent.location == "/admin/announcements?sent=1", sent.text
    page = await browser.get(sent.location)
    assert "已发出，1 位居民会收到" in page.text and "共 1 人" in page.text
    with unit_of_work(factory) as s:
        assert [n.recipient for n in s.query(Notification).filter_by(purpose="announcement")] == ["oA"]
    forged = await browser.request("POST", "/admin/announcements", data=[
        ("kind", "safety"), ("title", "x"), ("body", "y"), ("estate", "吉利花园")])
    assert forged.status == 403


@pytest.mark.parametrize("key", ["wangjianguo", "zhouming", "chenjing", "maguilan"])
async def test_grid_staff_property_managers_and_duty_staff_do_not_get_the_admin_pages(console, key: str) -> None:
    browser = await console.signed_in(key)
    for path in ("/admin/stats", "/admin/stats.csv", "/admin/announcements", "/admin/volunteers.csv"):
        assert (await browser.get(path)).status == 403, path
    signed_out = console.browser()
    assert (await signed_out.get("/admin/stats")).status == 302


async def test_an_admin_edits_staff_and_the_roster_in_the_console_and_sees_the_change_log(console, factory) -> None:
    browser = await console.signed_in("admin")
    page = await browser.get("/admin/community")
    assert page.status == 200 and "周明" in page.text and "值班表" in page.text
    token = page.csrf_token()
    saved = await browser.request("POST", "/admin/community/staff/zhouming", data=[
        ("csrf_token", token), ("name", "周明"), ("role", "grid_member"), ("phone", "13920001099"),
        ("wecom_userid", "ZhouMing"), ("active", "1"), ("on_duty", "1")])
    assert saved.status == 303, saved.text
    added = await browser.request("POST", "/admin/community/roster", data=[
        ("csrf_token", token), ("staff", "zhouming"), ("weekdays", "6"), ("weekdays", "7"), ("start", "08:00"),
        ("end", "20:00")])
    assert added.status == 303
    bad = await browser.request("POST", "/admin/community/roster", data=[
        ("csrf_token", token), ("staff", "zhouming"), ("start", "08:00"), ("end", "20:00")])
    assert bad.status == 400
    log = await browser.get("/admin/community")
    assert "13920001099" in log.text and "duty_shift" in log.text and "13920001011" in log.text
