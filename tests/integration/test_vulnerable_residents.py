"""A vulnerable resident is flagged on the ticket, the cards and the console; at night a leak reaches the roster;
the neighbourhood-help team hears of it; every reply names exactly who was told."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Dict, List

import pytest
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from actions import deps
from actions.tickets import ActionSubmitFeedback, ActionSubmitTicket
from bot.address import Address
from bot.config import Settings
from bot.services import accounts, residents, routing, tickets
from bot.services.lifecycle import Context
from bot.store.db import migrate, unit_of_work
from bot.store.models import ChatGroup, Notification, Ticket, VolunteerTeam
from tests.console_kit import serve_console
from tests.helpers import community_db, tracker, use_deps

NIGHT = dt.datetime(2026, 11, 28, 15, 30)  # 23:30 in Tianjin
NOON = dt.datetime(2026, 11, 28, 4, 0)
SLOTS = {"address": "吉利花园3号楼2单元501室", "phone": "13812345678", "use_profile": None}
ALONE_AND_LAME = "我一个人住腿脚不好，洗衣机下水管堵了，阳台都是水"


@pytest.fixture
def night(database_url, tmp_path):
    yield use_deps(database_url, tmp_path, now=NIGHT)
    deps.use(None)


@pytest.fixture
def noon(sqlite_url, tmp_path):
    yield use_deps(sqlite_url, tmp_path, now=NOON)
    deps.use(None)


def _texts(dispatcher: CollectingDispatcher) -> str:
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)


async def _submit(form: str, description: str, sender: str = "resident-v", events=None) -> str:
    dispatcher = CollectingDispatcher()
    slots = {**SLOTS, "description": description}
    await ActionSubmitTicket().run(dispatcher, tracker(description, sender=sender, slots=slots, active_loop=form,
                                                       events=events), {})
    return _texts(dispatcher)


def _cards(factory: sessionmaker, number: str) -> Dict[str, List[str]]:
    """purpose:group key -> markdown contents, for one ticket."""
    out: Dict[str, List[str]] = {}
    with unit_of_work(factory) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        for n in s.query(Notification).filter_by(ticket_id=ticket.id).order_by(Notification.id):
            key = f"{n.purpose}:{n.group.key if n.group else '-'}"
            out.setdefault(key, []).append(n.payload["markdown"]["content"])
    return out


def _ticket(factory: sessionmaker, number: str) -> Ticket:
    with unit_of_work(factory) as s:
        ticket = s.query(Ticket).filter_by(number=number).one()
        s.expunge(ticket)
        return ticket


async def test_a_vulnerable_residents_leak_at_night_is_flagged_everywhere_and_the_reply_names_who_was_told(
        night) -> None:
    reply = await _submit("leak_form", ALONE_AND_LAME)
    number = tickets.find_ticket_number(reply)
    ticket = _ticket(night.sessions, number)
    assert ticket.vulnerability == ["alone", "disabled"]
    assert ticket.vulnerability_note == "一个人住、腿脚不好"
    cards = _cards(night.sessions, number)
    assert set(cards) == {"new_ticket:jili-property", "new_ticket:grid-1", "vulnerable_resident:volunteers",
                          "pause_water:building-jili-3", "night_duty:office"}
    for key in ("new_ticket:jili-property", "new_ticket:grid-1", "night_duty:office"):
        assert "⚠ 独居，行动不便" in cards[key][0]
    assert "<@ZhangDeShun>" in cards["night_duty:office"][0]
    assert "独居，行动不便" in cards["vulnerable_resident:volunteers"][0] and number in cards[
        "vulnerable_resident:volunteers"][0]
    for named in ("吉利花园物业管家群", "第一网格工作群", "网格长王建国", "红星社区志愿者群", "值班人员张德顺",
                  "吉利花园3号楼居民群"):
        assert named in reply
    assert "红星社区值班群" not in reply  # the roster is named by person, the office group was not told of the leak


async def test_what_the_resident_said_earlier_in_the_conversation_counts_too(noon) -> None:
    earlier = [{"event": "user", "text": "家里就我一个人，我都八十多岁了"},
               {"event": "bot", "text": "请告诉我您的详细地址"}]
    reply = await _submit("leak_form", "厨房水管漏了", events=earlier)
    ticket = _ticket(noon.sessions, tickets.find_ticket_number(reply))
    assert ticket.vulnerability == ["alone", "elderly"]
    assert "⚠ 独居老人" in _cards(noon.sessions, ticket.number)["new_ticket:jili-property"][0]


async def test_an_earlier_ticket_bounds_what_is_read(noon) -> None:
    before = [{"event": "user", "text": "我一个人住"}, {"event": "action", "name": "action_submit_ticket"},
              {"event": "user", "text": "厨房水管漏了"}]
    reply = await _submit("leak_form", "厨房水管漏了", sender="resident-other", events=before)
    assert _ticket(noon.sessions, tickets.find_ticket_number(reply)).vulnerability == []


async def test_the_profile_carries_the_flag_to_the_next_ticket_until_the_resident_says_otherwise(noon) -> None:
    await _submit("leak_form", ALONE_AND_LAME)
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ("alone", "disabled")
    second = tickets.find_ticket_number(await _submit("repair_form", "楼道灯坏了"))
    ticket = _ticket(noon.sessions, second)
    assert ticket.vulnerability == ["alone", "disabled"] and ticket.vulnerability_note == "居民档案"
    cards = _cards(noon.sessions, second)
    assert "⚠ 独居，行动不便" in cards["new_ticket:jili-property"][0] and "vulnerable_resident:volunteers" in cards
    third = tickets.find_ticket_number(await _submit("leak_form", "我现在不是一个人住了，儿子搬回来了，厕所漏水"))
    assert _ticket(noon.sessions, third).vulnerability == ["disabled"]
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ("disabled",)


async def test_an_ordinary_leak_by_day_tells_no_help_team_and_no_roster(noon) -> None:
    reply = await _submit("leak_form", "洗衣机下水管堵了，阳台都是水")
    cards = _cards(noon.sessions, tickets.find_ticket_number(reply))
    assert set(cards) == {"new_ticket:jili-property", "new_ticket:grid-1", "pause_water:building-jili-3"}
    assert "⚠" not in cards["new_ticket:grid-1"][0]
    assert "志愿者" not in reply and "夜间" not in reply


async def test_a_repair_about_others_flags_the_ticket_but_is_not_remembered_on_the_writers_profile(noon) -> None:
    reply = await _submit("repair_form", "6号楼电梯坏了，楼里的老人下不去楼")
    assert _ticket(noon.sessions, tickets.find_ticket_number(reply)).vulnerability == ["elderly"]
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ()


async def test_a_leak_reported_for_a_neighbour_flags_the_ticket_and_leaves_the_writers_profile_alone(noon) -> None:
    reply = await _submit("leak_form", "替楼上独居的王大爷反映，他腿脚不好，家里水管爆了水漫到楼道")
    number = tickets.find_ticket_number(reply)
    assert _ticket(noon.sessions, number).vulnerability == ["alone", "disabled"]
    assert "vulnerable_resident:volunteers" in _cards(noon.sessions, number)
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ()
    # the writer's own words in a later report still reach their profile
    await _submit("leak_form", "我也是一个人住，我家卫生间也渗水了")
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ("alone",)


async def test_feedback_is_never_flagged_and_names_the_office_group(noon) -> None:
    dispatcher = CollectingDispatcher()
    await ActionSubmitFeedback().run(dispatcher, tracker("建议每个单元都装个扶手，方便老人上楼", intent="give_feedback",
                                                         sender="resident-f"), {})
    reply = _texts(dispatcher)
    ticket = _ticket(noon.sessions, tickets.find_ticket_number(reply))
    assert ticket.vulnerability == [] and "红星社区值班群" in reply
    assert residents.profile(noon.sessions, "resident-f").vulnerability == ()


async def test_a_help_ticket_reply_names_the_help_teams_group_not_the_property_group(noon) -> None:
    with unit_of_work(noon.sessions) as s:  # give the neighbourhood-help team a group of its own
        group = ChatGroup(key="neighbours", name="邻里互助队群", kind="team", webhook_key="demo-neighbours")
        s.add(group)
        s.query(VolunteerTeam).filter_by(number=2).one().group = group
    reply = await _submit("help_form", "帮我买点菜")
    cards = _cards(noon.sessions, tickets.find_ticket_number(reply))
    assert set(cards) == {"new_ticket:neighbours", "new_ticket:grid-1"}
    assert "邻里互助队群" in reply and "第一网格工作群" in reply
    assert "物业管家群" not in reply and "红星社区志愿者群" not in reply


async def test_a_vulnerable_help_request_tells_the_help_team_once(noon) -> None:
    reply = await _submit("help_form", "我坐轮椅，帮我取个药")
    cards = _cards(noon.sessions, tickets.find_ticket_number(reply))
    assert set(cards) == {"new_ticket:volunteers", "new_ticket:grid-1"}
    assert "⚠ 行动不便" in cards["new_ticket:volunteers"][0]


@pytest.mark.parametrize("kind,priority,vulnerable,at,expected", [
    ("leak", "normal", ["alone"], NIGHT, True),  # not urgent, but a vulnerable resident's leak at night
    ("leak", "normal", [], NIGHT, False),
    ("leak", "normal", ["alone"], NOON, False),
    ("repair", "normal", ["elderly"], NIGHT, False),
    ("repair", "urgent", [], NIGHT, True),
])
def test_the_night_roster_hears_of_urgent_tickets_and_vulnerable_residents_leaks_at_night(
        kind, priority, vulnerable, at, expected) -> None:
    ticket = Ticket(kind=kind, priority=priority, vulnerability=vulnerable, created_at=at)
    assert routing.night_for(ticket, Context()) is expected


def test_community_load_marks_only_the_configured_help_team(sqlite_url) -> None:
    factory = community_db(sqlite_url)
    with unit_of_work(factory) as s:
        marked = [t.number for t in s.query(VolunteerTeam).filter(VolunteerTeam.handles_help.is_(True))]
        assert marked == [2] and routing.help_group(s).key == "volunteers"


def test_the_migration_leaves_existing_tickets_residents_and_teams_unflagged(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    migrate(url, "0005")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tickets (number, kind, priority, status, sender_id, description, created_at,"
                          " updated_at, reopened) VALUES ('HG-20261101-0001', 'leak', 'urgent', 'open', 'u', '漏水',"
                          " '2026-11-01 10:00:00', '2026-11-01 10:00:00', 0)"))
        conn.execute(text("INSERT INTO residents (sender_id, created_at, updated_at, reminders_off)"
                          " VALUES ('u', '2026-11-01 10:00:00', '2026-11-01 10:00:00', 0)"))
        conn.execute(text("INSERT INTO volunteer_teams (number, colour, name, short) VALUES (2, '黄色', '邻里互助', '互助')"))
    migrate(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT vulnerability, vulnerability_note FROM tickets")).one() == ("[]", None)
        assert conn.execute(text("SELECT vulnerability FROM residents")).scalar() == "[]"
        assert conn.execute(text("SELECT handles_help FROM volunteer_teams")).scalar() == 0
    engine.dispose()


async def test_the_console_page_and_the_api_show_the_flag(tmp_path: Path, sqlite_url: str, clock) -> None:
    factory = community_db(sqlite_url)
    settings = Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                                  "HG_CONSOLE_SECRET": "test-console-secret-0123456789",
                                  "HG_CONSOLE_BASE_URL": "http://console.test", "HG_RASA_PORT": "9"})
    flagged = tickets.open_ticket(factory, tickets.TicketRequest(
        kind="leak", sender_id="rest:v", description=ALONE_AND_LAME, address=Address("吉利花园", 3, 2, 501),
        contact_phone="13812345678"), now=clock()).number
    plain = tickets.open_ticket(factory, tickets.TicketRequest(
        kind="leak", sender_id="rest:w", description="厨房漏水", address=Address("吉利花园", 3, 2, 502),
        contact_phone="13812345679"), now=clock()).number
    async with serve_console(settings, factory, clock) as console:
        browser = console.browser()
        assert (await browser.login("zhouming")).status == 303
        page = await browser.get(f"/tickets/{flagged}")
        assert page.status == 200
        assert "⚠ 独居，行动不便（一个人住、腿脚不好）" in page.text and "需关照" in page.text
        assert 'id="vulnerability"' not in (await browser.get(f"/tickets/{plain}")).text
        auth = {"Authorization": f"Bearer {accounts.issue_api_token(factory, 'zhouming')}"}
        detail = (await browser.get(f"/api/tickets/{flagged}", headers=auth)).json()
        assert detail["vulnerability"] == ["alone", "disabled"]
        assert detail["vulnerability_label"] == "独居，行动不便"
        assert detail["vulnerability_note"] == "一个人住、腿脚不好"
        other = (await browser.get(f"/api/tickets/{plain}", headers=auth)).json()
        assert (other["vulnerability"], other["vulnerability_label"], other["vulnerability_note"]) == ([], None, None)
        doc = (await browser.get("/api/openapi.json")).json()
        props = doc["components"]["schemas"]["TicketDetail"]["properties"]
        assert props["vulnerability"]["items"]["enum"] == ["alone", "elderly", "disabled", "ill", "pregnant"]


async def test_a_lead_clears_the_profile_flag_with_a_reason_and_the_next_ticket_carries_none(
        noon, tmp_path, sqlite_url, clock) -> None:
    from bot.errors import InvalidInput, InvalidState, NotAllowed

    number = tickets.find_ticket_number(await _submit("leak_form", ALONE_AND_LAME))
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ("alone", "disabled")
    with pytest.raises(NotAllowed):
        residents.clear_vulnerability(noon.sessions, "zhouming", number, "上门看过")  # a grid member
    with pytest.raises(InvalidInput):
        residents.clear_vulnerability(noon.sessions, "wangjianguo", number, "  ")
    settings = Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                                  "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})
    async with serve_console(settings, noon.sessions, clock) as console:
        leader = console.browser()
        assert (await leader.login("wangjianguo")).status == 303
        page = await leader.get(f"/tickets/{number}")
        assert "清除档案标注" in page.text and "独居，行动不便" in page.text
        done = await leader.post(f"/tickets/{number}/profile/clear",
                                 {"csrf_token": page.csrf_token(), "note": "上门核实，女儿已搬来同住"})
        assert done.status == 303
        after = await leader.get(done.location)
        assert "清除档案标注" not in after.text and "居民档案不再标注" in after.text
        assert "需关照" in after.text  # the ticket keeps what was said when it was opened
        member = console.browser()
        assert (await member.login("zhouming")).status == 303
        assert "清除档案标注" not in (await member.get(f"/tickets/{number}")).text
    assert residents.profile(noon.sessions, "resident-v").vulnerability == ()
    with pytest.raises(InvalidState):
        residents.clear_vulnerability(noon.sessions, "wangjianguo", number, "再清一次")
    later = tickets.find_ticket_number(await _submit("leak_form", "洗衣机下水管堵了，阳台都是水"))
    assert _ticket(noon.sessions, later).vulnerability == []
