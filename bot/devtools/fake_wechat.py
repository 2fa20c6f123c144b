"""A local fake of the WeChat Official Account API that speaks its JSON (tests and demos).

Endpoints (every answer is HTTP 200 with `{"errcode": …, "errmsg": …}` unless `fail_next` says otherwise):

    GET  /cgi-bin/token?grant_type=client_credential&appid=…&secret=…
         → {"access_token": …, "expires_in": 7200}; 40002 bad grant_type, 41002/40013 appid missing/wrong,
           41004/40125 secret missing/wrong
    POST /cgi-bin/message/custom/send?access_token=…   text messages; 45015 for users in `silent_users`
    POST /cgi-bin/message/template/send?access_token=… → msgid; 43004 for users in `unfollowed_users`,
                                                         40037 for a template outside `template_ids`
    POST /cgi-bin/menu/create?access_token=…           checks button counts, types, names, keys and URLs
    GET  /devtools/custom-messages?touser=…&after=N    not WeChat's: the accepted customer-service texts to
         `touser` after sequence number N, `{"messages": [{"seq", "touser", "content", "at"}]}` (the web chat
         page's inbox reads this)

Access tokens: 41001 without one, 40001 for an unknown or invalidated one, 42001 for an expired one (the
fake's `clock`, or `expire_tokens()`). Like WeChat, a new fetch does not kill the previous token at once:
it stays valid for `overlap` seconds (300 by default, WeChat's documented five minutes; pass 0 to
invalidate immediately). `invalidate_tokens()` kills every issued token now, as a fetch by someone else
would after the overlap.

Run it for a demo with `python -m bot.devtools.fake_wechat --port 8098` and point WECHAT_API_BASE at
`http://127.0.0.1:8098`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Collection, Dict, List, Optional, Sequence, Tuple

from aiohttp import web

from bot.devtools.serving import serve_app

__all__ = [
    "CUSTOM_SEND_PATH",
    "ERRMSGS",
    "Exchange",
    "INBOX_PATH",
    "MENU_CREATE_PATH",
    "TEMPLATE_SEND_PATH",
    "TOKEN_PATH",
    "ApiCall",
    "FakeWeChat",
    "FakeWeChatServer",
    "TokenFetch",
    "main",
    "running_fake_wechat",
]

TOKEN_PATH = "/cgi-bin/token"
CUSTOM_SEND_PATH = "/cgi-bin/message/custom/send"
TEMPLATE_SEND_PATH = "/cgi-bin/message/template/send"
MENU_CREATE_PATH = "/cgi-bin/menu/create"
INBOX_PATH = "/devtools/custom-messages"
API_PATHS = (CUSTOM_SEND_PATH, TEMPLATE_SEND_PATH, MENU_CREATE_PATH)

ERRMSGS: Dict[int, str] = {
    -1: "system error",
    0: "ok",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40008: "invalid message type",
    40013: "invalid appid",
    40016: "invalid button size",
    40017: "invalid button type",
    40018: "invalid button name size",
    40019: "invalid button key size",
    40020: "invalid button url size",
    40023: "invalid sub button size",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    42001: "access_token expired",
    43004: "require subscribe",
    44002: "empty post data",
    44004: "empty content",
    45009: "reach max api daily quota limit",
    45015: "response out of time limit or subscription is canceled",
    47001: "data format error",
}


@dataclass(frozen=True)
class TokenFetch:
    """One successful token fetch: the token handed out and when (fake's clock)."""

    token: str
    at: float


@dataclass(frozen=True)
class ApiCall:
    """One accepted API call: its JSON payload, the token it used and when it arrived."""

    path: str
    payload: Dict[str, Any]
    token: str
    at: float


@dataclass(frozen=True)
class Exchange:
    """Any request and the errcode it got (None for scripted HTTP failures)."""

    path: str
    errcode: Optional[int]


@dataclass
class _Issued:
    expires_at: float
    revoked_at: Optional[float] = None


@dataclass
class _Scripted:
    remaining: int
    status: int
    errcode: int
    errmsg: str
    delay: float
    path: Optional[str]


def _err(errcode: int, errmsg: Optional[str] = None) -> Tuple[int, str]:
    return errcode, errmsg or ERRMSGS.get(errcode, "error")


@dataclass
class FakeWeChat:
    """State and rules of the fake WeChat API; `app()` serves it."""

    appid: str = "wxfake0000000001"
    secret: str = "fake-app-secret"
    clock: Callable[[], float] = time.time
    expires_in: int = 7200
    overlap: float = 300.0
    token_delay: float = 0.0
    silent_users: Collection[str] = field(default_factory=set)
    unfollowed_users: Collection[str] = field(default_factory=set)
    template_ids: Optional[Collection[str]] = None
    on_call: Optional[Callable[[ApiCall], None]] = None
    token_fetches: List[TokenFetch] = field(default_factory=list)
    messages: List[ApiCall] = field(default_factory=list)
    templates: List[ApiCall] = field(default_factory=list)
    menus: List[ApiCall] = field(default_factory=list)
    exchanges: List[Exchange] = field(default_factory=list)
    _tokens: Dict[str, _Issued] = field(default_factory=dict, init=False, repr=False)
    _scripted: List[_Scripted] = field(default_factory=list, init=False, repr=False)
    _msgids: "itertools.count[int]" = field(default_factory=lambda: itertools.count(1000), init=False, repr=False)

    def fail_next(
        self,
        n: int = 1,
        *,
        errcode: int = 45015,
        errmsg: Optional[str] = None,
        status: int = 200,
        delay: float = 0.0,
        path: Optional[str] = None,
    ) -> None:
        """Answer the next `n` API calls (to `path`, or any but the token endpoint) with an errcode or HTTP status."""
        message = errmsg if errmsg is not None else ERRMSGS.get(errcode, "error")
        self._scripted.append(_Scripted(n, status, errcode, message, delay, path))

    def expire_tokens(self) -> None:
        """Make every issued token expired now (calls with them answer 42001)."""
        now = self.clock()
        for issued in self._tokens.values():
            issued.expires_at = min(issued.expires_at, now)

    def invalidate_tokens(self) -> None:
        """Make every issued token invalid now (calls with them answer 40001)."""
        now = self.clock()
        for issued in self._tokens.values():
            issued.revoked_at = now if issued.revoked_at is None else min(issued.revoked_at, now)

    def errcodes(self, path: Optional[str] = None) -> List[Optional[int]]:
        """The errcode of every answer so far (to `path`, or all)."""
        return [e.errcode for e in self.exchanges if path is None or e.path == path]

    def app(self) -> web.Application:
        """The aiohttp application serving this fake."""
        app = web.Application()
        app.router.add_get(TOKEN_PATH, self._handle_token)
        for path in API_PATHS:
            app.router.add_post(path, self._handle_api)
        app.router.add_get(INBOX_PATH, self._handle_inbox)
        return app

    def texts_to(self, touser: str, after: int = 0) -> List[Dict[str, Any]]:
        """Customer-service texts accepted for `touser`, numbered from 1 in arrival order, after `after`."""
        return [{"seq": seq, "touser": touser, "content": call.payload["text"]["content"], "at": call.at}
                for seq, call in enumerate(self.messages, start=1)
                if seq > after and call.payload.get("touser") == touser]

    async def _handle_inbox(self, request: web.Request) -> web.Response:
        touser = request.query.get("touser", "")
        try:
            after = int(request.query.get("after") or 0)
        except ValueError:
            return _answer(47001, "after must be a whole number")
        if not touser:
            return _answer(40003, ERRMSGS[40003])
        return _answer(0, "ok", messages=self.texts_to(touser, after))

    def _take_scripted(self, path: str) -> Optional[_Scripted]:
        for script in self._scripted:
            wanted = script.path == path if script.path is not None else path != TOKEN_PATH
            if script.remaining > 0 and wanted:
                script.remaining -= 1
                return script
        return None

    async def _scripted_answer(self, path: str) -> Optional[web.Response]:
        script = self._take_scripted(path)
        if script is None:
            return None
        if script.delay:
            await asyncio.sleep(script.delay)
        if script.status != 200:
            self.exchanges.append(Exchange(path, None))
            return web.Response(status=script.status, text=f"scripted HTTP {script.status}")
        self.exchanges.append(Exchange(path, script.errcode))
        return _answer(script.errcode, script.errmsg)

    async def _handle_token(self, request: web.Request) -> web.Response:
        scripted = await self._scripted_answer(TOKEN_PATH)
        if scripted is not None:
            return scripted
        if self.token_delay:
            await asyncio.sleep(self.token_delay)
        query = request.query
        errcode, errmsg = self._check_credentials(query.get("grant_type"), query.get("appid"), query.get("secret"))
        self.exchanges.append(Exchange(TOKEN_PATH, errcode))
        if errcode:
            return _answer(errcode, errmsg)
        now = self.clock()
        for issued in self._tokens.values():
            if issued.revoked_at is None:
                issued.revoked_at = now + self.overlap
        token = secrets.token_urlsafe(48)
        self._tokens[token] = _Issued(expires_at=now + self.expires_in)
        self.token_fetches.append(TokenFetch(token=token, at=now))
        return web.json_response({"access_token": token, "expires_in": self.expires_in})

    def _check_credentials(
        self, grant_type: Optional[str], appid: Optional[str], secret: Optional[str]
    ) -> Tuple[int, str]:
        if grant_type != "client_credential":
            return _err(40002)
        if not appid:
            return _err(41002)
        if appid != self.appid:
            return _err(40013)
        if not secret:
            return _err(41004)
        if secret != self.secret:
            return _err(40125)
        return _err(0)

    def _check_token(self, token: str) -> Tuple[int, str]:
        if not token:
            return _err(41001)
        issued = self._tokens.get(token)
        now = self.clock()
        if issued is None or (issued.revoked_at is not None and now >= issued.revoked_at):
            return _err(40001)
        if now >= issued.expires_at:
            return _err(42001)
        return _err(0)

    async def _handle_api(self, request: web.Request) -> web.Response:
        path = request.path
        token = request.query.get("access_token", "")
        raw = await request.read()
        scripted = await self._scripted_answer(path)
        if scripted is not None:
            return scripted
        errcode, errmsg = self._check_token(token)
        payload: Dict[str, Any] = {}
        if not errcode:
            errcode, errmsg, payload = self._read_payload(raw)
        if not errcode:
            check = {
                CUSTOM_SEND_PATH: self._check_custom_send,
                TEMPLATE_SEND_PATH: self._check_template_send,
                MENU_CREATE_PATH: _check_menu,
            }[path]
            errcode, errmsg = check(payload)
        self.exchanges.append(Exchange(path, errcode))
        if errcode:
            return _answer(errcode, errmsg)
        call = ApiCall(path=path, payload=payload, token=token, at=self.clock())
        extra: Dict[str, Any] = {}
        if path == CUSTOM_SEND_PATH:
            self.messages.append(call)
        elif path == TEMPLATE_SEND_PATH:
            self.templates.append(call)
            extra["msgid"] = next(self._msgids)
        else:
            self.menus.append(call)
        if self.on_call is not None:
            self.on_call(call)
        return _answer(0, "ok", **extra)

    @staticmethod
    def _read_payload(raw: bytes) -> Tuple[int, str, Dict[str, Any]]:
        if not raw.strip():
            return 44002, ERRMSGS[44002], {}
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 47001, ERRMSGS[47001], {}
        if not isinstance(payload, dict):
            return 47001, ERRMSGS[47001], {}
        return 0, "ok", payload

    def _check_custom_send(self, payload: Dict[str, Any]) -> Tuple[int, str]:
        touser = payload.get("touser")
        if not isinstance(touser, str) or not touser:
            return _err(40003)
        if payload.get("msgtype") != "text":
            return _err(40008)  # the fake only knows text; WeChat also takes image, news, …
        text = payload.get("text")
        content = text.get("content") if isinstance(text, dict) else None
        if not isinstance(content, str) or not content:
            return _err(44004)
        if touser in self.silent_users:
            return _err(45015)
        return _err(0)

    def _check_template_send(self, payload: Dict[str, Any]) -> Tuple[int, str]:
        touser = payload.get("touser")
        if not isinstance(touser, str) or not touser:
            return _err(40003)
        template_id = payload.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            return _err(40037)
        if self.template_ids is not None and template_id not in self.template_ids:
            return _err(40037)
        data = payload.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and isinstance(v.get("value"), str) for v in data.values()
        ):
            return _err(47001, "data format error: every data item must be {\"value\": string}")
        if "url" in payload and not isinstance(payload["url"], str):
            return _err(47001)
        if touser in self.unfollowed_users:
            return _err(43004)
        return _err(0)


