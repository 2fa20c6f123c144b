"""The console's JSON API under /api/: one route table that both serves the routes and documents them.

Each route is declared once in ROUTES, as an ApiRoute: method, path (OpenAPI style, `{name}` for path
parameters), summary, handler, parameters, request and response schemas. `register` adds them to the app
and `openapi` builds the OpenAPI 3.0 document served at /api/openapi.json from the same table.

A route with `roles` answers 403 to staff of other roles before its handler runs. A handler takes an ApiCall (the staff member the bearer token names, typed parameters, the validated JSON
body, the console's dependencies) and returns what the response schema describes. A plain function runs in
a thread (so it may use the database directly); an `async def` runs on the event loop. Errors from
bot/errors.py become 400/403/404/409 JSON in bot/console/failures.py. Adding a route:

    def ticket(call: ApiCall) -> Dict[str, Any]:
        return tickets.as_json(scope.ticket_for(call.factory, call.staff, call.params["number"]))

    ROUTES.append(ApiRoute("GET", "/api/tickets/{number}", "一张工单的详情", ticket,
                           parameters=(Param("number", "path", description="工单号"),),
                           response=ref("Ticket"), errors=(404,)))
    SCHEMAS["Ticket"] = {"type": "object", "properties": {...}}
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Tuple

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import lifecycle as lc
from bot import vulnerability as vul
from bot.console import texts
from bot.console.auth import public
from bot.console.context import Console, console_of
from bot.console.views import json_answer
from bot.errors import InvalidInput, NotAllowed
from bot.services import lifecycle, queue
from bot.services.accounts import StaffIdentity

OPENAPI_VERSION = "3.0.3"
MAX_ID = 2 ** 31 - 1  # record ids are 32-bit integers in PostgreSQL
API_VERSION = "1"
BEARER = "bearerAuth"


def ref(name: str) -> Dict[str, str]:
    """A `$ref` to a schema in SCHEMAS."""
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Param:
    """A path or query parameter: its name, where it is, its JSON schema (string or integer) and meaning."""

    name: str
    location: str = "query"  # path | query
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    description: str = ""
    required: bool = False  # path parameters are always required

    def openapi(self) -> Dict[str, Any]:
        """The parameter object of the OpenAPI document."""
        out: Dict[str, Any] = {"name": self.name, "in": self.location,
                               "required": self.required or self.location == "path", "schema": dict(self.schema)}
        if self.description:
            out["description"] = self.description
        return out


@dataclass
class ApiCall:
    """One API request as a handler sees it."""

    request: Request
    staff: Optional[StaffIdentity]  # None only on public routes
    params: Dict[str, Any]
    body: Any
    console: Console

    @property
    def factory(self) -> Any:
        """The database session factory."""
        return self.console.factory

    def now(self) -> Any:
        """The current time (naive UTC)."""
        return self.console.now()


@dataclass(frozen=True)
class ApiRoute:
    """One API route, declared once: how it is served and how it is documented."""

    method: str
    path: str
    summary: str
    handler: Callable[[ApiCall], Any]
    response: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    parameters: Tuple[Param, ...] = ()
    request: Optional[Mapping[str, Any]] = None  # JSON body schema; None means no body
    status: int = 200
    errors: Tuple[int, ...] = ()  # error statuses beyond 401 that the route can answer (400, 403, 404, 409)
    public: bool = False  # no bearer token needed
    roles: Optional[FrozenSet[str]] = None  # only staff with one of these roles (scope.py's sets); others get 403
    description: str = ""
    tag: str = "console"

    @property
    def operation_id(self) -> str:
        """The OpenAPI operationId (the handler's name)."""
        return self.handler.__name__


SCHEMAS: Dict[str, Dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error", "code"],
        "properties": {
            "error": {"type": "string", "description": "给人看的中文说明"},
            "code": {"type": "string", "description": "机器可读的错误类别，如 not_found、invalid_input"},
            "detail": {"type": "string"},
            "field": {"type": "string", "description": "出错的字段（400 时）"},
        },
    },
    "Staff": {
        "type": "object",
        "required": ["key", "name", "role", "role_label", "estates"],
        "properties": {
            "key": {"type": "string", "description": "账号"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["grid_member", "grid_leader", "property_manager", "duty",
                                                "secretary", "admin", "team_lead"]},
            "role_label": {"type": "string", "description": "角色的中文名"},
            "estates": {"type": "array", "items": {"type": "string"}, "description": "物业管家负责的小区"},
        },
    },
}

