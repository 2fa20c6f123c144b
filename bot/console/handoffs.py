"""The handoff inbox: duty staff see who asked for a person, answer them, and hand the conversation back.

Pages: GET /handoffs (the open handoffs, oldest first), GET /handoffs/<id> (the conversation from Rasa merged
with the staff replies, each with its delivery status), POST /handoffs/<id>/reply and POST
/handoffs/<id>/release (released in the database, then resumed in Rasa; when Rasa does not take the resume
the page says so and offers a retry). Who may use the inbox is decided by bot/services/handoff.py
(`inbox_actor`), which every call goes through; the JSON API twins are in bot/console/api.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

import aiohttp
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console.auth import current_staff
from bot.console.context import console_of
from bot.console.pages import STATIC_FILES
from bot.console.views import render
from bot.dates import utc_iso
from bot.errors import DeliveryError, InvalidInput, NotFound
from bot.rasa_api import RasaAPI, Turn, rasa_token
from bot.services import handoff
from bot.services.handoff import HandoffDetail, ReplyView, WaitingHandoff

STYLESHEET = "handoff.css"
RASA_TIMEOUT_SECONDS = 5.0
CONVERSATION_TURNS = 50

# Page wording chosen by code (the rest is in the templates).
CONVERSATION_UNAVAILABLE = "对话记录暂时无法读取"
RELEASED = "已交还助手：{who}。"
RESUME_FAILED = "已在系统中记为交还，但助手暂时没有接管这段对话（{reason}）。居民现在发消息，助手仍不会回答。请点“重新交还助手”再试。"
REPLY_EMPTY = "请填写回复内容。"
REPLY_TOO_LONG = "回复最多 {limit} 个字，请删减后再发。"
REPLY_UNREACHABLE = "这位居民通过 REST 接口对话，工作台无法给他发消息。"
SPEAKERS = {"resident": "居民", "assistant": "助手"}
STATUS_LABELS = {"pending": "发送中", "sent": "已送达", "failed": "发送失败", "undelivered": "未送达", None: "未发送"}


@dataclass(frozen=True)
class Entry:
    """One line of the conversation page: a resident or assistant turn from Rasa, or a staff reply."""

    at: dt.datetime  # naive UTC
    speaker: str  # resident | assistant | staff
    who: str
    text: str
    reply: Optional[ReplyView] = None


def waited(since: dt.datetime, now: dt.datetime) -> str:
    """How long someone has waited, for people: 不到 1 分钟, 12 分钟, 1 小时 5 分钟, 2 天 3 小时."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return "不到 1 分钟"
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时" + (f" {rest} 分钟" if rest else "")
    days, hours = divmod(hours, 24)
    return f"{days} 天" + (f" {hours} 小时" if hours else "")


def merge(turns: List[Turn], replies: List[ReplyView]) -> List[Entry]:
    """Rasa's turns and the staff replies in time order (a reply after a turn of the same instant)."""
    entries = [Entry(t.at, t.speaker, SPEAKERS.get(t.speaker, t.speaker), t.text) for t in turns]
    entries += [Entry(r.at, "staff", r.staff_label, r.text, r) for r in replies]
    order = {"resident": 0, "assistant": 0, "staff": 1}
    return sorted(entries, key=lambda e: (e.at, order.get(e.speaker, 0)))


def rasa(request: Request) -> RasaAPI:
    """A client for the Rasa server's HTTP API over the console's shared HTTP session."""
    settings = console_of(request).settings
    return RasaAPI(request.app.ctx.handoff_http, settings.rasa_url, rasa_token(settings), timeout=RASA_TIMEOUT_SECONDS)


async def conversation(request: Request, sender_id: str) -> Optional[List[Turn]]:
    """The conversation so far as Rasa recorded it, or None when Rasa cannot be read."""
    try:
        return await rasa(request).conversation(sender_id, limit=CONVERSATION_TURNS)
    except DeliveryError:
        return None


async def resume(request: Request, sender_id: str) -> Optional[str]:
    """Hand the conversation back to the assistant in Rasa; the reason it failed, or None."""
    try:
        await rasa(request).resume(sender_id)
    except DeliveryError as exc:
        return exc.message
    return None


def local(request: Request, at: Optional[dt.datetime]) -> str:
    """A naive UTC time as the console's local time (11-28 20:05)."""
    if at is None:
        return ""
    zone = ZoneInfo(console_of(request).settings.timezone)
    return at.replace(tzinfo=dt.timezone.utc).astimezone(zone).strftime("%m-%d %H:%M")


def reply_error(exc: InvalidInput) -> str:
    """The page's wording for a refused reply."""
    if exc.field == "text":
        return REPLY_TOO_LONG.format(limit=handoff.MAX_REPLY_CHARS) if "over" in exc.message else REPLY_EMPTY
    return REPLY_UNREACHABLE


