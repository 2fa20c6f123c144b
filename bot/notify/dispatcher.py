"""The dispatcher: delivers due outbox rows to WeCom group robots, with retries and rate limits.

Several dispatcher processes may run over one database: each row is claimed with a conditional
UPDATE before it is sent, so only one process ever sends it. A claim is a lease: if the process
dies mid-send, the row becomes due again when the lease runs out (at-least-once delivery).

Resident messages (channel "wechat", written by bot/services/lifecycle.py) go through a ResidentSender
(bot/notify/resident.py): a customer-service message inside the resident's 48-hour window, a template
message otherwise; a refusal is recorded on the row (`failed` with the errcode), so staff see it on the
ticket. Each round also runs the housekeeping that must not need cron: escalations and auto-closing.

One dispatcher leads at a time (`Leadership`, the `dispatcher` lease of bot/services/leases.py); others stand by,
ask every round, and the first to find the lease expired (the leader died) or given back (it stopped) takes over.
The row claims stay the guard against double sends: a leader that lost its lease mid-round finishes only rows
it had claimed.

The per-robot rate limit is counted in memory and seeded from the rows sent in the last minute
when the dispatcher starts, so a restart does not burst. Concurrent processes do not see each
other's in-flight sends; if together they go over the limit, WeCom answers 45009 and the
dispatcher pauses that robot for a minute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import random
import signal
import socket
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, TypeVar

import aiohttp
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.errors import DeliveryError
from bot.notify import outbox
from bot.notify.outbox import DueNotification
from bot.notify.ratelimit import RollingRateLimit
from bot.notify.resident import housekeeping, resident_sender
from bot.notify.wecom import ERRCODE_RATE_LIMITED, WeComRobotClient
from bot.services import leases
from bot.store.db import make_engine, make_session_factory, unit_of_work

__all__ = ["Dispatcher", "Leadership", "RobotSender", "main", "retry_delay", "serve"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_BASE_SECONDS = 2.0
RETRY_CAP_SECONDS = 300.0
RETRY_JITTER = 0.2
MIN_LEASE_SECONDS = 60.0
BATCH_SIZE = 100
PARALLEL_ROBOTS = 8
ERROR_TEXT_LIMIT = 500
RESIDENT_LANE = "\x00residents"  # never a webhook key


class ResidentSender(Protocol):
    """Anything that can deliver a resident message row (the WeChat sender, or a test double)."""

    async def send(self, recipient: str, payload: Mapping[str, Any]) -> None:
        """Deliver one message to the resident or raise DeliveryError."""


Housekeeping = Callable[[dt.datetime], Any]


class RobotSender(Protocol):
    """Anything that can post a payload to a group robot (the WeCom client, or a test double)."""

    async def send(self, webhook_key: str, payload: Mapping[str, Any]) -> None:
        """Deliver one message or raise DeliveryError."""


def utcnow_precise() -> dt.datetime:
    """Current UTC time, naive, with microseconds (the dispatcher's default clock)."""
    return dt.datetime.utcnow()


def retry_delay(attempts: int, rng: Optional[random.Random] = None) -> float:
    """Seconds to wait after `attempts` failed tries: 2 s doubling, ±20 % jitter, at most 5 min."""
    rng = rng or random.Random()
    exponent = max(0, min(attempts - 1, 16))
    delay = RETRY_BASE_SECONDS * (2 ** exponent) * rng.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)
    return min(RETRY_CAP_SECONDS, delay)


def _append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line + "\n")