_ERROR_DESCRIPTIONS = {
    400: "提交的内容有误（field 指出哪一项）",
    401: "缺少或无效的访问令牌",
    403: "无权进行此操作",
    404: "不存在或无权查看",
    409: "记录状态已变化，操作未执行",
}


def staff_json(staff: StaffIdentity) -> Dict[str, Any]:
    """A staff member as the API shows them (schema Staff)."""
    return {"key": staff.key, "name": staff.name, "role": staff.role, "role_label": texts.role_label(staff.role),
            "estates": list(staff.estates)}


def me(call: ApiCall) -> Dict[str, Any]:
    """GET /api/me."""
    assert call.staff is not None  # not a public route
    return staff_json(call.staff)


def openapi_document(call: ApiCall) -> Dict[str, Any]:
    """GET /api/openapi.json."""
    return openapi(ROUTES, call.console.settings.console_base_url)


def _staff_key(call: ApiCall) -> str:
    assert call.staff is not None  # not a public route
    return call.staff.key


def list_tickets(call: ApiCall) -> Dict[str, Any]:
    """GET /api/tickets: the queue (same scope and filters as the console's home page; phones masked)."""
    settings = call.console.settings
    filters = queue.QueueFilter(state=call.params.get("state"), kind=call.params.get("type"),
                                urgency=call.params.get("urgency"), mine=bool(call.params.get("mine")))
    found = queue.queue(call.factory, _staff_key(call), filters, call.now(), settings.escalation)
    return {"tickets": [r.as_json() for r in found.rows], "total": found.total, "truncated": found.more}


def get_ticket(call: ApiCall) -> Dict[str, Any]:
    """GET /api/tickets/{number}: one ticket in full, with its history and the actions the caller may take."""
    settings = call.console.settings
    return queue.detail(call.factory, _staff_key(call), call.params["number"], call.now(), settings.escalation,
                        settings.timezone).as_json()


def ticket_action(call: ApiCall) -> Dict[str, Any]:
    """POST /api/tickets/{number}/actions/{action}: take a lifecycle action (bot/lifecycle.py's rules)."""
    body = call.body or {}
    outcome = lifecycle.perform(call.factory, _staff_key(call), call.params["number"], call.params["action"],
                                note=body.get("note"), assignee=body.get("assignee"), eta=body.get("eta"),
                                kind=body.get("kind"), ctx=lifecycle.Context.from_settings(call.console.settings),
                                now=call.now())
    return {"number": outcome.number, "action": outcome.action, "from_status": outcome.from_status,
            "status": outcome.status, "assignee": outcome.assignee}


_NUMBER = Param("number", "path", description="工单号，如 HG-20260301-0001")
_FILTERS = (
    Param("state", schema={"type": "string", "enum": list(lc.STATES)}, description="只看这个状态"),
    Param("type", schema={"type": "string", "enum": list(queue.KINDS)}, description="工单类型"),
    Param("urgency", schema={"type": "string", "enum": list(queue.URGENCIES)}, description="紧急程度"),
    Param("mine", schema={"type": "boolean"}, description="只看派给我的"),
)

