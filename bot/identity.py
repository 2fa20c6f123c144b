"""Sender ids namespaced per channel, so that a REST sender can never be a WeChat OpenID."""

from __future__ import annotations

from typing import Literal

REST_PREFIX = "rest:"


def rest_sender(raw: str) -> str:
    """The sender id of a REST client that calls itself `raw`."""
    return REST_PREFIX + raw


def channel_of(sender_id: str) -> Literal["rest", "wechat"]:
    """Which channel a sender id belongs to (only "wechat" ids can be messaged over WeChat)."""
    return "rest" if sender_id.startswith(REST_PREFIX) or ":" in sender_id else "wechat"
