"""The admin pages for clinic events, estates and grids, volunteer teams, and the admin JSON API — admins only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import AsyncIterator, Callable, Dict, List, Tuple
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.services import accounts, clinics, volunteers
from bot.store.db import unit_of_work
from bot.store.models import AuditEntry, Building, ClinicEvent, Estate, Grid
from tests.console_kit import ServedConsole, serve_console
from tests.helpers import community_db


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                              "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    f = community_db(sqlite_url, _today())
    volunteers.sign_up(f, "oV1", "刘阿姨", "13812345678", 2)
    return f


@pytest.fixture
async def console(settings: Settings, factory: sessionmaker, clock: Callable[[], dt.datetime]
                  ) -> AsyncIterator[ServedConsole]:
    async with serve_console(settings, factory, clock) as served:
        yield served


def _audit(factory: sessionmaker) -> List[Tuple[str, str, str, str]]:
    with unit_of_work(factory) as s:
        return [(e.actor, e.entity, e.entity_key, e.action) for e in s.query(AuditEntry).order_by(AuditEntry.id)]


def _clinic_id(factory: sessionmaker, title: str) -> int:
    with unit_of_work(factory) as s:
        return s.query(ClinicEvent).filter_by(title=title).one().id


def _clinic_form(token: str, **values: str) -> Dict[str, str]:
    form = {"csrf_token": token, "title": "社区骨科义诊", "date": (_today() + dt.timedelta(days=6)).isoformat(),
            "start": "09:00", "end": "11:00", "place": "党群服务中心二楼", "specialties": "骨科、中医",
            "services": "颈肩腰腿痛咨询", "bring": "医保卡", "organizer": ""}
    form.update(values)
    return form


# ---- clinic events -----------------------------------------------------------------------------------------

async def test_an_admin_adds_edits_cancels_and_deletes_clinics_with_one_audit_row_each(console, factory) -> None:
    browser = await console.signed_in("gaohong")
    page = await browser.get("/admin/clinics")
    assert page.status == 200 and "社区眼科义诊" in page.text and "添加义诊活动" in page.text
    token = page.csrf_token()
    added = await browser.post("/admin/clinics", _clinic_form(token))
    assert added.status == 303 and added.location == "/admin/clinics?done=added", added.text
    assert _audit(factory)[-1][1:] == ("clinic", str(_clinic_id(factory, "社区骨科义诊")), "create")
    new_id = _clinic_id(factory, "社区骨科义诊")
    saved = await browser.post(f"/admin/clinics/{new_id}", _clinic_form(token, place="吉利花园活动室"))
    assert saved.status == 303
    eye = _clinic_id(factory, "社区眼科义诊")
    assert (await browser.post(f"/admin/clinics/{eye}/cancel", {"csrf_token": token})).status == 303
    oral = _clinic_id(factory, "口腔健康义诊")
    assert (await browser.post(f"/admin/clinics/{oral}/delete", {"csrf_token": token})).status == 303
    assert [a[3] for a in _audit(factory)] == ["create", "update", "cancel", "delete"]
    listed = await browser.get("/admin/clinics?done=deleted")
    assert "吉利花园活动室" in listed.text and "社区眼科义诊（已取消）" in listed.text and "口腔健康义诊" not in listed.text
    offered = [c.title for c in clinics.upcoming(factory, _today(), limit=50)]
    assert "社区骨科义诊" in offered and "社区眼科义诊" not in offered and "口腔健康义诊" not in offered


@pytest.mark.parametrize("bad", [dict(start="11:00", end="09:00"), dict(date="下周三"), dict(title=""),
                                 dict(place=" "), dict(start="9点")])
async def test_a_bad_clinic_form_gets_a_400_page_and_writes_nothing(console, factory, bad) -> None:
    browser = await console.signed_in("admin")
    token = (await browser.get("/admin/clinics")).csrf_token()
    with unit_of_work(factory) as s:
        count = s.query(ClinicEvent).count()
    refused = await browser.post("/admin/clinics", _clinic_form(token, **bad))
    assert refused.status == 400 and "填写有误" in refused.text
    oral = _clinic_id(factory, "口腔健康义诊")
    assert (await browser.post(f"/admin/clinics/{oral}", _clinic_form(token, **bad))).status == 400
    with unit_of_work(factory) as s:
        assert s.query(ClinicEvent).count() == count and s.get(ClinicEvent, oral).title == "口腔健康义诊"
    assert _audit(factory) == []


async def test_a_missing_clinic_is_404_and_a_second_cancel_is_409(console, factory) -> None:
    browser = await console.signed_in("admin")
    token = (await browser.get("/admin/clinics")).csrf_token()
    assert (await browser.post("/admin/clinics/9999/cancel", {"csrf_token": token})).status == 404
    eye = _clinic_id(factory, "社区眼科义诊")
    assert (await browser.post(f"/admin/clinics/{eye}/cancel", {"csrf_token": token})).status == 303
    assert (await browser.post(f"/admin/clinics/{eye}/cancel", {"csrf_token": token})).status == 409
    assert len(_audit(factory)) == 1


# ---- estates, buildings, grids -----------------------------------------------------------------------------

async def test_an_admin_edits_an_estate_adds_and_moves_buildings_and_edits_a_grid(console, factory) -> None:
    browser = await console.signed_in("admin")
    page = await browser.get("/admin/community/layout")
    assert page.status == 200 and "吉利花园" in page.text and "第一网格" in page.text
    token = page.csrf_token()
    estate = await browser.post("/admin/community/estates", {
        "csrf_token": token, "estate": "金穗园", "aliases": "金穗、金穗园小区，金穗家园", "units": "2", "floors": "18",
        "rooms_per_floor": "4"})
    assert estate.status == 303, estate.text
    built = await browser.post("/admin/community/buildings", {"csrf_token": token, "estate": "金穗园", "number": "7",
                                                              "grid": "grid-4"})
    assert built.status == 303
    moved = await browser.post("/admin/community/buildings/move", {"csrf_token": token, "estate": "吉利花园",
                                                                   "number": "6", "grid": "grid-2"})
    assert moved.status == 303
    grid = await browser.request("POST", "/admin/community/grids/grid-3", data=[
        ("csrf_token", token), ("name", "第三网格（和顺里）"), ("leader", "zhaogang"), ("members", "wuxia")])
    assert grid.status == 303
    assert _audit(factory) == [("admin", "estate", "金穗园", "update"), ("admin", "building", "金穗园-7", "create"),
                               ("admin", "building", "吉利花园-6", "update"), ("admin", "grid", "grid-3", "update")]
    with unit_of_work(factory) as s:
        assert s.query(Estate).filter_by(name="金穗园").one().aliases == ["金穗", "金穗园小区", "金穗家园"]
        six = s.query(Building).join(Estate).filter(Estate.name == "吉利花园", Building.number == 6).one()
        assert six.grid.key == "grid-2"
        g3 = s.query(Grid).filter_by(key="grid-3").one()
        assert (g3.name, g3.member_keys) == ("第三网格（和顺里）", ["wuxia"])
    log = await browser.get("/admin/community/layout?done=grid")
    assert "grid-1" in log.text and "已保存" in log.text and "金穗家园" in log.text


@pytest.mark.parametrize("path, form", [
    ("/admin/community/estates", {"estate": "金穗园", "aliases": "", "units": "0", "floors": "18", "rooms_per_floor": "4"}),
    ("/admin/community/estates", {"estate": "金穗园", "aliases": "", "units": "2", "floors": "十八", "rooms_per_floor": "4"}),
    ("/admin/community/estates", {"estate": "金穗园", "aliases": "吉利", "units": "2", "floors": "18", "rooms_per_floor": "4"}),
    ("/admin/community/buildings", {"estate": "吉利花园", "number": "3"}),
    ("/admin/community/buildings", {"estate": "吉利花园", "number": "-1"}),
    ("/admin/community/buildings", {"estate": "吉利花园", "number": "5000"}),
    ("/admin/community/buildings/move", {"estate": "吉利花园", "number": "3", "grid": ""}),
    ("/admin/community/grids/grid-1", {"name": "第一网格", "leader": "nobody"}),
    ("/admin/community/grids/grid-1", {"name": "第一网格", "leader": ""}),
    ("/admin/community/grids/grid-1", {"name": "", "leader": "wangjianguo"}),
    ("/admin/community/grids/grid-1", {"name": "第一网格", "leader": "wangjianguo", "members": "wangjianguo"}),
])
async def test_bad_estate_building_and_grid_edits_get_a_400_and_change_nothing(console, factory, path, form) -> None:
    browser = await console.signed_in("admin")
    token = (await browser.get("/admin/community/layout")).csrf_token()
    with unit_of_work(factory) as s:
        before = [(b.estate_id, b.number, b.grid_id) for b in s.query(Building).order_by(Building.id)]
    refused = await browser.post(path, {"csrf_token": token, **form})
    assert refused.status == 400, refused.text
    with unit_of_work(factory) as s:
        assert [(b.estate_id, b.number, b.grid_id) for b in s.query(Building).order_by(Building.id)] == before
        assert s.query(Estate).filter_by(name="金穗园").one().units == 2
        assert s.query(Grid).filter_by(key="grid-1").one().leader.key == "wangjianguo"
    assert _audit(factory) == []


async def test_an_inactive_staff_member_cannot_lead_a_grid(console, factory) -> None:
    browser = await console.signed_in("admin")
    token = (await browser.get("/admin/community")).csrf_token()
    off = await browser.post("/admin/community/staff/lishufen", {"csrf_token": token, "name": "李淑芬",
                                                                 "role": "grid_leader"})  # "active" unticked
    assert off.status == 303
    refused = await browser.post("/admin/community/grids/grid-1", {"csrf_token": token, "name": "第一网格",
                                                                  "leader": "lishufen"})
    assert refused.status == 400
    assert [a[1] for a in _audit(factory)] == ["staff"]


# ---- volunteer teams ---------------------------------------------------------------------------------------

async def test_the_volunteer_page_lists_teams_with_sign_ups_and_only_an_admin_sees_full_phones(console) -> None:
    secretary = await (await console.signed_in("gaohong")).get("/admin/volunteers")
    assert secretary.status == 200 and "黄色邻里互助志愿服务队" in secretary.text and "何晓雨" in secretary.text
    assert "刘阿姨" in secretary.text and "138****5678" in secretary.text and "13812345678" not in secretary.text
    assert 'href="/admin/volunteers.csv"' in secretary.text
    admin = await (await console.signed_in("admin")).get("/admin/volunteers")
    assert "13812345678" in admin.text


# ---- who may -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["zhouming", "wangjianguo", "chenjing", "maguilan", "hexiaoyu"])
async def test_staff_outside_the_admin_roles_get_403_on_every_new_page_and_change_nothing(console, factory,
                                                                                          key) -> None:
    browser = await console.signed_in(key)
    for path in ("/admin/clinics", "/admin/community/layout", "/admin/volunteers"):
        assert (await browser.get(path)).status == 403, path
    token = await browser.csrf()
    eye = _clinic_id(factory, "社区眼科义诊")
    posts = [("/admin/clinics", _clinic_form(token)), (f"/admin/clinics/{eye}", _clinic_form(token)),
             (f"/admin/clinics/{eye}/cancel", {"csrf_token": token}),
             (f"/admin/clinics/{eye}/delete", {"csrf_token": token}),
             ("/admin/community/estates", {"csrf_token": token, "estate": "金穗园", "aliases": "", "units": "3",
                                           "floors": "18", "rooms_per_floor": "4"}),
             ("/admin/community/buildings", {"csrf_token": token, "estate": "金穗园", "number": "9"}),
             ("/admin/community/buildings/move", {"csrf_token": token, "estate": "吉利花园", "number": "1",
                                                  "grid": "grid-2"}),
             ("/admin/community/grids/grid-1", {"csrf_token": token, "name": "x", "leader": key})]
    for path, form in posts:
        assert (await browser.post(path, form)).status == 403, path
    assert _audit(factory) == []
    home = await browser.get("/")
    assert "/admin/clinics" not in home.text


async def test_the_admin_navigation_links_the_new_pages(console) -> None:
    home = await (await console.signed_in("gaohong")).get("/")
    for path in ("/admin/clinics", "/admin/community/layout", "/admin/volunteers"):
        assert f'href="{path}"' in home.text


# ---- the admin API -----------------------------------------------------------------------------------------

def _bearer(factory: sessionmaker, key: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {accounts.issue_api_token(factory, key)}"}


async def test_the_admin_api_answers_admins_403_to_other_staff_and_401_without_a_token(console, factory) -> None:
    admin, member = _bearer(factory, "admin"), _bearer(factory, "zhouming")
    browser = console.browser()
    for path in ("/api/admin/stats", "/api/admin/clinics", "/api/admin/audit"):
        assert (await browser.get(path, headers=admin)).status == 200, path
        assert (await browser.get(path, headers=member)).status == 403, path
        assert (await browser.get(path)).status == 401, path
    body = {"title": "x", "date": "2026-12-24", "start": "09:00", "end": "10:00", "place": "y"}
    assert (await browser.request("POST", "/api/admin/clinics", json_body=body, headers=member)).status == 403
    assert (await browser.request("POST", "/api/admin/clinics", json_body=body)).status == 401
    assert _audit(factory) == []


async def test_the_stats_api_returns_the_pages_rows_for_the_same_query(console, factory) -> None:
    from bot.address import Address
    from bot.services import tickets

    tickets.open_ticket(factory, tickets.TicketRequest(kind="leak", sender_id="oA", description="卫生间漏水",
                                                       address=Address("吉利花园", 3, 2, 501)))
    headers = _bearer(factory, "gaohong")
    browser = console.browser()
    by_grid = (await browser.get("/api/admin/stats?by=grid", headers=headers)).json()
    assert by_grid["by"] == "grid" and [(r["group"], r["kind"], r["tickets"]) for r in by_grid["rows"]] == [
        ("第一网格", "leak", 1)]
    page = await (await console.signed_in("gaohong")).get("/admin/stats?by=grid")
    assert "第一网格" in page.text
    since = (_today() + dt.timedelta(days=1)).isoformat()
    later = (await browser.get(f"/api/admin/stats?since={since}&until={since}", headers=headers)).json()
    assert later["rows"] == []
    bad = await browser.get("/api/admin/stats?since=yesterday", headers=headers)
    assert bad.status == 400 and bad.json()["field"] == "since"
    assert (await browser.get("/api/admin/stats?by=street", headers=headers)).status == 400


async def test_an_admin_adds_a_clinic_through_the_api_and_reads_it_and_the_audit_log(console, factory) -> None:
    headers = _bearer(factory, "admin")
    browser = console.browser()
    body = {"title": "冬季流感疫苗咨询", "date": (_today() + dt.timedelta(days=9)).isoformat(), "start": "14:00",
            "end": "16:00", "place": "红星社区卫生服务站", "specialties": ["内科"], "organizer": None}
    made = await browser.request("POST", "/api/admin/clinics", json_body=body, headers=headers)
    assert made.status == 201, made.text
    clinic = made.json()
    assert clinic["origin"] == "console" and clinic["status"] == "scheduled" and clinic["edited_by"] == "admin"
    listed = (await browser.get("/api/admin/clinics", headers=headers)).json()["clinics"]
    assert clinic["id"] in [c["id"] for c in listed] and "社区眼科义诊" in [c["title"] for c in listed]
    entries = (await browser.get("/api/admin/audit?limit=5", headers=headers)).json()["entries"]
    assert [(e["actor"], e["entity"], e["entity_key"], e["action"]) for e in entries] == [
        ("admin", "clinic", str(clinic["id"]), "create")]
    assert entries[0]["before"] is None and entries[0]["after"]["title"] == "冬季流感疫苗咨询"
    assert (await browser.get("/api/admin/audit?limit=0", headers=headers)).status == 400


@pytest.mark.parametrize("change", [dict(end="13:00"), dict(date="12/24"), dict(place=""), dict(extra="x"),
                                    dict(specialties="眼科"), dict(start=None)])
async def test_a_bad_clinic_through_the_api_is_400_naming_the_field_and_writes_nothing(console, factory,
                                                                                       change) -> None:
    body = {"title": "义诊", "date": "2026-12-24", "start": "14:00", "end": "16:00", "place": "服务站", **change}
    with unit_of_work(factory) as s:
        count = s.query(ClinicEvent).count()
    refused = await console.browser().request("POST", "/api/admin/clinics", json_body=body,
                                              headers=_bearer(factory, "admin"))
    assert refused.status == 400 and refused.json()["code"] == "invalid_input" and refused.json()["field"]
    with unit_of_work(factory) as s:
        assert s.query(ClinicEvent).count() == count
    assert _audit(factory) == []


async def test_the_openapi_document_lists_the_admin_routes_with_their_roles(console) -> None:
    doc = (await console.browser().get("/api/openapi.json")).json()
    for path, method in [("/api/admin/stats", "get"), ("/api/admin/clinics", "get"), ("/api/admin/clinics", "post"),
                         ("/api/admin/audit", "get")]:
        operation = doc["paths"][path][method]
        assert operation["x-roles"] == ["admin", "secretary", "street"] and "403" in operation["responses"]