ROUTES: List[ApiRoute] = [
    ApiRoute("GET", "/api/me", "当前令牌对应的工作人员", me, response=ref("Staff")),
    ApiRoute("GET", "/api/openapi.json", "本 API 的 OpenAPI 3.0 文档", openapi_document, public=True,
             response={"type": "object", "description": "OpenAPI 3.0 文档"}),
    ApiRoute("GET", "/api/tickets", "我能看到的工单（紧急在前，新的在前，最多 100 张）", list_tickets,
             parameters=_FILTERS, response=ref("TicketList")),
    ApiRoute("GET", "/api/tickets/{number}", "一张工单的详情、处理记录和可进行的操作", get_ticket,
             parameters=(_NUMBER,), response=ref("TicketDetail"), errors=(404,)),
    ApiRoute("POST", "/api/tickets/{number}/actions/{action}", "对工单进行一项操作", ticket_action,
             parameters=(_NUMBER, Param("action", "path", schema={"type": "string", "enum": list(lc.STAFF_ACTIONS)},
                                        description="接单、派单、开始处理、备注、办结、退回、转派")),
             request=ref("TicketActionRequest"), response=ref("Outcome"), errors=(403, 404, 409),
             description="note：备注、办结的处理结果、退回或转派的原因；assignee：派单、转派给谁（账号）；"
                         "eta：接单时的预计上门时间。"),
]

_TEXT_OR_NULL = {"type": "string", "nullable": True}
_SUMMARY_PROPS: Dict[str, Any] = {
    "number": {"type": "string"}, "kind": {"type": "string", "enum": list(queue.KINDS)},
    "kind_label": {"type": "string"}, "priority": {"type": "string", "enum": list(queue.URGENCIES)},
    "status": {"type": "string", "enum": list(lc.STATES)}, "status_label": {"type": "string"},
    "address": {"type": "string"}, "assignee": _TEXT_OR_NULL, "assignee_name": _TEXT_OR_NULL,
    "created_at": {"type": "string", "format": "date-time", "description": "UTC"},
    "age": {"type": "string"}, "overdue": {"type": "boolean"},
    "contact_phone": {"type": "string", "description": "隐去中间四位"},
}
SCHEMAS.update({
    "TicketSummary": {"type": "object", "properties": _SUMMARY_PROPS},
    "TicketList": {"type": "object", "required": ["tickets", "total", "truncated"], "properties": {
        "tickets": {"type": "array", "items": ref("TicketSummary")},
        "total": {"type": "integer", "description": "符合条件的工单总数"},
        "truncated": {"type": "boolean", "description": "是否只返回了前 100 张"}}},
    "TicketDetail": {"type": "object", "properties": {
        **_SUMMARY_PROPS,
        "contact_phone": {"type": "string", "nullable": True, "description": "完整电话"},
        "description": {"type": "string"}, "facility": _TEXT_OR_NULL, "contact_name": _TEXT_OR_NULL,
        "resolution": _TEXT_OR_NULL, "rating": {"type": "integer", "nullable": True},
        "due_at": {"type": "string", "nullable": True, "description": "社区时区"},
        "photos": {"type": "array", "items": {"type": "string"}},
        "events": {"type": "array", "items": {"type": "object"}},
        "notifications": {"type": "array", "items": {"type": "object"}},
        "allowed_actions": {"type": "array", "items": {"type": "string", "enum": list(lc.STAFF_ACTIONS)}},
        "assignable": {"type": "array", "items": {"type": "object"}},
        "vulnerability": {"type": "array", "description": "居民需关照的情况：alone 独居、elderly 老人、"
                          "disabled 行动不便、ill 患病或术后、pregnant 孕妇",
                          "items": {"type": "string", "enum": list(vul.KINDS)}},
        "vulnerability_label": {**_TEXT_OR_NULL, "description": "如“独居老人，行动不便”"},
        "vulnerability_note": {**_TEXT_OR_NULL, "description": "居民的原话，或“居民档案”（以前说过）"}}},
    "TicketActionRequest": {"type": "object", "additionalProperties": False, "properties": {
        "note": {**_TEXT_OR_NULL, "maxLength": lc.MAX_NOTE}, "assignee": _TEXT_OR_NULL,
        "eta": {**_TEXT_OR_NULL, "maxLength": 64},
        "kind": {**_TEXT_OR_NULL, "description": "改类型（retype）时的新类型：" + "、".join(f"{k} {v}" for k, v in queue.KIND_LABELS.items())}}},
    "Outcome": {"type": "object", "required": ["number", "action", "from_status", "status"], "properties": {
        "number": {"type": "string"}, "action": {"type": "string"},
        "from_status": {"type": "string"}, "status": {"type": "string"}, "assignee": _TEXT_OR_NULL}},
})


