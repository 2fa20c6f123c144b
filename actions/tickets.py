"""Actions that open, show and cancel tickets."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict, List, Text, Tuple

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from bot import address as addr
from bot import lifecycle as lc
from bot import messages
from bot.errors import HongguanjiaError, InvalidState, LimitReached, NotFound
from bot.services import routing, tickets
from bot.services.lifecycle import Context

logger = logging.getLogger(__name__)

FORM_KINDS = {"leak_form": "leak", "repair_form": "repair", "help_form": "help"}
FORM_SLOTS = ["use_profile", "address", "address_parts", "phone", "contact_name", "team", "description", "facility",
              "form_misses"]


def _reset() -> List[Dict[Text, Any]]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS]


def _ticket_number(tracker: Tracker) -> str:
    """The ticket number from the ticket_id slot (button payloads) or the message text."""
    return (tickets.find_ticket_number(tracker.get_slot("ticket_id") or "")
            or tickets.find_ticket_number(tracker.latest_message.get("text") or "") or "")


def _line(view: tickets.TicketView) -> str:
    return messages.ticket_line(view.number, view.kind, view.status, view.handler, view.created_at, view.address,
                              view.last_note)


def _said_since_last_ticket(tracker: Tracker) -> Tuple[str, ...]:
    """The resident's messages since the previous ticket (what they told us about themselves may be in any)."""
    said: List[str] = []
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") in ("action_submit_ticket", "action_submit_feedback"):
            break
        if event.get("event") == "user" and event.get("text"):
            said.append(event["text"])
    return tuple(reversed(said[:tickets.MAX_SAID]))


def _form_that_just_ended(tracker: Tracker) -> str:
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") in FORM_KINDS:
            return event["name"]
    return ""


class ActionSubmitTicket(Action):
    """Opens the ticket a leak, repair or help form collected, and tells the resident."""

    def name(self) -> Text:
        return "action_submit_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        kind = FORM_KINDS.get(_form_that_just_ended(tracker))
        if kind is None:
            dispatcher.utter_message(text=messages.TICKET_FAILED)
            return _reset()
        d = deps.get()
        estates = await d.estates()
        address = addr.parse_address(tracker.get_slot("address") or "", estates)
        request = tickets.TicketRequest(
            kind=kind, sender_id=tracker.sender_id,
            description=tracker.get_slot("description") or tracker.latest_message.get("text") or "",
            address=address, contact_phone=tracker.get_slot("phone"), facility=tracker.get_slot("facility"),
            said=_said_since_last_ticket(tracker))
        try:
            view = await asyncio.to_thread(tickets.open_ticket, d.sessions, request, d.settings.timezone, d.now(),
                                          Context.from_settings(d.settings))
        except LimitReached as exc:
            logger.info("ticket not opened for %s: %s", tracker.sender_id, exc.message)
            dispatcher.utter_message(text=messages.too_many_open_tickets(list(exc.data["numbers"])))
            return _reset()
        except HongguanjiaError as exc:
            logger.warning("ticket not opened for %s: %s", tracker.sender_id, exc.message)
            dispatcher.utter_message(text=messages.TICKET_FAILED)
            return _reset()
        logger.info("ticket %s opened (%s/%s)", view.number, view.kind, view.priority)
        dispatcher.utter_message(text=routing.reply(view.number, view.kind, view.priority, view.notified))
        return _reset()


class ActionSubmitFeedback(Action):
    """Files a suggestion or complaint as a feedback ticket for the community office."""

    def name(self) -> Text:
        return "action_submit_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        d = deps.get()
        text = (tracker.latest_message.get("text") or "").strip()
        request = tickets.TicketRequest(kind="feedback", sender_id=tracker.sender_id, description=text)
        try:
            view = await asyncio.to_thread(tickets.open_ticket, d.sessions, request, d.settings.timezone, d.now(),
                                          Context.from_settings(d.settings))
        except LimitReached as exc:
            dispatcher.utter_message(text=messages.too_many_open_tickets(list(exc.data["numbers"])))
            return []
        except HongguanjiaError as exc:
            logger.warning("feedback not filed for %s: %s", tracker.sender_id, exc.message)
            dispatcher.utter_message(text=messages.TICKET_FAILED)
            return []
        dispatcher.utter_message(text=routing.reply(view.number, view.kind, view.priority, view.notified))
        return []


class ActionCheckTicket(Action):
    """Shows the resident's open tickets, or one ticket by its number."""

    def name(self) -> Text:
        return "action_check_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        d = deps.get()
        number = _ticket_number(tracker)
        if number:
            try:
                views = [await asyncio.to_thread(tickets.ticket_of, d.sessions, tracker.sender_id, number)]
            except NotFound:
                dispatcher.utter_message(text=f"没有查到您名下的工单 {number}，请核对工单号。"
                                              "也可以直接说“查进度”看您所有的工单。")
                return [SlotSet("ticket_id", None)]
        else:
            views = await asyncio.to_thread(tickets.tickets_of, d.sessions, tracker.sender_id)
            if not views:
                dispatcher.utter_message(text=messages.NO_OPEN_TICKETS)
                return [SlotSet("ticket_id", None)]
        lines = [_line(v) for v in views]
        head = "工单进度：" if number else f"您有 {len(views)} 个正在办理或等您确认的工单："
        dispatcher.utter_message(text=head + "\n" + "\n".join(lines))
        return [SlotSet("ticket_id", None)]


class ActionCancelTicket(Action):
    """Cancels a ticket by number; without a number, confirms the one open ticket or asks which."""

    def name(self) -> Text:
        return "action_cancel_ticket"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        d = deps.get()
        number = _ticket_number(tracker)
        if number:
            try:
                view = await asyncio.to_thread(tickets.cancel, d.sessions, tracker.sender_id, number, d.now(),
                                              Context.from_settings(d.settings))
                dispatcher.utter_message(text=f"已取消工单 {view.number}，工作人员不会再上门。有需要随时再找我。")
            except NotFound:
                dispatcher.utter_message(text=f"没有查到您名下的工单 {number}，没有取消任何工单。")
            except InvalidState as exc:
                status = messages.STATUS_LABELS.get(str(exc.data.get("status")), "已结束")
                dispatcher.utter_message(text=f"工单 {number} 当前状态是“{status}”，不能再取消了。")
            return [SlotSet("ticket_id", None)]
        views = [v for v in await asyncio.to_thread(tickets.tickets_of, d.sessions, tracker.sender_id)
                 if v.status in lc.ACTIVE]  # a resolved ticket awaits the resident's word, not a cancel
        if not views:
            dispatcher.utter_message(text=messages.NO_OPEN_TICKETS)
        elif len(views) == 1:
            v = views[0]
            dispatcher.utter_message(
                text=f"要取消这个工单吗？\n{_line(v)}",
                buttons=[{"title": "确认取消", "payload": f'/cancel_ticket{{"ticket_id": "{v.number}"}}'},
                         {"title": "先不取消", "payload": "/deny"}])
        else:
            lines = "\n".join(_line(v)
                              for v in views)
            dispatcher.utter_message(text=f"您有 {len(views)} 个未办结的工单，请回复要取消的工单号，"
                                          f"例如“取消 {views[0].number}”：\n{lines}")
        return [SlotSet("ticket_id", None)]


class ActionResetForm(Action):
    """Clears what a cancelled form collected."""

    def name(self) -> Text:
        return "action_reset_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        return _reset()