async def _detail_page(request: Request, handoff_id: int, status: int = 200, error: str = "", notice: str = "",
                       draft: str = "", resume_failed: bool = False) -> HTTPResponse:
    c = console_of(request)
    me = current_staff(request)
    shown: HandoffDetail = await c.run(handoff.detail, c.factory, me.key, handoff_id)
    turns = await conversation(request, shown.handoff.sender_id)
    entries = merge(turns or [], list(shown.replies))
    return render(request, "handoff_detail.html", status=status, item=shown, entries=entries,
                  conversation_ok=turns is not None, unavailable=CONVERSATION_UNAVAILABLE, error=error,
                  notice=notice, draft=draft, resume_failed=resume_failed, local=lambda at: local(request, at),
                  waited=waited(shown.handoff.started_at, c.now()), status_labels=STATUS_LABELS,
                  max_chars=handoff.MAX_REPLY_CHARS, unreachable=REPLY_UNREACHABLE, stylesheet=STYLESHEET)


async def inbox(request: Request) -> HTTPResponse:
    """GET /handoffs: the open handoffs, oldest first, with how long each has waited."""
    c = console_of(request)
    me = current_staff(request)
    rows: List[WaitingHandoff] = await c.run(handoff.waiting, c.factory, me.key)
    now = c.now()
    notice = ""
    released = request.args.get("released")
    if released and released.isdigit():
        who = await c.run(_who, c.factory, me.key, int(released))
        notice = RELEASED.format(who=who) if who else ""
    return render(request, "handoff_inbox.html", rows=[(row, waited(row.started_at, now)) for row in rows],
                  notice=notice, local=lambda at: local(request, at), stylesheet=STYLESHEET)


def _who(factory: Any, staff_key: str, handoff_id: int) -> Optional[str]:
    try:
        item = handoff.detail(factory, staff_key, handoff_id).handoff
    except NotFound:
        return None
    return item.resident_name or item.display


async def show(request: Request, handoff_id: int) -> HTTPResponse:
    """GET /handoffs/<id>: the conversation so far, the replies' delivery, the reply box and 交还助手."""
    sent = request.args.get("sent") == "1"
    return await _detail_page(request, handoff_id, notice="回复已提交，正在发送给居民。" if sent else "")


async def post_reply(request: Request, handoff_id: int) -> HTTPResponse:
    """POST /handoffs/<id>/reply: answer the resident (refused replies come back with the text kept)."""
    c = console_of(request)
    me = current_staff(request)
    text = request.form.get("text") or ""
    try:
        saved = await c.run(handoff.reply, c.factory, handoff_id, me.key, text, c.now())
    except InvalidInput as exc:
        return await _detail_page(request, handoff_id, status=400, error=reply_error(exc), draft=text)
    return response.redirect(f"/handoffs/{handoff_id}?sent=1#reply-{saved.id}", status=303)


async def post_release(request: Request, handoff_id: int) -> HTTPResponse:
    """POST /handoffs/<id>/release: mark it released, resume the conversation in Rasa, back to the inbox."""
    c = console_of(request)
    me = current_staff(request)
    done = await c.run(handoff.hand_back, c.factory, handoff_id, me.key, c.now())
    failure = await resume(request, done.sender_id)
    if failure is not None:
        # Not a server error: the release is recorded; the page says what is left to do and offers the retry.
        return await _detail_page(request, handoff_id, error=RESUME_FAILED.format(reason=failure),
                                  resume_failed=True)
    return response.redirect(f"/handoffs?released={handoff_id}", status=303)


def register_handoffs(app: Sanic) -> None:
    """Add the handoff inbox's pages, its stylesheet and the HTTP session it talks to Rasa over to `app`."""
    STATIC_FILES.setdefault(STYLESHEET, "text/css; charset=utf-8")

    async def open_http(app: Sanic, _loop: object) -> None:
        app.ctx.handoff_http = aiohttp.ClientSession()

    async def close_http(app: Sanic, _loop: object) -> None:
        http = getattr(app.ctx, "handoff_http", None)
        if http is not None:
            await http.close()
            app.ctx.handoff_http = None

    app.register_listener(open_http, "before_server_start")
    app.register_listener(close_http, "after_server_stop")
    app.add_route(inbox, "/handoffs", methods=["GET"], name="handoff_inbox")
    app.add_route(show, "/handoffs/<handoff_id:int>", methods=["GET"], name="handoff_show")
    app.add_route(post_reply, "/handoffs/<handoff_id:int>/reply", methods=["POST"], name="handoff_reply")
    app.add_route(post_release, "/handoffs/<handoff_id:int>/release", methods=["POST"], name="handoff_release")


def as_json(item: WaitingHandoff) -> Dict[str, Any]:
    """An open or released handoff's summary as the API shows it (schema Handoff)."""
    return {"id": item.id, "sender_id": item.sender_id, "display": item.display,
            "resident_name": item.resident_name, "resident_phone": item.resident_phone,
            "started_at": iso(item.started_at), "reason": item.reason, "replies": item.replies,
            "can_message": item.can_message}


def reply_json(reply: ReplyView) -> Dict[str, Any]:
    """A staff reply as the API shows it (schema HandoffReply)."""
    return {"id": reply.id, "at": iso(reply.at), "staff": reply.staff_key, "staff_label": reply.staff_label,
            "text": reply.text, "status": reply.status, "last_error": reply.last_error}


iso = utc_iso  # the API's times (bot/dates.py)
