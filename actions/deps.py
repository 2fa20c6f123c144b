"""The one place actions get their dependencies from; tests replace it with `use()`."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Callable, Optional
from zoneinfo import ZoneInfo

from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.store.db import make_engine, make_session_factory


@dataclass
class Deps:
    """What actions need: settings, a session factory and a clock."""

    settings: Settings
    sessions: sessionmaker
    now: Callable[[], dt.datetime] = dt.datetime.utcnow

    def today(self) -> dt.date:
        """Today's date in the community's time zone."""
        return self.now().replace(tzinfo=dt.timezone.utc).astimezone(ZoneInfo(self.settings.timezone)).date()


_lock = threading.Lock()
_current: Optional[Deps] = None


def get() -> Deps:
    """The dependencies, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            settings = Settings.from_env()
            _current = Deps(settings=settings, sessions=make_session_factory(make_engine(settings.database_url)))
        return _current


def use(deps: Optional[Deps]) -> None:
    """Replace the dependencies (tests); None resets to building from the environment."""
    global _current
    with _lock:
        _current = deps
