"""Admins add, edit, cancel and delete clinic events; each change is audited, and the file's refresh keeps them."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from bot.cli import cmd_load_community
from bot.config import PROJECT_ROOT, Settings
from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.services import clinic_edits, clinics
from bot.services.community import load_clinics, read_community
from bot.store.db import make_engine, make_session_factory, migrate, unit_of_work
from bot.store.models import AuditEntry, ClinicEvent
from tests.helpers import NOW, community_db

TODAY = NOW.date()
GOOD = {"title": "社区骨科义诊", "date": (TODAY + dt.timedelta(days=5)).isoformat(), "start": "9:00",
        "end": "11:30", "place": "党群服务中心二楼", "specialties": "骨科、中医, 康复", "services": "颈肩腰腿痛咨询",
        "bring": "医保卡", "organizer": "区中医院"}


@pytest.fixture
def factory(database_url: str) -> sessionmaker:
    return community_db(database_url)


def _entries(factory: sessionmaker):
    with unit_of_work(factory) as s:
        return [(e.actor, e.entity, e.entity_key, e.action, e.before, e.after)
                for e in s.query(AuditEntry).order_by(AuditEntry.id)]


def _file_clinic(factory: sessionmaker, title: str) -> int:
    with unit_of_work(factory) as s:
        return s.query(ClinicEvent).filter_by(title=title).one().id


def _refresh(factory: sessionmaker, today: dt.date = TODAY) -> None:
    with unit_of_work(factory) as s:
        load_clinics(s, read_community(PROJECT_ROOT / "data" / "community"), today)


def test_an_admin_adds_a_clinic_that_residents_are_offered_and_the_log_records_it(factory) -> None:
    made = clinic_edits.create(factory, "gaohong", GOOD)
    assert made["start"] == "09:00" and made["specialties"] == ["骨科", "中医", "康复"] and made["origin"] == "console"
    ((actor, entity, key, action, before, after),) = _entries(factory)
    assert (actor, entity, key, action, before) == ("gaohong", "clinic", str(made["id"]), "create", None)
    assert after["title"] == "社区骨科义诊" and after["date"] == GOOD["date"]
    offered = clinics.upcoming(factory, TODAY, specialty="骨科")
    assert [c.title for c in offered] == ["社区骨科义诊"]


@pytest.mark.parametrize("bad, field", [
    ({"date": "12月5日"}, "date"), ({"date": "2026-02-30"}, "date"), ({"start": "9点"}, "start"),
    ({"end": "24:00"}, "end"), ({"start": "11:30", "end": "09:00"}, "end"), ({"start": "10:00", "end": "10:00"}, "end"),
    ({"title": "  "}, "title"), ({"place": ""}, "place"), ({"specialties": "、".join(f"科{i}" for i in range(11))},
                                                            "specialties"),
    ({"rating": 5}, "rating"),
])
def test_a_bad_clinic_is_refused_naming_the_field_and_nothing_is_written(factory, bad, field) -> None:
    with unit_of_work(factory) as s:
        count = s.query(ClinicEvent).count()
    with pytest.raises(InvalidInput) as refused:
        clinic_edits.create(factory, "admin", {**GOOD, **bad})
    assert refused.value.field == field
    clinic_id = _file_clinic(factory, "口腔健康义诊")
    with pytest.raises(InvalidInput):
        clinic_edits.update(factory, "admin", clinic_id, {**GOOD, **bad})
    with unit_of_work(factory) as s:
        assert s.query(ClinicEvent).count() == count
        assert s.get(ClinicEvent, clinic_id).title == "口腔健康义诊"
    assert _entries(factory) == []


def test_only_admins_and_the_secretary_edit_clinics(factory) -> None:
    clinic_id = _file_clinic(factory, "口腔健康义诊")
    for key in ("zhouming", "wangjianguo", "chenjing", "maguilan", "hexiaoyu"):
        with pytest.raises(NotAllowed):
            clinic_edits.create(factory, key, GOOD)
        with pytest.raises(NotAllowed):
            clinic_edits.cancel(factory, key, clinic_id)
        with pytest.raises(NotAllowed):
            clinic_edits.delete(factory, key, clinic_id)
    with pytest.raises(NotFound):
        clinic_edits.update(factory, "admin", 9999, GOOD)
    assert _entries(factory) == []


def test_a_cancelled_clinic_is_listed_for_admins_but_not_offered_to_residents(factory) -> None:
    clinic_id = _file_clinic(factory, "社区眼科义诊")
    assert [c.title for c in clinics.upcoming(factory, TODAY, specialty="眼科")] == ["社区眼科义诊"]
    cancelled = clinic_edits.cancel(factory, "admin", clinic_id)
    assert cancelled["status"] == "cancelled"
    assert clinics.upcoming(factory, TODAY, specialty="眼科") == []
    assert "社区眼科义诊" not in [c.title for c in clinics.upcoming(factory, TODAY, limit=50)]
    listed = {c["id"]: c["status"] for c in clinic_edits.listing(factory, "admin", TODAY)}
    assert listed[clinic_id] == "cancelled"
    with pytest.raises(InvalidState):
        clinic_edits.cancel(factory, "admin", clinic_id)
    assert [(e[3], e[4]["status"], e[5]["status"]) for e in _entries(factory)] == [
        ("cancel", "scheduled", "cancelled")]


def test_an_edit_writes_one_entry_with_before_and_after_and_an_unchanged_save_writes_none(factory) -> None:
    clinic_id = _file_clinic(factory, "口腔健康义诊")
    current = clinic_edits.get(factory, "admin", clinic_id)
    values = {k: current[k] for k in clinic_edits.FIELDS}
    clinic_edits.update(factory, "admin", clinic_id, values)  # saved as it was
    assert _entries(factory) == []
    clinic_edits.update(factory, "admin", clinic_id, {**values, "place": "吉利花园活动室", "start": "14:30"})
    ((_, _, key, action, before, after),) = _entries(factory)
    assert (key, action) == (str(clinic_id), "update")
    assert (before["place"], after["place"], before["start"], after["start"]) == (
        "吉利花园3号楼前小广场", "吉利花园活动室", "14:00", "14:30")


def test_the_files_refresh_keeps_edited_cancelled_and_deleted_clinics_on_every_later_day(factory) -> None:
    edited = _file_clinic(factory, "口腔健康义诊")
    values = {k: v for k, v in clinic_edits.get(factory, "admin", edited).items() if k in clinic_edits.FIELDS}
    clinic_edits.update(factory, "admin", edited, {**values, "place": "吉利花园活动室"})
    clinic_edits.cancel(factory, "admin", _file_clinic(factory, "社区眼科义诊"))
    deleted = _file_clinic(factory, "老年慢病健康义诊")
    clinic_edits.delete(factory, "admin", deleted)
    added = clinic_edits.create(factory, "admin", {**GOOD, "title": "口腔健康义诊", "date": values["date"]})
    for day in (TODAY, TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=2)):
        _refresh(factory, day)
    with unit_of_work(factory) as s:
        rows = {(r.title, r.status, r.place) for r in s.query(ClinicEvent)}
    assert rows == {("口腔健康义诊", "scheduled", "吉利花园活动室"), ("社区眼科义诊", "cancelled", "红星社区党群服务中心一楼大厅"),
                    ("老年慢病健康义诊", "deleted", "红星社区卫生服务站"), ("口腔健康义诊", "scheduled", GOOD["place"])}
    assert clinic_edits.get(factory, "admin", added["id"])["place"] == GOOD["place"]
    with pytest.raises(NotFound):
        clinic_edits.get(factory, "admin", deleted)
    offered = [c.title for c in clinics.upcoming(factory, TODAY, limit=50)]
    assert sorted(offered) == ["口腔健康义诊", "口腔健康义诊"]


def test_untouched_file_clinics_are_still_refreshed(factory) -> None:
    _refresh(factory, TODAY + dt.timedelta(days=1))
    with unit_of_work(factory) as s:
        dates = sorted(r.date for r in s.query(ClinicEvent).filter_by(title="社区眼科义诊"))
    assert dates == [TODAY + dt.timedelta(days=3), TODAY + dt.timedelta(days=4)]


def test_a_clinic_edit_survives_make_runs_community_load(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    migrate(url)
    settings = Settings.from_env({"DATABASE_URL": url, "HG_VAR_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) == 0
    factory = make_session_factory(make_engine(url))
    clinic_id = _file_clinic(factory, "口腔健康义诊")
    values = {k: v for k, v in clinic_edits.get(factory, "admin", clinic_id).items() if k in clinic_edits.FIELDS}
    clinic_edits.update(factory, "admin", clinic_id, {**values, "title": "口腔健康义诊（改期）", "start": "15:00"})
    gone = _file_clinic(factory, "社区眼科义诊")
    clinic_edits.delete(factory, "admin", gone)
    for _ in range(2):
        assert cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) == 0
    with unit_of_work(factory) as s:
        assert s.get(ClinicEvent, clinic_id).title == "口腔健康义诊（改期）"
        assert s.get(ClinicEvent, clinic_id).start == "15:00"
        assert s.query(ClinicEvent).filter_by(title="社区眼科义诊").one().status == "deleted"
        assert s.query(ClinicEvent).filter_by(title="口腔健康义诊").count() == 0  # renamed, not brought back
    today = dt.date.today()
    assert "社区眼科义诊" not in [c.title for c in clinics.upcoming(factory, today, limit=50)]


def test_the_migration_marks_existing_clinics_as_the_files_and_scheduled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0004")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO clinic_events (title, date, start, \"end\", place, specialties, services, bring)"
                          " VALUES ('义诊', '2026-12-01', '09:00', '11:00', '大厅', '[]', '', '')"))
    migrate(url)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT file_key, status, edited_by FROM clinic_events")).one()
    engine.dispose()
    assert tuple(row) == ("义诊", "scheduled", None)
