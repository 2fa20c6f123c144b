"""Reading one answer to the address question: pieces, bare numbers and corrections, merged into what is known."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping, Optional, Sequence

from bot.address import Address, AddressCheck, Estate, normalize_text, parse_address
from bot.address import AMBIGUOUS_COMMUNITY, UNKNOWN_BUILDING, UNKNOWN_COMMUNITY

__all__ = [
    "PARTS",
    "AddressReply",
    "address_from_slot",
    "address_to_slot",
    "merge",
    "missing_parts",
    "offered_suggestion",
    "read_reply",
    "restates",
    "without",
]

# The parts of an address, from the estate down to the door.
PARTS = ("community", "building", "unit", "room")

# Words that say something said before was wrong.
_CORRECTION = re.compile(r"不对|错了|说错|搞错|写错|弄错|打错|记错|不是|改成|改为|改一下|应该是|更正")
# "不是3号楼" (up to the next "是", punctuation or the end): the part that is wrong, not the one meant.
_NEGATED = re.compile(r"不是\s*([^，,。.；;！!？?\s]+?)(?=而是|是|[，,。.；;！!？?\s]|$)")
_TRIM = " \t\r\n，,。.！!？?~～、"
# Bare answers to a question about a missing part: "5", "5号", "301", "301室", "2-301".
_BARE_NUMBER = re.compile(r"(?:是|在|住|住在)?\s*([1-9]\d{0,3})\s*(号|室|户|房|单元)?")
_UNIT_ROOM = re.compile(r"(?:是|在|住|住在)?\s*([1-9]\d?)\s*-\s*([1-9]\d{2,3})\s*(?:室|号|户)?")


@dataclass(frozen=True)
class AddressReply:
    """What one message says about the address: the parts given, the parts taken back, and whether it corrects."""

    given: Address
    retracted: frozenset[str] = frozenset()
    correction: bool = False

    def is_empty(self) -> bool:
        """Return True when the message neither gives nor takes back any part."""
        return self.given.is_empty() and not self.retracted


def missing_parts(known: Address, *, require_unit: bool = True, require_room: bool = True) -> tuple[str, ...]:
    """Return the parts still missing from `known`, estate first."""
    wanted = ["community", "building"]
    if require_unit:
        wanted.append("unit")
    if require_room:
        wanted.append("room")
    return tuple(part for part in wanted if getattr(known, part) is None)


def _bare_answer(text: str, missing: Sequence[str]) -> Address:
    """Read a bare number as the part the question asked for (3-4 digits: a room; 1-2: building, then unit)."""
    folded = normalize_text(text).strip(_TRIM)
    pair = _UNIT_ROOM.fullmatch(folded)
    if pair and "unit" in missing and "room" in missing:
        return Address(unit=int(pair.group(1)), room=int(pair.group(2)))
    match = _BARE_NUMBER.fullmatch(folded)
    if not match:
        return Address()
    number, suffix = int(match.group(1)), match.group(2)
    if number >= 100:
        if "room" in missing and suffix in (None, "号", "室", "户", "房"):
            return Address(room=number)
        return Address()
    if suffix == "单元":
        return Address(unit=number)
    if suffix not in (None, "号"):
        return Address()
    for part in ("building", "unit"):
        if part in missing:
            return replace(Address(), **{part: number})
    return Address()


def read_reply(text: str, estates: Sequence[Estate], missing: Sequence[str] = ()) -> AddressReply:
    """Read the address parts an answer gives, the ones it says are wrong, and bare numbers for `missing` parts."""
    text = text or ""
    negated = [m.group(1) for m in _NEGATED.finditer(text)]
    kept = _NEGATED.sub("，", text)
    given = parse_address(kept, estates)
    correction = _CORRECTION.search(text) is not None
    if given.is_empty():
        # "错了，502" / "是502不是501": a correction with a bare 3-4 digit number can only mean the room.
        given = _bare_answer(_CORRECTION.sub("", kept), missing or (("room",) if correction else ()))
    wrong = parse_address("，".join(negated), estates) if negated else Address()
    retracted = frozenset(
        part for part in PARTS if getattr(wrong, part) is not None and getattr(given, part) is None
    )
    return AddressReply(given, retracted, correction)


def merge(known: Address, reply: AddressReply) -> Address:
    """Return `known` with the parts the reply takes back removed and the parts it gives put in."""
    changes: dict[str, Any] = {part: None for part in reply.retracted}
    for part in PARTS:
        value = getattr(reply.given, part)
        if value is not None:
            changes[part] = value
    return replace(known, **changes)


def without(known: Address, parts: Iterable[str]) -> Address:
    """Return `known` with the named parts removed."""
    return replace(known, **{part: None for part in parts})


def restates(reply: AddressReply, stored: Optional[Address]) -> bool:
    """Return True when the reply gives only parts that equal the stored address (and takes nothing back)."""
    if stored is None or reply.given.is_empty() or reply.retracted:
        return False
    return all(
        getattr(reply.given, part) is None or getattr(reply.given, part) == getattr(stored, part)
        for part in PARTS
    )


def offered_suggestion(check: AddressCheck) -> Optional[Address]:
    """Return the suggestion the resident is asked to accept: another estate, or the estate a wrong name resembles."""
    suggestion = check.suggestion
    if suggestion is None or suggestion.is_empty() or check.problem == AMBIGUOUS_COMMUNITY:
        return None
    if check.problem == UNKNOWN_COMMUNITY:
        return suggestion
    if check.problem == UNKNOWN_BUILDING and suggestion.community != check.address.community:
        return suggestion
    return None


def address_to_slot(address: Address) -> dict[str, Any]:
    """Return the address as a slot value (a plain dict)."""
    return {f.name: getattr(address, f.name) for f in fields(Address)}


def address_from_slot(value: Any) -> Address:
    """Return the address stored in a slot; anything malformed reads as no address."""
    if not isinstance(value, Mapping):
        return Address()
    community = value.get("community")
    numbers = {}
    for part in ("building", "unit", "room"):
        number = value.get(part)
        numbers[part] = int(number) if isinstance(number, (int, float)) and not isinstance(number, bool) else None
    return Address(community if isinstance(community, str) and community else None, **numbers)
