"""Several communities in one deployment (SQLite and PostgreSQL): each community file loads beside the others,
tickets and handoffs reach their own community's groups and staff, and no staff member sees or touches a row of
another community — only the street office (街道) sees them all."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Dict, List

import pytest
import yaml
from sqlalchemy.orm import sessionmaker

from bot import lifecycle as lc
from bot.address import Address
from bot.config import PROJECT_ROOT
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.services import (announcements, clinic_edits, clinics, community_edits, handoff, queue, scope, stats,
                          tickets, volunteers)
from bot.services.community import load_community, read_communities
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import (ChatGroup, ClinicEvent, Community, Estate, Handoff, Notification, Staff, Ticket,
                              VolunteerTeam)

NIGHT = dt.datetime(2026, 11, 28, 15, 0)  # 23:00 in Tianjin
TODAY = NIGHT.date()

# A second community of the same street office, in its own file beside community.yml. Its volunteer teams are
# numbered from 1 and one has the same name as a team of the demo community: numbers and names are per community.
LANXING = {
    "community": {"key": "lanxing", "name": "蓝星社区", "office_phone": "022-23450000"},
    "estates": [{"name": "蓝湾花园", "aliases": ["蓝湾"], "property_managed": True, "buildings": {"from": 1, "to": 4},
                 "units": 2, "floors": 6, "rooms_per_floor": 2}],
    "groups": [{"key": "lx-office", "name": "蓝星社区值班群", "kind": "office", "webhook_key": "demo-lx-office"},
               {"key": "lx-property", "name": "蓝湾花园物业群", "kind": "property", "webhook_key": "demo-lx-prop"},
               {"key": "lx-grid-1", "name": "蓝星第一网格群", "kind": "grid", "webhook_key": "demo-lx-grid-1"},
               {"key": "lx-volunteers", "name": "蓝星志愿者群", "kind": "team", "webhook_key": "demo-lx-vol"}],
    "staff": [{"key": "lx-leader", "name": "钱进", "role": "grid_leader", "wecom_userid": "QianJin"},
              {"key": "lx-duty", "name": "冯梅", "role": "duty", "wecom_userid": "FengMei", "on_duty": True},
              {"key": "lx-night", "name": "褚亮", "role": "duty", "wecom_userid": "ChuLiang"},
              {"key": "lx-pm", "name": "卫东", "role": "property_manager", "estates": ["蓝湾花园"]},
              {"key": "lx-secretary", "name": "蒋华", "role": "secretary"},
              {"key": "lx-admin", "name": "蓝星管理员", "role": "admin"},
              {"key": "lx-lead", "name": "沈悦", "role": "team_lead"},
              {"key": "street", "name": "街道主任", "role": "street"}],
    "grids": [{"key": "lx-grid-1", "name": "蓝星第一网格", "leader": "lx-leader", "members": [], "group": "lx-grid-1",
               "property_group": "lx-property", "estate": "蓝湾花园", "buildings": {"from": 1, "to": 4}}],
    "volunteer_teams": [{"number": 1, "colour": "红色", "name": "蓝星红管家服务队", "short": "红管家", "lead": "lx-lead",
                         "group": "lx-volunteers"},
                        {"number": 2, "colour": "黄色", "name": "黄色邻里互助志愿服务队", "short": "邻里互助",
                         "lead": "lx-lead", "group": "lx-volunteers"}],
    "duty_roster": [{"staff": "lx-night", "weekdays": [1, 2, 3, 4, 5, 6, 7], "from": "22:00", "to": "07:00"}],
    "help_team": 2,
    "office_group": "lx-office",
    "clinic_events": [{"title": "蓝星社区血压义诊", "days_from_now": 2, "start": "09:00", "end": "11:00",
                       "place": "蓝星社区活动室", "specialties": ["内科"]}],
}
DEMO = "default"


def _folder(tmp_path: Path, second: Dict) -> Path:
    folder = tmp_path / "communities"
    folder.mkdir()
    shutil.copy(PROJECT_ROOT / "data" / "community" / "community.yml", folder / "community.yml")
    (folder / "lanxing.yml").write_text(yaml.safe_dump(second, allow_unicode=True), encoding="utf-8")
    return folder


def _load(factory: sessionmaker, folder: Path) -> List[Dict[str, int]]:
    with unit_of_work(factory) as session:
        return [load_community(session, data, TODAY) for data in read_communities(folder)]


@pytest.fixture
def factory(database_url: str, tmp_path: Path) -> sessionmaker:
    """The demo community and 蓝星社区 in the parametrised database."""
    made = make_session_factory(make_engine(database_url))
    _load(made, _folder(tmp_path, LANXING))
    return made


def _open(factory: sessionmaker, estate: str, building: int, sender: str, kind: str = "leak",
          at: dt.datetime = NIGHT) -> str:
    request = tickets.TicketRequest(kind=kind, sender_id=sender, description="卫生间漏水，往楼下渗",
                                    address=Address(estate, building, 1, 101))
    return tickets.open_ticket(factory, request, now=at).number


def _groups_told(factory: sessionmaker, **filters) -> Dict[str, str]:
    """Notification group name -> that group's community, for the notifications matching `filters`."""
    with unit_of_work(factory) as session:
        rows = session.query(Notification).filter_by(**filters).filter(Notification.group_id.isnot(None)).all()
        return {n.group.name: n.group.community_key for n in rows}


