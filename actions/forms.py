"""Form validators and the dynamic questions of the leak, repair, help and volunteer forms."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from actions.conversation import hand_over
from actions.tickets import FORM_SLOTS
from bot import messages
from bot import address as addr
from bot import address_reply as addr_reply
from bot.address_reply import address_to_slot
from bot.phone import mask_phone, normalize_phone
from bot.profile_answer import read_profile_answer
from bot.services import residents
from bot.teams import match_team

# Intents that interrupt a form; a rule answers them and the form resumes.
INTERRUPTIONS = {"ask_clinic", "faq", "check_ticket", "cancel_ticket", "human_handoff", "bot_challenge"}
MAX_NAME = 20
# Answers in a row that do not fit the question: at the second the question comes with buttons,
# at the third a person takes over.
MISSES_BEFORE_BUTTONS = 2
MISSES_BEFORE_HANDOFF = 3
# What each ticket form needs of an address: (unit, room).
ADDRESS_NEEDS = {"leak_form": (True, True), "help_form": (True, True), "repair_form": (False, False)}
# Slots the validators keep between turns besides the form's own.
BOOKKEEPING = ("address_parts", "form_misses")
HANDOFF_BUTTON = {"title": "转人工", "payload": "/human_handoff"}


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def latest_intent(tracker: Tracker) -> str:
    """The intent of the resident's latest message ("" when there is none)."""
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def _misses(tracker: Tracker) -> int:
    value = tracker.get_slot("form_misses")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _missed(tracker: Tracker) -> Dict[Text, Any]:
    """One more answer that did not fit the question."""
    return {"form_misses": _misses(tracker) + 1}


def _slot_events(events: List[Dict[Text, Any]]) -> Dict[Text, Any]:
    return {e["name"]: e.get("value") for e in events if e.get("event") == "slot"}


async def _profile(tracker: Tracker) -> Optional[residents.Profile]:
    return await asyncio.to_thread(residents.profile, deps.get().sessions, tracker.sender_id)


async def _check(tracker: Tracker, parts: addr.Address, form: Optional[str]) -> addr.AddressCheck:
    """Check partial or full address parts the way the form needs them (the profile's estate settles ties)."""
    estates = await deps.get().estates()
    profile = await _profile(tracker)
    default = profile.address.community if profile and profile.address else None
    unit, room = ADDRESS_NEEDS.get(form or "", (True, True))
    return addr.BuildingDirectory(estates).check(parts, require_unit=unit, require_room=room,
                                                 default_estate=default)


