"""The staff console's Sanic app, built by `create_app` (nothing happens at import time).

`python -m bot console` serves it (its own process; `make run` starts it). Pages: bot/console/pages.py; the
JSON API: bot/console/api.py; who is signed in and the CSRF check: bot/console/auth.py; errors become
answers in bot/console/failures.py.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Callable, Optional

from sanic import Sanic
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.console import api
from bot.console.admin import register_admin
from bot.console.auth import identify, page_headers
from bot.console.context import Console
from bot.console.failures import ConsoleErrorHandler
from bot.console.handoffs import register_handoffs
from bot.console.models import register_models
from bot.console.pages import register_pages
from bot.console.review import register_review
from bot.console.security import CookieSigner, console_secret
from bot.console.views import make_templates
from bot.services.accounts import AccountPolicy
from bot.store.db import make_engine, make_session_factory
from bot.store.models import utcnow

# Forms and JSON bodies are small; anything bigger is refused with 413 before a handler sees it.
MAX_REQUEST_BYTES = 2 * 1024 * 1024


def create_app(settings: Settings, *, session_factory: Optional[sessionmaker] = None,
               clock: Optional[Callable[[], dt.datetime]] = None) -> Sanic:
    """A new console app (a unique name each call); its engine is made at server start unless one is given.

    `clock` returns naive UTC (tests inject a fixed one). The cookie secret is HG_CONSOLE_SECRET or the one
    kept in var/console_secret (created on first use).
    """
    app = Sanic(f"hg_console_{uuid.uuid4().hex[:12]}", error_handler=ConsoleErrorHandler(),
                configure_logging=False)
    app.config.REQUEST_MAX_SIZE = MAX_REQUEST_BYTES
    app.ctx.console = Console(
        settings=settings,
        policy=AccountPolicy.from_settings(settings),
        cookies=CookieSigner(console_secret(settings), secure=settings.console_secure_cookies),
        templates=make_templates(),
        clock=clock or utcnow,
        session_factory=session_factory,
    )

    async def open_database(app: Sanic, _loop: object) -> None:
        console: Console = app.ctx.console
        if console.session_factory is None:
            console.engine = make_engine(settings.database_url)
            console.session_factory = make_session_factory(console.engine)

    async def close_database(app: Sanic, _loop: object) -> None:
        console: Console = app.ctx.console
        if console.engine is not None:
            console.engine.dispose()
            console.engine = None
            console.session_factory = None

    app.register_listener(open_database, "before_server_start")
    app.register_listener(close_database, "after_server_stop")
    app.register_middleware(identify, "request")
    app.register_middleware(page_headers, "response")
    register_pages(app)
    register_admin(app)
    register_handoffs(app)
    register_review(app)
    register_models(app)
    api.register(app)
    return app