def test_both_files_load_side_by_side_with_their_own_keys_and_team_numbers(factory, tmp_path) -> None:
    with unit_of_work(factory) as session:
        assert {c.key: c.name for c in session.query(Community)} == {DEMO: "红星社区", "lanxing": "蓝星社区"}
        estates = {e.name: e.community_key for e in session.query(Estate)}
        assert estates["蓝湾花园"] == "lanxing" and estates["吉利花园"] == DEMO
        teams = {(t.community_key, t.number): t.name for t in session.query(VolunteerTeam)}
        assert teams[("lanxing", 2)] == teams[(DEMO, 2)] == "黄色邻里互助志愿服务队"
        assert teams[("lanxing", 1)] == "蓝星红管家服务队" and teams[(DEMO, 1)] != teams[("lanxing", 1)]
        assert {s.key: s.community_key for s in session.query(Staff)}["lx-admin"] == "lanxing"
        counts = {k: session.query(m).count() for k, m in [("staff", Staff), ("groups", ChatGroup),
                                                            ("clinics", ClinicEvent)]}
    _load(factory, tmp_path / "communities")  # loading again changes nothing
    with unit_of_work(factory) as session:
        assert counts == {k: session.query(m).count() for k, m in [("staff", Staff), ("groups", ChatGroup),
                                                                    ("clinics", ClinicEvent)]}


@pytest.mark.parametrize("change, field", [
    (lambda d: d["staff"].append({"key": "admin", "name": "冒名", "role": "admin"}), None),  # the demo's admin
    (lambda d: d["groups"].append({"key": "office", "name": "冒名群", "kind": "office"}), None),
    (lambda d: d["community"].pop("key"), "community.key"),  # a second file without a key: two "default"s
    (lambda d: d["community"].update(key="Lan Xing"), "community.key"),
    (lambda d: d["grids"][0].update(estate="吉利花园"), None),  # a grid over another community's estate
])
def test_a_file_that_reaches_into_another_community_is_refused_and_nothing_is_written(
        database_url: str, tmp_path: Path, change, field) -> None:
    second = yaml.safe_load(yaml.safe_dump(LANXING, allow_unicode=True))
    change(second)
    made = make_session_factory(make_engine(database_url))
    with pytest.raises(InvalidInput) as refused:
        _load(made, _folder(tmp_path, second))
    if field is not None:
        assert refused.value.field == field
    with unit_of_work(made) as session:
        assert session.query(Staff).count() == 0 and session.query(Estate).count() == 0  # all files or none


