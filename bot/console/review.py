"""The console's review page: what the assistant probably misunderstood, worst first, for an admin to label.

The page calls bot/services/review.py, as the CLI would; a label refused (an intent that does not exist, a
span not in the message, a duplicate of a training or held-out example, someone else deciding first) is
answered on the page with the reason and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console.auth import current_staff, require_role
from bot.console.context import console_of
from bot.console.views import render
from bot.errors import InvalidInput
from bot.services import review
from bot.services.scope import ADMIN_ROLES

ENTITY_ROWS = 4  # entity fields on each item's form
MAX_DAYS = 90
ERRORS = {
    "intent": "请从列表里选一个意图。",
    "entities": "标注有误：每个实体要选类型，并填写这句话里原样出现的词。",
    "action": "请点“采纳”或“忽略”。",
    "days": f"天数请填 1 到 {MAX_DAYS} 之间的数字。",
}
CONFLICT = "这一条刚被其他管理员处理过（或页面已过期），没有保存您的选择。请看刷新后的列表。"
DONE = {"accepted": "已采纳，写入了训练数据（重新训练后生效）。", "ignored": "已忽略。"}


async def _page(request: Request, status: int = 200, error: Optional[str] = None, item_id: Optional[int] = None,
                done: Optional[str] = None) -> HTTPResponse:
    console = console_of(request)
    shown = request.args.get("status") or review.PENDING
    if shown not in review.STATUS_LABELS:
        shown = review.PENDING
    staff_key = current_staff(request).key  # an admin reviews their own community's residents' messages
    items = await console.run(review.items, console.factory, shown, staff_key=staff_key)
    counts = await console.run(review.counts, console.factory, staff_key=staff_key)
    return render(request, "admin_review.html", status=status, items=items, counts=counts, shown=shown,
                  statuses=review.STATUS_LABELS, intents=await console.run(review.intents),
                  entities=review.ENTITY_LABELS, entity_rows=ENTITY_ROWS, error=error, error_item=item_id,
                  done=done or DONE.get(request.args.get("done") or "") or
                  (f"收集到 {request.args.get('new')} 组新的待审核消息。" if request.args.get("new") else None))


@require_role(*ADMIN_ROLES)
async def review_page(request: Request) -> HTTPResponse:
    """GET /admin/review: the groups to review (or those accepted / ignored)."""
    return await _page(request)


def _entities(form: Any) -> List[Dict[str, str]]:
    out = []
    for n in range(ENTITY_ROWS):
        name, text = (form.get(f"entity-{n}") or "").strip(), (form.get(f"entity-text-{n}") or "").strip()
        if name or text:
            out.append({"entity": name, "text": text})
    return out


@require_role(*ADMIN_ROLES)
async def review_decide(request: Request, item_id: int) -> HTTPResponse:
    """POST /admin/review/<id>: accept (intent, entities) or ignore one item, as of the version on the page."""
    console = console_of(request)
    form = request.form
    try:
        version = int(form.get("version") or "")
    except ValueError:
        raise InvalidInput("the form's version is missing", field="version") from None
    try:
        view = await console.run(review.decide, console.factory, item_id, current_staff(request).key,
                                 version=version, action=form.get("action") or "", intent=form.get("intent") or None,
                                 entities=_entities(form), reviewed_dir=console.settings.reviewed_dir,
                                 now=console.now())
    except review.Conflict:
        return await _page(request, status=409, error=CONFLICT, item_id=item_id)
    except InvalidInput as exc:
        where = exc.data.get("duplicate_of")
        message = (f"这句话已经在 {where} 里了，不用再加（测试集和训练数据不重复收录）。" if where
                   else ERRORS.get(exc.field or "", "输入有误。"))
        return await _page(request, status=400, error=message, item_id=item_id)
    return response.redirect(f"/admin/review?done={view.status}", status=303)


@require_role(*ADMIN_ROLES)
async def review_collect(request: Request) -> HTTPResponse:
    """POST /admin/review/collect: gather the flagged messages of the last `days` days into the list."""
    from bot.runner import tracker_env

    console = console_of(request)
    try:
        days = int(request.form.get("days") or "7")
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        return await _page(request, status=400, error=ERRORS["days"])
    now = console.now()
    new = await console.run(review.collect, console.factory, tracker_env(console.settings)["HG_TRACKER_URL"],
                            now - dt.timedelta(days=days), None, now)
    return response.redirect(f"/admin/review?new={new}", status=303)


def register_review(app: Sanic) -> None:
    """Add the review page to the console app."""
    app.add_route(review_page, "/admin/review", methods=["GET"], name="admin_review")
    app.add_route(review_collect, "/admin/review/collect", methods=["POST"], name="admin_review_collect")
    app.add_route(review_decide, "/admin/review/<item_id:int>", methods=["POST"], name="admin_review_decide")
