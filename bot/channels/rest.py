"""The REST channel residents' apps and tests use: Rasa's REST format, with input checked and cleaned.

POST /webhooks/rest/webhook with {"sender": …, "message": …} answers a JSON list of replies, each with
`recipient_id` = the client's own `sender`. Rasa (and so tickets, profiles, handoffs) sees the sender in
the REST namespace, `rest:<sender>` (bot/identity.py): a REST client cannot speak as a WeChat resident.

Access (decided once, from the environment, like WeChatInput's `from_credentials`):

- WeChat on a real account (WECHAT_TOKEN set and not the demo account's DEMO_TOKEN, or a community's own
  account in HG_WECHAT_ACCOUNTS): the channel needs
  `Authorization: Bearer <HG_REST_TOKEN>`; without it, or with a wrong one, 401 with the reason. If
  HG_REST_TOKEN is unset there, the channel answers 503: it is disabled rather than open.
- No WeChat token, or the demo account (`make run`): open as Rasa's REST channel is. When HG_REST_TOKEN is
  set a client may present it; a presented token that is wrong still gets 401, so a client's mistake shows
  before it goes live.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import identity, messages
from bot.config import Settings
from bot.errors import AssistantUnavailable
from bot.local_state import LocalState
from bot.sender_limit import SenderLimit, open_limit
from bot.text import clean_message
from bot.wechat.demo import DEMO_TOKEN

logger = logging.getLogger(__name__)
MAX_SENDER_CHARS = identity.MAX_REST_SENDER_CHARS

DISABLED = ("REST channel disabled: the WeChat channel runs on a real account, so REST needs a token; "
            "set HG_REST_TOKEN and send it as 'Authorization: Bearer <token>'")
MISSING_TOKEN = "missing token: send 'Authorization: Bearer <HG_REST_TOKEN>'"
WRONG_TOKEN = "wrong token"


@dataclass(frozen=True)
class Refusal:
    """Why a request may not reach the assistant, as an HTTP status and a reason."""

    status: int
    reason: str


def _own_accounts(settings: Settings) -> bool:
    """Whether a community runs an Official Account of its own (bot/wechat/accounts.py): real accounts too. An
    unreadable accounts file counts as one (the WeChat channel refuses to start on it anyway)."""
    from bot.wechat.accounts import AccountsError, load_accounts

    try:
        return bool(load_accounts(settings.wechat_accounts_file, settings.wechat_appid))
    except AccountsError:
        return True


@dataclass(frozen=True)
class RestAccess:
    """Who may use the REST channel: `token` is HG_REST_TOKEN; `required` holds when WeChat runs on a real account."""

    token: Optional[str] = field(default=None, repr=False)
    required: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "RestAccess":
        """The access rule for these settings (see the module docstring)."""
        real_account = bool(settings.wechat_token) and settings.wechat_token != DEMO_TOKEN
        return cls(token=settings.rest_token, required=real_account or _own_accounts(settings))

    @property
    def disabled(self) -> bool:
        """True when a token is required but none is configured: nobody may use the channel."""
        return self.required and not self.token

    def refusal(self, authorization: Optional[str]) -> Optional[Refusal]:
        """None when a request with this Authorization header may pass; otherwise the refusal."""
        if self.disabled:
            return Refusal(503, DISABLED)
        presented = _bearer(authorization)
        if presented is None:
            return Refusal(401, MISSING_TOKEN) if self.required else None
        if not self.token:  # open channel, nothing to check a token against
            return None
        if not hmac.compare_digest(presented.encode("utf-8"), self.token.encode("utf-8")):
            return Refusal(401, WRONG_TOKEN)
        return None


def _bearer(authorization: Optional[str]) -> Optional[str]:
    """The token of a `Bearer <token>` header; None when there is no such header."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class ResidentRestInput(RestInput):
    """POST /webhooks/rest/webhook with {"sender": …, "message": …}; answers a JSON list of replies."""

    def __init__(self, access: Optional[RestAccess] = None, settings: Optional[Settings] = None) -> None:
        """`access` decides who may post (default: open, as before any account is configured); `settings` give
        the per-sender rate limit and where it is counted (default: no limit)."""
        self.access = access or RestAccess()
        self._settings = settings
        self._limit: Optional[SenderLimit] = None

    def _sender_limit(self) -> SenderLimit:
        """The rate limit, opened in the worker process on its first request (Redis, else the state file)."""
        if self._limit is None:
            settings = self._settings
            if settings is None or settings.sender_rate_per_minute <= 0:
                self._limit = open_limit(0)
            elif settings.redis_url:
                import redis.asyncio as aioredis

                client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=settings.http_timeout,
                                                 socket_connect_timeout=settings.http_timeout)
                self._limit = open_limit(settings.sender_rate_per_minute, redis_client=client)
            else:
                self._limit = open_limit(settings.sender_rate_per_minute, state=LocalState(settings.local_state_path))
        return self._limit

    @classmethod
    def name(cls) -> Text:
        """Served under /webhooks/rest/, like Rasa's own REST channel."""
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "ResidentRestInput":
        """The channel with its access rule read from the environment (credentials.yml holds no secrets)."""
        settings = Settings.from_env()
        access = RestAccess.from_settings(settings)
        if access.disabled:
            logger.warning("WeChat runs on a real account and HG_REST_TOKEN is not set: "
                           "/webhooks/rest/webhook answers 503 until it is")
        return cls(access, settings)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Routes: GET / (health) and POST /webhook."""
        hook = Blueprint("resident_rest_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "disabled" if self.access.disabled else "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            refusal = self.access.refusal(request.headers.get("authorization"))
            if refusal is not None:
                logger.warning("refused REST request from %s with %d: %s", request.ip, refusal.status,
                               refusal.reason)
                headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
                return response.json({"error": refusal.reason}, status=refusal.status, headers=headers)
            try:
                body = request.json
            except Exception:  # noqa: BLE001 - sanic raises its own error types for bad JSON
                body = None
            problem = _problem(body)
            if problem:
                return response.json({"error": problem}, status=400)
            sender = str(body["sender"])
            text = clean_message(body.get("message"))
            if not text:
                return response.json([{"recipient_id": sender, "text": messages.EMPTY_MESSAGE}])
            collector = CollectingOutputChannel()
            sender_id = identity.rest_sender(sender)
            if not await self._sender_limit().allow(sender_id):
                return response.json([{"recipient_id": sender, "text": messages.SENT_TOO_FAST}], headers={"Retry-After": "60"})
            try:
                await on_new_message(UserMessage(text, collector, sender_id, input_channel=self.name(),
                                                 metadata=self.get_metadata(request)))
            except AssistantUnavailable:  # the action server is down: nothing was saved, they may send it again
                return response.json([{"recipient_id": sender, "text": messages.SYSTEM_BUSY}],
                                     headers={"Retry-After": "60"})
            except Exception:  # noqa: BLE001 - the resident must still get an answer
                logger.exception("turn failed for sender %s", sender_id)
                return response.json([{"recipient_id": sender, "text": messages.TURN_FAILED}])
            return response.json(_addressed_to(sender, collector.messages))

        return hook


def _addressed_to(sender: str, replies: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The replies with `recipient_id` set back to the client's own sender (Rasa addressed them to `rest:…`)."""
    return [{**reply, "recipient_id": sender} for reply in replies]


def _problem(body: Optional[Dict[str, Any]]) -> Optional[str]:
    if not isinstance(body, dict):
        return "body must be a JSON object with 'sender' and 'message'"
    sender = body.get("sender")
    if isinstance(sender, bool) or not isinstance(sender, (str, int)) or not str(sender).strip() \
            or len(str(sender)) > MAX_SENDER_CHARS:
        return f"'sender' must be a non-empty string of at most {MAX_SENDER_CHARS} characters"
    if "message" in body and body["message"] is not None and not isinstance(body["message"], str):
        return "'message' must be a string"
    return None
