"""The console's own pages: login, logout, the ticket queue, a ticket and its actions, static files, health."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from pathlib import Path
from typing import List, Optional
from zoneinfo import ZoneInfo

import aiohttp
from sanic import Sanic, response
from sanic.exceptions import NotFound as RouteNotFound
from sanic.request import Request
from sanic.response import HTTPResponse
from sqlalchemy import text

from bot.console import texts
from bot.console.auth import current_staff, login_form, public
from bot.console.context import console_of
from bot.console.security import LOGIN_COOKIE, SESSION_COOKIE, safe_next
from bot.console.views import render
from bot import lifecycle as lc
from bot import messages
from bot.errors import AccountLocked, AuthFailed, DeliveryError, InvalidInput
from bot.rasa_api import RasaAPI, Turn, rasa_token
from bot.services import accounts, lifecycle, residents
from bot.services import queue as ticket_queue

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
STATIC_FILES = {  # name → content type; the only files /static/ serves
    "console.css": "text/css; charset=utf-8",
    "models.js": "text/javascript; charset=utf-8",  # the model page's progress (bot/console/models.py)
}


def _login_page(request: Request, nonce: str, status: int = 200, error: str = "", key: str = "",
                nxt: str = "/") -> HTTPResponse:
    page = render(request, "login.html", status=status, csrf_token=nonce, error=error, key=key, next=nxt)
    console_of(request).cookies.set(page, LOGIN_COOKIE, nonce)
    return page


def _login_nonce(request: Request) -> str:
    # One nonce per browser (kept while the login cookie lives), so two open login tabs both work.
    console = console_of(request)
    return console.cookies.read(LOGIN_COOKIE, request.cookies.get(LOGIN_COOKIE)) or secrets.token_urlsafe(32)


@login_form
async def login_page(request: Request) -> HTTPResponse:
    """GET /login: the form (or straight on, when already signed in)."""
    nxt = safe_next(request.args.get("next"))
    if request.ctx.staff is not None:
        return response.redirect(nxt, status=302)
    return _login_page(request, _login_nonce(request), nxt=nxt)


@login_form
async def login_submit(request: Request) -> HTTPResponse:
    """POST /login: check the password, open a fresh session, and go on to `next`."""
    console = console_of(request)
    key = (request.form.get("key") or "").strip()
    password = request.form.get("password") or ""
    nxt = safe_next(request.form.get("next"))
    nonce = _login_nonce(request)  # checked against the form already (auth.identify)
    if not key or not password:
        return _login_page(request, nonce, 400, texts.MISSING_CREDENTIALS, key, nxt)
    try:
        async with console.login_slots:
            new = await console.run(accounts.login, console.factory, key, password, console.now(), console.policy)
    except AccountLocked as exc:
        until = exc.until.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(console.settings.timezone))
        return _login_page(request, nonce, 401, texts.LOCKED_UNTIL.format(until=f"{until:%H:%M}"), key, nxt)
    except AuthFailed:
        return _login_page(request, nonce, 401, texts.WRONG_CREDENTIALS, key, nxt)
    old = console.cookies.read(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))
    if old:  # signing in again (maybe as someone else) ends the session this browser had
        await console.run(accounts.logout, console.factory, old, console.now())
    done = response.redirect(nxt, status=303)
    # The login cookie stays: another tab's login form (same nonce) still works, e.g. to switch accounts.
    console.cookies.set(done, SESSION_COOKIE, new.sid)
    return done


async def logout(request: Request) -> HTTPResponse:
    """POST /logout: end the session on the server and drop the cookie."""
    console = console_of(request)
    raw = console.cookies.read(SESSION_COOKIE, request.cookies.get(SESSION_COOKIE))
    await console.run(accounts.logout, console.factory, raw, console.now())
    done = response.redirect("/login", status=303)
    console.cookies.clear(done, SESSION_COOKIE)
    return done


async def home(request: Request) -> HTTPResponse:
    """GET /: my queue — the tickets in my scope, urgent first, filtered by state, type, urgency and "mine"."""
    me = current_staff(request)
    console = console_of(request)
    filters = ticket_queue.QueueFilter.parse(request.args)
    found = await console.run(ticket_queue.queue, console.factory, me.key, filters, console.now(),
                              console.settings.escalation)
    return render(request, "queue.html", queue=found, filters=filters, states=lc.STATES,
                  state_labels=lc.STATE_LABELS, kinds=ticket_queue.KINDS, kind_labels=ticket_queue.KIND_LABELS,
                  urgency_labels=ticket_queue.URGENCY_LABELS, limit=ticket_queue.QUEUE_LIMIT)


CONVERSATION_WINDOW = dt.timedelta(minutes=1)
# (service field, action) → the label of the form field on the ticket page ("" : any action)
FIELD_LABELS = {("note", "resolve"): "处理结果", ("note", "return"): "退回原因", ("note", "reassign"): "转派原因",
                ("note", ""): "备注", ("assignee", ""): "负责人", ("eta", ""): "预计上门时间", ("kind", ""): "新类型"}


async def _conversation(request: Request, sender_id: str, created_at: dt.datetime) -> Optional[List[Turn]]:
    """The conversation that opened the ticket, or None when Rasa cannot be asked (down, or the id unaddressable)."""
    settings = console_of(request).settings
    try:
        async with aiohttp.ClientSession() as http:
            api = RasaAPI(http, settings.rasa_url, rasa_token(settings), timeout=3.0)
            return await api.conversation(sender_id, until=created_at + CONVERSATION_WINDOW)
    except DeliveryError as exc:
        logger.info("console: conversation of a ticket unavailable: %s", exc)
        return None


async def ticket_page(request: Request, number: str) -> HTTPResponse:
    """GET /tickets/<number>: the ticket in full, its history and messages, and the actions I may take."""
    me = current_staff(request)
    console = console_of(request)
    found = await console.run(ticket_queue.detail, console.factory, me.key, number, console.now(),
                              console.settings.escalation, console.settings.timezone)
    turns = await _conversation(request, found.sender_id, found.created_at_utc)
    done = request.args.get("done") or ""
    return render(request, "ticket.html", t=found, turns=turns,
                  done=done if done in lc.STAFF_ACTIONS or done == "profile" else "",
                  labels={**{a: lc.TRANSITIONS[a].label for a in lc.STAFF_ACTIONS}, "profile": "清除居民档案的需关照标注"},
                  kinds=messages.KIND_LABELS)


async def ticket_action(request: Request, number: str, action: str) -> HTTPResponse:
    """POST /tickets/<number>/<action>: take one lifecycle action, then back to the ticket page."""
    me = current_staff(request)
    console = console_of(request)
    if action not in lc.STAFF_ACTIONS:
        raise RouteNotFound("no such action")
    form = request.form

    def field(name: str) -> Optional[str]:
        value = (form.get(name) or "").strip()
        return value or None

    try:
        outcome = await console.run(lambda: lifecycle.perform(
            console.factory, me.key, number, action, note=field("note"), assignee=field("assignee"),
            eta=field("eta"), kind=field("kind"), ctx=lifecycle.Context.from_settings(console.settings),
            now=console.now()))
    except InvalidInput as exc:  # name the form's field as the page labels it
        label = FIELD_LABELS.get((exc.field or "", action)) or FIELD_LABELS.get((exc.field or "", ""))
        if label is None:
            raise
        raise InvalidInput(exc.message, field=label) from None
    except lc.IllegalTransition:
        now = await console.run(ticket_queue.detail, console.factory, me.key, number, console.now(),
                                console.settings.escalation, console.settings.timezone)
        message = texts.ticket_conflict(action, lc.TRANSITIONS[action].label, now.row.status_label,
                                        now.row.holder or "")
        return render(request, "message.html", status=409, title=texts.ERROR_TITLES[409], message=message)
    return response.redirect(f"/tickets/{outcome.number}?done={action}", status=303)


async def profile_clear(request: Request, number: str) -> HTTPResponse:
    """POST /tickets/<number>/profile/clear: a lead clears what the resident's profile remembers (with why)."""
    me = current_staff(request)
    console = console_of(request)
    try:
        await console.run(residents.clear_vulnerability, console.factory, me.key, number,
                          request.form.get("note") or "", console.now())
    except InvalidInput:
        raise InvalidInput("please say why", field="清除原因") from None
    return response.redirect(f"/tickets/{number}?done=profile", status=303)


