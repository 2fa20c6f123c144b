"""Form validators and the dynamic questions of the leak, repair, help and volunteer forms."""

from __future__ import annotations

import asyncio
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import deps
from bot import messages
from bot import address as addr
from bot.phone import mask_phone, normalize_phone
from bot.services import residents
from bot.teams import match_team

# Intents that interrupt a form; a rule answers them and the form resumes.
INTERRUPTIONS = {"ask_clinic", "faq", "check_ticket", "cancel_ticket", "human_handoff", "bot_challenge"}
MAX_NAME = 20


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message.get("text") or "").strip()


def _intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


async def _profile(tracker: Tracker) -> Optional[residents.Profile]:
    return await asyncio.to_thread(residents.profile, deps.get().sessions, tracker.sender_id)


class TicketFormSlots:
    """Shared slot logic of the ticket forms (a mixin: rasa_sdk registers every Action subclass)."""

    require_unit = True
    require_room = True

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
        """affirm/deny when asked whether to use the stored profile."""
        if tracker.get_slot("requested_slot") != "use_profile":
            return {}
        if _intent(tracker) == "affirm":
            return {"use_profile": True}
        if _intent(tracker) == "deny":
            return {"use_profile": False}
        if not addr.parse_address(_text(tracker), await deps.get().estates()).is_empty() or normalize_phone(_text(tracker)):
            # The resident answered with new details instead of yes/no.
            return {"use_profile": False}
        return {}

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
            if tracker.get_slot("phone") is None and profile.phone:
                filled["phone"] = profile.phone
        return filled

    async def extract_address(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                              domain: DomainDict) -> Dict[Text, Any]:
        """The address from the message that asked for it, or one volunteered earlier."""
        text = _text(tracker)
        requested = tracker.get_slot("requested_slot")
        parsed = addr.parse_address(text, await deps.get().estates())
        if requested == "address":
            if _intent(tracker) in INTERRUPTIONS and parsed.building is None:
                return {}
            return {"address": text}
        if tracker.get_slot("address") is None and parsed.building is not None:
            return {"address": text}
        return {}

    async def validate_address(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        """Normalise and check the address; re-ask with a concrete hint and a suggestion."""
        estates = await deps.get().estates()
        directory = addr.BuildingDirectory(estates)
        profile = await _profile(tracker)
        default = profile.address.community if profile and profile.address else None
        check = directory.check(addr.parse_address(str(value or ""), estates), require_unit=self.require_unit,
                                require_room=self.require_room, default_estate=default)
        if check.ok:
            return {"address": check.address.label()}
        dispatcher.utter_message(text=messages.address_problem(check, [e.name for e in estates]))
        return {"address": None}

    async def extract_phone(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        """The phone from the message that asked for it, or one volunteered earlier."""
        text = _text(tracker)
        if tracker.get_slot("requested_slot") == "phone":
            if _intent(tracker) in INTERRUPTIONS and normalize_phone(text) is None:
                return {}
            return {"phone": text}
        if tracker.get_slot("phone") is None and normalize_phone(text):
            return {"phone": text}
        return {}

    async def validate_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> Dict[Text, Any]:
        """Accept mainland mobiles and Tianjin landlines; otherwise say what a number looks like."""
        phone = normalize_phone(str(value or ""))
        if phone:
            return {"phone": phone}
        dispatcher.utter_message(text=messages.INVALID_PHONE)
        return {"phone": None}


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

    require_unit = False
    require_room = False

    def name(self) -> Text:
        return "validate_repair_form"


class ValidateVolunteerForm(TicketFormSlots, FormValidationAction):
    """Volunteer sign-up: team, name and phone (the stored name and phone may be confirmed)."""

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
            if _intent(tracker) in INTERRUPTIONS and entity is None:
                return {}
            return {"team": entity or text}
        if tracker.get_slot("team") is None and (entity or _intent(tracker) == "volunteer_signup"):
            teams = await deps.get().teams()
            found = match_team(entity or text, teams)
            if found is not None:
                return {"team": found.name}
        return {}

    async def validate_team(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                            domain: DomainDict) -> Dict[Text, Any]:
        """Resolve the team by number, colour or name; re-ask listing the teams."""
        teams = await deps.get().teams()
        found = match_team(str(value or ""), teams)
        if found is not None:
            return {"team": found.name}
        dispatcher.utter_message(text=messages.INVALID_TEAM)
        return {"team": None}

    async def extract_contact_name(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: DomainDict) -> Dict[Text, Any]:
        """The name given when asked for it."""
        if tracker.get_slot("requested_slot") != "contact_name" or _intent(tracker) in INTERRUPTIONS:
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
        dispatcher.utter_message(text=messages.INVALID_NAME)
        return {"contact_name": None}


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
        dispatcher.utter_message(
            text="您之前登记过：" + "，".join(parts) + "。这次还用这些信息吗？",
            buttons=[{"title": "是的，就用这个", "payload": "/affirm"}, {"title": "不是，重新填写", "payload": "/deny"}])
        return []


class ActionAskTeam(Action):
    """Lists the volunteer teams to choose from."""

    def name(self) -> Text:
        return "action_ask_team"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        teams = await deps.get().teams()
        lines = "\n".join(f"{t.number}. {t.name}" for t in teams)
        dispatcher.utter_message(text=f"想加入哪支队伍？回复序号、颜色或队名都可以：\n{lines}")
        return []


class ActionAskAddress(Action):
    """Asks for the address: a home address, or only the building for a shared facility."""

    def name(self) -> Text:
        return "action_ask_address"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        form = (tracker.active_loop or {}).get("name")
        dispatcher.utter_message(text=messages.ASK_REPAIR_ADDRESS if form == "repair_form" else messages.ASK_ADDRESS)
        return []


class ActionAskPhone(Action):
    """Asks for a contact phone."""

    def name(self) -> Text:
        return "action_ask_phone"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        dispatcher.utter_message(text=messages.ASK_PHONE)
        return []


class ActionAskContactName(Action):
    """Asks for the volunteer's name."""

    def name(self) -> Text:
        return "action_ask_contact_name"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[Dict]:
        dispatcher.utter_message(text=messages.ASK_CONTACT_NAME)
        return []
