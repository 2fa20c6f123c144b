"""A rolling-window send budget per webhook key (WeCom allows 20 messages a minute per robot)."""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Deque, Dict, Set

__all__ = ["RollingRateLimit"]


class RollingRateLimit:
    """Counts sends per key over a rolling window and says how many more may go now."""

    def __init__(self, limit: int, window: dt.timedelta = dt.timedelta(seconds=60)) -> None:
        self.limit = limit
        self.window = window
        self._sends: Dict[str, Deque[dt.datetime]] = {}
        self._paused_until: Dict[str, dt.datetime] = {}

    def _prune(self, key: str, now: dt.datetime) -> Deque[dt.datetime]:
        sends = self._sends.setdefault(key, deque())
        horizon = now - self.window
        while sends and sends[0] <= horizon:
            sends.popleft()
        return sends

    def remaining(self, key: str, now: dt.datetime) -> int:
        """How many more messages `key` may take at `now`."""
        paused = self._paused_until.get(key)
        if paused is not None:
            if now < paused:
                return 0
            del self._paused_until[key]
        return max(0, self.limit - len(self._prune(key, now)))

    def record(self, key: str, at: dt.datetime) -> None:
        """Count one message sent to `key` at `at`."""
        sends = self._sends.setdefault(key, deque())
        sends.append(at)
        if len(sends) > 1 and sends[-2] > at:
            # Seeded history can arrive out of order; the pruning above needs it sorted.
            self._sends[key] = deque(sorted(sends))

    def pause(self, key: str, until: dt.datetime) -> None:
        """Send nothing more to `key` before `until` (the robot said it is over its limit)."""
        self._paused_until[key] = max(until, self._paused_until.get(key, until))

    def exhausted(self, now: dt.datetime) -> Set[str]:
        """The keys that may take nothing more at `now`."""
        keys = set(self._sends) | set(self._paused_until)
        return {key for key in keys if self.remaining(key, now) == 0}