def openapi(routes: List[ApiRoute], server_url: str) -> Dict[str, Any]:
    """The OpenAPI 3.0 document for `routes`."""
    paths: Dict[str, Dict[str, Any]] = {}
    for route in routes:
        operation: Dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "responses": {
                str(route.status): {"description": "成功" if route.status != 204 else "成功（无内容）",
                                    **({} if route.status == 204 else
                                       {"content": {"application/json": {"schema": dict(route.response)}}})},
            },
        }
        if route.description:
            operation["description"] = route.description
        if route.parameters:
            operation["parameters"] = [p.openapi() for p in route.parameters]
        if route.request is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": dict(route.request)}}}
        statuses = set(route.errors) | {400}  # every route refuses unknown query parameters
        if route.roles is not None:
            statuses.add(403)
            operation["x-roles"] = sorted(route.roles)
        if route.public:
            operation["security"] = []
        else:
            statuses.add(401)
        for status in sorted(statuses):
            operation["responses"][str(status)] = {"$ref": f"#/components/responses/E{status}"}
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "红管家工作台 API", "version": API_VERSION,
                 "description": "工作台的 JSON API。除注明外都需要 `Authorization: Bearer <令牌>`；"
                                "令牌用 `python -m bot staff token 账号` 生成。"},
        "servers": [{"url": server_url}],
        "security": [{BEARER: []}],
        "paths": paths,
        "components": {
            "securitySchemes": {BEARER: {"type": "http", "scheme": "bearer",
                                         "description": "python -m bot staff token 账号 生成的令牌"}},
            "schemas": SCHEMAS,
            "responses": {f"E{status}": {"description": text,
                                         "content": {"application/json": {"schema": ref("Error")}}}
                          for status, text in _ERROR_DESCRIPTIONS.items()},
        },
    }


# ---- serving ---------------------------------------------------------------------------------------------

_JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "array": list,
               "object": dict}


