"""The one place actions get their dependencies from; tests replace it with `use()`."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple
from zoneinfo import ZoneInfo

from sqlalchemy.orm import sessionmaker

from bot.address import Estate
from bot.config import Settings
from bot.services import community, volunteers
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.teams import Team

# Community layout and teams change only when an admin reloads the community file.
CACHE_SECONDS = 60.0


@dataclass
class Deps:
    """What actions need: settings, a session factory and a clock."""

    settings: Settings
    sessions: sessionmaker
    now: Callable[[], dt.datetime] = dt.datetime.utcnow
    _cache: Dict[str, Tuple[float, Any]] = field(default_factory=dict, repr=False)

    async def _cached(self, name: str, load: Callable[[], Any]) -> Any:
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        value = await asyncio.to_thread(load)
        self._cache[name] = (time.monotonic(), value)
        return value

    async def estates(self) -> List[Estate]:
        """The estates as address-parser values (cached for a minute)."""
        def load() -> List[Estate]:
            with unit_of_work(self.sessions) as session:
                return community.estates(session)

        return await self._cached("estates", load)

    async def teams(self, sender_id: str) -> List[Team]:
        """The volunteer teams of the community serving `sender_id`, as matcher values (cached for a minute)."""
        home = await asyncio.to_thread(volunteers.home_of, self.sessions, sender_id)
        return await self._cached(f"teams:{home}", lambda: volunteers.team_values(self.sessions, home))

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
