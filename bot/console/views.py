"""Rendering console answers: pages from Jinja2 templates (autoescaped, with who is signed in) and JSON."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any, Mapping, Optional

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape
from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.console.security import CSRF_FIELD
from bot.console.texts import role_label
from bot.services.scope import ADMIN_ROLES, HANDOFF_ROLES

TEMPLATE_DIR = Path(__file__).with_name("templates")
_dumps = partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


@pass_context
def csrf_field(context: Context) -> Markup:
    """The hidden form field carrying the page's CSRF token (every POST form needs it)."""
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, escape(context.get("csrf_token") or ""))


def make_templates() -> Environment:
    """The template environment: HTML autoescaped everywhere, undefined names are errors."""
    env = Environment(loader=FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals["csrf_field"] = csrf_field
    env.filters["role_label"] = role_label
    env.globals["handoff_roles"] = HANDOFF_ROLES  # who sees the 转人工 link
    env.globals["admin_roles"] = ADMIN_ROLES  # who sees the admin pages' links
    return env


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTTPResponse:
    """Render `template` with `context` plus `me` (the signed-in StaffIdentity or None) and `csrf_token`."""
    ctx = request.ctx
    context.setdefault("me", getattr(ctx, "staff", None))
    context.setdefault("csrf_token", getattr(ctx, "csrf_token", None))
    html = request.app.ctx.console.templates.get_template(template).render(**context)
    return response.html(html, status=status)


def json_answer(body: Any, status: int = 200, headers: Optional[Mapping[str, str]] = None) -> HTTPResponse:
    """A JSON response (UTF-8, Chinese left readable)."""
    return response.json(body, status=status, headers=dict(headers or {}), dumps=_dumps)
