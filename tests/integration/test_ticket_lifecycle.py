"""Tickets move through one transition table: every legal path works, no illegal one is reachable, each step is recorded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from bot import lifecycle as lc
from bot.address import Address
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import lifecycle, tickets
from bot.services.lifecycle import Context
from bot.store.db import migrate, unit_of_work
from bot.store.models import Notification, Ticket, TicketEvent
from tests.helpers import NOW, community_db

OPENID = "oWX_lifecycle_resident"
LEAK = tickets.TicketRequest(kind="leak", sender_id=OPENID, description="卫生间漏水了",
                             address=Address("吉利花园", 3, 2, 501), contact_phone="13812345678")


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    """A SQLite database with the demo community."""
    return community_db(sqlite_url)


def _open(factory: sessionmaker, request: tickets.TicketRequest = LEAK, now: dt.datetime = NOW) -> str:
    return tickets.open_ticket(factory, request, now=now).number


def _ticket(factory: sessionmaker, number: str) -> Ticket:
    with unit_of_work(factory) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        ticket.assignee  # loaded while the session is open
        return ticket


def _events(factory: sessionmaker, number: str) -> List[Tuple[str, Optional[str], Optional[str], Optional[str]]]:
    with unit_of_work(factory) as s:
        t = s.query(Ticket).filter_by(number=number).one()
        return [(e.kind, e.from_status, e.to_status, e.detail) for e in
                s.query(TicketEvent).filter_by(ticket_id=t.id).order_by(TicketEvent.id)]


def _resident_messages(factory: sessionmaker, number: str) -> List[str]:
    with unit_of_work(factory) as s:
        t = s.query(Ticket).filter_by(number=number).one()
        return [n.payload["text"] for n in s.query(Notification).filter_by(ticket_id=t.id, channel="wechat")
                .order_by(Notification.id)]


def test_a_leak_goes_from_accepted_to_resolved_to_rated_with_every_step_recorded(factory) -> None:
    number = _open(factory)
    at = NOW + dt.timedelta(minutes=5)
    lifecycle.perform(factory, "wangjianguo", number, "accept", eta="今晚8点前", now=at)
    lifecycle.perform(factory, "wangjianguo", number, "start", now=at + dt.timedelta(minutes=30))
    lifecycle.perform(factory, "wangjianguo", number, "resolve", note="疏通了下水管，更换了地漏",
                      now=at + dt.timedelta(hours=1))
    lifecycle.resident_action(factory, OPENID, number, "confirm", rating=5, comment="师傅很负责",
                              now=at + dt.timedelta(hours=2))

    t = _ticket(factory, number)
    assert (t.status, t.rating, t.rating_comment, t.resolution) == ("closed", 5, "师傅很负责", "疏通了下水管，更换了地漏")
    assert t.accepted_at == at and t.due_at == at + dt.timedelta(hours=4)
    assert [(k, f, to) for k, f, to, _ in _events(factory, number)] == [
        ("opened", None, "open"), ("notified", None, None), ("accept", "open", "assigned"),
        ("start", "assigned", "in_progress"), ("resolve", "in_progress", "resolved"), ("confirm", "resolved", "closed")]
    told = _resident_messages(factory, number)
    assert len(told) == 2
    assert "王建国" in told[0] and "今晚8点前" in told[0]
    assert "疏通了下水管" in told[1] and "1-5分" in told[1]


def test_a_rest_resident_gets_no_wechat_message_but_sees_the_last_note_on_the_next_status_query(factory) -> None:
    request = tickets.TicketRequest(kind="repair", sender_id="rest:resident-9", description="1号楼消防柜玻璃碎了",
                                    address=Address("吉利花园", 1, None, None), facility="消防柜")
    number = _open(factory, request)
    lifecycle.perform(factory, "zhouming", number, "accept")
    lifecycle.perform(factory, "zhouming", number, "note", note="玻璃已订货，明天上午安装")
    assert _resident_messages(factory, number) == []
    (view,) = tickets.tickets_of(factory, "rest:resident-9")
    assert (view.status, view.handler, view.last_note) == ("assigned", "周明", "玻璃已订货，明天上午安装")


def test_return_and_reassign_need_a_reason_and_tell_the_resident_who_comes_now(factory) -> None:
    number = _open(factory)
    lifecycle.perform(factory, "zhouming", number, "accept")
    with pytest.raises(InvalidInput):
        lifecycle.perform(factory, "zhouming", number, "return", note="  ")
    lifecycle.perform(factory, "zhouming", number, "return", note="我今天在外培训")
    t = _ticket(factory, number)
    assert (t.status, t.assignee_id) == ("open", None)
    lifecycle.perform(factory, "wangjianguo", number, "assign", assignee="zhouming")
    with pytest.raises(InvalidInput):
        lifecycle.perform(factory, "wangjianguo", number, "reassign", assignee="chenjing")
    lifecycle.perform(factory, "wangjianguo", number, "reassign", assignee="chenjing", note="需要物业维修工")
    assert _ticket(factory, number).assignee.key == "chenjing"
    told = _resident_messages(factory, number)
    assert ["周明" in told[0], "重新安排" in told[1], "周明" in told[2], "陈静" in told[3]] == [True] * 4
    with unit_of_work(factory) as s:
        cards = [n.payload["markdown"]["content"] for n in s.query(Notification).filter_by(purpose="returned")]
    assert len(cards) == 1 and "我今天在外培训" in cards[0] and "<@WangJianGuo>" in cards[0]


def test_staff_outside_the_tickets_scope_do_not_see_it_and_members_cannot_assign(factory) -> None:
    number = _open(factory)  # 吉利花园3号楼: grid 1
    for outsider in ("lishufen", "wuxia", "liuyang", "tianye"):
        with pytest.raises(NotFound):
            lifecycle.perform(factory, outsider, number, "accept")
    with pytest.raises(NotAllowed):
        lifecycle.perform(factory, "zhouming", number, "assign", assignee="zhouming")
    with pytest.raises(InvalidInput):  # not a member of this ticket's grid
        lifecycle.perform(factory, "wangjianguo", number, "assign", assignee="wuxia")
    lifecycle.perform(factory, "zhouming", number, "accept")
    with pytest.raises(NotAllowed):  # someone else holds it
        lifecycle.perform(factory, "maguilan", number, "resolve", note="已处理")
    assert _ticket(factory, number).status == "assigned"


def test_a_resident_reopens_within_seven_days_and_not_after(factory) -> None:
    number = _open(factory)
    lifecycle.perform(factory, "zhouming", number, "accept", now=NOW)
    lifecycle.perform(factory, "zhouming", number, "resolve", note="换了水龙头", now=NOW + dt.timedelta(hours=1))
    lifecycle.resident_action(factory, OPENID, number, "reopen", now=NOW + dt.timedelta(days=2))
    t = _ticket(factory, number)
    assert (t.status, t.reopened, t.assignee_id, t.resolved_at) == ("open", 1, None, None)
    lifecycle.perform(factory, "zhouming", number, "accept", now=NOW + dt.timedelta(days=2, hours=1))
    lifecycle.perform(factory, "zhouming", number, "resolve", note="换了阀门", now=NOW + dt.timedelta(days=3))
    with pytest.raises(lc.IllegalTransition):
        lifecycle.resident_action(factory, OPENID, number, "reopen", now=NOW + dt.timedelta(days=11))
    with pytest.raises(NotFound):  # only the resident who opened it
        lifecycle.resident_action(factory, "oWX_someone_else", number, "confirm", rating=1)


def test_resolved_tickets_close_by_themselves_after_72_hours(factory) -> None:
    number = _open(factory)
    lifecycle.perform(factory, "zhouming", number, "accept", now=NOW)
    lifecycle.perform(factory, "zhouming", number, "resolve", note="已修好", now=NOW + dt.timedelta(hours=1))
    assert lifecycle.close_resolved(factory, NOW + dt.timedelta(hours=72)) == []
    assert lifecycle.close_resolved(factory, NOW + dt.timedelta(hours=73)) == [number]
    assert lifecycle.close_resolved(factory, NOW + dt.timedelta(hours=80)) == []
    assert _ticket(factory, number).status == "closed"
    assert _events(factory, number)[-1][:3] == ("close", "resolved", "closed")


def test_the_migration_moves_accepted_tickets_to_assigned(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0002")
    engine = create_engine(url)
    with engine.begin() as conn:
        for i, status in enumerate(["open", "accepted", "cancelled", "resolved"], 1):
            conn.execute(text(
                "INSERT INTO tickets (number, kind, priority, status, sender_id, description, created_at, updated_at)"
                " VALUES (:n, 'leak', 'urgent', :s, 'o1', '漏水', '2026-11-28 10:00:00', '2026-11-28 11:00:00')"),
                {"n": f"HG-20261128-{i:04d}", "s": status})
    migrate(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, accepted_at FROM tickets ORDER BY id")).all()
    engine.dispose()
    assert [r[0] for r in rows] == ["open", "assigned", "cancelled", "resolved"]
    assert rows[1][1] is not None and rows[0][1] is None


# Property-based: the table is the only way between states ------------------------------------------------

ACTORS: Dict[str, str] = {"leader": "wangjianguo", "member": "zhouming", "manager": "chenjing",
                          "duty": "maguilan", "secretary": "gaohong", "resident": OPENID}
ALL_ACTIONS = sorted(lc.TRANSITIONS)


@given(status=st.sampled_from(lc.STATES), action=st.sampled_from(ALL_ACTIONS))
def test_target_of_follows_the_table_and_nothing_leaves_a_cancelled_ticket(status: str, action: str) -> None:
    t = lc.TRANSITIONS[action]
    resolved = NOW - dt.timedelta(days=1)
    try:
        target = lc.target_of(action, status, resolved_at=resolved, now=NOW)
    except lc.IllegalTransition:
        assert status not in t.sources or action == "close"
        return
    assert status in t.sources
    assert target == (t.target or status)
    assert status != "cancelled"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(sorted(ACTORS)), st.sampled_from(ALL_ACTIONS),
                                st.sampled_from(["zhouming", "wangjianguo", "chenjing", "wuxia"])),
                      min_size=1, max_size=12))
def test_any_sequence_of_actions_only_takes_legal_steps_and_records_each_one(tmp_path_factory, steps) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('prop') / 'hg.db'}"
    migrate(url)
    factory = community_db(url)
    number = _open(factory)
    now = NOW
    for who, action, assignee in steps:
        now += dt.timedelta(hours=1)
        before = _ticket(factory, number)
        events_before = len(_events(factory, number))
        key = ACTORS[who]
        role = "resident" if who == "resident" else {"leader": "grid_leader", "member": "grid_member",
                                                     "manager": "property_manager", "duty": "duty",
                                                     "secretary": "secretary"}[who]
        t = lc.TRANSITIONS[action]
        holds = before.assignee is not None and before.assignee.key == key
        try:
            if who == "resident":
                lifecycle.resident_action(factory, OPENID, number, action, rating=4, now=now)
            else:
                lifecycle.perform(factory, key, number, action, note="处理说明", assignee=assignee, now=now)
        except (lc.IllegalTransition, NotAllowed, InvalidInput, NotFound):
            after = _ticket(factory, number)
            assert after.status == before.status and after.assignee_id == before.assignee_id
            assert len(_events(factory, number)) == events_before
            continue
        after = _ticket(factory, number)
        assert before.status in t.sources, f"{action} from {before.status}"
        assert role in t.by and (not t.holder_only or holds or role in lc.LEADS)
        assert after.status == (t.target or before.status)
        kind, frm, to, _ = _events(factory, number)[-1]
        assert (kind, frm, to) == (action, before.status, after.status)
        assert len(_events(factory, number)) == events_before + 1
        if after.status in ("assigned", "in_progress"):
            assert after.assignee_id is not None
        if after.status == "open":
            assert after.assignee_id is None


def test_context_links_point_at_the_console() -> None:
    ctx = Context(link_base="https://console.example.org")
    assert ctx.ticket_link("HG-20261128-0001") == "https://console.example.org/tickets/HG-20261128-0001"


def test_the_cli_takes_the_same_actions_with_the_same_rules(sqlite_url: str, tmp_path: Path, capsys) -> None:
    from bot.cli import main

    factory = community_db(sqlite_url)
    number = _open(factory)
    env = {"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path)}
    import os
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["ticket", "act", number, "accept", "--as", "lishufen"]) == 2  # another grid's leader
        assert "not_found" in capsys.readouterr().err
        assert main(["ticket", "act", number, "accept", "--as", "zhouming"]) == 0
        assert "待受理 → 已派单 (zhouming)" in capsys.readouterr().out
        assert main(["ticket", "act", number, "accept", "--as", "zhouming"]) == 1
        assert "illegal_transition" in capsys.readouterr().err
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert _ticket(factory, number).status == "assigned"