def test_a_ticket_goes_to_its_own_communitys_groups_and_night_duty(factory) -> None:
    lx = _open(factory, "蓝湾花园", 2, "oLX_resident")
    demo = _open(factory, "吉利花园", 3, "oDEMO_resident")
    with unit_of_work(factory) as session:
        by_number = {t.number: t for t in session.query(Ticket)}
        assert (by_number[lx].community_key, by_number[demo].community_key) == ("lanxing", DEMO)
        lx_id = by_number[lx].id
        demo_id = by_number[demo].id
        lx_cards = " ".join(str(n.payload) for n in session.query(Notification).filter_by(ticket_id=lx_id))
    told_lx, told_demo = _groups_told(factory, ticket_id=lx_id), _groups_told(factory, ticket_id=demo_id)
    assert told_lx and set(told_lx.values()) == {"lanxing"}, told_lx
    assert "蓝星社区值班群" in told_lx  # the leak at night reaches the night roster through its office group
    assert told_demo and set(told_demo.values()) == {DEMO}, told_demo
    assert "<@ChuLiang>" in lx_cards and "<@QianJin>" in lx_cards  # its night roster and grid leader
    assert "<@ZhangDeShun>" not in lx_cards and "<@WangJianGuo>" not in lx_cards  # not the demo community's


def test_a_handoff_reaches_its_communitys_office_and_only_its_duty_staff_see_it(factory) -> None:
    _open(factory, "蓝湾花园", 1, "oLX_handoff", kind="repair", at=NIGHT - dt.timedelta(hours=10))
    assert handoff.start(factory, "oLX_handoff", "转人工")
    assert handoff.start(factory, "oNEW_resident", "转人工")  # never gave an address: the first community's
    with unit_of_work(factory) as session:
        rows = {h.sender_id: h for h in session.query(Handoff)}
        assert (rows["oLX_handoff"].community_key, rows["oNEW_resident"].community_key) == ("lanxing", DEMO)
        lx_id = rows["oLX_handoff"].id
    assert set(_groups_told(factory, purpose="handoff").items()) == {("蓝星社区值班群", "lanxing"),
                                                                     ("红星社区值班群", DEMO)}
    assert [w.sender_id for w in handoff.waiting(factory, "lx-duty")] == ["oLX_handoff"]
    assert [w.sender_id for w in handoff.waiting(factory, "maguilan")] == ["oNEW_resident"]
    assert len(handoff.waiting(factory, "street")) == 2
    for call in (lambda: handoff.detail(factory, "maguilan", lx_id),
                 lambda: handoff.reply(factory, lx_id, "admin", "您好", NIGHT),
                 lambda: handoff.hand_back(factory, lx_id, "gaohong")):
        with pytest.raises(NotFound):
            call()
    assert handoff.detail(factory, "lx-secretary", lx_id).handoff.sender_id == "oLX_handoff"


def test_no_staff_member_sees_or_acts_on_a_ticket_of_another_community(factory) -> None:
    numbers = {"lanxing": [_open(factory, "蓝湾花园", b, f"oLX_{b}") for b in (1, 3)],
               DEMO: [_open(factory, e, b, f"oD_{e}{b}") for e, b in (("吉利花园", 2), ("金穗园", 5), ("和顺里", 1))]}
    with unit_of_work(factory) as session:
        staff = [(s.key, s.role, s.community_key) for s in session.query(Staff).filter(Staff.active.is_(True))]
    assert any(role == lc.STREET for _, role, _ in staff)
    for key, role, home in staff:
        listed = {r.number for r in queue.queue(factory, key, queue.QueueFilter(), NIGHT).rows}
        rows = stats.ticket_stats(factory, since=TODAY, until=TODAY, by="community", staff=key)
        for community, own in numbers.items():
            for number in own:
                mine = role == lc.STREET or community == home
                if not mine:
                    assert number not in listed, (key, number)
                    with pytest.raises(NotFound):
                        queue.detail(factory, key, number, NIGHT)
                    with pytest.raises(NotFound):
                        tickets_lifecycle_accept(factory, key, number)
                elif role in scope.EVERYTHING:
                    assert number in listed, (key, number)
                    assert queue.detail(factory, key, number, NIGHT).row.number == number
        groups = {r.group for r in rows}
        if role == lc.STREET:
            assert groups == {"红星社区", "蓝星社区"}
        elif role in scope.EVERYTHING:
            assert groups == {"红星社区" if home == DEMO else "蓝星社区"}
        else:
            assert groups <= {"红星社区" if home == DEMO else "蓝星社区"}
    with unit_of_work(factory) as session:
        lx_ticket = session.query(Ticket).filter_by(number=numbers["lanxing"][0]).one()
        assert {s.key for s in scope.assignable(session, lx_ticket)} == {"lx-leader", "lx-pm"}