class Leadership:
    """Whether this process is the dispatcher leader: takes the lease when it is free, renews it a few times per
    time to live, and gives it back on `resign`."""

    def __init__(self, session_factory: sessionmaker, ttl_seconds: float, holder: Optional[str] = None,
                 clock: Callable[[], dt.datetime] = utcnow_precise) -> None:
        self._factory = session_factory
        self._ttl = dt.timedelta(seconds=ttl_seconds)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self._clock = clock
        self._renewed_at: Optional[dt.datetime] = None
        self.leading = False

    async def check(self) -> bool:
        """True while this process leads (taking or renewing the lease when due)."""
        now = self._clock()
        if self.leading and self._renewed_at is not None and now - self._renewed_at < self._ttl / 3:
            return True
        try:
            held = await asyncio.to_thread(leases.hold, self._factory, leases.DISPATCHER, self.holder, self._ttl, now)
        except Exception:  # noqa: BLE001 - no database: nothing could be recorded, so nobody should send
            logger.exception("could not renew the dispatcher lease; standing by")
            held = False
        if held != self.leading:
            logger.info("dispatcher %s %s", self.holder, "leads" if held else "stands by")
        self.leading = held
        self._renewed_at = now if held else None
        return held

    async def resign(self) -> None:
        """Give the lease back, so a process standing by takes over at once."""
        if self.leading:
            self.leading = False
            try:
                await asyncio.to_thread(leases.release, self._factory, leases.DISPATCHER, self.holder)
            except Exception:  # noqa: BLE001 - it expires by itself
                logger.exception("could not give the dispatcher lease back; it expires by itself")


