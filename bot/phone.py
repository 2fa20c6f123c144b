"""Phone numbers: mainland mobiles and Tianjin landlines, found, validated and masked."""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

__all__ = ["TIANJIN_AREA_CODE", "is_valid_phone", "mask_phone", "mask_phones_in", "normalize_phone"]

TIANJIN_AREA_CODE = "022"

_DASHES = re.compile("[\u2010-\u2015\u2212\ufe58\ufe63\uff0d]")
_SEP = r"[\s-]?"

# Ticket numbers (HG-20261128-0001) and the like are removed before searching,
# so their digits cannot pass for a local landline number.
_TICKET = re.compile(r"[A-Za-z]{1,5}\s*-\s*\d{6,}(?:\s*-\s*\d+)*|[A-Za-z]{1,5}\d{6,}\s*-\s*\d+")

_MOBILE = re.compile(
    r"(?<![\d+])"
    r"(?:(?:\+|00)\s*86[\s-]*|86[\s-]+|86(?=1[3-9]\d{9}(?!\d)))?"
    r"(1[3-9](?:" + _SEP + r"\d){9})"
    r"(?![\d])"
)

# An optional area code (captured, so that non-Tianjin codes can be refused)
# followed by an 8-digit local number whose first digit is 2-8.
_LANDLINE = re.compile(
    r"(?<![\d+])"
    r"(?:(?:\+|00)\s*86[\s-]*(?:\(\s*)?0?(22)\s*\)?[\s-]*"
    r"|\(\s*(0\d{2,3})\s*\)[\s-]*"
    r"|(0\d{2,3})[\s-]*)?"
    r"([2-8]\d{3})" + _SEP + r"(\d{4})"
    r"(?![\d])(?!-\d)"
)


def _fold(text: str) -> str:
    """Fold full-width digits, brackets and dashes to ASCII."""
    return _DASHES.sub("-", unicodedata.normalize("NFKC", text))


def _landline(match: re.Match[str]) -> Optional[str]:
    """Return 022-XXXXXXXX for a Tianjin match, None for another area code."""
    code = match.group(1) or match.group(2) or match.group(3)
    if code is not None and code.lstrip("0") != "22":
        return None
    return f"{TIANJIN_AREA_CODE}-{match.group(4)}{match.group(5)}"


def normalize_phone(text: str) -> Optional[str]:
    """Return the first phone number in free text as 13812345678 or 022-23456789, else None."""
    if not text:
        return None
    folded = _TICKET.sub(lambda m: " " * len(m.group(0)), _fold(text))
    found: list[tuple[int, str]] = []
    for match in _MOBILE.finditer(folded):
        found.append((match.start(), re.sub(r"\D", "", match.group(1))))
        break
    for match in _LANDLINE.finditer(folded):
        number = _landline(match)
        if number is not None:
            found.append((match.start(), number))
            break
    if not found:
        return None
    return min(found)[1]


def is_valid_phone(s: str) -> bool:
    """Return True when the whole string is one mobile or Tianjin landline number."""
    if not s:
        return False
    folded = _fold(s).strip()
    for pattern in (_MOBILE, _LANDLINE):
        match = pattern.fullmatch(folded)
        if match is None:
            continue
        if pattern is _MOBILE or _landline(match) is not None:
            return True
    return False


def mask_phone(p: str) -> str:
    """Hide the middle digits: 138****5678, 022-****6789; anything else becomes ****."""
    number = normalize_phone(p) if p else None
    if number is None:
        return "****"
    if number.startswith(TIANJIN_AREA_CODE + "-"):
        return f"{TIANJIN_AREA_CODE}-****{number[-4:]}"
    return f"{number[:3]}****{number[-4:]}"


_PHONE_IN_TEXT = re.compile(r"(?<!\d)(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")


def mask_phones_in(text: str) -> str:
    """Mask every mobile number inside free text (for group messages)."""
    return _PHONE_IN_TEXT.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