def _resolve(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    target = schema.get("$ref")
    if isinstance(target, str) and target.startswith("#/components/schemas/"):
        return SCHEMAS[target.rsplit("/", 1)[-1]]
    return schema


def validate(schema: Mapping[str, Any], value: Any, where: str = "") -> None:
    """InvalidInput naming the field unless `value` fits `schema` (type, required, properties, enum, bounds)."""
    schema = _resolve(schema)
    name = where or "body"
    kind = schema.get("type")
    if value is None:
        if schema.get("nullable"):
            return
        raise InvalidInput(f"{name} must not be null", field=name)
    if kind in _JSON_TYPES:
        ok = isinstance(value, _JSON_TYPES[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        if not ok:
            raise InvalidInput(f"{name} must be of type {kind}", field=name)
    if "enum" in schema and value not in schema["enum"]:
        raise InvalidInput(f"{name} must be one of {list(schema['enum'])}", field=name)
    if isinstance(value, str):
        if len(value) < int(schema.get("minLength", 0)):
            raise InvalidInput(f"{name} is too short", field=name)
        if "maxLength" in schema and len(value) > int(schema["maxLength"]):
            raise InvalidInput(f"{name} is too long", field=name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise InvalidInput(f"{name} must be at least {schema['minimum']}", field=name)
        if "maximum" in schema and value > schema["maximum"]:
            raise InvalidInput(f"{name} must be at most {schema['maximum']}", field=name)
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > int(schema["maxItems"]):
            raise InvalidInput(f"{name} has too many items", field=name)
        for i, item in enumerate(value):
            if "items" in schema:
                validate(schema["items"], item, f"{name}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for key in schema.get("required") or ():
            if key not in value:
                raise InvalidInput(f"{key} is required", field=_join(where, key))
        for key, item in value.items():
            if key in props:
                validate(props[key], item, _join(where, key))
            elif schema.get("additionalProperties") is False:
                raise InvalidInput(f"unknown field {key}", field=_join(where, key))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _convert(param: Param, raw: str) -> Any:
    kind = param.schema.get("type", "string")
    if param.schema.get("format") == "date":
        try:
            dt.date.fromisoformat(raw)
        except ValueError:
            raise InvalidInput(f"{param.name} must be a date like 2026-12-03", field=param.name) from None
    if kind == "integer":
        try:
            value: Any = int(raw)
        except ValueError:
            raise InvalidInput(f"{param.name} must be a whole number", field=param.name) from None
    elif kind == "boolean":
        if raw.lower() not in ("1", "0", "true", "false"):
            raise InvalidInput(f"{param.name} must be true or false", field=param.name)
        value = raw.lower() in ("1", "true")
    else:
        value = raw
    validate(param.schema, value, param.name)
    return value


def sanic_path(route: ApiRoute) -> str:
    """The route's path in Sanic's syntax (`{number}` → `<number:str>`, `<id:int>` for integers)."""
    types = {p.name: p.schema.get("type") for p in route.parameters if p.location == "path"}

    def sub(match: "re.Match[str]") -> str:
        name = match.group(1)
        if name not in types:
            raise ValueError(f"{route.method} {route.path}: path parameter {name} is not declared")
        return f"<{name}:{'int' if types[name] == 'integer' else 'str'}>"

    return re.sub(r"\{(\w+)\}", sub, route.path)


def _endpoint(route: ApiRoute) -> Callable[..., Any]:
    async def endpoint(request: Request, **path_args: Any) -> HTTPResponse:
        if route.roles is not None and (request.ctx.staff is None or request.ctx.staff.role not in route.roles):
            raise NotAllowed("role not allowed", allowed=sorted(route.roles))
        params: Dict[str, Any] = {}
        query = request.get_args(keep_blank_values=True)  # an empty value is a value (and a wrong one for a date)
        unknown = sorted(set(query) - {p.name for p in route.parameters if p.location == "query"})
        if unknown:  # a misspelt filter must not be silently ignored
            raise InvalidInput(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
        for param in route.parameters:
            if param.location == "path":
                raw = path_args.get(param.name)
                params[param.name] = _convert(param, str(raw))
            else:
                raw = query.get(param.name)
                if raw is None:
                    if param.required:
                        raise InvalidInput(f"{param.name} is required", field=param.name)
                    continue
                params[param.name] = _convert(param, raw)
        body: Any = None
        if route.request is not None:
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                raise InvalidInput("the body must be JSON", field="body") from None
            validate(route.request, body)
        console = console_of(request)
        call = ApiCall(request=request, staff=request.ctx.staff, params=params, body=body, console=console)
        if inspect.iscoroutinefunction(route.handler):
            result = await route.handler(call)
        else:
            result = await console.run(route.handler, call)
        if route.status == 204:
            return response.empty()
        return json_answer(result, status=route.status)

    endpoint.__name__ = f"api_{route.operation_id}"
    if route.public:
        public(endpoint)
    return endpoint


def register(app: Sanic, routes: Optional[List[ApiRoute]] = None) -> None:
    """Serve `routes` (default: ROUTES) on `app`."""
    seen = set()
    for route in ROUTES if routes is None else routes:
        if route.operation_id in seen:
            raise ValueError(f"two API routes share the handler name {route.operation_id}")
        seen.add(route.operation_id)
        app.add_route(_endpoint(route), sanic_path(route), methods=[route.method.upper()],
                      name=f"api_{route.operation_id}")


# ---- the handoff inbox (bot/console/handoffs.py has the pages) ---------------------------------------------

from bot.console.handoffs import as_json, conversation, iso, reply_json, resume  # noqa: E402
from bot.services import handoff  # noqa: E402

def _handoff_id(call: ApiCall) -> int:
    return int(call.params["id"])


def handoff_list(call: ApiCall) -> Dict[str, Any]:
    """GET /api/handoffs."""
    assert call.staff is not None
    return {"handoffs": [as_json(row) for row in handoff.waiting(call.factory, call.staff.key)]}


async def handoff_detail(call: ApiCall) -> Dict[str, Any]:
    """GET /api/handoffs/{id}: the handoff, its replies, and the conversation Rasa recorded (null when unreadable)."""
    assert call.staff is not None
    shown = await call.console.run(handoff.detail, call.factory, call.staff.key, _handoff_id(call))
    turns = await conversation(call.request, shown.handoff.sender_id)
    return {**as_json(shown.handoff), "open": shown.open, "released_at": iso(shown.released_at),
            "released_by": shown.released_by, "reply_list": [reply_json(r) for r in shown.replies],
            "conversation": None if turns is None else [{"speaker": t.speaker, "at": iso(t.at), "text": t.text}
                                                        for t in turns]}


def handoff_reply(call: ApiCall) -> Dict[str, Any]:
    """POST /api/handoffs/{id}/reply."""
    assert call.staff is not None
    return reply_json(handoff.reply(call.factory, _handoff_id(call), call.staff.key, call.body["text"], call.now()))


async def handoff_release(call: ApiCall) -> Dict[str, Any]:
    """POST /api/handoffs/{id}/release: released in the database, then resumed in Rasa (`resumed` says whether)."""
    assert call.staff is not None
    done = await call.console.run(handoff.hand_back, call.factory, _handoff_id(call), call.staff.key, call.now())
    failure = await resume(call.request, done.sender_id)
    return {"id": done.handoff_id, "sender_id": done.sender_id, "released": True, "closed_now": done.closed_now,
            "resumed": failure is None, "resume_error": failure}


_HANDOFF_ID = Param("id", "path", {"type": "integer", "minimum": 1, "maximum": MAX_ID}, "转人工记录编号")
_WHEN = {"type": "string", "format": "date-time"}
SCHEMAS.update({
    "Handoff": {
        "type": "object",
        "required": ["id", "sender_id", "display", "started_at", "reason", "replies", "can_message"],
        "properties": {
            "id": {"type": "integer"},
            "sender_id": {"type": "string", "description": "对话编号：微信 OpenID，或 rest:<sender>"},
            "display": {"type": "string", "description": "给人看的对话编号"},
            "resident_name": {"type": "string", "nullable": True},
            "resident_phone": {"type": "string", "nullable": True, "description": "已打码的电话"},
            "started_at": _WHEN,
            "reason": {"type": "string", "description": "转人工时居民说的话（电话已打码）"},
            "replies": {"type": "integer", "description": "工作人员已回复的条数"},
            "can_message": {"type": "boolean", "description": "能否从工作台给居民发消息（仅微信居民）"},
        },
    },
    "HandoffReply": {
        "type": "object",
        "required": ["id", "at", "staff", "staff_label", "text", "status"],
        "properties": {
            "id": {"type": "integer"}, "at": _WHEN, "staff": {"type": "string"},
            "staff_label": {"type": "string", "description": "如 值班人员王某"},
            "text": {"type": "string"},
            "status": {"type": "string", "nullable": True, "enum": ["pending", "sent", "failed", "undelivered", None]},
            "last_error": {"type": "string", "nullable": True},
        },
    },
})
SCHEMAS["HandoffDetail"] = {"allOf": [ref("Handoff"), {
    "type": "object",
    "required": ["open", "reply_list", "conversation"],
    "properties": {
        "open": {"type": "boolean"}, "released_at": {**_WHEN, "nullable": True},
        "released_by": {"type": "string", "nullable": True},
        "reply_list": {"type": "array", "items": ref("HandoffReply")},
        "conversation": {"type": "array", "nullable": True, "description": "Rasa 记录的对话；无法读取时为 null",
                         "items": {"type": "object", "properties": {
                             "speaker": {"type": "string", "enum": ["resident", "assistant"]}, "at": _WHEN,
                             "text": {"type": "string"}}}},
    },
}]}
ROUTES.extend([
    ApiRoute("GET", "/api/handoffs", "等待人工回复的对话（最早的在前）", handoff_list, errors=(403,),
             response={"type": "object", "properties": {"handoffs": {"type": "array", "items": ref("Handoff")}}}),
    ApiRoute("GET", "/api/handoffs/{id}", "一次转人工：回复、送达情况和对话记录", handoff_detail,
             parameters=(_HANDOFF_ID,), response=ref("HandoffDetail"), errors=(403, 404)),
    ApiRoute("POST", "/api/handoffs/{id}/reply", "回复居民（仅微信居民）", handoff_reply, parameters=(_HANDOFF_ID,),
             request={"type": "object", "required": ["text"], "additionalProperties": False,
                      "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 600}}},
             response=ref("HandoffReply"), status=201, errors=(403, 404, 409)),
    ApiRoute("POST", "/api/handoffs/{id}/release", "交还助手", handoff_release, parameters=(_HANDOFF_ID,),
             errors=(403, 404, 409),
             response={"type": "object", "properties": {
                 "id": {"type": "integer"}, "sender_id": {"type": "string"}, "released": {"type": "boolean"},
                 "closed_now": {"type": "boolean", "description": "false：之前已交还（本次只重发接管通知）"},
                 "resumed": {"type": "boolean", "description": "助手是否已接管；false 时可重试"},
                 "resume_error": {"type": "string", "nullable": True}}}),
])


# ---- the admin side (bot/console/admin.py has the pages) ---------------------------------------------------

from dataclasses import asdict  # noqa: E402

from bot.console.admin import local_today, stats_period  # noqa: E402
from bot.services import clinic_edits, community_edits, stats  # noqa: E402
from bot.services.scope import ADMIN_ROLES  # noqa: E402


def admin_stats(call: ApiCall) -> Dict[str, Any]:
    """GET /api/admin/stats: the rows of /admin/stats for the same query (since, until, by)."""
    period = stats_period(call.request)
    rows = stats.ticket_stats(call.factory, **period, staff=_staff_key(call))
    return {"since": period["since"].isoformat(), "until": period["until"].isoformat(), "by": period["by"],
            "rows": [asdict(r) for r in rows]}


def admin_clinics(call: ApiCall) -> Dict[str, Any]:
    """GET /api/admin/clinics: the clinic events of /admin/clinics (recent and upcoming, cancelled included)."""
    return {"clinics": clinic_edits.listing(call.factory, _staff_key(call), local_today(call.request))}


def admin_clinic_create(call: ApiCall) -> Dict[str, Any]:
    """POST /api/admin/clinics: add a clinic event (the same checks as the page)."""
    return clinic_edits.create(call.factory, _staff_key(call), call.body, call.now())


def admin_audit(call: ApiCall) -> Dict[str, Any]:
    """GET /api/admin/audit: the newest entries of the audit log, newest first."""
    entries = community_edits.history(call.factory, _staff_key(call), call.params.get("limit", 50))
    return {"entries": [{"id": e.id, "at": iso(e.at), "actor": e.actor, "entity": e.entity,
                         "entity_key": e.entity_key, "action": e.action, "before": e.before, "after": e.after}
                        for e in entries]}


_DATE = {"type": "string", "format": "date"}
_CLOCK = {"type": "string", "pattern": "^\\d{1,2}:\\d{2}$", "example": "09:00"}
SCHEMAS.update({
    "StatRow": {"type": "object", "properties": {
        "group": {"type": "string", "description": "小区或网格"}, "kind": {"type": "string"},
        "week": {"type": "string", "example": "2026-W48"}, "tickets": {"type": "integer"},
        "accepted": {"type": "integer"}, "median_accept_minutes": {"type": "number", "nullable": True},
        "p90_accept_minutes": {"type": "number", "nullable": True}, "resolved": {"type": "integer"},
        "median_resolve_hours": {"type": "number", "nullable": True},
        "p90_resolve_hours": {"type": "number", "nullable": True}, "escalations": {"type": "integer"},
        "rated": {"type": "integer"}, "mean_rating": {"type": "number", "nullable": True}}},
    "ClinicInput": {"type": "object", "required": list(clinic_edits.REQUIRED), "additionalProperties": False,
                    "properties": {
                        "title": {"type": "string", "maxLength": 128}, "date": _DATE, "start": _CLOCK, "end": _CLOCK,
                        "place": {"type": "string", "maxLength": 128},
                        "specialties": {"type": "array", "items": {"type": "string", "maxLength": 16},
                                        "maxItems": clinic_edits.MAX_SPECIALTIES},
                        "services": {"type": "string", "maxLength": 500},
                        "bring": {"type": "string", "maxLength": 500}, "organizer": _TEXT_OR_NULL}},
    "Clinic": {"type": "object", "properties": {
        "id": {"type": "integer"}, "title": {"type": "string"}, "date": _DATE, "start": {"type": "string"},
        "end": {"type": "string"}, "place": {"type": "string"},
        "specialties": {"type": "array", "items": {"type": "string"}}, "services": {"type": "string"},
        "bring": {"type": "string"}, "organizer": _TEXT_OR_NULL,
        "status": {"type": "string", "enum": ["scheduled", "cancelled"]},
        "origin": {"type": "string", "enum": ["file", "console"], "description": "来自社区文件还是在工作台添加"},
        "edited_by": {**_TEXT_OR_NULL, "description": "最后在工作台修改它的人"}}},
    "AuditEntry": {"type": "object", "properties": {
        "id": {"type": "integer"}, "at": {**_WHEN, "description": "UTC"}, "actor": {"type": "string"},
        "entity": {"type": "string"}, "entity_key": {"type": "string"}, "action": {"type": "string"},
        "before": {"type": "object", "nullable": True}, "after": {"type": "object", "nullable": True}}},
})
ROUTES.extend([
    ApiRoute("GET", "/api/admin/stats", "工单统计（与统计页相同的行）", admin_stats, roles=ADMIN_ROLES,
             parameters=(Param("since", schema=_DATE, description="起始日（含），默认 8 周前"),
                         Param("until", schema=_DATE, description="截止日（含），默认今天"),
                         Param("by", schema={"type": "string", "enum": list(stats.GROUPINGS)},
                               description="按小区或网格分组")),
             response={"type": "object", "properties": {
                 "since": _DATE, "until": _DATE, "by": {"type": "string"},
                 "rows": {"type": "array", "items": ref("StatRow")}}}),
    ApiRoute("GET", "/api/admin/clinics", "义诊活动（近 30 天和以后的，含已取消的）", admin_clinics, roles=ADMIN_ROLES,
             response={"type": "object", "properties": {"clinics": {"type": "array", "items": ref("Clinic")}}}),
    ApiRoute("POST", "/api/admin/clinics", "添加义诊活动", admin_clinic_create, roles=ADMIN_ROLES,
             request=ref("ClinicInput"), response=ref("Clinic"), status=201,
             description="date 形如 2026-12-05，start、end 形如 09:00（结束晚于开始）；每项修改都记入修改记录。"),
    ApiRoute("GET", "/api/admin/audit", "最新的修改记录（新的在前）", admin_audit, roles=ADMIN_ROLES,
             parameters=(Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 200},
                               description="最多几条，默认 50"),),
             response={"type": "object", "properties": {"entries": {"type": "array", "items": ref("AuditEntry")}}}),
])