def tickets_lifecycle_accept(factory: sessionmaker, key: str, number: str) -> None:
    from bot.services import lifecycle

    lifecycle.perform(factory, key, number, "accept", now=NIGHT)


def test_residents_are_offered_their_own_communitys_teams_and_clinics(factory) -> None:
    _open(factory, "蓝湾花园", 4, "oLX_volunteer", kind="repair")
    lx_teams = volunteers.team_values(factory, volunteers.home_of(factory, "oLX_volunteer"))
    assert [t.name for t in lx_teams] == ["蓝星红管家服务队", "黄色邻里互助志愿服务队"]
    assert len(volunteers.team_values(factory, volunteers.home_of(factory, "oSomeone_new"))) == 7
    result = volunteers.sign_up(factory, "oLX_volunteer", "周阿姨", "13612345678", 1)
    assert result.team_name == "蓝星红管家服务队" and result.lead_name == "沈悦"
    assert set(_groups_told(factory, purpose="volunteer").items()) == {("蓝星志愿者群", "lanxing")}
    assert [c.title for c in clinics.upcoming(factory, TODAY, sender_id="oLX_volunteer")] == ["蓝星社区血压义诊"]
    assert "蓝星社区血压义诊" not in [c.title for c in clinics.upcoming(factory, TODAY, sender_id="oSomeone_new")]
    lx_csv = volunteers.signups_csv(factory, "lx-admin")
    assert "周阿姨" in lx_csv and "周阿姨" not in volunteers.signups_csv(factory, "admin")
    assert [t["name"] for t in volunteers.roster(factory, "lx-secretary")] == [t.name for t in lx_teams]


def test_admin_pages_show_and_edit_only_their_own_community(factory) -> None:
    model = community_edits.community_model(factory, "lx-admin")
    assert {s["key"] for s in model["staff"]} >= {"lx-admin", "lx-duty"} and "admin" not in {
        s["key"] for s in model["staff"]}
    assert model["estates"] == ["蓝湾花园"]
    assert [e["name"] for e in community_edits.layout_model(factory, "lx-admin")["estates"]] == ["蓝湾花园"]
    assert len(community_edits.layout_model(factory, "street")["estates"]) == 4
    with pytest.raises(NotFound):
        community_edits.update_staff(factory, "lx-admin", "maguilan", on_duty=False)
    with pytest.raises(NotFound):
        community_edits.update_group(factory, "lx-admin", "office", name="改名")
    with pytest.raises(NotFound):
        community_edits.add_building(factory, "lx-admin", "吉利花园", 20)
    with pytest.raises(NotFound):
        community_edits.add_shift(factory, "lx-admin", "laozhang", [1], "22:00", "07:00")
    with pytest.raises(NotAllowed):
        community_edits.update_staff(factory, "lx-admin", "lx-secretary", role=lc.STREET)
    with pytest.raises(InvalidInput):
        community_edits.add_building(factory, "street", "蓝湾花园", 9, "grid-1")  # a grid of the other community
    with pytest.raises(InvalidInput):  # nor a property manager to another community's estate
        community_edits.update_staff(factory, "street", "lx-pm", estates=["蓝湾花园", "吉利花园"])
    assert community_edits.update_staff(factory, "street", "lx-pm", estates=["蓝湾花园"])["estates"] == ["蓝湾花园"]
    community_edits.update_staff(factory, "lx-admin", "lx-duty", on_duty=False)
    assert [e.actor for e in community_edits.history(factory, "lx-admin")] == ["lx-admin"]
    assert community_edits.history(factory, "admin") == []

    with pytest.raises(InvalidInput):
        announcements.create(factory, "lx-admin", kind="water_stop", title="停水通知", body="明天停水",
                             audience=[{"estate": "吉利花园", "buildings": []}])
    assert [e["name"] for e in announcements.audience_choices(factory, "lx-secretary")] == ["蓝湾花园"]
    made = announcements.create(factory, "lx-admin", kind="water_stop", title="停水通知", body="明天停水",
                                audience=[{"estate": "蓝湾花园", "buildings": []}])
    assert [a.id for a in announcements.overview(factory, "lx-secretary")] == [made]
    assert announcements.overview(factory, "gaohong") == []
    with pytest.raises(NotFound):
        announcements.send(factory, "gaohong", made)

    demo_clinics = {c["title"] for c in clinic_edits.listing(factory, "admin", TODAY)}
    lx_clinics = clinic_edits.listing(factory, "lx-admin", TODAY)
    assert [c["title"] for c in lx_clinics] == ["蓝星社区血压义诊"] and "蓝星社区血压义诊" not in demo_clinics
    with pytest.raises(NotFound):
        clinic_edits.cancel(factory, "admin", lx_clinics[0]["id"])
    added = clinic_edits.create(factory, "lx-admin", {"title": "蓝星口腔义诊", "date": "2026-12-10", "start": "09:00",
                                                      "end": "11:00", "place": "蓝星社区活动室"})
    with unit_of_work(factory) as session:
        assert session.get(ClinicEvent, added["id"]).community_key == "lanxing"


