"""Admins edit estates, buildings and grids: validated, audited with before and after, kept over a restart."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from bot.cli import cmd_load_community
from bot.config import Settings
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import community, community_edits
from bot.store.db import make_engine, make_session_factory, migrate, unit_of_work
from bot.store.models import AuditEntry, Building, Estate, Grid
from tests.helpers import community_db


@pytest.fixture
def factory(database_url: str) -> sessionmaker:
    return community_db(database_url)


def _entries(factory: sessionmaker):
    with unit_of_work(factory) as s:
        return [(e.entity, e.entity_key, e.action, e.before, e.after) for e in s.query(AuditEntry).order_by(AuditEntry.id)]


def test_an_estates_new_layout_and_building_reach_the_address_parser_and_the_log(factory) -> None:
    community_edits.update_estate(factory, "admin", "和顺里", aliases=["和顺", "和顺里小区", "和顺"], floors="7")
    community_edits.add_building(factory, "admin", "和顺里", 9, "grid-3")
    with unit_of_work(factory) as s:
        heshun = next(e for e in community.estates(s) if e.name == "和顺里")
    assert heshun.floors == 7 and 9 in heshun.buildings and heshun.aliases == ("和顺", "和顺里小区")
    (estate, building) = _entries(factory)
    assert estate[:3] == ("estate", "和顺里", "update") and (estate[3]["floors"], estate[4]["floors"]) == (5, 7)
    assert building == ("building", "和顺里-9", "create", None, {"estate": "和顺里", "number": 9, "grid": "grid-3"})


def test_grid_edits_log_leader_and_members_and_refuse_unknown_or_inactive_staff(factory) -> None:
    community_edits.update_grid(factory, "admin", "grid-4", leader="zhaogang", members=["sunli"])
    ((entity, key, action, before, after),) = _entries(factory)
    assert (entity, key, action) == ("grid", "grid-4", "update")
    assert (before["leader"], before["members"], after["leader"], after["members"]) == ("sunli", [], "zhaogang", ["sunli"])
    community_edits.update_staff(factory, "admin", "wuxia", active=False)
    for bad in [dict(leader="nobody"), dict(members=["wuxia"]), dict(name=" "), dict(leader="zhaogang", members=["zhaogang"])]:
        with pytest.raises(InvalidInput):
            community_edits.update_grid(factory, "admin", "grid-4", **bad)
    with pytest.raises(NotFound):
        community_edits.update_grid(factory, "admin", "grid-9", name="第九网格")
    with pytest.raises(NotAllowed):
        community_edits.update_grid(factory, "zhouming", "grid-1", name="我的网格")
    with pytest.raises(NotAllowed):
        community_edits.move_building(factory, "wangjianguo", "吉利花园", 1, "grid-2")
    with pytest.raises(InvalidInput):
        community_edits.add_building(factory, "admin", "吉利花园", 12)
    with pytest.raises(InvalidInput):
        community_edits.update_estate(factory, "admin", "吉利花园", aliases="金穗")
    with unit_of_work(factory) as s:
        grid = s.query(Grid).filter_by(key="grid-4").one()
        assert (grid.leader.key, grid.member_keys) == ("zhaogang", ["sunli"])
    assert [e[0] for e in _entries(factory)] == ["grid", "staff"]


def test_a_moved_building_stays_in_its_new_grid_over_make_runs_load(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    migrate(url)
    settings = Settings.from_env({"DATABASE_URL": url, "HG_VAR_DIR": str(tmp_path)}, env_file=tmp_path / "none")
    assert cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) == 0
    factory = make_session_factory(make_engine(url))
    community_edits.move_building(factory, "admin", "吉利花园", 6, "grid-2")
    community_edits.update_estate(factory, "admin", "金穗园", floors=20)
    assert cmd_load_community(settings, argparse.Namespace(dir=None, if_changed=True)) == 0
    with unit_of_work(factory) as s:
        six = s.query(Building).join(Estate).filter(Estate.name == "吉利花园", Building.number == 6).one()
        assert six.grid.key == "grid-2"
        assert s.query(Estate).filter_by(name="金穗园").one().floors == 20
