"""The ticket forms turn by turn: the validators and the questions, as Rasa's form loop runs them."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa_sdk import Action
from rasa_sdk.executor import CollectingDispatcher

from actions import deps
from actions.community import ActionSubmitVolunteer
from actions.forms import (ActionAskAddress, ActionAskContactName, ActionAskPhone, ActionAskTeam,
                           ActionAskUseProfile, ValidateHelpForm, ValidateLeakForm, ValidateRepairForm,
                           ValidateVolunteerForm)
from actions.tickets import ActionSubmitTicket
from bot import messages
from bot.store.db import unit_of_work
from bot.store.models import Handoff, Ticket
from tests.helpers import tracker, use_deps

DOMAIN = {"forms": {
    "leak_form": {"required_slots": ["use_profile", "address", "phone"]},
    "repair_form": {"required_slots": ["use_profile", "address", "phone"]},
    "help_form": {"required_slots": ["use_profile", "address", "phone"]},
    "volunteer_form": {"required_slots": ["team", "use_profile", "contact_name", "phone"]},
}}
VALIDATORS = {"leak_form": ValidateLeakForm, "repair_form": ValidateRepairForm, "help_form": ValidateHelpForm,
              "volunteer_form": ValidateVolunteerForm}
ASK: Dict[str, Action] = {"use_profile": ActionAskUseProfile(), "address": ActionAskAddress(),
                          "phone": ActionAskPhone(), "team": ActionAskTeam(), "contact_name": ActionAskContactName()}


@pytest.fixture
def d(database_url, tmp_path):
    yield use_deps(database_url, tmp_path)
    deps.use(None)


class Conversation:
    """One resident inside a form: each `say` runs the validator, then asks for the next slot (as FormAction does)."""

    def __init__(self, form: str, sender: str = "resident-1") -> None:
        self.form, self.sender = form, sender
        self.slots: Dict[str, Any] = {"requested_slot": None}
        self.active = True
        self.paused = False
        self.rejected = False
        self.replies: List[Dict[str, Any]] = []

    async def say(self, text: str, intent: str = "inform") -> str:
        """The text of the assistant's reply (every message of it)."""
        assert self.active, "the form has ended"
        if intent in ("report_leak", "request_repair", "request_help") and not self.slots.get("description"):
            self.slots["description"] = text  # the from_text mapping in domain.yml
        validator = VALIDATORS[self.form]()
        dispatcher = CollectingDispatcher()
        t = tracker(text, intent=intent, sender=self.sender, slots=dict(self.slots), active_loop=self.form)
        events = await validator.run(dispatcher, t, DOMAIN)
        slot_events = [e for e in events if e.get("event") == "slot"]
        # Rasa rejects the form when a slot was asked for and nothing was set (a rule answers instead).
        self.rejected = self.slots.get("requested_slot") is not None and not [
            e for e in slot_events if e["name"] != "requested_slot"]
        for event in slot_events:
            self.slots[event["name"]] = event["value"]
        self.paused = any(e.get("event") == "pause" for e in events)
        if self.paused or any(e.get("event") == "active_loop" and e.get("name") is None for e in events):
            self.active = False
        elif not self.rejected:
            required = await validator.required_slots(DOMAIN["forms"][self.form]["required_slots"], dispatcher,
                                                      tracker(text, intent=intent, sender=self.sender,
                                                              slots=dict(self.slots), active_loop=self.form), DOMAIN)
            self.slots["requested_slot"] = next((s for s in required if self.slots.get(s) is None), None)
            if self.slots["requested_slot"] is None:
                self.active = False
            else:
                await ASK[self.slots["requested_slot"]].run(
                    dispatcher, tracker(text, intent=intent, sender=self.sender, slots=dict(self.slots),
                                        active_loop=self.form), DOMAIN)
        self.replies = dispatcher.messages
        return "\n".join(m.get("text") or "" for m in dispatcher.messages)

    @property
    def buttons(self) -> List[str]:
        """The payloads of the buttons in the last reply."""
        return [b["payload"] for m in self.replies for b in (m.get("buttons") or [])]

    async def submit(self) -> str:
        """Open the ticket the way action_submit_ticket does when the form ends."""
        assert not self.active and self.slots.get("requested_slot") is None
        dispatcher = CollectingDispatcher()
        await ActionSubmitTicket().run(dispatcher, tracker("", sender=self.sender, slots=self.slots,
                                                           active_loop=self.form), {})
        return "\n".join(m.get("text") or "" for m in dispatcher.messages)


def _ticket(d, number_in: str) -> Ticket:
    with unit_of_work(d.sessions) as s:
        ticket = s.query(Ticket).order_by(Ticket.id.desc()).first()
        assert ticket is not None and ticket.number in number_in
        s.expunge(ticket)
        return ticket


