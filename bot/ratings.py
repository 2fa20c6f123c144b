"""Reading a resident's answer to "满意吗？回复1-5分": a score with an optional comment, or "没修好" (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "１": 1, "２": 2, "３": 3, "４": 4, "５": 5}
# "5", "5分", "五分", "4分，师傅很负责", "打5分"; a bare digit only counts when it stands alone.
_SCORE = re.compile(r"^\s*(?:打|给|评)?\s*([1-5一二两三四五１-５])\s*(分|星)?\s*[，,。.!！、\s]*(.*)$", re.S)
_NOT_FIXED = re.compile(r"没修好|没有修好|没弄好|没有弄好|还没好|还是坏|还坏着|还在漏|又漏|又坏|没解决|没有解决")
_SATISFIED = {"满意": 5, "非常满意": 5, "很满意": 5, "挺满意": 4, "还行": 3, "一般": 3, "不满意": 2, "很不满意": 1}


@dataclass(frozen=True)
class Answer:
    """What the resident said: a score (1-5) with a comment, or that it is not fixed."""

    score: Optional[int]
    comment: str
    not_fixed: bool
    explicit: bool  # "5分"/"满意"/"没修好", not just a bare digit


def read_answer(text: str) -> Optional[Answer]:
    """The resident's rating answer in `text`, or None when it is not one."""
    text = (text or "").strip()
    if not text or len(text) > 200:
        return None
    if _NOT_FIXED.search(text):
        return Answer(None, text, True, True)
    bare = text.rstrip("。.!！~～")
    if bare in _SATISFIED:
        return Answer(_SATISFIED[bare], "", False, True)
    match = _SCORE.match(text)
    if match is None:
        return None
    digit, unit, rest = match.groups()
    if rest and not unit:
        return None  # "5号楼漏水" is not a rating
    score = _DIGITS.get(digit) or int(digit)
    return Answer(score, rest.strip()[:500], False, bool(unit))
