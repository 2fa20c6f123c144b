"""The WeChat-style web chat page: a phone-sized chat window that talks to the WeChat channel as WeChat does.

Served on the WeChat channel's blueprint (so by the running Rasa server):

- GET  /webhooks/wechat/chat                the page (Chinese UI, every asset served from here, no CDN)
- GET  /webhooks/wechat/chat/static/<name>  its CSS, script and avatars (a fixed list, nothing else)
- POST /webhooks/wechat/chat/send           `{"client": id, "text": …}` → the same signed (and in safe mode
  AES-encrypted) XML push a WeChat server sends, POSTed over loopback to this server's own
  /webhooks/wechat/webhook; the passive reply is verified, decrypted and returned as `{"reply": text|null}`
- GET  /webhooks/wechat/chat/inbox?client=id&after=N  replies that came later through the customer-service
  API, read from the local fake WeChat API (bot/devtools/fake_wechat.py) the channel sends them to

Signing and encryption happen here, on the server; the browser never sees the token or the AES key. The
browser picks a random client id; the resident's OpenID is `o_webchat_<id>`, so the page can only speak
for web-chat residents, never for a real follower's OpenID.

Guard. The page is a signing oracle for the account, so it is a local/demo tool only and serves when all
of these hold, otherwise every route refuses with the reason in plain text:

1. HG_WEBCHAT=1 (Settings.webchat) — otherwise 404: it is off by default.
2. The channel runs on the demo account (bot/wechat/demo.py): WECHAT_TOKEN and WECHAT_APPID are the
   published demo values and WECHAT_AES_KEY is the demo key or unset — otherwise 403. Values published in
   this repository cannot be a real account's secrets, so real credentials are recognised by not being
   these; no flag can switch the page on beside them.
3. WECHAT_API_BASE points at this machine (127.0.0.0/8, localhost, ::1), i.e. a local fake and never
   api.weixin.qq.com — otherwise 403.

`make run` sets all three (with a fake WeChat API on a fixed port) when WECHAT_TOKEN is not configured.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Optional

import aiohttp
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import messages
from bot.devtools.fake_wechat import INBOX_PATH
from bot.wechat.demo import DEMO_ACCOUNT, DEMO_AES_KEY, DEMO_APPID, DEMO_TOKEN, is_loopback_url
from bot.wechat.errors import WeChatError
from bot.wechat.runtime import WeChatConfig
from bot.wechat.simulator import WeChatServerSimulator

__all__ = ["DEFAULT_TITLE", "PAGE_PATH", "Refusal", "WebChat", "openid_for", "refusal"]

logger = logging.getLogger(__name__)

PAGE_PATH = "/chat"
ASSET_DIR = Path(__file__).with_name("webchat_assets")
ASSETS = {  # name → content type; the only files the page serves
    "webchat.css": "text/css; charset=utf-8",
    "webchat.js": "application/javascript; charset=utf-8",
    "assistant.svg": "image/svg+xml",
    "resident.svg": "image/svg+xml",
}
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,40}$")
MAX_TEXT_CHARS = 600
MAX_REQUEST_BYTES = 8 * 1024
# WeChat waits 5 s for the server; the channel answers within its passive budget (4 s), so this is slack.
PUSH_TIMEOUT = 6.0
OFF_REASON = "web chat page is off: set HG_WEBCHAT=1 (local and demo use only)"
DEFAULT_TITLE = "红管家"


@dataclass(frozen=True)
class Refusal:
    """Why the page does not serve, and the HTTP status that says so."""

    status: int
    reason: str


def refusal(config: WeChatConfig, enabled: bool) -> Optional[Refusal]:
    """None when the page may serve for this channel configuration; otherwise why not (see the module docstring)."""
    if not enabled:
        return Refusal(404, OFF_REASON)
    if config.token != DEMO_TOKEN or config.appid != DEMO_APPID or config.aes_key not in (None, DEMO_AES_KEY):
        return Refusal(403, "web chat page refused: the WeChat channel is configured with real credentials "
                            "(it serves only on the demo account of bot/wechat/demo.py)")
    if not is_loopback_url(config.api_base):
        return Refusal(403, "web chat page refused: WECHAT_API_BASE is not a local fake WeChat API")
    return None


def openid_for(client: str) -> str:
    """The OpenID a web-chat client speaks as."""
    return f"o_webchat_{client}"


class WebChat:
    """The page's backend for one WeChat channel: serves the page, sends pushes as WeChat, reads the inbox."""

    def __init__(self, config: WeChatConfig, enabled: bool, *, push_timeout: float = PUSH_TIMEOUT,
                 title: Optional[Callable[[], Awaitable[str]]] = None) -> None:
        """`title` names the account the page speaks for (its chat's title bar), asked on every page load."""
        self.config = config
        self._title = title
        self.refusal = refusal(config, enabled)
        self._push_timeout = push_timeout
        self._http: Optional[aiohttp.ClientSession] = None
        self._simulator: Optional[WeChatServerSimulator] = None
        if self.refusal is None:
            self._simulator = WeChatServerSimulator(config.token or "", DEMO_ACCOUNT, config.crypto())
        elif enabled:
            logger.warning("HG_WEBCHAT is set but %s", self.refusal.reason)

    def mount(self, hook: Blueprint) -> None:
        """Add the page's routes to the channel's blueprint (mounted under /webhooks/wechat)."""

        @hook.route(PAGE_PATH, methods=["GET"])
        async def page(_request: Request) -> HTTPResponse:
            refused = self._refused()
            if refused is not None:
                return refused
            title = html.escape(await self._title() if self._title else DEFAULT_TITLE)
            page_html = (ASSET_DIR / "index.html").read_text(encoding="utf-8").replace("__TITLE__", title)
            return response.html(page_html, headers=_NO_STORE)

        @hook.route(f"{PAGE_PATH}/static/<name>", methods=["GET"])
        async def asset(_request: Request, name: str) -> HTTPResponse:
            refused = self._refused()
            if refused is not None:
                return refused
            if name not in ASSETS:
                return response.text("not found", status=404)
            return await response.file(ASSET_DIR / name, mime_type=ASSETS[name], headers=_NO_STORE)

        @hook.route(f"{PAGE_PATH}/send", methods=["POST"])
        async def send(request: Request) -> HTTPResponse:
            refused = self._refused()
            return refused if refused is not None else await self._send(request)

        @hook.route(f"{PAGE_PATH}/inbox", methods=["GET"])
        async def inbox(request: Request) -> HTTPResponse:
            refused = self._refused()
            return refused if refused is not None else await self._inbox(request)

    def _refused(self) -> Optional[HTTPResponse]:
        if self.refusal is None:
            return None
        return response.text(self.refusal.reason, status=self.refusal.status)

    async def _send(self, request: Request) -> HTTPResponse:
        if len(request.body) > MAX_REQUEST_BYTES:
            return response.json({"error": "request too large"}, status=413)
        try:
            body: Any = request.json
        except Exception:  # noqa: BLE001 - Sanic raises its own InvalidUsage for bad JSON
            body = None
        if not isinstance(body, dict):
            return response.json({"error": "expected a JSON object"}, status=400)
        client, text = body.get("client"), body.get("text")
        if not isinstance(client, str) or not CLIENT_ID.match(client):
            return response.json({"error": "client must be 8-40 letters, digits, '-' or '_'"}, status=400)
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            return response.json({"error": f"text must be 1-{MAX_TEXT_CHARS} characters"}, status=400)
        assert self._simulator is not None  # set whenever the page serves
        push = self._simulator.text_push(openid_for(client), text)
        # Over loopback to the port this request came in on: the same server, the same channel.
        webhook = f"http://127.0.0.1:{request.conn_info.server_port}{_webhook_path(request.path)}"
        try:
            async with self._session().post(webhook, params=push.query, data=push.body,
                                            headers={"Content-Type": "text/xml; charset=utf-8"},
                                            timeout=aiohttp.ClientTimeout(total=self._push_timeout)) as answer:
                status, raw = answer.status, await answer.text()
            if status != 200:
                raise WeChatError(f"channel answered HTTP {status}")
            reply = self._simulator.open_reply(raw, push)
        except (aiohttp.ClientError, asyncio.TimeoutError, WeChatError) as exc:
            # What WeChat shows a follower when the account's server fails or is too slow.
            logger.warning("web chat push for %s got no usable answer: %s", openid_for(client), exc)
            return response.json({"reply": None, "notice": messages.WEBCHAT_SERVICE_UNAVAILABLE,
                                  "at": time.time()}, status=502)
        return response.json({"reply": reply, "at": time.time()})

    async def _inbox(self, request: Request) -> HTTPResponse:
        client = request.args.get("client", "")
        after = request.args.get("after", "0")
        if not CLIENT_ID.match(client) or not (after.isascii() and after.isdecimal()):
            return response.json({"error": "client and a whole-number `after` are required"}, status=400)
        url = self.config.api_base.rstrip("/") + INBOX_PATH
        try:
            async with self._session().get(url, params={"touser": openid_for(client), "after": after},
                                           timeout=aiohttp.ClientTimeout(total=self.config.http_timeout)) as answer:
                data: Dict[str, Any] = await answer.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            logger.warning("web chat inbox: the fake WeChat API at %s did not answer: %s", self.config.api_base, exc)
            return response.json({"messages": [], "error": "fake WeChat API unreachable"}, status=502)
        found = [{"seq": m["seq"], "text": m["content"], "at": m["at"]} for m in data.get("messages") or []]
        return response.json({"messages": found})

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def close(self) -> None:
        """Close the loopback HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None


_NO_STORE = {"Cache-Control": "no-store"}


def _webhook_path(send_path: str) -> str:
    """/webhooks/wechat/chat/send → /webhooks/wechat/webhook (whatever prefix the channel is mounted under)."""
    return send_path[: -len(f"{PAGE_PATH}/send")] + "/webhook"