def _check_menu(payload: Dict[str, Any]) -> Tuple[int, str]:
    """Validate a menu as WeChat does: 1–3 buttons, up to 5 sub-buttons, CLICK with a key, VIEW with a URL."""
    buttons = payload.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return _err(40016)
    for button in buttons:
        if not isinstance(button, dict):
            return _err(40017)
        subs = button.get("sub_button")
        if subs is not None and subs != []:
            if not isinstance(subs, list) or len(subs) > 5:
                return _err(40023)
            if _utf8_len(button.get("name")) not in range(1, 17):
                return _err(40018)
            for sub in subs:
                errcode, errmsg = _check_leaf(sub, max_name=60)
                if errcode:
                    return errcode, errmsg
            continue
        errcode, errmsg = _check_leaf(button, max_name=16)
        if errcode:
            return errcode, errmsg
    return _err(0)


def _check_leaf(button: Any, max_name: int) -> Tuple[int, str]:
    if not isinstance(button, dict):
        return _err(40017)
    if _utf8_len(button.get("name")) not in range(1, max_name + 1):
        return _err(40018)
    kind = button.get("type")
    if kind == "click":
        if _utf8_len(button.get("key")) not in range(1, 129):
            return _err(40019)
    elif kind == "view":
        url = button.get("url")
        if _utf8_len(url) not in range(1, 1025) or not str(url).startswith(("http://", "https://")):
            return _err(40020)
    else:
        return _err(40017)  # the fake knows click and view only
    return _err(0)