@public
async def static_file(request: Request, name: str) -> HTTPResponse:
    """GET /static/<name>: one of STATIC_FILES, nothing else."""
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise RouteNotFound("no such file")
    body = await console_of(request).run((STATIC_DIR / name).read_bytes)
    return response.raw(body, content_type=content_type, headers={"Cache-Control": "public, max-age=3600"})


@public
async def health(request: Request) -> HTTPResponse:
    """GET /health: 200 when the database answers, 503 otherwise."""
    console = console_of(request)

    def ping() -> None:
        with console.factory() as session:
            session.execute(text("select 1"))

    try:
        await console.run(ping)
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"; the reason is logged
        logger.exception("console: health check failed")
        return response.json({"status": "unavailable"}, status=503)
    return response.json({"status": "ok"})


def register_pages(app: Sanic) -> None:
    """Add the pages to `app`."""
    app.add_route(login_page, "/login", methods=["GET"], name="login_page")
    app.add_route(login_submit, "/login", methods=["POST"], name="login_submit")
    app.add_route(logout, "/logout", methods=["POST"], name="logout")
    app.add_route(home, "/", methods=["GET"], name="home")
    app.add_route(ticket_page, "/tickets/<number:str>", methods=["GET"], name="ticket_page")
    app.add_route(profile_clear, "/tickets/<number:str>/profile/clear", methods=["POST"], name="profile_clear")
    app.add_route(ticket_action, "/tickets/<number:str>/<action:str>", methods=["POST"], name="ticket_action")
    app.add_route(static_file, "/static/<name:str>", methods=["GET"], name="static_file")
    app.add_route(health, "/health", methods=["GET"], name="health")
