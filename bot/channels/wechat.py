"""The WeChat Official Account channel: signed (and in safe mode encrypted) XML pushes in, WeChat replies out.

Served at /webhooks/wechat/webhook (the shared account) and at /webhooks/wechat/webhook/<community key> for each
community with an Official Account of its own (bot/wechat/accounts.py, HG_WECHAT_ACCOUNTS), verified with that
account's token and key; an unknown key is 404:

- GET  URL verification: `signature` over [token, timestamp, nonce] → `echostr` unchanged, else 403.
- POST a push in plaintext, compatible or safe mode. Refused before anything else happens: a body over
  the cap (Content-Length or actual bytes) → 413; a bad signature or a timestamp more than 300 s off
  → 403; malformed XML/UTF-8 or an `Encrypt` that does not decrypt → 400. A good push is answered
  within WeChat's 5 s: a passive reply when the assistant is done within `passive_seconds`
  (HG_WECHAT_PASSIVE_SECONDS, 4 s), otherwise `success` and the reply follows through the
  customer-service API (failures land in `delivery_failures`). Retries of a push never run a second turn.

Configuration: Rasa reads credentials.yml with `${VAR}` substitution that fails on an unset variable,
so credentials.yml names this channel without values and `from_credentials` reads the settings
(WECHAT_TOKEN, WECHAT_APPID, WECHAT_SECRET, WECHAT_AES_KEY, WECHAT_API_BASE, REDIS_URL) itself; keys
given in credentials.yml (token, appid, secret, aes_key, api_base, redis_url, passive_seconds) win.
Without WECHAT_TOKEN the server still starts (`make run` needs no WeChat account) and both routes
answer 503 with the reason: with no token nothing can be verified, and 503 says "not here" honestly
instead of pretending a signature was wrong. Without WECHAT_APPID/WECHAT_SECRET passive replies work
and replies that would need the customer-service API are recorded as delivery failures.

The Rasa sender id is the resident's OpenID (unique per account). A resident writing to a community's own account
is that community's until they give an estate, and late replies go out through the same account.

The same blueprint carries the WeChat-style web chat page under /webhooks/wechat/chat (bot/channels/webchat.py):
off unless HG_WEBCHAT=1, and refused whenever the channel is not on the demo account with a local fake API.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, Mapping, Optional, Sequence, Set, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from bot import messages
from bot.channels.webchat import DEFAULT_TITLE, WebChat
from bot.config import Settings
from bot.services import announcements, attachments, community, deliveries, ratings, residents
from bot.services.lifecycle import Context
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Community
from bot.wechat import inbound
from bot.wechat.accounts import Account, load_accounts
from bot.wechat.crypto import MessageCrypto
from bot.wechat.delivery import Failure, deliver_parts
from bot.wechat.envelope import SafeModeUnavailable, open_push, seal_reply, verify_query
from bot.wechat.errors import DecryptError, MalformedMessage, SignatureError, StaleTimestamp
from bot.wechat.messages import IncomingMessage, parse_message
from bot.wechat.options import choose
from bot.wechat.render import render_messages
from bot.wechat.responder import Responder
from bot.wechat.runtime import WeChatConfig, WeChatResources

logger = logging.getLogger(__name__)

NewMessageHandler = Callable[[UserMessage], Awaitable[Any]]
CREDENTIAL_KEYS = ("token", "appid", "secret", "aes_key", "api_base", "redis_url", "passive_seconds")
NOT_CONFIGURED = "WeChat channel not configured: set WECHAT_TOKEN (and WECHAT_APPID, WECHAT_SECRET, WECHAT_AES_KEY)"
DRAIN_SECONDS = 10.0
# How often the own accounts' communities are looked up again: a community loaded (or its wechat_account corrected)
# after start-up is served within that time, and one that now names another appid is refused, without
# a restart.
RECHECK_SECONDS = 10.0


class BodyTooLarge(Exception):
    """A request body over the channel's cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes")
        self.limit = limit


