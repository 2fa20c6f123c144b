"""What the console's handlers share: settings, the session factory, the clock, cookies and templates."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar

from jinja2 import Environment
from sanic.request import Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.console.security import CookieSigner
from bot.services.accounts import AccountPolicy

T = TypeVar("T")

# Password checks cost ~0.5 s of CPU each: a few at a time keep the console answering during a login burst.
LOGIN_CONCURRENCY = 2


@dataclass
class Console:
    """The console app's dependencies, on `app.ctx.console` (the session factory is set at server start)."""

    settings: Settings
    policy: AccountPolicy
    cookies: CookieSigner
    templates: Environment
    clock: Callable[[], dt.datetime]
    session_factory: Optional[sessionmaker] = None
    engine: Optional[Engine] = None  # only when the console made it (and so disposes of it)
    login_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(LOGIN_CONCURRENCY))

    @property
    def factory(self) -> sessionmaker:
        """The session factory (available once the server has started)."""
        if self.session_factory is None:
            raise RuntimeError("the console's database is not set up yet (the server has not started)")
        return self.session_factory

    def now(self) -> dt.datetime:
        """The current time, naive UTC (the injected clock in tests)."""
        return self.clock()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking work (database, password hashing) in a thread, off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)


def console_of(request: Request) -> Console:
    """The console dependencies of the app serving `request`."""
    return request.app.ctx.console
