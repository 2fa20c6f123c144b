"""The staff console served on a free 127.0.0.1 port, and a small browser-like client that keeps its cookies."""

from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookies import Morsel, SimpleCookie
from typing import Any, AsyncIterator, Callable, Dict, Mapping, Optional

import aiohttp
from sanic import Sanic
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.console.app import create_app

DEMO_PASSWORD = "hongxing-demo"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

from tests.helpers import serving


@dataclass
class Reply:
    """One answer: status, headers, body text, and the cookies it set (name → Morsel)."""

    status: int
    headers: Mapping[str, str]
    text: str
    set_cookies: Dict[str, Morsel] = field(default_factory=dict)

    @property
    def location(self) -> Optional[str]:
        """Where a redirect points."""
        return self.headers.get("Location")

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.text)

    def csrf_token(self) -> str:
        """The CSRF token of the (first) form on the page."""
        match = _CSRF.search(self.text)
        assert match, f"no CSRF field on the page:\n{self.text[:2000]}"
        return match.group(1)


class Browser:
    """Talks to the console like one browser: keeps cookies (set, replaced, deleted), never follows redirects."""

    def __init__(self, base_url: str, http: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.http = http
        self.cookies: Dict[str, str] = {}

    async def request(self, method: str, path: str, data: Optional[Mapping[str, str]] = None,
                      headers: Optional[Mapping[str, str]] = None, json_body: Any = None) -> Reply:
        """Send one request with this browser's cookies; remember what the answer sets."""
        all_headers = dict(headers or {})
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        async with self.http.request(method, self.base_url + path, data=data, json=json_body,
                                     headers=all_headers, allow_redirects=False) as resp:
            body = await resp.text()
            set_cookies: Dict[str, Morsel] = {}
            for header in resp.headers.getall("Set-Cookie", []):
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                for name, morsel in jar.items():
                    set_cookies[name] = morsel
                    if morsel["max-age"] == "0":
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            return Reply(resp.status, resp.headers, body, set_cookies)

    async def get(self, path: str, headers: Optional[Mapping[str, str]] = None) -> Reply:
        """GET `path`."""
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, data: Optional[Mapping[str, str]] = None,
                   headers: Optional[Mapping[str, str]] = None) -> Reply:
        """POST a form to `path`."""
        return await self.request("POST", path, data=data or {}, headers=headers)

    async def login(self, key: str, password: str = DEMO_PASSWORD, next_path: Optional[str] = None) -> Reply:
        """Open the login page and submit it, as a person would."""
        page = await self.get("/login" + (f"?next={next_path}" if next_path else ""))
        assert page.status == 200, page.text
        form = {"csrf_token": page.csrf_token(), "key": key, "password": password}
        if next_path:
            form["next"] = next_path
        return await self.post("/login", form)

    async def csrf(self) -> str:
        """The signed-in session's CSRF token, read from the home page's logout form."""
        home = await self.get("/")
        assert home.status == 200, (home.status, home.location)
        return home.csrf_token()


@dataclass
class ServedConsole:
    """A console app on a real port; `browser()` opens a fresh cookie jar."""

    url: str
    app: Sanic
    http: aiohttp.ClientSession

    def browser(self) -> Browser:
        """A new browser (no cookies)."""
        return Browser(self.url, self.http)

    async def signed_in(self, key: str) -> Browser:
        """A new browser signed in as staff member `key` with the demo password."""
        browser = self.browser()
        reply = await browser.login(key)
        assert reply.status == 303, reply.text
        return browser


@asynccontextmanager
async def serve_console(settings: Settings, factory: Optional[sessionmaker] = None,
                        clock: Optional[Callable[[], dt.datetime]] = None,
                        prepare: Optional[Callable[[Sanic], None]] = None) -> AsyncIterator[ServedConsole]:
    """Serve `create_app(settings, …)` on 127.0.0.1 for the length of the block (`prepare` may add routes)."""
    app = create_app(settings, session_factory=factory, clock=clock)
    if prepare is not None:
        prepare(app)
    async with serving(app) as port, aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        yield ServedConsole(f"http://127.0.0.1:{port}", app, http)
        Sanic._app_registry.pop(app.name, None)
