"""Actions for clinics and volunteer sign-ups."""

from __future__ import annotations

import asyncio
from typing import Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from actions.tickets import _reset
from bot import messages
from bot.dates import parse_date_range
from bot.errors import HongguanjiaError
from bot.services import clinics, volunteers


class ActionListClinics(Action):
    """Lists upcoming clinic events, filtered by the specialty or date asked about."""

    def name(self) -> Text:
        return "action_list_clinics"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        d = deps.get()
        text = tracker.latest_message.get("text") or ""
        today = d.today()
        specialty = clinics.specialty_in(text, next(tracker.get_latest_entity_values("specialty"), None))
        between = parse_date_range(text, today)
        found = await asyncio.to_thread(clinics.upcoming, d.sessions, today, specialty, between,
                                        sender_id=tracker.sender_id)
        asked = "".join(filter(None, [f"{between[0].month}月{between[0].day}日起" if between else "",
                                      specialty or ""]))
        if not found:
            if specialty or between:
                others = await asyncio.to_thread(clinics.upcoming, d.sessions, today, sender_id=tracker.sender_id)
                tail = f"近期其他义诊有 {len(others)} 场，回复“最近有义诊吗”可以查看。" if others else ""
                dispatcher.utter_message(text=f"目前没有安排{asked}的义诊。{tail}有新活动会在社区群里通知。")
            else:
                dispatcher.utter_message(text=messages.NO_CLINICS)
            return [SlotSet("specialty", None), SlotSet("date", None)]
        lines = "\n\n".join(messages.clinic_line(c.title, c.date, c.start, c.end, c.place, c.services, c.bring)
                            for c in found)
        dispatcher.utter_message(text=f"近期{asked}义诊安排：\n\n{lines}\n\n义诊免费，按时到场即可。")
        return [SlotSet("specialty", None), SlotSet("date", None)]


class ActionSubmitVolunteer(Action):
    """Registers the volunteer the form collected; a repeat sign-up is recognised."""

    def name(self) -> Text:
        return "action_submit_volunteer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        d = deps.get()
        teams = await d.teams(tracker.sender_id)
        team = next((t for t in teams if t.name == tracker.get_slot("team")), None)
        name, phone = tracker.get_slot("contact_name"), tracker.get_slot("phone")
        if team is None or not name or not phone:
            dispatcher.utter_message(text=messages.TICKET_FAILED)
            return _reset()
        try:
            result = await asyncio.to_thread(volunteers.sign_up, d.sessions, tracker.sender_id, name, phone,
                                             team.number)
        except HongguanjiaError:
            dispatcher.utter_message(text=messages.TICKET_FAILED)
            return _reset()
        if result.created:
            dispatcher.utter_message(text=f"报名成功！{name}，欢迎加入{result.team_name}。"
                                          f"队长{result.lead_name}会尽快和您联系。")
        else:
            dispatcher.utter_message(text=f"{name}，您已经报名过{result.team_name}了，不用重复报名。"
                                          f"如需了解活动安排，可以等队长{result.lead_name}联系您。")
        return _reset()
