"""Custom actions against a real database with the demo community loaded."""

from __future__ import annotations

import re

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.community import ActionListClinics, ActionSubmitVolunteer
from actions.conversation import ActionFallback, ActionHandoff
from actions.forms import ActionAskAddress, ActionAskPhone, ValidateLeakForm, ValidateRepairForm, ValidateVolunteerForm
from actions.referral import ActionOutOfScope
from actions.tickets import ActionCancelTicket, ActionCheckTicket, ActionSubmitFeedback, ActionSubmitTicket
from bot import messages
from bot.store.db import unit_of_work
from bot.store.models import Handoff, Notification, Ticket, TicketEvent, VolunteerRegistration
from tests.helpers import tracker, use_deps

LEAK_SLOTS = {"address": "吉利花园3号楼2单元501室", "phone": "13812345678",
              "description": "洗衣机下水管堵了，阳台都是水", "use_profile": None}


@pytest.fixture
def d(database_url, tmp_path):
    yield use_deps(database_url, tmp_path)
    deps.use(None)


def _texts(dispatcher: CollectingDispatcher) -> str:
    return "\n".join(m.get("text") or "" for m in dispatcher.messages)


async def _submit_leak(sender: str = "resident-1", slots=None) -> str:
    dispatcher = CollectingDispatcher()
    await ActionSubmitTicket().run(dispatcher, tracker("", sender=sender, slots=slots or LEAK_SLOTS,
                                                       active_loop="leak_form"), {})
    return _texts(dispatcher)


async def test_leak_opens_urgent_ticket_with_events_and_notifications(d) -> None:
    reply = await _submit_leak()
    with unit_of_work(d.sessions) as s:
        ticket = s.query(Ticket).one()
        assert (ticket.kind, ticket.priority, ticket.status) == ("leak", "urgent", "open")
        assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("吉利花园", 3, 2, 501)
        assert ticket.number == "HG-20261128-0001"
        assert ticket.grid.name == "第一网格"
        assert [e.kind for e in s.query(TicketEvent).order_by(TicketEvent.id)] == ["opened", "notified"]
        notes = {n.purpose + ":" + (n.group.key if n.group else "-"): n for n in s.query(Notification)}
    assert set(notes) == {"new_ticket:jili-property", "new_ticket:grid-1", "pause_water:building-jili-3"}
    card = notes["new_ticket:jili-property"].payload["markdown"]["content"]
    assert "<@WangJianGuo>" in card and "138****5678" in card and "13812345678" not in card
    assert "紧急" in card and "HG-20261128-0001" in card
    assert "HG-20261128-0001" in reply and "王建国" in reply and "暂停用水" in reply


async def test_ticket_numbers_count_up_within_a_day(d) -> None:
    await _submit_leak()
    reply = await _submit_leak(sender="resident-2")
    assert "HG-20261128-0002" in reply


async def test_repair_without_shared_drain_posts_no_water_notice(d) -> None:
    dispatcher = CollectingDispatcher()
    slots = {"address": "吉利花园1号楼", "phone": "13812345678", "description": "1号楼消防柜玻璃碎了",
             "facility": "消防柜"}
    await ActionSubmitTicket().run(dispatcher, tracker("", slots=slots, active_loop="repair_form"), {})
    with unit_of_work(d.sessions) as s:
        ticket = s.query(Ticket).one()
        assert (ticket.kind, ticket.priority, ticket.facility) == ("repair", "normal", "消防柜")
        assert {n.purpose for n in s.query(Notification)} == {"new_ticket"}


async def test_address_in_chinese_numerals_is_normalised(d) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateLeakForm().validate_address("吉利花园三号楼二单元五零一室", dispatcher,
                                                       tracker("吉利花园三号楼二单元五零一室"), {})
    assert result["address"] == "吉利花园3号楼2单元501室"


