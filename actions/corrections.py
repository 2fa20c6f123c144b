"""A correction to the address of a ticket the resident has just opened ("不对，是4号楼" after the ticket number)."""

from __future__ import annotations

import asyncio
import logging
from typing import Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from actions.forms import ADDRESS_NEEDS, latest_intent
from actions.tickets import FORM_KINDS
from bot import address as addr
from bot import address_reply as addr_reply
from bot import lifecycle as lc
from bot import messages
from bot.errors import HongguanjiaError, InvalidInput
from bot.services import tickets
from bot.services.lifecycle import Context

logger = logging.getLogger(__name__)

# What each ticket kind needs of an address, as its form asked for it.
KIND_NEEDS = {kind: ADDRESS_NEEDS[form] for form, kind in FORM_KINDS.items()}


class ActionCorrectTicket(Action):
    """Outside a form, an address that corrects ("不对/错了/是4号楼不是3号楼") changes the resident's ticket that is
    still open and was opened within the correction window; any other message gets the usual reply."""

    def name(self) -> Text:
        return "action_correct_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        intent = latest_intent(tracker)
        usual: Dict[str, str] = ({"response": "utter_anything_else"} if intent == "deny"
                                 else {"text": messages.INFORM_WITHOUT_CONTEXT})
        d = deps.get()
        estates = await d.estates()
        reply = addr_reply.read_reply(tracker.latest_message.get("text") or "", estates)
        corrects = reply.correction or bool(reply.retracted) or intent == "deny"
        ticket = await self._correctable_ticket(tracker) if corrects and not reply.given.is_empty() else None
        if ticket is None:
            dispatcher.utter_message(**usual)
            return []
        before = addr.parse_address(ticket.address, estates)
        unit, room = KIND_NEEDS.get(ticket.kind, (True, True))
        check = addr.BuildingDirectory(estates).check(addr_reply.merge(before, reply), require_unit=unit,
                                                      require_room=room, default_estate=before.community)
        if not check.ok:
            dispatcher.utter_message(text=messages.address_not_corrected(ticket.number, check.address.label()))
            return []
        if check.address == before:
            dispatcher.utter_message(text=f"工单 {ticket.number} 登记的地址就是：{ticket.address}，不用改。")
            return []
        try:
            view = await asyncio.to_thread(tickets.correct_address, d.sessions, tracker.sender_id, ticket.number,
                                           check.address, d.now(), Context.from_settings(d.settings))
        except InvalidInput:
            dispatcher.utter_message(text=messages.address_not_corrected(ticket.number, check.address.label()))
            return []
        except HongguanjiaError as exc:
            logger.warning("address of %s not corrected: %s", ticket.number, exc.message)
            dispatcher.utter_message(text=messages.TICKET_FAILED)
            return []
        groups = list(dict.fromkeys(t.group for t in view.notified if t.group))
        logger.info("ticket %s address corrected", view.number)
        dispatcher.utter_message(text=messages.address_corrected(view.number, view.address, groups))
        return []

    async def _correctable_ticket(self, tracker: Tracker) -> Optional[tickets.TicketView]:
        """The resident's newest ticket, when its address may still be corrected."""
        d = deps.get()
        views = await asyncio.to_thread(tickets.tickets_of, d.sessions, tracker.sender_id)
        newest = next((v for v in views if v.kind in KIND_NEEDS), None)
        if newest is None or not lc.correctable(newest.status, newest.created_at, d.now()):
            return None
        return newest

