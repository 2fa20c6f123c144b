"""Announcements reach the following, opted-in WeChat residents of the chosen estates or buildings, once each."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.errors import InvalidInput, InvalidState, NotAllowed
from bot.services import announcements, residents
from bot.store.db import unit_of_work
from bot.store.models import Notification
from tests.helpers import NOW, community_db


@pytest.fixture
def factory(database_url: str) -> sessionmaker:
    """The demo community on SQLite and PostgreSQL, with residents in several buildings."""
    f = community_db(database_url)
    with unit_of_work(f) as s:
        for sender, estate, building in [("oA", "吉利花园", 3), ("oB", "吉利花园", 3), ("oC", "吉利花园", 5),
                                         ("oD", "金穗园", 1), ("rest:web-1", "吉利花园", 3), ("oE", "吉利花园", 3),
                                         ("oF", "吉利花园", 3)]:
            residents.remember(s, sender, address=Address(estate, building, 1, 101))
    residents.record_unsubscribe(f, "oE")  # unfollowed the account
    announcements.set_reminders(f, "oF", on=False)  # said 退订提醒
    return f


def _queued(factory: sessionmaker):
    with unit_of_work(factory) as s:
        return sorted((n.recipient, n.next_attempt_at) for n in s.query(Notification).filter_by(purpose="announcement"))


def test_a_water_stop_notice_for_one_building_reaches_its_following_residents_once_paced(factory) -> None:
    aid = announcements.create(factory, "admin", kind="water_stop", title="3号楼明日停水",
                               body="明天9:00-12:00检修水泵，请提前储水。", audience=[{"estate": "吉利花园", "buildings": [3]}],
                               now=NOW)
    assert announcements.send(factory, "admin", aid, per_minute=1, now=NOW) == 2
    queued = _queued(factory)
    assert [r for r, _ in queued] == ["oA", "oB"]
    assert queued[1][1] - queued[0][1] == dt.timedelta(minutes=1)
    with pytest.raises(InvalidState):
        announcements.send(factory, "admin", aid, now=NOW)
    assert len(_queued(factory)) == 2
    (view,) = announcements.overview(factory, "admin")
    assert (view.recipients, view.delivered, view.failed, view.author) == (2, 0, 0, "社区管理员")
    with unit_of_work(factory) as s:
        text = s.query(Notification).filter_by(purpose="announcement").first().payload["text"]
    assert text.startswith("【停水通知】3号楼明日停水") and "退订提醒" in text


def test_a_whole_estate_notice_leaves_out_other_estates_and_rest_residents(factory) -> None:
    aid = announcements.create(factory, "gaohong", kind="safety", title="冬季防火", body="出门记得关燃气。",
                               audience=[{"estate": "吉利花园"}])
    assert announcements.send(factory, "gaohong", aid) == 3
    assert [r for r, _ in _queued(factory)] == ["oA", "oB", "oC"]


def test_only_admins_and_the_secretary_send_and_bad_input_is_refused(factory) -> None:
    with pytest.raises(NotAllowed):
        announcements.create(factory, "wangjianguo", kind="safety", title="x", body="y", audience=[{"estate": "吉利花园"}])
    for bad in [dict(kind="ad", title="x", body="y", audience=[{"estate": "吉利花园"}]),
                dict(kind="safety", title="", body="y", audience=[{"estate": "吉利花园"}]),
                dict(kind="safety", title="x", body="y" * 501, audience=[{"estate": "吉利花园"}]),
                dict(kind="safety", title="x", body="y", audience=[]),
                dict(kind="safety", title="x", body="y", audience=[{"estate": "不存在小区"}]),
                dict(kind="safety", title="x", body="y", audience=[{"estate": "金穗园", "buildings": [9]}])]:
        with pytest.raises(InvalidInput):
            announcements.create(factory, "admin", **bad)


def test_reminder_commands_are_recognised_and_nothing_else() -> None:
    assert announcements.reminder_command("退订提醒") is False
    assert announcements.reminder_command(" 恢复提醒。") is True
    assert announcements.reminder_command("我想退订提醒一下邻居") is None


def test_volunteer_csv_masks_phones_unless_an_admin_exports_it(factory) -> None:
    from bot.services import volunteers

    volunteers.sign_up(factory, "oA", "王秀英", "13612345678", 2)
    volunteers.sign_up(factory, "oB", "李大爷", "13898765432", 5)
    secretary = volunteers.signups_csv(factory, "gaohong")  # the secretary
    assert "136****5678" in secretary and "13612345678" not in secretary and "13898765432" not in secretary
    admin = volunteers.signups_csv(factory, "admin", team_number=2)
    assert "13612345678" in admin and "李大爷" not in admin
    assert admin.startswith("\ufeff队伍,姓名,电话,报名时间")
