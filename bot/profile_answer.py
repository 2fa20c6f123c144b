"""Reading the answer to "use the details you gave last time?": yes, no, a restatement, a correction, or a miss."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

from bot.address import Address, Estate
from bot.address_reply import merge, read_reply, restates
from bot.phone import normalize_phone

__all__ = ["ProfileAnswer", "read_profile_answer"]

_TRIM = re.compile(r"[\s，,。.！!？?~～、]+")
# Short answers the NLU may not label affirm/deny (typed by elderly residents, or by voice).
_YES = {"是", "是的", "是滴", "对", "对的", "对对", "对对对", "没错", "嗯", "嗯嗯", "好", "好的", "行", "可以", "用",
        "就用这个", "用这个", "还用", "一样", "一样的", "没变", "没变化", "不变", "是的就用这个"}
_NO = {"不", "不是", "不对", "不用", "不要", "换一个", "重新填写", "重新填", "重填", "变了", "不是重新填写"}
# "I don't know / don't understand" is not a no, whatever the NLU makes of it (the model may say deny): a miss,
# so the resident is helped (buttons, then a person) instead of losing the stored details.
_UNSURE = re.compile(r"不知道|不清楚|不晓得|不懂|不明白|不太懂|不确定|说不好|搞不清|啥意思|什么意思")


@dataclass(frozen=True)
class ProfileAnswer:
    """The resident's answer: `use` is None when it did not fit the question."""

    use: Optional[bool]
    address: Optional[Address] = None  # the stored address with the parts the resident changed
    phone: Optional[str] = None  # a phone given in place of the stored one


def read_profile_answer(text: str, intent: str, estates: Sequence[Estate], *, stored_address: Optional[Address],
                        stored_phone: Optional[str], stored_name: Optional[str]) -> ProfileAnswer:
    """Read an answer to the profile question; restating the stored details counts as yes."""
    compact = _TRIM.sub("", text or "")
    reply = read_reply(text, estates)
    phone = normalize_phone(text or "")
    new_phone = phone if phone and phone != stored_phone else None
    if not reply.is_empty() and stored_address is not None and not restates(reply, stored_address):
        # Only what the resident changed is replaced ("不对，是4号楼"); the rest of the profile still holds.
        return ProfileAnswer(True, merge(stored_address, reply), new_phone)
    if new_phone:
        return ProfileAnswer(True, None, new_phone)
    if compact in _NO:
        return ProfileAnswer(False)
    if intent == "affirm" or compact in _YES:
        return ProfileAnswer(True)
    if phone or (not reply.is_empty() and stored_address is not None):
        return ProfileAnswer(True)  # restated the stored phone or address
    if stored_name and stored_name in compact:
        return ProfileAnswer(True)  # typed the stored name again
    if _UNSURE.search(compact):
        return ProfileAnswer(None)
    if intent == "deny" or reply.correction:
        return ProfileAnswer(False)
    return ProfileAnswer(None)
