"""Errors of the WeChat protocol layer; each carries the data the edge needs to answer or record it."""

from __future__ import annotations

from typing import Optional

from bot.errors import HongguanjiaError

__all__ = [
    "DecryptError",
    "MalformedMessage",
    "SignatureError",
    "StaleTimestamp",
    "WeChatAPIError",
    "WeChatError",
    "WeChatUnavailable",
]


class WeChatError(HongguanjiaError):
    """Base class for everything the WeChat layer raises on purpose."""

    code = "wechat_error"


class SignatureError(WeChatError):
    """A request's `signature` or `msg_signature` does not match the configured token."""

    code = "wechat_signature"


class StaleTimestamp(WeChatError):
    """A request's timestamp is not a number or lies outside the accepted window."""

    code = "wechat_stale_timestamp"

    def __init__(self, timestamp: str, now: float, window: int) -> None:
        super().__init__(f"timestamp {timestamp[:20]!r} outside ±{window}s", timestamp=timestamp, now=now,
                         window=window)
        self.timestamp = timestamp
        self.now = now
        self.window = window


class MalformedMessage(WeChatError):
    """An incoming body that is not a well-formed, safe WeChat XML message."""

    code = "wechat_malformed"

    def __init__(self, message: str = "", field: Optional[str] = None) -> None:
        super().__init__(message, field=field)
        self.field = field


class DecryptError(WeChatError):
    """An `Encrypt` value that does not decrypt to a message for this account."""

    code = "wechat_decrypt"

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot decrypt: {reason}", reason=reason)
        self.reason = reason


class WeChatAPIError(WeChatError):
    """The WeChat API answered with an errcode other than 0."""

    code = "wechat_api_error"

    def __init__(self, errcode: int, errmsg: str, api: Optional[str] = None) -> None:
        where = f"{api}: " if api else ""
        super().__init__(f"{where}errcode {errcode}: {errmsg}", errcode=errcode, errmsg=errmsg, api=api)
        self.errcode = errcode
        self.errmsg = errmsg
        self.api = api


class WeChatUnavailable(WeChatError):
    """The WeChat API could not be reached or gave no readable answer (timeout, network, HTTP status)."""

    code = "wechat_unavailable"

    def __init__(self, api: str, reason: str) -> None:
        super().__init__(f"{api}: {reason}", api=api, reason=reason)
        self.api = api
        self.reason = reason