async def test_address_that_does_not_exist_is_kept_in_parts_and_asked_again_with_the_range(d) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateLeakForm().validate_address("吉利花园15号楼2单元501", dispatcher,
                                                       tracker("吉利花园15号楼2单元501"), {})
    assert result["address"] is None and result["address_parts"]["building"] == 15
    assert dispatcher.messages == []  # the question says what is wrong: one message, not a hint and a question
    await ActionAskAddress().run(dispatcher, tracker("", slots=result, active_loop="leak_form"), {})
    assert len(dispatcher.messages) == 1
    assert "没有15号楼" in _texts(dispatcher) and "12号楼" in _texts(dispatcher)


async def test_leak_address_needs_a_room_but_a_repair_does_not(d) -> None:
    dispatcher = CollectingDispatcher()
    leak = await ValidateLeakForm().validate_address("吉利花园3号楼", dispatcher, tracker("吉利花园3号楼"), {})
    repair = await ValidateRepairForm().validate_address("吉利花园3号楼", dispatcher, tracker("吉利花园3号楼"), {})
    assert leak["address"] is None and repair["address"] == "吉利花园3号楼"


@pytest.mark.parametrize("text", ["12345", "1381234567", "电话是多少", "021-12345678"])
async def test_invalid_phone_is_asked_again_with_a_hint(d, text) -> None:
    dispatcher = CollectingDispatcher()
    result = await ValidateLeakForm().validate_phone(text, dispatcher, tracker(text), {})
    assert result == {"phone": None, "form_misses": 1}
    await ActionAskPhone().run(dispatcher, tracker(text, slots=result, active_loop="leak_form"), {})
    assert len(dispatcher.messages) == 1 and "11位数字" in _texts(dispatcher)


@pytest.mark.parametrize("text,expected", [("139 2000 1234", "13920001234"), ("022-23456789", "022-23456789")])
async def test_mobile_and_tianjin_landline_are_accepted(d, text, expected) -> None:
    result = await ValidateLeakForm().validate_phone(text, CollectingDispatcher(), tracker(text), {})
    assert result == {"phone": expected}


async def test_address_and_phone_in_the_first_message_are_picked_up(d) -> None:
    text = "吉利花园3号楼2单元501卫生间漏水了，电话13812345678"
    t = tracker(text, intent="report_leak", active_loop="leak_form", slots={"requested_slot": None})
    events = await ValidateLeakForm().run(CollectingDispatcher(), t, {"forms": {"leak_form": {
        "required_slots": ["use_profile", "address", "phone"]}}})
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert slots["address"] == "吉利花园3号楼2单元501室" and slots["phone"] == "13812345678"
    assert slots["requested_slot"] is None


async def test_returning_resident_confirms_profile_instead_of_retyping(d) -> None:
    domain = {"forms": {"leak_form": {"required_slots": ["use_profile", "address", "phone"]}}}
    await _submit_leak()
    asked = await ValidateLeakForm().required_slots(
        ["use_profile", "address", "phone"], CollectingDispatcher(),
        tracker("厨房水管漏了", intent="report_leak", active_loop="leak_form"), domain)
    assert asked[0] == "use_profile"
    t = tracker("对", intent="affirm", active_loop="leak_form", slots={"requested_slot": "use_profile"})
    events = await ValidateLeakForm().run(CollectingDispatcher(), t, domain)
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    assert slots["use_profile"] is True and slots["address"] == "吉利花园3号楼2单元501室"
    assert slots["phone"] == "13812345678" and slots.get("requested_slot") is None


async def test_new_resident_is_not_asked_to_confirm_a_profile(d) -> None:
    domain = {"forms": {"leak_form": {"required_slots": ["use_profile", "address", "phone"]}}}
    events = await ValidateLeakForm().run(CollectingDispatcher(), tracker("漏水了", intent="report_leak",
                                                                          active_loop="leak_form"), domain)
    assert {"event": "slot", "name": "requested_slot", "value": "address", "timestamp": None} in events


async def test_question_during_a_form_does_not_fill_the_slot(d) -> None:
    domain = {"forms": {"leak_form": {"required_slots": ["use_profile", "address", "phone"]}}}
    t = tracker("最近有义诊吗", intent="ask_clinic", active_loop="leak_form", slots={"requested_slot": "address"})
    events = await ValidateLeakForm().run(CollectingDispatcher(), t, domain)
    assert not [e for e in events if e.get("name") == "address"]


