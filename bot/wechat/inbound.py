"""What each kind of WeChat push asks of the assistant: a route, decided from the message alone.

Text and recognised voice go to the assistant (a bare number may pick an offered option); menu
clicks start a flow by its intent; a photo goes to the resident's ticket; the rest are answered
at once with a fixed text, or not at all (`Silent`, answered `success`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Union

from bot import messages
from bot.text import clean_message
from bot.wechat.messages import (
    ClickEvent,
    ImageMessage,
    IncomingMessage,
    LocationMessage,
    SubscribeEvent,
    TextMessage,
    UnknownMessage,
    UnsubscribeEvent,
    ViewEvent,
    VoiceMessage,
)

__all__ = [
    "AttachImage",
    "MENU_PAYLOADS",
    "Reply",
    "Route",
    "Silent",
    "Subscribed",
    "ToAssistant",
    "Unsubscribed",
    "route",
]

# CLICK menu keys (see data/wechat/menu.json) and the intent each one starts.
MENU_PAYLOADS: Mapping[str, str] = {
    "REPORT_LEAK": "/report_leak",
    "REPAIR": "/request_repair",
    "CLINIC": "/ask_clinic",
    "VOLUNTEER": "/volunteer_signup",
    "MY_TICKETS": "/check_ticket",
    "HUMAN": "/human_handoff",
}


@dataclass(frozen=True)
class ToAssistant:
    """Run a turn with `text`; `typed` when the resident wrote (or said) it, so "1" may pick an option."""

    text: str
    typed: bool = True


@dataclass(frozen=True)
class Reply:
    """Answer at once with this text; no turn."""

    text: str


@dataclass(frozen=True)
class AttachImage:
    """Attach the photo to the resident's ticket (or keep it for the next one) and tell them which."""

    media_id: str
    pic_url: str


@dataclass(frozen=True)
class Subscribed:
    """The resident followed the account: note it and welcome them (messages.wechat_welcome, naming the community)."""


@dataclass(frozen=True)
class Unsubscribed:
    """The resident unfollowed: note it; nothing can be sent to them any more."""


@dataclass(frozen=True)
class Silent:
    """Nothing to say (answer `success`)."""


Route = Union[ToAssistant, Reply, AttachImage, Subscribed, Unsubscribed, Silent]


def _typed(text: Optional[str]) -> Route:
    cleaned = clean_message(text)
    return ToAssistant(cleaned) if cleaned else Reply(messages.EMPTY_MESSAGE)


def route(message: IncomingMessage) -> Route:
    """The route for one parsed push."""
    if isinstance(message, TextMessage):
        return _typed(message.content)
    if isinstance(message, VoiceMessage):
        if message.recognition and clean_message(message.recognition):
            return _typed(message.recognition)
        return Reply(messages.WECHAT_VOICE_UNRECOGNISED)
    if isinstance(message, ImageMessage):
        return AttachImage(message.media_id, message.pic_url)
    if isinstance(message, LocationMessage):
        return Reply(messages.wechat_location_hint(clean_message(message.label)))
    if isinstance(message, SubscribeEvent):
        return Subscribed()
    if isinstance(message, UnsubscribeEvent):
        return Unsubscribed()
    if isinstance(message, ClickEvent):
        payload = MENU_PAYLOADS.get(message.key.strip())
        return ToAssistant(payload, typed=False) if payload else Reply(messages.WECHAT_UNKNOWN_MENU)
    if isinstance(message, ViewEvent):
        return Silent()  # the menu opened a web page; WeChat shows it, nothing to add
    if isinstance(message, UnknownMessage) and message.is_event:
        # Events such as LOCATION (reported every few seconds) or TEMPLATESENDJOBFINISH are not
        # something the resident said; replying to them would be noise.
        return Silent()
    return Reply(messages.WECHAT_UNSUPPORTED)
