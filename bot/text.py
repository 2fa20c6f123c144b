"""Cleaning what residents type before it reaches the assistant."""

from __future__ import annotations

import re
import unicodedata

MAX_MESSAGE_CHARS = 500
_SPACES = re.compile(r"[ \t\u3000]+")


def clean_message(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Drop control and format characters, fold runs of spaces, trim, and cap the length."""
    if not isinstance(text, str):
        return ""
    kept = []
    for ch in text:
        if ch in "\n\t":
            kept.append(" " if ch == "\t" else ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in "\u200d\ufe0f":
            continue
        else:
            kept.append(ch)
    folded = _SPACES.sub(" ", "".join(kept))
    lines = [line.strip() for line in folded.split("\n")]
    return "\n".join(line for line in lines if line)[:limit].strip()