async def _returning_resident(d, sender: str = "resident-1") -> None:
    """A resident whose profile holds 吉利花园3号楼2单元501室 and 13812345678."""
    c = Conversation("leak_form", sender)
    await c.say("吉利花园3号楼2单元501室卫生间漏水了，电话13812345678", intent="report_leak")
    await c.submit()


async def test_an_address_given_in_pieces_is_asked_only_for_what_is_missing(d) -> None:
    c = Conversation("leak_form")
    assert messages.ASK_ADDRESS == await c.say("家里漏水了", intent="report_leak")
    assert await c.say("吉利花园") == "吉利花园，几号楼几单元几号？" and len(c.replies) == 1
    assert await c.say("5号楼") == "吉利花园5号楼，几单元几号？" and len(c.replies) == 1
    asked = await c.say("2单元301")
    assert "吉利花园5号楼2单元301室" in asked and "电话" in asked and len(c.replies) == 1
    receipt = await c.say("13812345678")
    assert receipt == "" and not c.active
    ticket = _ticket(d, await c.submit())
    assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("吉利花园", 5, 2, 301)


async def test_bare_numbers_answer_the_part_that_was_asked_for(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    await c.say("金穗园")
    assert await c.say("2") == "金穗园2号楼，几单元几号？"
    assert await c.say("1单元") == "金穗园2号楼1单元，门牌号是多少？"
    assert "金穗园2号楼1单元1503室" in await c.say("1503")


async def test_an_estate_alone_is_never_answered_with_a_list_of_estates(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    reply = await c.say("吉利花园")
    assert "都有" not in reply and "和顺里" not in reply and "金穗园" not in reply


async def test_a_building_in_several_estates_asks_which_estate_by_name(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    assert await c.say("5号楼") == "5号楼在吉利花园、和顺里、金穗园都有，请问是哪个小区？"
    assert c.buttons == ["吉利花园", "和顺里", "金穗园"] and len(c.replies) == 1
    assert await c.say("和顺里") == "和顺里5号楼，几单元几号？"


async def test_a_building_only_one_estate_has_fills_in_the_estate(d) -> None:
    c = Conversation("repair_form")
    await c.say("楼道灯坏了", intent="request_repair")
    assert "吉利花园10号楼" in await c.say("10号楼")
    assert c.slots["address"] == "吉利花园10号楼"


@pytest.mark.parametrize("correction", ["不对，是4号楼", "是4号楼不是3号楼", "不是3号楼，是4号楼", "错了，4号楼"])
async def test_a_correction_while_collecting_replaces_only_the_corrected_part(d, correction) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    assert await c.say("吉利花园3号楼") == "吉利花园3号楼，几单元几号？"
    assert await c.say(correction, intent="deny") == "吉利花园4号楼，几单元几号？"


async def test_a_correction_of_the_unit_keeps_estate_building_and_room(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    assert await c.say("吉利花园3号楼2单元") == "吉利花园3号楼2单元，门牌号是多少？"
    assert await c.say("不是2单元，是1单元") == "吉利花园3号楼1单元，门牌号是多少？"
    assert "吉利花园3号楼1单元501室" in await c.say("501")
    assert "吉利花园3号楼1单元502室" in await c.say("错了，502")
    assert c.slots["address"] == "吉利花园3号楼1单元502室"


@pytest.mark.parametrize("correction", ["不对，是4号楼", "是4号楼不是3号楼", "不是3号楼，是4号楼"])
async def test_a_correction_right_after_the_address_reaches_the_ticket(d, correction) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    asked = await c.say("吉利花园3号楼2单元501")
    assert "吉利花园3号楼2单元501室" in asked and "电话" in asked
    again = await c.say(correction, intent="deny")
    assert "吉利花园4号楼2单元501室" in again and "电话" in again
    assert messages.INVALID_PHONE not in again and len(c.replies) == 1
    await c.say("13812345678")
    ticket = _ticket(d, await c.submit())
    assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("吉利花园", 4, 2, 501)


async def test_a_correction_to_the_stored_profile_keeps_the_rest_of_it(d) -> None:
    await _returning_resident(d)
    c = Conversation("leak_form")
    offered = await c.say("厨房水管漏了", intent="report_leak")
    assert "这次还用这些信息吗" in offered and "吉利花园3号楼2单元501室" in offered
    await c.say("不对，是4号楼", intent="deny")
    assert not c.active and c.slots["use_profile"] is True
    ticket = _ticket(d, await c.submit())
    assert (ticket.building, ticket.unit, ticket.room, ticket.contact_phone) == (4, 2, 501, "13812345678")


async def test_a_wrong_building_is_named_in_one_question(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    reply = await c.say("吉利花园15号楼2单元501")
    assert len(c.replies) == 1 and reply.count("？") == 1
    assert "没有15号楼" in reply and "1-12号楼" in reply
    assert "吉利花园12号楼2单元501室" in await c.say("12号楼")


async def test_yes_to_a_suggested_estate_takes_it(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    assert await c.say("和顺里10号楼") == "和顺里没有10号楼，您说的是“吉利花园10号楼”吗？"
    assert await c.say("是的", intent="affirm") == "吉利花园10号楼，几单元几号？"


@pytest.mark.parametrize("text", ["12345", "1381234567", "电话是多少", "021-12345678"])
async def test_an_invalid_phone_is_asked_again_once_with_a_hint(d, text) -> None:
    c = Conversation("leak_form")
    await c.say("吉利花园3号楼2单元501漏水了", intent="report_leak")
    reply = await c.say(text)
    assert reply == messages.INVALID_PHONE and c.slots["requested_slot"] == "phone"


@pytest.mark.parametrize("restated", ["13812345678", "吉利花园3号楼2单元501", "3号楼2单元501室", "对的"])
async def test_restating_the_stored_details_counts_as_yes(d, restated) -> None:
    await _returning_resident(d)
    c = Conversation("leak_form")
    await c.say("厨房水管漏了", intent="report_leak")
    assert await c.say(restated) == "" and not c.active
    assert (c.slots["use_profile"], c.slots["address"], c.slots["phone"]) == (
        True, "吉利花园3号楼2单元501室", "13812345678")


async def test_a_volunteer_typing_the_stored_name_again_counts_as_yes(d) -> None:
    slots = {"team": "黄色邻里互助志愿服务队", "contact_name": "王秀英", "phone": "13612345678"}
    await ActionSubmitVolunteer().run(CollectingDispatcher(), tracker("", slots=slots), {})
    c = Conversation("volunteer_form")
    offered = await c.say("我想报名紫色巾帼志愿服务队", intent="volunteer_signup")
    assert "这次还用这些信息吗" in offered and "王秀英" in offered
    reply = await c.say("王秀英")
    assert "请问您需要办理什么事" not in reply and not c.rejected and not c.active
    assert (c.slots["contact_name"], c.slots["phone"]) == ("王秀英", "13612345678")


async def test_answers_that_do_not_fit_get_buttons_then_a_person(d) -> None:
    await _returning_resident(d)
    c = Conversation("leak_form")
    first = await c.say("厨房水管漏了", intent="report_leak")
    assert "/human_handoff" not in c.buttons
    miss = await c.say("那个啥", intent="nlu_fallback")
    assert not c.rejected and "抱歉，我没明白" in miss and "这次还用这些信息吗" in miss
    assert len(c.replies) == 1 and "/human_handoff" not in c.buttons and miss != first
    second = await c.say("我也不知道", intent="out_of_scope")
    assert "这次还用这些信息吗" in second and c.buttons == ["/affirm", "/deny", "/human_handoff"]
    third = await c.say("嗯嗯那个吧哈", intent="greet")
    assert third == messages.HANDOFF_AFTER_MISSES and c.paused and not c.active
    assert all(c.slots.get(s) is None for s in ("use_profile", "address", "phone", "form_misses"))
    with unit_of_work(d.sessions) as s:
        assert s.query(Handoff).filter_by(sender_id="resident-1", released_at=None).count() == 1
        assert s.query(Ticket).count() == 1  # only the earlier one


async def test_a_fitting_answer_resets_the_misses(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    assert (await c.say("哎呀")).startswith(messages.ADDRESS_NOT_UNDERSTOOD)
    await c.say("吉利花园3号楼2单元501")
    assert not c.slots.get("form_misses")
    assert messages.INVALID_PHONE == await c.say("不知道")
    assert "/human_handoff" not in c.buttons


async def test_address_misses_get_estate_buttons_then_a_person(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    await c.say("哎呀")
    await c.say("你说啥")
    assert c.buttons == ["吉利花园", "和顺里", "金穗园", "/human_handoff"]
    assert await c.say("听不懂") == messages.HANDOFF_AFTER_MISSES and c.paused


async def test_a_question_during_a_form_is_left_to_its_rule(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    await c.say("最近有义诊吗", intent="ask_clinic")
    assert c.rejected and not c.slots.get("form_misses")


async def test_an_estate_named_in_the_report_is_not_asked_for_again(d) -> None:
    c = Conversation("leak_form")
    assert await c.say("吉利花园的下水道堵了，水往外冒", intent="report_leak") == "吉利花园，几号楼几单元几号？"


async def test_a_part_taken_back_is_asked_for_again(d) -> None:
    c = Conversation("leak_form")
    await c.say("家里漏水了", intent="report_leak")
    await c.say("吉利花园3号楼2单元")
    assert await c.say("不是3号楼", intent="deny") == "吉利花园2单元，几号楼几号？"
    assert await c.say("不对", intent="deny") == messages.ASK_ADDRESS  # which part is wrong is not said: start over