async def test_resident_sees_only_their_own_tickets(d) -> None:
    await _submit_leak(sender="resident-1")
    mine = CollectingDispatcher()
    await ActionCheckTicket().run(mine, tracker("我的报修怎么样了", intent="check_ticket"), {})
    assert "HG-20261128-0001" in _texts(mine) and "已受理" in _texts(mine)
    other = CollectingDispatcher()
    await ActionCheckTicket().run(other, tracker("查一下HG-20261128-0001", intent="check_ticket",
                                                 sender="resident-2"), {})
    assert "没有查到" in _texts(other) and "吉利花园" not in _texts(other)


async def test_resident_cancels_own_ticket_but_not_someone_elses(d) -> None:
    await _submit_leak(sender="resident-1")
    other = CollectingDispatcher()
    await ActionCancelTicket().run(other, tracker("取消HG-20261128-0001", intent="cancel_ticket",
                                                  sender="resident-2"), {})
    with unit_of_work(d.sessions) as s:
        assert s.query(Ticket).one().status == "open"
    confirm = CollectingDispatcher()
    await ActionCancelTicket().run(confirm, tracker("不用修了", intent="cancel_ticket"), {})
    assert confirm.messages[0]["buttons"][0]["payload"] == '/cancel_ticket{"ticket_id": "HG-20261128-0001"}'
    mine = CollectingDispatcher()
    await ActionCancelTicket().run(mine, tracker("", intent="cancel_ticket",
                                                 slots={"ticket_id": "HG-20261128-0001"}), {})
    assert "已取消" in _texts(mine)
    with unit_of_work(d.sessions) as s:
        assert s.query(Ticket).one().status == "cancelled"
        assert s.query(TicketEvent).filter_by(kind="cancel", to_status="cancelled").count() == 1
        assert s.query(Notification).filter_by(purpose="cancelled").count() == 1


async def test_a_resolved_ticket_shows_its_progress_and_result_but_is_not_offered_for_cancelling(d) -> None:
    from bot.services import lifecycle

    await _submit_leak(sender="resident-1")
    lifecycle.perform(d.sessions, "zhouming", "HG-20261128-0001", "accept")
    lifecycle.perform(d.sessions, "zhouming", "HG-20261128-0001", "resolve", note="换了下水管")
    status = CollectingDispatcher()
    await ActionCheckTicket().run(status, tracker("查进度", intent="check_ticket"), {})
    assert "已办结，待您确认" in _texts(status) and "换了下水管" in _texts(status) and "周明" in _texts(status)
    cancel = CollectingDispatcher()
    await ActionCancelTicket().run(cancel, tracker("不用修了", intent="cancel_ticket"), {})
    assert "没有未办结的工单" in _texts(cancel) and not cancel.messages[0].get("buttons")


async def test_second_signup_for_the_same_team_is_recognised(d) -> None:
    slots = {"team": "黄色邻里互助志愿服务队", "contact_name": "王秀英", "phone": "13612345678"}
    first, second = CollectingDispatcher(), CollectingDispatcher()
    await ActionSubmitVolunteer().run(first, tracker("", slots=slots), {})
    await ActionSubmitVolunteer().run(second, tracker("", slots=slots, sender="other-phone-user"), {})
    assert "报名成功" in _texts(first) and "已经报名过" in _texts(second)
    with unit_of_work(d.sessions) as s:
        assert s.query(VolunteerRegistration).count() == 1
        note = s.query(Notification).filter_by(purpose="volunteer").one()
        assert "<@HeXiaoYu>" in note.payload["markdown"]["content"]
        assert "136****5678" in note.payload["markdown"]["content"]


@pytest.mark.parametrize("text,team", [("2", "黄色邻里互助志愿服务队"), ("紫色的", "紫色巾帼志愿服务队"),
                                       ("红管家服务队", "红管家服务队")])
async def test_team_is_resolved_by_number_colour_or_name(d, text, team) -> None:
    result = await ValidateVolunteerForm().validate_team(text, CollectingDispatcher(), tracker(text), {})
    assert result == {"team": team}


