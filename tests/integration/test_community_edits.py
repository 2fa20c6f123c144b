"""Admins edit staff, groups and the duty roster; every change is in the audit log, and a restart keeps it."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from bot.cli import cmd_load_community
from bot.config import Settings
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import community_edits
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import AuditEntry, DutyShift, Staff
from tests.helpers import community_db


@pytest.fixture
def factory(database_url: str) -> sessionmaker:
    return community_db(database_url)


def _entries(factory: sessionmaker):
    with unit_of_work(factory) as s:
        return [(e.actor, e.entity, e.entity_key, e.action, e.before, e.after)
                for e in s.query(AuditEntry).order_by(AuditEntry.id)]


def test_an_admin_edits_a_staff_member_and_the_audit_log_has_before_and_after(factory) -> None:
    after = community_edits.update_staff(factory, "admin", "zhouming", phone="139 2000 1099", on_duty=True)
    assert after["phone"] == "13920001099" and after["on_duty"] is True
    ((actor, entity, key, action, before, logged),) = _entries(factory)
    assert (actor, entity, key, action) == ("admin", "staff", "zhouming", "update")
    assert before["phone"] == "13920001011" and logged["phone"] == "13920001099" and before["on_duty"] is False
    community_edits.update_staff(factory, "admin", "zhouming", phone="13920001099")  # no change, no entry
    assert len(_entries(factory)) == 1


def test_bad_edits_and_editors_without_the_role_are_refused_and_nothing_changes(factory) -> None:
    for bad in [dict(role="boss"), dict(phone="12"), dict(estates=["不存在"]), dict(password_hash="x"), dict(name="")]:
        with pytest.raises(InvalidInput):
            community_edits.update_staff(factory, "admin", "zhouming", **bad)
    with pytest.raises(NotAllowed):
        community_edits.update_staff(factory, "wangjianguo", "zhouming", on_duty=True)
    with pytest.raises(NotFound):
        community_edits.update_staff(factory, "admin", "nobody", on_duty=True)
    with pytest.raises(InvalidInput):
        community_edits.update_staff(factory, "admin", "admin", active=False)
    assert _entries(factory) == []


def test_the_roster_and_group_keys_are_edited_with_the_key_masked_in_the_log(factory) -> None:
    shift = community_edits.add_shift(factory, "gaohong", "zhouming", [6, 7], "08:00", "20:00", "周末白班")
    with pytest.raises(InvalidInput):
        community_edits.add_shift(factory, "gaohong", "zhouming", [8], "08:00", "20:00")
    with pytest.raises(InvalidInput):
        community_edits.add_shift(factory, "gaohong", "zhouming", [1], "8点", "20:00")
    community_edits.remove_shift(factory, "gaohong", shift)
    community_edits.update_group(factory, "admin", "grid-1", webhook_key="real-robot-key-0123456789")
    entries = _entries(factory)
    assert [(e[1], e[3]) for e in entries] == [("duty_shift", "create"), ("duty_shift", "delete"), ("group", "update")]
    assert "real-robot-key-0123456789" not in str(entries) and entries[2][5]["webhook_key"] == "real…6789"


def test_a_restart_keeps_console_edits_while_the_community_file_is_unchanged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    from bot.store.db import migrate

    migrate(url)
    settings = Settings.from_env({"DATABASE_URL": url, "HG_VAR_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) == 0
    factory = make_session_factory(make_engine(url))
    community_edits.update_staff(factory, "admin", "zhouming", name="周明明")
    assert cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) == 0  # make run again
    with unit_of_work(factory) as s:
        assert s.query(Staff).filter_by(key="zhouming").one().name == "周明明"
        assert s.query(DutyShift).count() == 2
    assert cmd_load_community(settings, argparse.Namespace(dir=None)) == 0  # an explicit load: the file wins
    with unit_of_work(factory) as s:
        assert s.query(Staff).filter_by(key="zhouming").one().name == "周明"
        assert s.query(AuditEntry).filter_by(entity="community_file").count() == 2