def _utf8_len(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else 0


def _answer(errcode: int, errmsg: str, **extra: Any) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg, **extra})


@dataclass(frozen=True)
class FakeWeChatServer:
    """A running fake: its state and the base URL to configure as WECHAT_API_BASE."""

    fake: FakeWeChat
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """The API base URL (paths such as /cgi-bin/token go after it)."""
        return f"http://{self.host}:{self.port}"


@asynccontextmanager
async def running_fake_wechat(
    fake: Optional[FakeWeChat] = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeWeChatServer]:
    """Serve `fake` (a new one by default) on `host`:`port` (0 = a free port) for the block's duration."""
    fake = fake or FakeWeChat()
    async with serve_app(fake.app(), host, port) as bound_port:
        yield FakeWeChatServer(fake=fake, host=host, port=bound_port)


def _print_call(call: ApiCall) -> None:
    line = json.dumps(
        {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "path": call.path, "payload": call.payload},
        ensure_ascii=False,
    )
    print(line, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the fake from the command line, printing each accepted call."""
    parser = argparse.ArgumentParser(description="Local fake of the WeChat Official Account API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--appid", default=FakeWeChat.appid)
    parser.add_argument("--secret", default=FakeWeChat.secret)
    parser.add_argument("--expires-in", type=int, default=7200, help="token lifetime in seconds")
    parser.add_argument("--overlap", type=float, default=300.0,
                        help="seconds an old token stays valid after a new fetch (0 = at once)")
    args = parser.parse_args(argv)
    fake = FakeWeChat(appid=args.appid, secret=args.secret, expires_in=args.expires_in, overlap=args.overlap,
                      on_call=_print_call)
    print(f"fake WeChat API on http://{args.host}:{args.port} (appid {args.appid})", flush=True)
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
