"""Delivering a resident message row over WeChat: customer-service inside 48 hours, template message outside.

The 48-hour window is counted from the resident's last message to the account (`residents.last_inbound_at`,
kept by the WeChat channel). If WeChat still answers 45015 (the window closed meanwhile), the template
message is tried. A refusal becomes a DeliveryError with the errcode, so the dispatcher records it on the
row and staff see it on the ticket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, Mapping, Optional, Tuple

import aiohttp
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.errors import DeliveryError
from bot.store.db import unit_of_work
from bot.store.models import Resident
from bot.wechat.client import ERRCODE_OUT_OF_WINDOW, ERRCODE_QUOTA_EXCEEDED, WeChatClient
from bot.wechat.errors import WeChatAPIError, WeChatUnavailable
from bot.wechat.token import shared_token_store

__all__ = ["CUSTOMER_SERVICE_WINDOW", "WeChatResidentSender", "housekeeping", "resident_sender"]

CUSTOMER_SERVICE_WINDOW = dt.timedelta(hours=48)
# WeChat answers these when it is busy or over quota: worth another try later.
_RETRYABLE = frozenset({-1, ERRCODE_QUOTA_EXCEEDED})


def _refused(exc: WeChatAPIError) -> DeliveryError:
    return DeliveryError(f"WeChat {exc.errcode}: {exc.errmsg}", retryable=exc.errcode in _RETRYABLE,
                         errcode=exc.errcode)


class WeChatResidentSender:
    """Sends `{"text": …, "template": {number, status, detail}}` payloads to one resident."""

    def __init__(self, client: WeChatClient, sessions: sessionmaker, *, template_id: str,
                 template_fields: Mapping[str, str], clock: Callable[[], dt.datetime] = dt.datetime.utcnow) -> None:
        self._client = client
        self._sessions = sessions
        self._template_id = template_id
        self._fields = dict(template_fields)
        self._clock = clock

    def _standing(self, openid: str) -> Tuple[Optional[dt.datetime], bool]:
        with unit_of_work(self._sessions) as session:
            row = session.query(Resident).filter_by(sender_id=openid).one_or_none()
            if row is None:
                return None, False
            return row.last_inbound_at, row.unsubscribed_at is not None

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """Deliver the message, or raise DeliveryError saying why not."""
        last_inbound, unfollowed = await asyncio.to_thread(self._standing, recipient)
        if unfollowed:
            raise DeliveryError("the resident unfollowed the account", retryable=False)
        text = str(payload.get("text") or "")
        try:
            if last_inbound is not None and self._clock() - last_inbound < CUSTOMER_SERVICE_WINDOW:
                try:
                    await self._client.send_text(recipient, text)
                    return
                except WeChatAPIError as exc:
                    if exc.errcode != ERRCODE_OUT_OF_WINDOW:
                        raise _refused(exc) from None
            if not self._template_id:
                raise DeliveryError(f"WeChat {ERRCODE_OUT_OF_WINDOW}: outside the 48-hour customer-service window "
                                    "and no template message is set up (HG_WECHAT_TEMPLATE_ID)", retryable=False, errcode=ERRCODE_OUT_OF_WINDOW)
            values: Dict[str, str] = {self._fields[k]: str(v) for k, v in (payload.get("template") or {}).items()
                                      if k in self._fields}
            await self._client.send_template(recipient, self._template_id, values)
        except WeChatAPIError as exc:
            raise _refused(exc) from None
        except WeChatUnavailable as exc:
            raise DeliveryError(f"WeChat unreachable: {exc.reason}", retryable=True) from None


@asynccontextmanager
async def resident_sender(settings: Settings, sessions: sessionmaker,
                          http: aiohttp.ClientSession) -> AsyncIterator[Optional[WeChatResidentSender]]:
    """The sender for this deployment (None without WECHAT_APPID/WECHAT_SECRET); its token is shared."""
    if not settings.wechat_appid or not settings.wechat_secret:
        yield None
        return
    async with shared_token_store(settings.redis_url, settings.http_timeout, settings.local_state_path) as store:
        client = WeChatClient(http, settings.wechat_appid, settings.wechat_secret, settings.wechat_api_base, store,
                              settings.http_timeout)
        yield WeChatResidentSender(client, sessions, template_id=settings.wechat_template_id,
                                   template_fields=settings.wechat_template_fields)


def housekeeping(settings: Settings, sessions: sessionmaker) -> Callable[[dt.datetime], None]:
    """The dispatcher's periodic work: fire due escalations, close tickets resolved 72 hours ago."""
    from bot.services import escalation, lifecycle

    ctx = lifecycle.Context.from_settings(settings)

    def run(now: dt.datetime) -> None:
        escalation.run(sessions, ctx, now)
        lifecycle.close_resolved(sessions, now)

    return run
