"""Delivering a resident message row over WeChat: customer-service inside 48 hours, template message outside.

A resident who writes to a community's own Official Account (bot/wechat/accounts.py; `residents.wechat_appid`)
is written to through that account, with its template; everyone else through the shared account.

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
from bot.wechat.accounts import load_accounts, token_key
from bot.wechat.token import shared_token_stores

__all__ = ["CUSTOMER_SERVICE_WINDOW", "WeChatResidentSender", "housekeeping", "resident_sender"]

CUSTOMER_SERVICE_WINDOW = dt.timedelta(hours=48)
# WeChat answers these when it is busy or over quota: worth another try later.
_RETRYABLE = frozenset({-1, ERRCODE_QUOTA_EXCEEDED})


def _refused(exc: WeChatAPIError) -> DeliveryError:
    return DeliveryError(f"WeChat {exc.errcode}: {exc.errmsg}", retryable=exc.errcode in _RETRYABLE,
                         errcode=exc.errcode)


class WeChatResidentSender:
    """Sends `{"text": …, "template": {number, status, detail}}` payloads to one resident."""

    def __init__(self, client: Optional[WeChatClient], sessions: sessionmaker, *, template_id: str,
                 template_fields: Mapping[str, str], clock: Callable[[], dt.datetime] = dt.datetime.utcnow,
                 own: Mapping[str, Tuple[WeChatClient, str]] = {}) -> None:
        """`client` and `template_id` are the shared account's (client None: it cannot send); `own` maps each
        community account's appid to its client and template id."""
        self._client = client
        self._sessions = sessions
        self._template_id = template_id
        self._fields = dict(template_fields)
        self._clock = clock
        self._own = dict(own)

    def _standing(self, openid: str) -> Tuple[Optional[dt.datetime], bool, Optional[str]]:
        with unit_of_work(self._sessions) as session:
            row = session.query(Resident).filter_by(sender_id=openid).one_or_none()
            if row is None:
                return None, False, None
            return row.last_inbound_at, row.unsubscribed_at is not None, row.wechat_appid

    def _account(self, appid: Optional[str]) -> Tuple[WeChatClient, str, str]:
        """(client, template id, where the template id is set) of the account the resident writes to."""
        if appid is None:
            if self._client is None:
                raise DeliveryError("the shared Official Account cannot send (WECHAT_APPID/WECHAT_SECRET)",
                                    retryable=False)
            return self._client, self._template_id, "HG_WECHAT_TEMPLATE_ID"
        if appid not in self._own:
            raise DeliveryError(f"the resident's Official Account {appid} cannot send: it is not in the accounts "
                                "file (HG_WECHAT_ACCOUNTS) or has no secret", retryable=False)
        client, template_id = self._own[appid]
        return client, template_id, f"template_id of {appid} in HG_WECHAT_ACCOUNTS"

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """Deliver the message, or raise DeliveryError saying why not."""
        last_inbound, unfollowed, appid = await asyncio.to_thread(self._standing, recipient)
        if unfollowed:
            raise DeliveryError("the resident unfollowed the account", retryable=False)
        client, template_id, template_setting = self._account(appid)
        text = str(payload.get("text") or "")
        try:
            if last_inbound is not None and self._clock() - last_inbound < CUSTOMER_SERVICE_WINDOW:
                try:
                    await client.send_text(recipient, text)
                    return
                except WeChatAPIError as exc:
                    if exc.errcode != ERRCODE_OUT_OF_WINDOW:
                        raise _refused(exc) from None
            if not template_id:
                raise DeliveryError(f"WeChat {ERRCODE_OUT_OF_WINDOW}: outside the 48-hour customer-service window "
                                    f"and no template message is set up ({template_setting})", retryable=False,
                                    errcode=ERRCODE_OUT_OF_WINDOW)
            values: Dict[str, str] = {self._fields[k]: str(v) for k, v in (payload.get("template") or {}).items()
                                      if k in self._fields}
            await client.send_template(recipient, template_id, values)
        except WeChatAPIError as exc:
            raise _refused(exc) from None
        except WeChatUnavailable as exc:
            raise DeliveryError(f"WeChat unreachable: {exc.reason}", retryable=True) from None


@asynccontextmanager
async def resident_sender(settings: Settings, sessions: sessionmaker,
                          http: aiohttp.ClientSession) -> AsyncIterator[Optional[WeChatResidentSender]]:
    """The sender for this deployment (None when no account can send: neither WECHAT_APPID/WECHAT_SECRET nor a
    community account with a secret); each account's token is shared with the Rasa servers'."""
    accounts = [a for a in load_accounts(settings.wechat_accounts_file, settings.wechat_appid).values() if a.secret]
    shared = bool(settings.wechat_appid and settings.wechat_secret)
    if not shared and not accounts:
        yield None
        return
    async with shared_token_stores(settings.redis_url, settings.http_timeout, settings.local_state_path) as store:
        client = WeChatClient(http, settings.wechat_appid or "", settings.wechat_secret or "",
                              settings.wechat_api_base, store(""), settings.http_timeout) if shared else None
        own = {a.appid: (WeChatClient(http, a.appid, a.secret or "", a.api_base or settings.wechat_api_base,
                                      store(token_key(a.appid, settings.wechat_appid)), settings.http_timeout),
                         a.template_id or "")
               for a in accounts}
        yield WeChatResidentSender(client, sessions, template_id=settings.wechat_template_id,
                                   template_fields=settings.wechat_template_fields, own=own)


def housekeeping(settings: Settings, sessions: sessionmaker) -> Callable[[dt.datetime], None]:
    """The dispatcher's periodic work: fire due escalations, close tickets resolved 72 hours ago."""
    from bot.services import escalation, lifecycle

    ctx = lifecycle.Context.from_settings(settings)

    def run(now: dt.datetime) -> None:
        escalation.run(sessions, ctx, now)
        lifecycle.close_resolved(sessions, now)

    return run
