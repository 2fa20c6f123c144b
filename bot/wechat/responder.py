"""WeChat's five seconds: answer passively when the reply is ready in time, otherwise `success` and deliver later.

The work for a push (usually an assistant turn) runs as its own task, so it finishes even when the
request has been answered or its connection dropped. The request waits for it until its deadline; one
synchronous decision point (`_Waiting.late`) settles whether the reply goes back passively or through
the customer-service API, so it never goes both ways or neither. Retries of the same push never run
the work again (see `dedupe`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, List, Optional, Sequence, Set

from bot import messages
from bot.errors import AssistantUnavailable
from bot.wechat.dedupe import DedupeStore, Outcome, wait_for_outcome
from bot.wechat.render import split_reply

__all__ = ["Deliver", "Responder", "Work"]

log = logging.getLogger(__name__)

Work = Callable[[], Awaitable[str]]  # produces the reply text ("" for none)
Deliver = Callable[[str, Sequence[str]], Awaitable[None]]  # (openid, parts) through customer service


@dataclass
class _Waiting:
    ready: "asyncio.Future[Optional[str]]"
    late: bool = False  # set once the request stopped waiting: the reply must go through customer service


@dataclass
class Responder:
    """Runs the work for each new push once and decides, per push, between a passive reply and a later one."""

    dedupe: DedupeStore
    deliver: Deliver
    clock: Callable[[], float] = time.monotonic
    split: Callable[[str], List[str]] = split_reply
    _tasks: Set["asyncio.Task[None]"] = field(default_factory=set, init=False, repr=False)

    async def respond(self, key: str, openid: str, work: Work, deadline: float) -> Optional[str]:
        """The passive reply text for this push, or None to answer `success`; `deadline` is on `clock`."""
        if not await self.dedupe.claim(key):
            outcome = await wait_for_outcome(self.dedupe, key, deadline, self.clock)
            log.info("WeChat retry of %s answered from the first delivery", key)
            return outcome.reply if outcome is not None else None
        waiting = _Waiting(asyncio.get_running_loop().create_future())
        task = asyncio.create_task(self._run(key, openid, work, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            await asyncio.wait({waiting.ready}, timeout=max(0.0, deadline - self.clock()))
        finally:
            if not waiting.ready.done():
                waiting.late = True  # also when the request is cancelled: the task delivers instead
        if waiting.ready.done():
            return waiting.ready.result()
        await self.dedupe.settle(key, Outcome(None))
        return None

    async def _run(self, key: str, openid: str, work: Work, waiting: _Waiting) -> None:
        try:
            text = await work()
        except AssistantUnavailable:  # the action server is down; nothing was saved, they may send it again
            text = messages.SYSTEM_BUSY
        except Exception:  # noqa: BLE001 - the resident must still hear back
            log.exception("turn failed for WeChat sender %s", openid)
            text = messages.TURN_FAILED
        parts = self.split(text)
        if not waiting.late:
            # One part goes back passively; several go out in order through customer service,
            # since a passive reply followed by API messages could arrive out of order.
            reply = parts[0] if len(parts) == 1 else None
            waiting.ready.set_result(reply)
            await self.dedupe.settle(key, Outcome(reply))
            if reply is not None or not parts:
                return
        else:
            await self.dedupe.settle(key, Outcome(None))
        try:
            await self.deliver(openid, parts)
        except Exception:  # noqa: BLE001 - a background task: nobody else would see the error
            log.exception("customer-service delivery to %s crashed", openid)

    async def drain(self, timeout: float) -> None:
        """Wait up to `timeout` s for pending work and deliveries (shutdown), then cancel what is left."""
        pending = set(self._tasks)
        if not pending:
            return
        _done, left = await asyncio.wait(pending, timeout=timeout)
        for task in left:
            task.cancel()
        if left:
            log.warning("cancelled %d unfinished WeChat replies at shutdown", len(left))
            await asyncio.gather(*left, return_exceptions=True)