async def test_responses_name_the_residents_own_community_its_phone_and_hours(factory: sessionmaker) -> None:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.nlg import CommunityNLG, OfficeTexts
    from bot.services import residents
    from bot.services.community import shipped_office_texts

    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    clock = {"now": 0.0}
    texts = OfficeTexts(lambda: factory, lambda: shipped_office_texts(PROJECT_ROOT / "data" / "community"),
                        clock=lambda: clock["now"])
    nlg = CommunityNLG(domain=domain, texts=texts)
    with unit_of_work(factory) as session:
        residents.remember(session, "rest:lx-resident", address=Address("蓝湾花园", 2, 1, 101))

    async def say(action: str, sender: str) -> str:
        response = await nlg.generate(action, DialogueStateTracker(sender, domain.slots), "rest")
        return response["text"]

    assert "我是蓝星社区的" in await say("utter_greet", "rest:lx-resident")
    assert "我是红星社区的" in await say("utter_greet", "rest:newcomer")  # no address yet: the first community
    hours = await say("utter_faq/office_hours", "rest:lx-resident")
    # 蓝星社区 gives its own phone and no hours: the first community's office hours stand in
    assert hours.startswith("蓝星社区办公时间：周一至周五 8:30-17:30") and "022-23450000" in hours
    assert "022-23456789" in await say("utter_faq/office_hours", "rest:newcomer")
    placeholders = ("{community_name}", "{office_phone}", "{office_hours}", "{property_contacts}")
    named = [name for name, variants in domain.responses.items()
             if any(p in (v.get("text") or "") for v in variants for p in placeholders)]
    assert len(named) >= 5, named
    for name in named:
        text = await say(name, "rest:lx-resident")
        assert not any(p in text for p in placeholders) and "红星社区" not in text, (name, text)

    # a resident who gives an address in the other community is named by it once the kept answer is stale
    with unit_of_work(factory) as session:
        residents.remember(session, "rest:newcomer", address=Address("蓝湾花园", 3, 1, 101))
    assert "我是红星社区的" in await say("utter_greet", "rest:newcomer")
    clock["now"] += 61
    assert "我是蓝星社区的" in await say("utter_greet", "rest:newcomer")


async def test_the_property_phone_answer_gives_the_residents_own_communitys_contacts_only(
        factory: sessionmaker, tmp_path: Path) -> None:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.nlg import CommunityNLG, OfficeTexts
    from bot.services import residents
    from bot.services.community import shipped_office_texts

    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    nlg = CommunityNLG(domain=domain, texts=OfficeTexts(
        lambda: factory, lambda: shipped_office_texts(PROJECT_ROOT / "data" / "community")))
    with unit_of_work(factory) as session:
        residents.remember(session, "rest:lx-resident", address=Address("蓝湾花园", 2, 1, 101))

    async def ask(sender: str) -> str:
        response = await nlg.generate("utter_faq/property_phone", DialogueStateTracker(sender, domain.slots), "rest")
        return response["text"]

    demo = await ask("rest:newcomer")
    assert demo.startswith("各小区物业联系方式：\n· 吉利花园物业服务中心：022-23451188") and "和顺里" in demo
    # 蓝星社区's file gives no property contacts: its office, never 红星社区's estates
    lanxing = await ask("rest:lx-resident")
    assert "022-23450000" in lanxing and "蓝星社区办公室" in lanxing
    assert not any(word in lanxing for word in ("吉利花园", "金穗园", "和顺里", "022-2345118"))

    # once its file names its estate's property office, that is the answer (after the texts are fresh again)
    second = {**LANXING, "community": {**LANXING["community"],
                                       "property_contacts": ["蓝湾花园物业服务中心：022-23450099（南门，每天 8:00-18:00）"]}}
    (tmp_path / "again").mkdir()
    _load(factory, _folder(tmp_path / "again", second))
    fresh = CommunityNLG(domain=domain, texts=OfficeTexts(lambda: factory, lambda: {}))
    response = await fresh.generate("utter_faq/property_phone", DialogueStateTracker("rest:lx-resident", domain.slots),
                                    "rest")
    assert response["text"].startswith("各小区物业联系方式：\n· 蓝湾花园物业服务中心：022-23450099")
    assert "吉利花园" not in response["text"]


