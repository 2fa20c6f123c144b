"""A local fake of the WeCom group-robot webhook that speaks its wire format (tests and demos).

`POST /cgi-bin/webhook/send?key=KEY` with a JSON body. Like WeCom, every answer is HTTP 200
with `{"errcode": …, "errmsg": …}` unless a failure was scripted with `fail_next`:

    0      ok                          accepted (and recorded in `messages`)
    44002  empty post data             the body is empty
    40008  invalid message type        the body is not a JSON object, or msgtype is not text/markdown
    44004  empty content               text.content / markdown.content missing or empty
    40058  … invalid Request Parameter content over 2048 (text) / 4096 (markdown) UTF-8 bytes,
                                       or a mention list that is not a list of strings
    93000  invalid webhook url         no key, or a key outside the configured allow-list
    45009  api freq out of limit       a 21st accepted message for one key within 60 s

Run it for a demo with `python -m bot.devtools.fake_wecom --port 8099 --log var/fake_wecom.log`
and point WECOM_WEBHOOK_URL at `http://127.0.0.1:8099/cgi-bin/webhook/send`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Collection, Deque, Dict, List, Optional, Sequence, Tuple

from aiohttp import web

from bot.devtools.serving import serve_app
from bot.notify.wecom import mask_key

__all__ = [
    "ERRMSGS",
    "SEND_PATH",
    "Exchange",
    "FakeWeCom",
    "FakeWeComServer",
    "ReceivedMessage",
    "main",
    "running_fake_wecom",
]

SEND_PATH = "/cgi-bin/webhook/send"
TEXT_MAX_BYTES = 2048
MARKDOWN_MAX_BYTES = 4096

ERRMSGS: Dict[int, str] = {
    0: "ok",
    40008: "invalid message type",
    40058: "invalid Request Parameter",
    44002: "empty post data",
    44004: "empty content",
    45009: "api freq out of limit",
    93000: "invalid webhook url",
}


@dataclass(frozen=True)
class ReceivedMessage:
    """One accepted message: the robot key, the JSON payload and when it arrived (fake's clock)."""

    key: str
    payload: Dict[str, Any]
    at: float
    raw: bytes


@dataclass(frozen=True)
class Exchange:
    """One request and the answer given to it, accepted or not."""

    key: str
    raw: bytes
    status: int
    errcode: Optional[int]


@dataclass
class _Scripted:
    remaining: int
    status: int
    errcode: Optional[int]
    errmsg: str
    delay: float
    key: Optional[str]


@dataclass
class FakeWeCom:
    """State and rules of the fake robot endpoint; `app()` serves it."""

    allowed_keys: Optional[Collection[str]] = None
    rate_limit: int = 20
    window_seconds: float = 60.0
    clock: Callable[[], float] = time.monotonic
    latency: float = 0.0
    on_message: Optional[Callable[[ReceivedMessage], None]] = None
    messages: List[ReceivedMessage] = field(default_factory=list)
    exchanges: List[Exchange] = field(default_factory=list)
    _scripted: List[_Scripted] = field(default_factory=list, init=False, repr=False)
    _recent: Dict[str, Deque[float]] = field(default_factory=dict, init=False, repr=False)

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 200,
        errcode: Optional[int] = None,
        errmsg: Optional[str] = None,
        delay: float = 0.0,
        key: Optional[str] = None,
    ) -> None:
        """Answer the next `n` requests (for `key`, or any) with an HTTP status or an errcode."""
        if status == 200 and errcode is None:
            status = 500  # `fail_next(n)` alone means "the server is down"
        message = errmsg if errmsg is not None else ERRMSGS.get(errcode or 0, "system error")
        self._scripted.append(_Scripted(n, status, errcode, message, delay, key))

    def messages_for(self, key: str) -> List[ReceivedMessage]:
        """The accepted messages sent to one robot key."""
        return [m for m in self.messages if m.key == key]

    @property
    def errcodes(self) -> List[Optional[int]]:
        """The errcode of every answer so far (None for scripted non-200 answers)."""
        return [e.errcode for e in self.exchanges]

    def app(self) -> web.Application:
        """The aiohttp application serving this fake."""
        app = web.Application()
        app.router.add_post(SEND_PATH, self._handle)
        return app

    def _take_scripted(self, key: str) -> Optional[_Scripted]:
        for script in self._scripted:
            if script.remaining > 0 and script.key in (None, key):
                script.remaining -= 1
                return script
        return None

    async def _handle(self, request: web.Request) -> web.Response:
        key = request.query.get("key", "")
        raw = await request.read()
        if self.latency:
            await asyncio.sleep(self.latency)
        script = self._take_scripted(key)
        if script is not None:
            if script.delay:
                await asyncio.sleep(script.delay)
            self.exchanges.append(Exchange(key, raw, script.status, script.errcode if script.status == 200 else None))
            if script.status != 200:
                return web.Response(status=script.status, text=f"scripted HTTP {script.status}")
            return _answer(script.errcode or 0, script.errmsg)

        errcode, errmsg, payload = self._check(key, raw)
        self.exchanges.append(Exchange(key, raw, 200, errcode))
        if errcode == 0 and payload is not None:
            now = self.clock()
            self._recent.setdefault(key, deque()).append(now)
            message = ReceivedMessage(key=key, payload=payload, at=now, raw=raw)
            self.messages.append(message)
            if self.on_message is not None:
                self.on_message(message)
        return _answer(errcode, errmsg)

    def _check(self, key: str, raw: bytes) -> Tuple[int, str, Optional[Dict[str, Any]]]:
        """Validate one request as WeCom would; return (errcode, errmsg, payload)."""
        if not key or (self.allowed_keys is not None and key not in self.allowed_keys):
            return 93000, ERRMSGS[93000], None
        if not raw.strip():
            return 44002, ERRMSGS[44002], None
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 40008, ERRMSGS[40008], None
        if not isinstance(payload, dict) or payload.get("msgtype") not in ("text", "markdown"):
            return 40008, ERRMSGS[40008], None
        msgtype = payload["msgtype"]
        body = payload.get(msgtype)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content:
            return 44004, ERRMSGS[44004], None
        limit = TEXT_MAX_BYTES if msgtype == "text" else MARKDOWN_MAX_BYTES
        if len(content.encode("utf-8")) > limit:
            return 40058, f"{msgtype}.content exceed max length {limit}. invalid Request Parameter", None
        if msgtype == "text":
            for name in ("mentioned_list", "mentioned_mobile_list"):
                value = body.get(name, [])
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    return 40058, f"text.{name} invalid. invalid Request Parameter", None
        if self._over_limit(key):
            return 45009, ERRMSGS[45009], None
        return 0, ERRMSGS[0], payload

    def _over_limit(self, key: str) -> bool:
        recent = self._recent.setdefault(key, deque())
        horizon = self.clock() - self.window_seconds
        while recent and recent[0] <= horizon:
            recent.popleft()
        return len(recent) >= self.rate_limit