class Dispatcher:
    """Delivers pending notifications: claims due rows, posts them, records each outcome."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker,
        client: RobotSender,
        *,
        clock: Callable[[], dt.datetime] = utcnow_precise,
        rng: Optional[random.Random] = None,
        batch_size: int = BATCH_SIZE,
        lease_seconds: Optional[float] = None,
        residents: Optional[ResidentSender] = None,
        housekeeping: Optional[Housekeeping] = None,
        housekeeping_seconds: float = 10.0,
        leadership: Optional[Leadership] = None,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._client = client
        self._clock = clock
        self._rng = rng or random.Random()
        self._batch_size = batch_size
        # The lease must outlast one HTTP call, or a slow answer would let another process resend.
        self._lease = dt.timedelta(
            seconds=lease_seconds if lease_seconds is not None else max(MIN_LEASE_SECONDS, 4 * settings.http_timeout)
        )
        self._limiter = RollingRateLimit(settings.robot_rate_per_minute)
        self._seeded = False
        self._residents = residents
        # Synchronous work (escalations, auto-close) run on a thread every `housekeeping_seconds` of the clock.
        self._housekeeping = housekeeping
        self._housekeeping_every = dt.timedelta(seconds=housekeeping_seconds)
        self._housekept_at: Optional[dt.datetime] = None
        self._leadership = leadership

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `fn(session, ...)` in its own unit of work on a worker thread."""

        def work() -> T:
            with unit_of_work(self._session_factory) as session:
                return fn(session, *args, **kwargs)

        return await asyncio.to_thread(work)

    async def _seed_rate_limit(self, now: dt.datetime) -> None:
        for key, sent_at in await self._db(outbox.recent_sends, now - self._limiter.window):
            self._limiter.record(key, sent_at)
        self._seeded = True

    async def run_once(self) -> int:
        """Deliver the due rows of one batch; return how many reached an outcome (held rows excluded)."""
        now = self._clock()
        if not self._seeded:
            await self._seed_rate_limit(now)
        await self._housekeep(now)
        rows = await self._db(outbox.due, now, self._batch_size, self._limiter.exhausted(now))
        lanes: Dict[Optional[str], List[DueNotification]] = {}
        for row in rows:
            key = RESIDENT_LANE if row.channel == outbox.WECHAT else (row.webhook_key or None)
            lanes.setdefault(key, []).append(row)
        # One lane per robot: robots are served side by side, each robot's rows in order.
        gate = asyncio.Semaphore(PARALLEL_ROBOTS)
        results = await asyncio.gather(
            *(self._run_lane(key, lane, gate) for key, lane in lanes.items()), return_exceptions=True
        )
        handled = 0
        errors: List[BaseException] = []
        for result in results:
            if isinstance(result, BaseException):
                errors.append(result)
            else:
                handled += result
        for error in errors[1:]:
            logger.error("dispatch lane failed too: %r", error)
        if errors:
            raise errors[0]
        return handled

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Call run_once every dispatch_interval seconds (at once while batches come back full) until `stop` is set."""
        interval = self._settings.dispatch_interval
        logger.info("notification dispatcher started (every %.1fs)", interval)
        while not stop.is_set():
            if self._leadership is not None and not await self._leadership.check():
                try:  # standing by
                    await asyncio.wait_for(stop.wait(), timeout=interval)
                except asyncio.TimeoutError:
                    pass
                continue
            try:
                handled = await self.run_once()
            except Exception:  # noqa: BLE001
                # A database or disk hiccup must not end delivery for good: claimed rows come
                # back when their lease runs out, pending ones are simply picked up next round.
                logger.exception("dispatch round failed; trying again in %.1fs", interval)
                handled = 0
            if handled >= self._batch_size:
                continue
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except asyncio.TimeoutError:
                pass
        if self._leadership is not None:
            await self._leadership.resign()
        logger.info("notification dispatcher stopped")

    async def _housekeep(self, now: dt.datetime) -> None:
        if self._housekeeping is None:
            return
        if self._housekept_at is not None and now - self._housekept_at < self._housekeeping_every:
            return
        self._housekept_at = now
        try:
            await asyncio.to_thread(self._housekeeping, now)
        except Exception:  # noqa: BLE001 - delivery must go on; the next round tries again
            logger.exception("housekeeping (escalations, auto-close) failed; trying again next round")
            self._housekept_at = None

    async def _run_lane(self, key: Optional[str], rows: List[DueNotification], gate: asyncio.Semaphore) -> int:
        async with gate:
            if key == RESIDENT_LANE:
                return await self._deliver_residents(rows)
            if key is None:
                handled = 0
                for row in rows:
                    handled += await self._set_aside(row)
                return handled
            return await self._deliver_lane(key, rows)

    async def _deliver_lane(self, key: str, rows: List[DueNotification]) -> int:
        handled = 0
        for row in rows:
            now = self._clock()
            if self._limiter.remaining(key, now) == 0:
                logger.debug("robot over its rate limit; %d notification(s) wait", len(rows) - handled)
                break
            lease = now + self._lease
            if not await self._db(outbox.claim, row.id, row.next_attempt_at, lease):
                continue  # another dispatcher took it
            self._limiter.record(key, now)
            try:
                await self._client.send(key, row.payload)
            except DeliveryError as exc:
                await self._after_failure(row, key, lease, exc)
                handled += 1
                if exc.retryable:
                    break  # the robot is struggling; leave the rest of its rows for the next round
                continue
            except Exception as exc:  # noqa: BLE001
                # A bug in a sender must still count as an attempt, or the row would loop forever.
                logger.exception("notification %s (ticket %s): sender crashed", row.id, row.ticket_id)
                await self._after_failure(row, key, lease, DeliveryError(type(exc).__name__, retryable=True))
                handled += 1
                break
            await self._after_success(row, lease)
            handled += 1
        return handled

    async def _deliver_residents(self, rows: List[DueNotification]) -> int:
        handled = 0
        for row in rows:
            now = self._clock()
            lease = now + self._lease
            if not await self._db(outbox.claim, row.id, row.next_attempt_at, lease):
                continue
            if self._residents is None or not row.recipient:
                reason = "WeChat API not configured (WECHAT_APPID/WECHAT_SECRET)" if row.recipient else "no recipient"
                await self._db(outbox.mark_undelivered, row.id, lease, reason)
                logger.warning("notification %s (ticket %s, %s): undelivered: %s", row.id, row.ticket_id,
                               row.purpose, reason)
                handled += 1
                continue
            try:
                await self._residents.send(row.recipient, row.payload)
            except DeliveryError as exc:
                await self._after_failure(row, RESIDENT_LANE, lease, exc)
                handled += 1
                continue
            except Exception as exc:  # noqa: BLE001
                logger.exception("notification %s (ticket %s): resident sender crashed", row.id, row.ticket_id)
                await self._after_failure(row, RESIDENT_LANE, lease, DeliveryError(type(exc).__name__))
                handled += 1
                continue
            await self._after_success(row, lease)
            handled += 1
        return handled

    async def _after_success(self, row: DueNotification, lease: dt.datetime) -> None:
        attempts = row.attempts + 1
        recorded = await self._db(outbox.mark_sent, row.id, lease, self._clock(), attempts)
        if recorded:
            logger.info(
                "notification %s (ticket %s, %s): sent on attempt %d", row.id, row.ticket_id, row.purpose, attempts
            )
        else:
            logger.warning(
                "notification %s (ticket %s, %s): sent, but its claim had lapsed; it may be sent twice",
                row.id, row.ticket_id, row.purpose,
            )

    async def _after_failure(self, row: DueNotification, key: str, lease: dt.datetime, exc: DeliveryError) -> None:
        now = self._clock()
        error = exc.message[:ERROR_TEXT_LIMIT]
        attempts = row.attempts + 1
        max_attempts = self._settings.dispatch_max_attempts
        if exc.errcode == ERRCODE_RATE_LIMITED and key != RESIDENT_LANE:
            # WeCom's own limit: the robot gets a full window of rest; not counted as an attempt.
            until = now + self._limiter.window
            self._limiter.pause(key, until)
            await self._db(outbox.mark_retry, row.id, lease, attempts=row.attempts, error=error, next_attempt_at=until)
            logger.warning(
                "notification %s (ticket %s, %s): robot rate-limited (45009); waiting %ds",
                row.id, row.ticket_id, row.purpose, int(self._limiter.window.total_seconds()),
            )
        elif not exc.retryable or attempts >= max_attempts:
            await self._db(outbox.mark_failed, row.id, lease, attempts=attempts, error=error)
            logger.error(
                "notification %s (ticket %s, %s): failed after %d attempt(s): %s",
                row.id, row.ticket_id, row.purpose, attempts, error,
            )
        else:
            delay = retry_delay(attempts, self._rng)
            await self._db(
                outbox.mark_retry, row.id, lease,
                attempts=attempts, error=error, next_attempt_at=now + dt.timedelta(seconds=delay),
            )
            logger.warning(
                "notification %s (ticket %s, %s): attempt %d/%d failed, retrying in %.0fs: %s",
                row.id, row.ticket_id, row.purpose, attempts, max_attempts, delay, error,
            )

    async def _set_aside(self, row: DueNotification) -> int:
        """Write a row that has no robot to the notify log, so staff can still read it."""
        now = self._clock()
        lease = now + self._lease
        if not await self._db(outbox.claim, row.id, row.next_attempt_at, lease):
            return 0
        line = json.dumps(
            {
                "at": now.isoformat(timespec="seconds"),
                "id": row.id,
                "purpose": row.purpose,
                "ticket_id": row.ticket_id,
                "content": outbox.payload_content(row.payload),
                "status": outbox.UNDELIVERED,
            },
            ensure_ascii=False,
        )
        # The line is written before the status: a crash in between repeats the line, never loses it.
        await asyncio.to_thread(_append_line, self._settings.notify_log, line)
        await self._db(outbox.mark_undelivered, row.id, lease, "no webhook key")
        logger.warning(
            "notification %s (ticket %s, %s): undelivered, no webhook key; written to %s",
            row.id, row.ticket_id, row.purpose, self._settings.notify_log,
        )
        return 1


async def serve(settings: Settings, stop: Optional[asyncio.Event] = None) -> None:
    """Run the dispatcher until SIGINT/SIGTERM (or `stop`), owning its engine and HTTP session."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: List[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread, or a platform without signal handlers: `stop` still works
    engine = make_engine(settings.database_url)
    try:
        session_factory = make_session_factory(engine)
        timeout = aiohttp.ClientTimeout(total=settings.http_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            client = WeComRobotClient(http, settings.wecom_webhook_url, timeout=settings.http_timeout)
            async with resident_sender(settings, session_factory, http) as residents:
                await Dispatcher(settings, session_factory, client, residents=residents,
                                 housekeeping=housekeeping(settings, session_factory),
                                 leadership=Leadership(session_factory, settings.dispatch_lease_seconds)
                                 ).run_forever(stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await asyncio.to_thread(engine.dispose)


def main() -> None:
    """Entry point of `python -m bot.notify.dispatcher`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(Settings.from_env()))


if __name__ == "__main__":
    main()
