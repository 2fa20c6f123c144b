"""Handoff to a person and the two-stage fallback."""

from __future__ import annotations

import asyncio
from typing import Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from bot import messages
from bot.services import handoff

# Intents offered as options when the assistant is unsure, with how they are shown.
OPTION_LABELS = {
    "report_leak": "报修漏水、下水堵", "request_repair": "公共设施报修", "ask_clinic": "查义诊",
    "volunteer_signup": "报名志愿者", "check_ticket": "查工单进度", "cancel_ticket": "取消工单",
    "request_help": "生活帮办（买菜取药等）", "give_feedback": "提意见建议", "human_handoff": "转人工",
}


class ActionHandoff(Action):
    """Tells the duty staff and pauses the assistant in this conversation until released."""

    def name(self) -> Text:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        return await hand_over(dispatcher, tracker, messages.HANDOFF)


async def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, text: str) -> List[Dict]:
    """Open a handoff for this conversation, tell the resident `text`, and pause the assistant."""
    d = deps.get()
    await asyncio.to_thread(handoff.start, d.sessions, tracker.sender_id,
                            tracker.latest_message.get("text") or "", f"{d.settings.console_base_url}/handoffs")
    dispatcher.utter_message(text=text)
    return [ConversationPaused()]


def _fallbacks_in_a_row(tracker: Tracker) -> int:
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == "action_fallback":
            count += 1
        elif event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            if intent != "nlu_fallback":
                break
    return count


class ActionFallback(Action):
    """First time: offer the likely options and ask to rephrase; second time: offer a person."""

    def name(self) -> Text:
        return "action_fallback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        if _fallbacks_in_a_row(tracker) % 2 == 1:
            dispatcher.utter_message(
                text=messages.OFFER_HANDOFF,
                buttons=[{"title": "转人工", "payload": "/human_handoff"}])
            return []
        ranking = tracker.latest_message.get("intent_ranking") or []
        options = [r["name"] for r in ranking if r.get("name") in OPTION_LABELS][:3]
        for default in ("report_leak", "request_repair", "ask_clinic"):
            if len(options) >= 3:
                break
            if default not in options:
                options.append(default)
        dispatcher.utter_message(
            text=messages.FALLBACK_OPTIONS,
            buttons=[{"title": OPTION_LABELS[o], "payload": f"/{o}"} for o in options])
        return []
