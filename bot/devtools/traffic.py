"""Residents talking to a running stack all the time, each request timed (the hot-swap test and bench)."""

from __future__ import annotations

import threading
import time
from typing import List

from bot.devtools.stack import Stack

MESSAGES = ("最近有义诊吗", "你好", "物业电话多少", "谢谢")
TURNS_PER_RESIDENT = 8


class Traffic:
    """`with Traffic(stack) as t:` sends messages from a few senders one after another until the block ends;
    `t.latencies` and `t.failures` say how each went."""

    def __init__(self, stack: Stack, senders: int = 5, prefix: str = "traffic") -> None:
        self.stack = stack
        self.senders = senders
        self.prefix = prefix
        self.latencies: List[float] = []
        self.failures: List[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Traffic":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    @property
    def slowest(self) -> float:
        return max(self.latencies, default=0.0)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                # a resident says a few things and goes; the next one comes (each stays under the rate limit)
                sender = f"{self.prefix}-{n % self.senders}-{n // (self.senders * TURNS_PER_RESIDENT)}"
                replies = self.stack.say(sender, MESSAGES[n % len(MESSAGES)], timeout=30)
                if not replies:
                    self.failures.append(f"#{n}: no reply")
            except OSError as exc:
                self.failures.append(f"#{n}: {exc}")
            self.latencies.append(time.monotonic() - started)