async def test_clinics_are_filtered_by_specialty(d) -> None:
    eye = CollectingDispatcher()
    await ActionListClinics().run(eye, tracker("有没有眼科的义诊", intent="ask_clinic"), {})
    assert "眼科义诊" in _texts(eye) and "口腔" not in _texts(eye)
    bones = CollectingDispatcher()
    await ActionListClinics().run(bones, tracker("有骨科义诊吗", intent="ask_clinic"), {})
    assert "目前没有安排" in _texts(bones)


async def test_no_clinics_scheduled_is_an_honest_answer(d) -> None:
    with unit_of_work(d.sessions) as s:
        from bot.store.models import ClinicEvent

        s.query(ClinicEvent).delete()
    dispatcher = CollectingDispatcher()
    await ActionListClinics().run(dispatcher, tracker("最近有义诊吗", intent="ask_clinic"), {})
    assert "还没有安排义诊" in _texts(dispatcher)


async def test_handoff_tells_duty_staff_and_pauses_the_conversation(d) -> None:
    events = await ActionHandoff().run(CollectingDispatcher(), tracker("转人工", intent="human_handoff"), {})
    assert events == [{"event": "pause", "timestamp": None}]
    with unit_of_work(d.sessions) as s:
        assert s.query(Handoff).filter_by(released_at=None).count() == 1
        note = s.query(Notification).filter_by(purpose="handoff").one()
        assert note.group.key == "office" and "<@MaGuiLan>" in note.payload["markdown"]["content"]


async def test_fallback_offers_options_then_a_person(d) -> None:
    first = CollectingDispatcher()
    ranking = [{"name": "nlu_fallback", "confidence": 0.5}, {"name": "request_repair", "confidence": 0.3},
               {"name": "report_leak", "confidence": 0.2}]
    await ActionFallback().run(first, tracker("那个东西又不行了", intent="nlu_fallback", ranking=ranking), {})
    assert [b["payload"] for b in first.messages[0]["buttons"]][:2] == ["/request_repair", "/report_leak"]
    second = CollectingDispatcher()
    events = [{"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}},
              {"event": "action", "name": "action_fallback"}]
    await ActionFallback().run(second, tracker("就是那个", intent="nlu_fallback", events=events), {})
    assert "转人工" in _texts(second)


async def test_feedback_becomes_a_ticket_for_the_office(d) -> None:
    dispatcher = CollectingDispatcher()
    await ActionSubmitFeedback().run(dispatcher, tracker("建议小区多装几个路灯", intent="give_feedback"), {})
    with unit_of_work(d.sessions) as s:
        ticket = s.query(Ticket).one()
        assert ticket.kind == "feedback"
        assert s.query(Notification).one().group.key == "office"
    assert ticket.number in _texts(dispatcher)


async def test_out_of_scope_says_where_to_go_then_what_the_assistant_does(d) -> None:
    dispatcher = CollectingDispatcher()
    text = "您好，我想问一下今年的个人所得税专项附加扣除在哪里填，单位让我们自己弄"
    events = await ActionOutOfScope().run(dispatcher, tracker(text, intent="out_of_scope"), {})
    assert events == [] and len(dispatcher.messages) == 1
    where, can_do = dispatcher.messages[0]["text"].split("\n")
    assert "12366" in where and "个人所得税" in where
    assert can_do == messages.WHAT_I_CAN_DO
    with unit_of_work(d.sessions) as s:
        assert s.query(Ticket).count() == 0 and s.query(Notification).count() == 0


async def test_out_of_scope_answers_the_latest_message_not_an_earlier_one(d) -> None:
    earlier = [{"event": "user", "text": "公积金怎么提取", "parse_data": {"intent": {"name": "out_of_scope"}}},
               {"event": "action", "name": "action_out_of_scope"}]
    dispatcher = CollectingDispatcher()
    await ActionOutOfScope().run(dispatcher, tracker("给我讲个笑话吧", intent="out_of_scope", events=earlier), {})
    reply = _texts(dispatcher)
    assert "12329" not in reply and not re.search(r"\d{3,}", reply) and messages.WHAT_I_CAN_DO in reply