@dataclass
class _Endpoint:
    """One Official Account's server URL: the shared account (`community` None) or a community's own."""

    community: Optional[str]
    config: WeChatConfig
    crypto: Optional[MessageCrypto]
    responder: Optional[Responder] = None
    unavailable: Optional[str] = None  # why pushes get 503: the community is not loaded, or names another appid

    @property
    def appid(self) -> Optional[str]:
        """The appid residents of this endpoint are recorded with (None: the shared account)."""
        return self.config.appid if self.community else None


class WeChatInput(InputChannel):
    """Rasa input channel for a WeChat Official Account server URL (and one per community's own account)."""

    def __init__(self, config: WeChatConfig, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, webchat: bool = False,
                 accounts: Mapping[str, Account] = {}) -> None:
        """`clock` is wall time (timestamps, replies); `monotonic` measures the passive-reply budget;
        `webchat` asks for the web chat page (HG_WEBCHAT), which still serves only on demo credentials;
        `accounts` are the communities' own Official Accounts by community key."""
        self.config = config
        self.webchat = WebChat(config, webchat, title=lambda: self._community_name(self._shared, DEFAULT_TITLE))
        self._clock = clock
        self._monotonic = monotonic
        # a malformed EncodingAESKey stops the server at start-up
        self._shared = _Endpoint(None, config, config.crypto())
        self._own: Dict[str, _Endpoint] = {}
        for key, account in accounts.items():
            own = config.for_account(account)
            self._own[key] = _Endpoint(key, own, own.crypto())
        self._resources: Optional[WeChatResources] = None
        self._engine: Optional[Engine] = None
        self._sessions: Optional[sessionmaker] = None
        self._ctx: Optional[Context] = None  # deadlines and console links for ratings that reopen a ticket
        self._background: Set["asyncio.Task[None]"] = set()  # arrival notes still being written
        self._opening = asyncio.Lock()
        self.recheck_seconds = RECHECK_SECONDS
        self._checked_at: Optional[float] = None  # monotonic time of the last communities check
        self._rechecking = asyncio.Lock()

    @classmethod
    def name(cls) -> Text:
        """Served under /webhooks/wechat/."""
        return "wechat"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WeChatInput":
        """The channel from credentials.yml keys (optional) over the settings from the environment."""
        given: Dict[str, Any] = {}
        for key in CREDENTIAL_KEYS:
            value = (credentials or {}).get(key)
            if value is not None:
                given[key] = float(value) if key == "passive_seconds" else str(value)
        settings = Settings.from_env()
        config = WeChatConfig.from_settings(settings, **given)
        accounts = load_accounts(settings.wechat_accounts_file, config.appid)  # AccountsError stops the server
        if not config.configured:
            logger.warning("WECHAT_TOKEN is not set: /webhooks/wechat/webhook answers 503 until it is")
        if accounts:
            logger.info("WeChat: own Official Accounts of %s at /webhooks/wechat/webhook/<community>",
                        ", ".join(sorted(accounts)))
        return cls(config, webchat=settings.webchat, accounts=accounts)

    def blueprint(self, on_new_message: NewMessageHandler) -> Blueprint:
        """Routes: GET / (health), GET /webhook (URL verification), POST /webhook (pushes), the web chat page."""
        hook = Blueprint("wechat_webhook", __name__)

        @hook.listener("before_server_start")
        async def open_resources(_app: Any, _loop: Any) -> None:
            if self.config.configured or self._own:
                await self._open()

        @hook.listener("after_server_stop")
        async def close_resources(_app: Any, _loop: Any) -> None:
            await self.close()
            await self.webchat.close()

        @hook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.config.configured else "not configured",
                                  "communities_with_own_account": sorted(self._own)})

        @hook.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return self._verify(request, self._shared)

        @hook.route("/webhook", methods=["POST"], stream=True)
        async def receive(request: Request) -> HTTPResponse:
            return await self._receive(request, on_new_message, self._shared)

        @hook.route("/webhook/<community:str>", methods=["GET"])
        async def verify_own(request: Request, community: str) -> HTTPResponse:
            endpoint = self._own.get(community)
            if endpoint is None:
                return response.text(f"no Official Account of community {community!r} here", status=404)
            return self._verify(request, endpoint)

        @hook.route("/webhook/<community:str>", methods=["POST"], stream=True)
        async def receive_own(request: Request, community: str) -> HTTPResponse:
            endpoint = self._own.get(community)
            if endpoint is None:
                return response.text(f"no Official Account of community {community!r} here", status=404)
            return await self._receive(request, on_new_message, endpoint)

        self.webchat.mount(hook)
        return hook

    def _verify(self, request: Request, endpoint: _Endpoint) -> HTTPResponse:
        """WeChat's URL verification for one account."""
        if not endpoint.config.configured:
            return response.text(NOT_CONFIGURED, status=503)
        query = _query(request)
        try:
            verify_query(query, endpoint.config.token or "", self._clock(), endpoint.config.timestamp_window)
        except (SignatureError, StaleTimestamp) as exc:
            return _refuse(request, 403, exc)
        return response.text(query.get("echostr", ""))

    async def _receive(self, request: Request, on_new_message: NewMessageHandler, endpoint: _Endpoint) -> HTTPResponse:
        config = endpoint.config
        deadline = self._monotonic() + config.passive_seconds
        if not config.configured:
            return response.text(NOT_CONFIGURED, status=503)
        query = _query(request)
        cap = config.max_body_bytes
        try:
            _check_declared_length(request, cap)
            verify_query(query, config.token or "", self._clock(), config.timestamp_window)
            push = open_push(query, await _read_body(request, cap), endpoint.crypto, cap)
            message = parse_message(push.fields)
        except BodyTooLarge as exc:
            return _refuse(request, 413, exc)
        except (SignatureError, StaleTimestamp) as exc:
            return _refuse(request, 403, exc)
        except (MalformedMessage, DecryptError) as exc:
            return _refuse(request, 400, exc)
        except SafeModeUnavailable as exc:
            return _refuse(request, 503, exc)
        await self._open()
        if endpoint.community is not None:
            await self._recheck()
        if endpoint.unavailable:
            logger.error("WeChat push for community %s refused: %s", endpoint.community, endpoint.unavailable)
            return response.text(endpoint.unavailable, status=503)
        assert endpoint.responder is not None
        route = inbound.route(message)
        work = functools.partial(self._handle, route, message, on_new_message, endpoint)
        key = f"{message.to_user}:{message.dedupe_key}"
        reply = await endpoint.responder.respond(key, message.from_user, work, deadline)
        if reply is None:
            return response.text("success")
        now = int(self._clock())
        body = seal_reply(push, message.reply_text(reply, now), endpoint.crypto, now, query.get("nonce", ""))
        return response.text(body, content_type="application/xml; charset=utf-8")

    async def _handle(self, route: inbound.Route, message: IncomingMessage, on_new_message: NewMessageHandler,
                      endpoint: _Endpoint) -> str:
        """Carry out one route and return the reply text ("" for none)."""
        openid = message.from_user
        if isinstance(route, (inbound.ToAssistant, inbound.AttachImage)) \
                and not await self._require_resources().limit.allow(openid):
            return messages.SENT_TOO_FAST
        if isinstance(route, inbound.ToAssistant):
            return await self._converse(route, openid, on_new_message, endpoint)
        if not isinstance(route, inbound.Unsubscribed):
            self._note_inbound(openid, endpoint)
        if isinstance(route, inbound.Reply):
            return route.text
        if isinstance(route, inbound.AttachImage):
            return await self._attach(route, openid)
        if isinstance(route, inbound.Subscribed):
            await self._note(residents.record_subscribe, openid)
            return messages.wechat_welcome(await self._community_name(endpoint))
        if isinstance(route, inbound.Unsubscribed):
            await self._note(residents.record_unsubscribe, openid)
            logger.info("WeChat resident %s unfollowed the account", openid)
        return ""

    async def _community_name(self, endpoint: _Endpoint, fallback: str = "社区") -> str:
        """The name of the account's community (the shared account's: the deployment's first, community.yml's),
        for the welcome and the web chat page's title; `fallback` when it cannot be read."""
        def read() -> Optional[str]:
            with unit_of_work(self._session_factory()) as session:
                row = session.get(Community, endpoint.community or community.home_community(session, None))
                return row.name if row is not None else None

        try:
            return await asyncio.to_thread(read) or fallback
        except SQLAlchemyError:
            logger.exception("community name of the account not read")
            return fallback

    async def _note(self, record: Callable[[sessionmaker, str], None], openid: str) -> None:
        """Record a follow/unfollow or a message's arrival; a database failure is logged, the resident still answered."""
        try:
            await asyncio.to_thread(record, self._session_factory(), openid)
        except SQLAlchemyError:
            logger.exception("follow state of %s not recorded", openid)

    async def _converse(self, route: inbound.ToAssistant, openid: str, on_new_message: NewMessageHandler,
                        endpoint: _Endpoint) -> str:
        resources = self._require_resources()
        text = route.text
        if route.typed:
            chosen = choose(text, await resources.options.recall(openid))
            direct = None if chosen else await self._direct(openid, text)
            if direct:
                self._note_inbound(openid, endpoint)
                return direct
            text = chosen or text
        self._note_inbound(openid, endpoint)
        collector = CollectingOutputChannel()
        await on_new_message(UserMessage(text, collector, openid, input_channel=self.name()))
        rendered = render_messages(collector.messages)
        await resources.options.remember(openid, rendered.options)
        return rendered.text

    def _note_inbound(self, openid: str, endpoint: _Endpoint) -> None:
        """Record the message's arrival (it opens the 48-hour customer-service window) and the account it came to
        beside the turn, not before it: a database write must not eat into WeChat's 5 seconds."""
        record = functools.partial(residents.record_inbound, community_key=endpoint.community, appid=endpoint.appid)
        task = asyncio.get_running_loop().create_task(self._note(record, openid))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _direct(self, openid: str, text: str) -> Optional[str]:
        """The reply to "退订提醒"/"恢复提醒" or to a rating of a resolved ticket, answered without the assistant.

        Checked before the message is recorded as the resident's latest (see bot/services/ratings.py).
        """
        reminders = announcements.reminder_command(text)
        try:
            if reminders is not None:
                await asyncio.to_thread(announcements.set_reminders, self._session_factory(), openid, reminders)
                return messages.REMINDERS_ON if reminders else messages.REMINDERS_OFF
            return await asyncio.to_thread(ratings.answer, self._session_factory(), openid, text,
                                           self._lifecycle_context())
        except SQLAlchemyError:
            logger.exception("reminder setting or rating from %s not recorded; the assistant answers instead", openid)
            return None

    def _lifecycle_context(self) -> Context:
        if self._ctx is None:
            self._ctx = Context.from_settings(Settings.from_env())
        return self._ctx

    async def _attach(self, route: inbound.AttachImage, openid: str) -> str:
        try:
            result = await asyncio.to_thread(attachments.attach_image, self._session_factory(), openid,
                                             route.media_id, route.pic_url)
        except SQLAlchemyError:
            logger.exception("photo from %s not saved", openid)
            return messages.WECHAT_IMAGE_FAILED
        if result.ticket_number is None:
            return messages.WECHAT_IMAGE_PENDING
        return messages.wechat_image_attached(result.ticket_number)

    async def _deliver(self, endpoint: _Endpoint, openid: str, parts: Sequence[str]) -> None:
        client = self._require_resources().client_for(endpoint.appid)
        await deliver_parts(client, openid, parts, self._record_failure)

    async def _record_failure(self, failure: Failure) -> None:
        try:
            await asyncio.to_thread(deliveries.record_failure, self._session_factory(), failure.sender_id, "wechat",
                                    failure.errcode, failure.errmsg, failure.text)
        except SQLAlchemyError:
            logger.exception("undelivered reply to %s could not be recorded either", failure.sender_id)

    async def _open(self) -> None:
        """Open the per-process resources (database engine, HTTP, Redis, stores) once: at start-up or first push."""
        if self._resources is None:
            async with self._opening:
                if self._resources is None:
                    self._session_factory()  # the engine connects lazily; creating it here keeps it off the hot path
                    if self._own:
                        await self._recheck()  # never checked yet: due
                    resources = await WeChatResources.open(self.config, [e.config for e in self._own.values()])
                    for endpoint in (self._shared, *self._own.values()):
                        endpoint.responder = Responder(resources.dedupe, functools.partial(self._deliver, endpoint),
                                                       clock=self._monotonic)
                    self._resources = resources

    async def _recheck(self) -> None:
        """Look the own accounts' communities up again, at most once every `recheck_seconds`: one query serves all
        the pushes in between."""
        def due() -> bool:
            return self._checked_at is None or self._monotonic() - self._checked_at >= self.recheck_seconds

        if not due():
            return
        async with self._rechecking:
            if due():
                self._checked_at = self._monotonic()
                await asyncio.to_thread(self._check_communities)

    def _check_communities(self) -> None:
        """An account of a community that is not loaded cannot place its residents: its pushes get 503 with why."""
        try:
            with unit_of_work(self._session_factory()) as session:
                loaded = dict(session.query(Community.key, Community.wechat_account)
                              .filter(Community.key.in_(list(self._own))))
        except SQLAlchemyError:
            logger.exception("communities of the own Official Accounts not checked")
            return
        for key, endpoint in self._own.items():
            stated, before = loaded.get(key), endpoint.unavailable
            if key not in loaded:
                endpoint.unavailable = f"community {key!r} has an Official Account but is not loaded " \
                                       "(python -m bot community load)"
            elif stated and stated != endpoint.config.appid:
                endpoint.unavailable = f"community {key!r} names the account {stated} (wechat_account), the accounts " \
                                       f"file {endpoint.config.appid}"
            else:
                endpoint.unavailable = None
            if endpoint.unavailable and endpoint.unavailable != before:  # once per change, not every lookup
                logger.error("WeChat: %s", endpoint.unavailable)
            elif before and not endpoint.unavailable:
                logger.info("WeChat: community %r is served on its own account again", key)

    def _require_resources(self) -> WeChatResources:
        if self._resources is None:
            raise RuntimeError("WeChat channel resources are not open")
        return self._resources

    def _session_factory(self) -> sessionmaker:
        if self._sessions is None:
            database_url = self.config.database_url or Settings.from_env().database_url
            self._engine = make_engine(database_url)
            self._sessions = make_session_factory(self._engine)
        return self._sessions

    async def close(self) -> None:
        """Finish (or cancel) pending replies, then close the HTTP session, Redis and the database engine."""
        for endpoint in (self._shared, *self._own.values()):
            if endpoint.responder is not None:
                await endpoint.responder.drain(DRAIN_SECONDS)
                endpoint.responder = None
        if self._background:
            await asyncio.wait(set(self._background), timeout=DRAIN_SECONDS)
        if self._resources is not None:
            await self._resources.close()
        if self._engine is not None:
            self._engine.dispose()
        self._resources = None
        self._engine = self._sessions = None


def _query(request: Request) -> Dict[str, str]:
    return {key: str(request.args.get(key, "")) for key in request.args}


def _check_declared_length(request: Request, cap: int) -> None:
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdecimal() and int(declared) > cap:
        raise BodyTooLarge(cap)


async def _read_body(request: Request, cap: int) -> bytes:
    """The body, read in chunks and abandoned as soon as it passes `cap` (chunked bodies have no length)."""
    if request.stream is None:  # not a streaming route (already read by Sanic)
        if len(request.body) > cap:
            raise BodyTooLarge(cap)
        return request.body
    chunks = []
    total = 0
    async for chunk in request.stream:
        total += len(chunk)
        if total > cap:
            raise BodyTooLarge(cap)
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(request: Request, status: int, exc: Exception) -> HTTPResponse:
    # The reason names the check that failed (never a token, signature or body content).
    reason = getattr(exc, "message", None) or str(exc)
    code = getattr(exc, "code", type(exc).__name__)
    logger.warning("refused WeChat %s from %s with %d: %s (%s)", request.method, request.ip, status, code, reason)
    return response.text({400: "bad request", 403: "forbidden", 413: "payload too large",
                          503: "service unavailable"}[status], status=status)
