"""Turning the assistant's messages into WeChat text: one reply with numbered options, split to WeChat's limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Mapping, Sequence, Tuple

from bot import messages

__all__ = ["MAX_PART_BYTES", "MAX_PART_CHARS", "Option", "Rendered", "render_messages", "split_reply"]

# WeChat's text limit is 2048 bytes; stay clear of it, and keep parts short enough to read on a phone.
MAX_PART_BYTES = 2000
MAX_PART_CHARS = 600
MAX_OPTIONS = 9  # residents answer with one digit


@dataclass(frozen=True)
class Option:
    """A button the assistant offered: what the resident sees and what choosing it sends."""

    title: str
    payload: str


@dataclass(frozen=True)
class Rendered:
    """One reply text, and the options numbered in it (in order: option 1 first)."""

    text: str
    options: Tuple[Option, ...] = ()


def _options_of(message: Mapping[str, Any]) -> List[Option]:
    found: List[Option] = []
    for key in ("buttons", "quick_replies"):
        for button in message.get(key) or []:
            if not isinstance(button, Mapping):
                continue
            title = str(button.get("title") or "").strip()
            payload = str(button.get("payload") or "").strip()
            if title and payload:
                found.append(Option(title, payload))
    return found


def render_messages(bot_messages: Sequence[Mapping[str, Any]]) -> Rendered:
    """The bot messages of one turn as one text: messages separated by a blank line, buttons as "1. …" lines."""
    blocks: List[str] = []
    options: List[Option] = []
    for message in bot_messages:
        lines: List[str] = []
        text = message.get("text")
        if isinstance(text, str) and text.strip():
            lines.append(text.strip())
        image = message.get("image")
        if isinstance(image, str) and image.strip():
            lines.append(image.strip())
        offered = _options_of(message)[:MAX_OPTIONS - len(options)]
        for option in offered:
            options.append(option)
            lines.append(f"{len(options)}. {option.title}")
        if offered:
            lines.append(messages.WECHAT_OPTIONS_HINT)
        if lines:
            blocks.append("\n".join(lines))
    return Rendered("\n\n".join(blocks), tuple(options))


def _fits(text: str, max_bytes: int, max_chars: int) -> bool:
    return len(text) <= max_chars and len(text.encode("utf-8")) <= max_bytes


def _hard_split(line: str, max_bytes: int, max_chars: int) -> List[str]:
    parts: List[str] = []
    current = ""
    size = 0
    for ch in line:
        width = len(ch.encode("utf-8"))
        if current and (len(current) + 1 > max_chars or size + width > max_bytes):
            parts.append(current)
            current, size = "", 0
        current += ch
        size += width
    if current:
        parts.append(current)
    return parts


def split_reply(text: str, max_bytes: int = MAX_PART_BYTES, max_chars: int = MAX_PART_CHARS) -> List[str]:
    """`text` in parts within both limits, cut at line breaks where possible."""
    text = text.strip()
    if not text:
        return []
    if _fits(text, max_bytes, max_chars):
        return [text]
    parts: List[str] = []
    current = ""
    for line in text.split("\n"):
        pieces = [line] if _fits(line, max_bytes, max_chars) else _hard_split(line, max_bytes, max_chars)
        for piece in pieces:
            candidate = f"{current}\n{piece}" if current else piece
            if _fits(candidate, max_bytes, max_chars):
                current = candidate
            else:
                if current.strip():
                    parts.append(current.strip())
                current = piece
    if current.strip():
        parts.append(current.strip())
    return parts
