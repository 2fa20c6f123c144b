"""Typed incoming WeChat messages, built from parsed XML fields through a registry, and the text reply."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Dict, Mapping, Optional, Type, TypeVar

from bot.identity import is_wechat_openid
from bot.wechat.errors import MalformedMessage
from bot.wechat.xmlsafe import to_xml

__all__ = [
    "ClickEvent",
    "ImageMessage",
    "IncomingMessage",
    "LinkMessage",
    "LocationMessage",
    "SubscribeEvent",
    "TextMessage",
    "UnknownMessage",
    "UnsubscribeEvent",
    "ViewEvent",
    "VoiceMessage",
    "parse_message",
    "render_text_reply",
]

QR_SCENE_PREFIX = "qrscene_"

_M = TypeVar("_M", bound="IncomingMessage")
_MESSAGE_TYPES: Dict[str, Type["IncomingMessage"]] = {}
_EVENT_TYPES: Dict[str, Type["IncomingMessage"]] = {}


def _message_type(msg_type: str) -> Callable[[Type[_M]], Type[_M]]:
    def register(cls: Type[_M]) -> Type[_M]:
        """Record `cls` as the class for this MsgType."""
        _MESSAGE_TYPES[msg_type] = cls
        return cls

    return register


def _event_type(event: str) -> Callable[[Type[_M]], Type[_M]]:
    def register(cls: Type[_M]) -> Type[_M]:
        """Record `cls` as the class for this Event."""
        _EVENT_TYPES[event.lower()] = cls
        return cls

    return register


def _required(fields: Mapping[str, str], name: str) -> str:
    if name not in fields:
        raise MalformedMessage(f"missing <{name}>", field=name)
    return fields[name]


def _integer(fields: Mapping[str, str], name: str) -> int:
    raw = _required(fields, name).strip()
    if not (raw.isascii() and raw.isdecimal()):
        raise MalformedMessage(f"<{name}> is not a whole number", field=name)
    return int(raw)


def _coordinate(fields: Mapping[str, str], name: str) -> float:
    try:
        value = float(_required(fields, name).strip())
    except ValueError:
        raise MalformedMessage(f"<{name}> is not a number", field=name) from None
    if not math.isfinite(value):
        raise MalformedMessage(f"<{name}> is not a finite number", field=name)
    return value


@dataclass(frozen=True)
class IncomingMessage:
    """What every push carries: the account (`to_user`), the user's OpenID (`from_user`), time and MsgId."""

    to_user: str
    from_user: str
    create_time: int
    msg_id: Optional[str]

    is_event: ClassVar[bool] = False

    @property
    def dedupe_key(self) -> str:
        """Identity of this push across WeChat's retries: MsgId, or FromUserName + CreateTime for events."""
        if self.msg_id and not self.is_event:
            return self.msg_id
        return f"{self.from_user}:{self.create_time}"

    def reply_text(self, content: str, create_time: int) -> str:
        """A passive text reply to this message (To and From swapped)."""
        return render_text_reply(self.from_user, self.to_user, content, create_time)

    @classmethod
    def build(cls: Type[_M], common: Dict[str, object], fields: Mapping[str, str]) -> _M:
        """This type from the common values and the raw fields (subclasses read their own fields)."""
        return cls(**common)  # type: ignore[arg-type]


@_message_type("text")
@dataclass(frozen=True)
class TextMessage(IncomingMessage):
    """A text message."""

    content: str

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "TextMessage":
        """A TextMessage from its `Content`."""
        return cls(**common, content=_required(fields, "Content"))  # type: ignore[arg-type]


@_message_type("voice")
@dataclass(frozen=True)
class VoiceMessage(IncomingMessage):
    """A voice message; `recognition` is WeChat's transcript when speech recognition is switched on."""

    media_id: str
    format: str
    recognition: Optional[str]

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "VoiceMessage":
        """A VoiceMessage from `MediaId`, `Format` and the optional `Recognition`."""
        return cls(  # type: ignore[arg-type]
            **common,
            media_id=_required(fields, "MediaId"),
            format=_required(fields, "Format"),
            recognition=fields.get("Recognition") or None,
        )


@_message_type("image")
@dataclass(frozen=True)
class ImageMessage(IncomingMessage):
    """A picture."""

    pic_url: str
    media_id: str

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "ImageMessage":
        """An ImageMessage from `PicUrl` and `MediaId`."""
        return cls(**common, pic_url=_required(fields, "PicUrl"),  # type: ignore[arg-type]
                   media_id=_required(fields, "MediaId"))