@pytest.mark.parametrize("contacts", ["吉利花园物业：022-1", [""], [{"phone": "022-1"}], ["ok", 3]])
def test_property_contacts_that_are_not_a_list_of_lines_are_refused_at_load(tmp_path: Path, contacts) -> None:
    second = {**LANXING, "community": {**LANXING["community"], "property_contacts": contacts}}
    with pytest.raises(InvalidInput, match="property_contacts"):
        read_communities(_folder(tmp_path, second))


async def test_without_a_readable_database_the_community_files_texts_are_used(tmp_path: Path) -> None:
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.nlg import CommunityNLG, OfficeTexts
    from bot.services.community import shipped_office_texts

    broken = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}"))
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    nlg = CommunityNLG(domain=domain, texts=OfficeTexts(
        lambda: broken, lambda: shipped_office_texts(PROJECT_ROOT / "data" / "community")))
    response = await nlg.generate("utter_faq/office_hours", DialogueStateTracker("rest:x", domain.slots), "rest")
    assert response["text"].startswith("红星社区办公时间：周一至周五 8:30-17:30") and "022-23456789" in response["text"]


def test_rasa_builds_the_community_response_generator_from_endpoints_yml(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    from rasa.core.nlg import NaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import read_endpoint_config

    from bot.nlg import CommunityNLG

    for name in ("HG_ACTION_ENDPOINT_URL", "HG_TRACKER_DIALECT", "HG_TRACKER_URL", "HG_TRACKER_DB"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("HG_VAR_DIR", str(tmp_path))
    domain = Domain.load(str(PROJECT_ROOT / "domain.yml"))
    nlg = NaturalLanguageGenerator.create(read_endpoint_config(str(PROJECT_ROOT / "endpoints.yml"), "nlg"), domain)
    assert type(nlg) is CommunityNLG and nlg.responses == domain.responses


@pytest.mark.parametrize("text, reason", [
    ("community: {key: lanxing\nestates: [\n", "not valid YAML at line 2"),
    ("- 蓝湾花园\n- 1号楼\n", "must be a mapping"),
    ("community: {key: lanxing}\nestates: 蓝湾花园\n", "'estates' must be a list"),
    (None, "not UTF-8"),
])
def test_the_cli_names_a_broken_file_and_loads_none_of_the_folder(database_url: str, tmp_path: Path, capsys,
                                                                   text, reason) -> None:
    import argparse

    from bot.cli import cmd_load_community
    from bot.config import Settings

    folder = _folder(tmp_path, LANXING)
    broken = folder / "lanxing.yml"
    broken.write_bytes(text.encode("utf-8") if text is not None else "community:\n  name: 蓝星".encode("gbk"))
    settings = Settings.from_env({"DATABASE_URL": database_url, "HG_VAR_DIR": str(tmp_path)},
                                 env_file=tmp_path / "none")
    assert cmd_load_community(settings, argparse.Namespace(dir=str(folder), if_changed=False)) == 2
    said = capsys.readouterr().err
    assert "lanxing.yml" in said and reason in said and "Traceback" not in said
    with unit_of_work(make_session_factory(make_engine(database_url))) as session:
        assert session.query(Staff).count() == session.query(Estate).count() == 0  # not even community.yml's
