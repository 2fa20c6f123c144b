"""Who is asking: the session cookie for pages, the bearer token for /api/, and the CSRF check on every POST.

`identify` runs before every handler. Page routes need a signed-in session unless marked `@public`; the
handler then finds `request.ctx.staff` (a StaffIdentity) and `request.ctx.csrf_token`. Every POST, PUT,
PATCH or DELETE outside /api/ must carry the session's CSRF token (form field `csrf_token` or header
`X-CSRF-Token`) — checked here, so no handler can forget; the login form carries a pre-session token instead
(`@login_form`). /api/ routes need `Authorization: Bearer <token>` unless public; they never use cookies, so
they need no CSRF token.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import quote

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console.context import console_of
from bot.console.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    LOGIN_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    CsrfRejected,
    tokens_match,
)
from bot.console.texts import API_UNAUTHORIZED
from bot.console.views import json_answer
from bot.errors import NotAllowed
from bot.services import accounts
from bot.services.accounts import StaffIdentity

Handler = TypeVar("Handler", bound=Callable[..., Any])
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/"


def _sessionless(path: str) -> bool:
    # No session for a stylesheet or a health probe; Rasa's model pulls carry their own token (bot/console/models.py).
    return path.startswith(("/static/", "/models/")) or path == "/health"


def public(handler: Handler) -> Handler:
    """Mark a route as open without signing in (pages) or without a bearer token (API)."""
    handler.hg_public = True  # type: ignore[attr-defined]
    return handler


def login_form(handler: Handler) -> Handler:
    """Mark the login route: public, and its POST checks the pre-session CSRF token of the login form."""
    handler.hg_login_form = True  # type: ignore[attr-defined]
    return public(handler)


def require_role(*roles: str) -> Callable[[Handler], Handler]:
    """Allow a page handler only to staff with one of `roles` (others get 403)."""
    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapped(request: Request, *args: Any, **kwargs: Any) -> Any:
            if current_staff(request).role not in roles:
                raise NotAllowed("role not allowed", role=current_staff(request).role, allowed=roles)
            return await handler(request, *args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorate


def current_staff(request: Request) -> StaffIdentity:
    """The signed-in staff member (on any route not marked public, there always is one)."""
    staff = getattr(request.ctx, "staff", None)
    if staff is None:
        raise NotAllowed("not signed in")
    return staff


def csrf_token(request: Request) -> str:
    """The signed-in session's CSRF token, for forms (templates get it as `csrf_token` / `csrf_field()`)."""
    token = getattr(request.ctx, "csrf_token", None)
    if not token:
        raise NotAllowed("no session")
    return token


def _flag(request: Request, name: str) -> bool:
    route = getattr(request, "route", None)
    return bool(route is not None and getattr(route.handler, name, False))


def _bearer(request: Request) -> Optional[str]:
    header = request.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_unauthorized() -> HTTPResponse:
    """401 for the API: JSON with the reason, and the scheme to use."""
    return json_answer({"error": API_UNAUTHORIZED, "code": "unauthorized"}, status=401,
                       headers={"WWW-Authenticate": 'Bearer realm="hongguanjia"'})


def login_redirect(request: Request) -> HTTPResponse:
    """302 to the login page, coming back here afterwards (GET only; a form post comes back to the start)."""
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    nxt = target if request.method == "GET" else "/"
    return response.redirect("/login" + ("" if nxt == "/" else "?next=" + quote(nxt, safe="")), status=302)


async def identify(request: Request) -> Optional[HTTPResponse]:
    """Request middleware: set request.ctx.staff/csrf_token, enforce sign-in, bearer tokens and CSRF."""
    console = console_of(request)
    request.ctx.staff = None
    request.ctx.csrf_token = None
    known = request.route is not None  # an unknown path gets its 404 (the page still shows who is signed in)
    is_public = not known or _flag(request, "hg_public")
    if request.path.startswith(API_PREFIX):
        token = _bearer(request)
        staff = await console.run(accounts.staff_for_token, console.factory, token) if token else None
        request.ctx.staff = staff
        if staff is None and not is_public:
            return api_unauthorized()
        return None
    if _sessionless(request.path):
        return None
    raw = console.cookies.read(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))
    session = (await console.run(accounts.session_for, console.factory, raw, console.now(), console.policy)
               if raw else None)
    if session is not None:
        request.ctx.staff = session.staff
        request.ctx.csrf_token = session.csrf_token
    if request.method in UNSAFE_METHODS and known:
        if _flag(request, "hg_login_form"):
            expected = console.cookies.read(LOGIN_COOKIE, request.cookies.get(LOGIN_COOKIE))
        elif session is None and not is_public:
            return login_redirect(request)  # signed out meanwhile: nothing is done, sign in again
        else:
            expected = session.csrf_token if session is not None else None
        if not tokens_match(expected, _submitted_token(request)):
            raise CsrfRejected("missing or wrong CSRF token")
        return None
    if session is None and not is_public:
        return login_redirect(request)
    return None


def _submitted_token(request: Request) -> Optional[str]:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return request.form.get(CSRF_FIELD)
    return None


def page_headers(request: Request, resp: HTTPResponse) -> None:
    """Response middleware: security headers everywhere, and no caching of anything but static files."""
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)
    if not request.path.startswith("/static/") or resp.status != 200:
        resp.headers["Cache-Control"] = "no-store"