class TicketFormSlots:
    """Shared slot logic of the ticket forms (a mixin: rasa_sdk registers every Action subclass)."""

    uses_address = True

    @property
    def require_unit(self) -> bool:
        """Whether this form's address needs a unit."""
        return ADDRESS_NEEDS.get(self.form_name(), (True, True))[0]  # type: ignore[attr-defined]

    @property
    def require_room(self) -> bool:
        """Whether this form's address needs a room."""
        return ADDRESS_NEEDS.get(self.form_name(), (True, True))[1]  # type: ignore[attr-defined]

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        """Validate as usual; count answers that do not fit, and hand over to a person after too many."""
        before = _misses(tracker)
        events: List[Dict[Text, Any]] = await super().run(dispatcher, tracker, domain)  # type: ignore[misc]
        slots = _slot_events(events)
        if (slots.get("form_misses") or 0) >= MISSES_BEFORE_HANDOFF:
            reset = [SlotSet(slot, None) for slot in FORM_SLOTS] + [SlotSet("requested_slot", None), ActiveLoop(None)]
            return reset + await hand_over(dispatcher, tracker, messages.HANDOFF_AFTER_MISSES)
        progress = any(name not in ("requested_slot", "form_misses") for name in slots)
        if before and "form_misses" not in slots and progress:
            events.append(SlotSet("form_misses", None))
        return events

    async def get_validation_events(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> List[Dict]:
        """Keep the bookkeeping slots an extractor set (rasa_sdk keeps only the form's own slots)."""
        extracted = tracker.slots_to_validate()
        events: List[Dict[Text, Any]] = await super().get_validation_events(  # type: ignore[misc]
            dispatcher, tracker, domain)
        validated = set(_slot_events(events))
        kept = [SlotSet(k, v) for k, v in extracted.items() if k in BOOKKEEPING and k not in validated]
        return kept + events

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        """Ask to confirm the stored profile only when it can fill something still missing."""
        slots = list(domain_slots)
        if tracker.get_slot("use_profile") is None and not await self._profile_helps(tracker):
            slots.remove("use_profile")
        return slots

    async def _profile_helps(self, tracker: Tracker) -> bool:
        profile = await _profile(tracker)
        if profile is None or not profile.phone:
            return False
        if tracker.get_slot("address") is None:
            return profile.address is not None and (not self.require_room or profile.address.room is not None)
        return tracker.get_slot("phone") is None

    async def extract_use_profile(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: DomainDict) -> Dict[Text, Any]:
        """Yes, no, the stored details restated (yes) or changed in part (yes, with the change); else a miss."""
        if tracker.get_slot("requested_slot") != "use_profile" or latest_intent(tracker) in INTERRUPTIONS:
            return {}
        profile = await _profile(tracker)
        answer = read_profile_answer(
            _text(tracker), latest_intent(tracker), await deps.get().estates(),
            stored_address=profile.address if profile and self.uses_address else None,
            stored_phone=profile.phone if profile else None, stored_name=profile.name if profile else None)
        if answer.use is None:
            return _missed(tracker)
        filled: Dict[Text, Any] = {"use_profile": answer.use}
        if answer.address is not None:
            filled.update(address=answer.address.label(), address_parts=address_to_slot(answer.address))
        if answer.phone:
            filled["phone"] = answer.phone
        return filled

    async def validate_use_profile(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        """On yes, fill what is missing from the stored profile."""
        if value is not True:
            return {"use_profile": False}
        profile = await _profile(tracker)
        filled: Dict[Text, Any] = {"use_profile": True}
        if profile is not None:
            if tracker.get_slot("address") is None and profile.address is not None:
                filled["address"] = profile.address.label()
                filled["address_parts"] = address_to_slot(profile.address)
            if tracker.get_slot("phone") is None and profile.phone:
                filled["phone"] = profile.phone
        return filled

    async def extract_address(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        """Add what this message says to the address parts known so far, or correct one part."""
        requested = tracker.get_slot("requested_slot")
        if requested == "use_profile":
            return {}  # extract_use_profile reads the address in an answer to the profile question
        text, intent = _text(tracker), latest_intent(tracker)
        estates = await deps.get().estates()
        form = (tracker.active_loop or {}).get("name")
        parts = addr_reply.address_from_slot(tracker.get_slot("address_parts"))
        if requested == "address":
            missing = addr_reply.missing_parts(parts, require_unit=self.require_unit, require_room=self.require_room)
            reply = addr_reply.read_reply(text, estates, missing)
            if intent in INTERRUPTIONS and reply.given.building is None:
                return {}
            if reply.given.is_empty():
                return await self._answer_without_parts(tracker, parts, reply, form)
            merged = addr_reply.merge(parts, reply)
            if merged == parts:
                return _missed(tracker)
            return {"address": merged.label(), "address_parts": address_to_slot(merged)}
        reply = addr_reply.read_reply(text, estates)
        if intent in INTERRUPTIONS and reply.given.building is None:
            return {}
        known = tracker.get_slot("address")
        if known is not None:
            # A correction after the address was taken ("不对，是4号楼"): replace only that part.
            base = parts if not parts.is_empty() else addr.parse_address(known, estates)
            merged = addr_reply.merge(base, reply)
            if reply.is_empty() or merged == base:
                return {}
            return {"address": merged.label(), "address_parts": address_to_slot(merged)}
        if reply.given.building is not None:
            return {"address": reply.given.label(), "address_parts": address_to_slot(reply.given)}
        if requested is None and reply.given.community is not None:
            return {"address_parts": address_to_slot(reply.given)}  # "吉利花园的下水道堵了": ask only the rest
        return {}

    async def _answer_without_parts(self, tracker: Tracker, parts: addr.Address, reply: addr_reply.AddressReply,
                                    form: Optional[str]) -> Dict[Text, Any]:
        """Yes to a suggested address takes it; "不对"/"不是" drops the part in question; anything else is a miss."""
        check = await _check(tracker, parts, form)
        suggestion = addr_reply.offered_suggestion(check)
        if suggestion is not None and (latest_intent(tracker) == "affirm"):
            return {"address": suggestion.label(), "address_parts": address_to_slot(suggestion)}
        if (reply.correction or reply.retracted or latest_intent(tracker) == "deny") and not parts.is_empty():
            wrong = WRONG_PART.get(check.problem or "")
            kept = addr_reply.without(parts, reply.retracted or ([wrong] if wrong else addr_reply.PARTS))
            return {"address": None, "address_parts": address_to_slot(kept)}
        return _missed(tracker)

    async def validate_address(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        """Check the parts known so far; keep them when incomplete (the question asks only for the rest)."""
        parts = addr_reply.address_from_slot(tracker.get_slot("address_parts"))
        if parts.is_empty() and value:
            parts = addr.parse_address(str(value), await deps.get().estates())
        check = await _check(tracker, parts, self.form_name())  # type: ignore[attr-defined]
        return {"address": check.address.label() if check.ok else None,
                "address_parts": address_to_slot(check.address)}

    async def extract_phone(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        """The phone from the message that asked for it, or one volunteered earlier."""
        text = _text(tracker)
        if tracker.get_slot("requested_slot") == "phone":
            if normalize_phone(text) is None:
                if latest_intent(tracker) in INTERRUPTIONS:
                    return {}
                if self.uses_address and not addr_reply.read_reply(text, await deps.get().estates()).is_empty():
                    return {}  # an address correction, taken by extract_address
            return {"phone": text}
        if tracker.get_slot("phone") is None and normalize_phone(text):
            return {"phone": text}
        return {}

    async def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> Dict[Text, Any]:
        """Accept mainland mobiles and Tianjin landlines; otherwise the question says what a number looks like."""
        phone = normalize_phone(str(value or ""))
        if phone:
            return {"phone": phone}
        return {"phone": None, **_missed(tracker)}


# The part a "不对" refers to when the question named one.
WRONG_PART = {addr.UNKNOWN_COMMUNITY: "community", addr.UNKNOWN_BUILDING: "building",
              addr.UNKNOWN_UNIT: "unit", addr.UNKNOWN_ROOM: "room"}


class ValidateLeakForm(TicketFormSlots, FormValidationAction):
    """Leak reports need the full home address."""

    def name(self) -> Text:
        return "validate_leak_form"


class ValidateHelpForm(TicketFormSlots, FormValidationAction):
    """Help requests need the full home address."""

    def name(self) -> Text:
        return "validate_help_form"


class ValidateRepairForm(TicketFormSlots, FormValidationAction):
    """Repairs of shared facilities need only the estate and building."""

    def name(self) -> Text:
        return "validate_repair_form"


class ValidateVolunteerForm(TicketFormSlots, FormValidationAction):
    """Volunteer sign-up: team, name and phone (the stored name and phone may be confirmed)."""

    uses_address = False

    def name(self) -> Text:
        return "validate_volunteer_form"

    async def _profile_helps(self, tracker: Tracker) -> bool:
        profile = await _profile(tracker)
        return bool(profile and profile.name and profile.phone
                    and (tracker.get_slot("contact_name") is None or tracker.get_slot("phone") is None))

    async def validate_use_profile(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        """On yes, fill name and phone from the stored profile."""
        if value is not True:
            return {"use_profile": False}
        profile = await _profile(tracker)
        filled: Dict[Text, Any] = {"use_profile": True}
        if profile is not None:
            if tracker.get_slot("contact_name") is None and profile.name:
                filled["contact_name"] = profile.name
            if tracker.get_slot("phone") is None and profile.phone:
                filled["phone"] = profile.phone
        return filled

    async def extract_address(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        """Volunteers give no address."""
        return {}

    async def extract_team(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                           domain: DomainDict) -> Dict[Text, Any]:
        """The team named in the trigger message or in the answer to the team question."""
        text = _text(tracker)
        entity = next(tracker.get_latest_entity_values("team"), None)
        if tracker.get_slot("requested_slot") == "team":
            if latest_intent(tracker) in INTERRUPTIONS and entity is None:
                return {}
            return {"team": entity or text}
        if tracker.get_slot("team") is None and (entity or latest_intent(tracker) == "volunteer_signup"):
            teams = await deps.get().teams(tracker.sender_id)
            found = match_team(entity or text, teams)
            if found is not None:
                return {"team": found.name}
        return {}

    async def validate_team(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        """Resolve the team by number, colour or name; re-ask listing the teams."""
        teams = await deps.get().teams(tracker.sender_id)
        found = match_team(str(value or ""), teams)
        if found is not None:
            return {"team": found.name}
        return {"team": None, **_missed(tracker)}

    async def extract_contact_name(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        """The name given when asked for it."""
        if tracker.get_slot("requested_slot") != "contact_name" or latest_intent(tracker) in INTERRUPTIONS:
            return {}
        return {"contact_name": _text(tracker)}

    async def validate_contact_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: DomainDict) -> Dict[Text, Any]:
        """Strip "我叫/姓" and a phone number; a name is 1–20 characters without digits."""
        name = str(value or "")
        phone = normalize_phone(name)
        for prefix in ("我的名字是", "我的名字叫", "名字是", "我叫", "我是", "叫"):
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        name = "".join(ch for ch in name if not ch.isdigit() and ch not in " ,，。.-+()（）").strip()
        if 0 < len(name) <= MAX_NAME:
            filled: Dict[Text, Any] = {"contact_name": name}
            if phone and tracker.get_slot("phone") is None:
                filled["phone"] = phone
            return filled
        return {"contact_name": None, **_missed(tracker)}


def _miss_buttons(tracker: Tracker, buttons: List[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    """After repeated misses the question offers buttons, and a person."""
    if _misses(tracker) >= MISSES_BEFORE_BUTTONS:
        return buttons + [HANDOFF_BUTTON]
    return buttons


def _miss_note(tracker: Tracker) -> str:
    return messages.OFFER_PERSON if _misses(tracker) >= MISSES_BEFORE_BUTTONS else ""


class ActionAskUseProfile(Action):
    """Asks a returning resident to confirm the details the assistant remembers."""

    def name(self) -> Text:
        return "action_ask_use_profile"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        profile = await _profile(tracker)
        if profile is None:
            return []
        form = (tracker.active_loop or {}).get("name")
        parts = []
        if form == "volunteer_form":
            if tracker.get_slot("contact_name") is None and profile.name:
                parts.append(f"姓名：{profile.name}")
        elif tracker.get_slot("address") is None and profile.address is not None:
            parts.append(f"地址：{profile.address.label()}")
        if tracker.get_slot("phone") is None and profile.phone:
            parts.append(f"电话：{mask_phone(profile.phone)}")
        question = "您之前登记过：" + "，".join(parts) + "。这次还用这些信息吗？"
        if _misses(tracker):
            question = messages.PROFILE_NOT_UNDERSTOOD + question + messages.PROFILE_YES_OR_NO + _miss_note(tracker)
        dispatcher.utter_message(text=question, buttons=_miss_buttons(tracker, [
            {"title": "是的，就用这个", "payload": "/affirm"}, {"title": "不是，重新填写", "payload": "/deny"}]))
        return []


class ActionAskTeam(Action):
    """Lists the volunteer teams to choose from."""

    def name(self) -> Text:
        return "action_ask_team"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        teams = await deps.get().teams(tracker.sender_id)
        lines = "\n".join(f"{t.number}. {t.name}" for t in teams)
        head = messages.INVALID_TEAM if _misses(tracker) else "想加入哪支队伍？回复序号、颜色或队名都可以："
        buttons = [{"title": t.name, "payload": str(t.number)} for t in teams]
        dispatcher.utter_message(text=f"{head}\n{lines}" + _miss_note(tracker),
                                 buttons=_miss_buttons(tracker, buttons) if _misses(tracker) else [])
        return []


class ActionAskAddress(Action):
    """Asks only for what the address still lacks, repeating what is known (a home, or a building for repairs)."""

    def name(self) -> Text:
        return "action_ask_address"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        form = (tracker.active_loop or {}).get("name")
        estates = await deps.get().estates()
        parts = addr_reply.address_from_slot(tracker.get_slot("address_parts"))
        check = await _check(tracker, parts, form)
        unit, room = ADDRESS_NEEDS.get(form or "", (True, True))
        question = messages.address_question(check, estates, require_unit=unit, require_room=room)
        buttons: List[Dict[Text, Any]] = []
        if addr_reply.offered_suggestion(check) is not None:
            buttons = [{"title": "是的", "payload": "/affirm"}, {"title": "不是", "payload": "/deny"}]
        elif check.problem == addr.AMBIGUOUS_COMMUNITY:
            buttons = [{"title": name, "payload": name} for name in check.candidates]
        elif check.address.community is None and _misses(tracker):
            buttons = [{"title": e.name, "payload": e.name} for e in estates]
        if _misses(tracker) and parts.is_empty():
            question = messages.ADDRESS_NOT_UNDERSTOOD + question
        dispatcher.utter_message(text=question + _miss_note(tracker), buttons=_miss_buttons(tracker, buttons))
        return []


class ActionAskPhone(Action):
    """Asks for a contact phone, repeating the address just taken so that a wrong part can be corrected."""

    def name(self) -> Text:
        return "action_ask_phone"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        address = tracker.get_slot("address")
        if _misses(tracker):
            text = messages.INVALID_PHONE
        elif address and (tracker.active_loop or {}).get("name") in ADDRESS_NEEDS:
            text = messages.address_taken(address) + messages.ASK_PHONE
        else:
            text = messages.ASK_PHONE
        dispatcher.utter_message(text=text + _miss_note(tracker), buttons=_miss_buttons(tracker, []))
        return []


class ActionAskContactName(Action):
    """Asks for the volunteer's name."""

    def name(self) -> Text:
        return "action_ask_contact_name"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        text = messages.INVALID_NAME if _misses(tracker) else messages.ASK_CONTACT_NAME
        dispatcher.utter_message(text=text + _miss_note(tracker), buttons=_miss_buttons(tracker, []))
        return []
