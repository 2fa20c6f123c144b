"""The answer to a request the assistant does not handle: where to go instead."""

from __future__ import annotations

from typing import Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import messages
from bot.referral import referral_for


class ActionOutOfScope(Action):
    """Tells the resident where to go for the topic of their message, then what the assistant can do."""

    def name(self) -> Text:
        return "action_out_of_scope"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        referral = referral_for(tracker.latest_message.get("text") or "")
        dispatcher.utter_message(text=f"{referral.reply}\n{messages.WHAT_I_CAN_DO}")
        return []