@_message_type("location")
@dataclass(frozen=True)
class LocationMessage(IncomingMessage):
    """A location the user shared: latitude `x`, longitude `y`, map zoom `scale` and a place `label`."""

    x: float
    y: float
    scale: int
    label: str

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "LocationMessage":
        """A LocationMessage from `Location_X`, `Location_Y`, `Scale` and `Label`."""
        return cls(  # type: ignore[arg-type]
            **common,
            x=_coordinate(fields, "Location_X"),
            y=_coordinate(fields, "Location_Y"),
            scale=_integer(fields, "Scale"),
            label=fields.get("Label", ""),
        )


@_message_type("link")
@dataclass(frozen=True)
class LinkMessage(IncomingMessage):
    """A shared link."""

    title: str
    description: str
    url: str

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "LinkMessage":
        """A LinkMessage from `Title`, `Description` and `Url`."""
        return cls(  # type: ignore[arg-type]
            **common,
            title=_required(fields, "Title"),
            description=_required(fields, "Description"),
            url=_required(fields, "Url"),
        )


@_event_type("subscribe")
@dataclass(frozen=True)
class SubscribeEvent(IncomingMessage):
    """The user followed the account; `scene` is the QR-code scene (`qrscene_…` without the prefix), if any."""

    scene: Optional[str]

    is_event: ClassVar[bool] = True

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "SubscribeEvent":
        """A SubscribeEvent with the scene taken from `EventKey`."""
        key = fields.get("EventKey", "")
        scene = key[len(QR_SCENE_PREFIX):] if key.startswith(QR_SCENE_PREFIX) else None
        return cls(**common, scene=scene or None)  # type: ignore[arg-type]


@_event_type("unsubscribe")
@dataclass(frozen=True)
class UnsubscribeEvent(IncomingMessage):
    """The user unfollowed the account; no reply reaches them any more."""

    is_event: ClassVar[bool] = True


@_event_type("CLICK")
@dataclass(frozen=True)
class ClickEvent(IncomingMessage):
    """A CLICK menu button was pressed; `key` is the button's key."""

    key: str

    is_event: ClassVar[bool] = True

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "ClickEvent":
        """A ClickEvent from `EventKey`."""
        return cls(**common, key=_required(fields, "EventKey"))  # type: ignore[arg-type]


@_event_type("VIEW")
@dataclass(frozen=True)
class ViewEvent(IncomingMessage):
    """A VIEW menu button was pressed; `url` is the page it opens."""

    url: str

    is_event: ClassVar[bool] = True

    @classmethod
    def build(cls, common: Dict[str, object], fields: Mapping[str, str]) -> "ViewEvent":
        """A ViewEvent from `EventKey`."""
        return cls(**common, url=_required(fields, "EventKey"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class UnknownMessage(IncomingMessage):
    """A message type or event this bot does not handle; the raw fields are kept for logs."""

    msg_type: str
    event: Optional[str] = None
    fields: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_event(self) -> bool:  # type: ignore[override]
        """Whether this is an event (and so has no MsgId)."""
        return self.msg_type == "event"


def parse_message(fields: Mapping[str, str]) -> IncomingMessage:
    """The typed message for parsed XML fields; MalformedMessage when a required field is missing."""
    msg_type = _required(fields, "MsgType").strip()
    common: Dict[str, object] = {
        "to_user": _required(fields, "ToUserName"),
        "from_user": _required(fields, "FromUserName"),
        "create_time": _integer(fields, "CreateTime"),
        "msg_id": fields.get("MsgId") or None,
    }
    if not common["from_user"]:
        raise MalformedMessage("empty <FromUserName>", field="FromUserName")
    if not is_wechat_openid(str(common["from_user"])):
        # An OpenID never contains ':'; one that did could speak as a REST client (bot/identity.py).
        raise MalformedMessage("<FromUserName> is not an OpenID", field="FromUserName")
    if msg_type == "event":
        event = _required(fields, "Event").strip()
        cls = _EVENT_TYPES.get(event.lower())
        if cls is None:
            return UnknownMessage(  # type: ignore[arg-type]
                **common, msg_type=msg_type, event=event, fields=dict(fields))
        return cls.build(common, fields)
    cls = _MESSAGE_TYPES.get(msg_type)
    if cls is None:
        return UnknownMessage(**common, msg_type=msg_type, fields=dict(fields))  # type: ignore[arg-type]
    return cls.build(common, fields)


def render_text_reply(to_user: str, from_user: str, content: str, create_time: int) -> str:
    """A passive text reply; `to_user` is the user's OpenID and `from_user` the account, as given."""
    return to_xml({
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": int(create_time),
        "MsgType": "text",
        "Content": content,
    })
