"""Sender ids: how each channel names the residents it speaks for, so no channel can speak as another's.

A sender id is what Rasa calls a conversation and what tickets, stored profiles, handoffs and photos are
keyed by. Two channels make them:

- WeChat (bot/channels/wechat.py): the resident's OpenID, unchanged — `oWX3s…`. WeChat signs the push,
  so on a real account the OpenID is WeChat's word. An OpenID never contains ':' (WeChat's are letters,
  digits, '-' and '_'); the web chat page's residents are WeChat identities too (`o_webchat_<id>`).
- REST (bot/channels/rest.py): whatever the client calls itself, in its own namespace — `rest:<sender>`.
  A REST client chooses its `sender` freely, so without the prefix it could name a resident's OpenID and
  read or cancel that resident's tickets.

Every REST id starts with `rest:` and no WeChat id contains ':', so the two sets never meet and
`rest_sender` is injective. `channel_of` answers which channel an id belongs to; only "wechat" ids can be
reached through the WeChat APIs. Ids stored before this namespacing (REST senders without the prefix) look
like OpenIDs and are classed "wechat"; a WeChat send to one fails as an invalid OpenID.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["MAX_REST_SENDER_CHARS", "MAX_SENDER_ID_CHARS", "REST_PREFIX", "Channel", "UnknownSenderId",
           "channel_of", "display_sender", "is_wechat", "is_wechat_openid", "rest_client", "rest_sender"]

Channel = Literal["rest", "wechat"]

REST_PREFIX = "rest:"
MAX_SENDER_ID_CHARS = 128  # the width of every sender_id column (bot/store/models.py)
MAX_REST_SENDER_CHARS = MAX_SENDER_ID_CHARS - len(REST_PREFIX)


class UnknownSenderId(ValueError):
    """A string no channel makes as a sender id (empty, too long, or an unknown `x:` namespace)."""

    def __init__(self, sender_id: str, reason: str) -> None:
        super().__init__(f"not a sender id ({reason}): {sender_id[:40]!r}")
        self.sender_id = sender_id
        self.reason = reason


def rest_sender(raw: str) -> str:
    """The sender id of a REST client that calls itself `raw` (any non-empty string of at most 123 characters)."""
    if not raw:
        raise UnknownSenderId(raw, "an empty REST sender")
    if len(raw) > MAX_REST_SENDER_CHARS:
        raise UnknownSenderId(raw, f"a REST sender over {MAX_REST_SENDER_CHARS} characters")
    return REST_PREFIX + raw


def rest_client(sender_id: str) -> str:
    """The REST client's own `sender` behind a REST sender id (the inverse of `rest_sender`)."""
    if channel_of(sender_id) != "rest":
        raise UnknownSenderId(sender_id, "not a REST sender id")
    return sender_id[len(REST_PREFIX):]


def is_wechat_openid(value: str) -> bool:
    """Whether `value` may be a WeChat OpenID (what the WeChat channel accepts as FromUserName)."""
    return bool(value) and ":" not in value and len(value) <= MAX_SENDER_ID_CHARS


def channel_of(sender_id: str) -> Channel:
    """The channel a sender id belongs to; `UnknownSenderId` for a string no channel makes."""
    if sender_id.startswith(REST_PREFIX):
        if len(sender_id) == len(REST_PREFIX) or len(sender_id) > MAX_SENDER_ID_CHARS:
            raise UnknownSenderId(sender_id, "a malformed REST sender id")
        return "rest"
    if is_wechat_openid(sender_id):
        return "wechat"
    raise UnknownSenderId(sender_id, "empty, too long, or an unknown namespace")


def is_wechat(sender_id: str) -> bool:
    """Whether the resident behind `sender_id` can be messaged over WeChat; False for anything else, never raises."""
    try:
        return channel_of(sender_id) == "wechat"
    except UnknownSenderId:
        return False


def display_sender(sender_id: str) -> str:
    """A sender id for people: the OpenID as it is, a REST client as `<sender> (REST)`, anything else quoted."""
    try:
        channel = channel_of(sender_id)
    except UnknownSenderId:
        return repr(sender_id)
    return f"{rest_client(sender_id)} (REST)" if channel == "rest" else sender_id