def _answer(errcode: int, errmsg: str) -> web.Response:
    return web.json_response({"errcode": errcode, "errmsg": errmsg})


@dataclass(frozen=True)
class FakeWeComServer:
    """A running fake: its state and the webhook URL to configure as WECOM_WEBHOOK_URL."""

    fake: FakeWeCom
    host: str
    port: int

    @property
    def url(self) -> str:
        """The webhook send URL (without `?key=`)."""
        return f"http://{self.host}:{self.port}{SEND_PATH}"


@asynccontextmanager
async def running_fake_wecom(
    fake: Optional[FakeWeCom] = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[FakeWeComServer]:
    """Serve `fake` (a new one by default) on `host`:`port` (0 = a free port) for the block's duration."""
    fake = fake or FakeWeCom()
    async with serve_app(fake.app(), host, port) as bound_port:
        yield FakeWeComServer(fake=fake, host=host, port=bound_port)


def _printer(log_path: Optional[Path]) -> Callable[[ReceivedMessage], None]:
    def show(message: ReceivedMessage) -> None:
        line = json.dumps(
            {
                "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "ts": round(time.time(), 3),  # arrival, for latency measurements (make bench-staff)
                "key": mask_key(message.key),
                "payload": message.payload,
            },
            ensure_ascii=False,
        )
        print(line, flush=True)
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    return show


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Run the fake from the command line, printing (and optionally logging) each message."""
    parser = argparse.ArgumentParser(description="Local fake of the WeCom group-robot webhook.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--log", type=Path, default=None, help="append each accepted message to this file")
    parser.add_argument(
        "--key", action="append", dest="keys", default=None,
        help="accept only this robot key (repeatable); without it any non-empty key is accepted",
    )
    args = parser.parse_args(argv)
    fake = FakeWeCom(allowed_keys=set(args.keys) if args.keys else None, on_message=_printer(args.log))
    print(f"fake WeCom robot webhook on http://{args.host}:{args.port}{SEND_PATH}", flush=True)
    web.run_app(fake.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
