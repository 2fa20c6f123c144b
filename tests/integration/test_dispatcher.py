"""The dispatcher delivers the outbox to WeCom robots: once, in order, with retries and limits."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import aiohttp
import pytest
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.devtools.fake_wecom import FakeWeComServer
from bot.notify.dispatcher import Dispatcher, serve
from bot.notify.outbox import enqueue
from bot.notify.wecom import WeComRobotClient
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import ChatGroup, Notification, Ticket

KEY = "robot-key-3f9a2c71d0e84b56"
OTHER_KEY = "robot-key-7c1e4b90a2d35f68"


def _settings(tmp_path: Path, database_url: str, webhook_url: str, **env: str) -> Settings:
    values = {
        "DATABASE_URL": database_url,
        "WECOM_WEBHOOK_URL": webhook_url,
        "HG_NOTIFY_LOG": str(tmp_path / "var" / "log" / "notifications.log"),
        "HG_DISPATCH_INTERVAL": "0.02",
        "HG_DISPATCH_MAX_ATTEMPTS": "3",
        "HG_ROBOT_RATE_PER_MINUTE": "20",
        "HG_HTTP_TIMEOUT": "2",
    }
    values.update(env)
    return Settings.from_env(env=values, env_file=tmp_path / "absent.env")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, wecom: FakeWeComServer) -> Settings:
    """Settings pointing at the test database, the fake robot and a notify log under tmp_path."""
    return _settings(tmp_path, database_url, wecom.url)


@pytest.fixture
def make_dispatcher(settings: Settings, session_factory: sessionmaker, http: aiohttp.ClientSession, clock) -> Callable[..., Dispatcher]:
    """Builds dispatchers over the fake robot with the test clock (a new one = a restart)."""

    def build(factory: Optional[sessionmaker] = None, settings_: Optional[Settings] = None) -> Dispatcher:
        s = settings_ or settings
        client = WeComRobotClient(http, s.wecom_webhook_url, timeout=s.http_timeout)
        return Dispatcher(s, factory or session_factory, client, clock=clock, rng=random.Random(7))

    return build


def queue(
    factory: sessionmaker,
    contents: List[str],
    webhook_key: Optional[str] = KEY,
    *,
    mentions: tuple = (),
    with_ticket: bool = False,
    group: bool = True,
) -> List[int]:
    """Queue one notification per content for the group owning `webhook_key`; return their ids."""
    with unit_of_work(factory) as s:
        chat_group = None
        if group:
            chat_group = s.query(ChatGroup).filter_by(webhook_key=webhook_key).first() if webhook_key else None
            if chat_group is None:
                n = s.query(ChatGroup).count() + 1
                chat_group = ChatGroup(key=f"group-{n}", name=f"第{n}网格群", kind="grid", webhook_key=webhook_key)
                s.add(chat_group)
        ticket_id = None
        if with_ticket:
            ticket = Ticket(number=f"HG-20261128-{s.query(Ticket).count() + 1:04d}", kind="leak",
                            sender_id="u1", description="漏水", contact_phone="13800138000")
            s.add(ticket)
            s.flush()
            ticket_id = ticket.id
        rows = [enqueue(s, group=chat_group, purpose="new_ticket", content=c, ticket_id=ticket_id, mentions=mentions)
                for c in contents]
        s.flush()
        return [r.id for r in rows]


def rows(factory: sessionmaker) -> Dict[int, Notification]:
    """Every notification row by id, freshly read."""
    with unit_of_work(factory) as s:
        return {n.id: n for n in s.query(Notification).order_by(Notification.id)}


def contents_received(wecom: FakeWeComServer, key: str = KEY) -> List[str]:
    """The markdown contents the fake robot accepted for `key`, in arrival order."""
    return [m.payload["markdown"]["content"] for m in wecom.fake.messages_for(key)]


async def test_queued_markdown_message_is_delivered_byte_for_byte_and_marked_sent(
    make_dispatcher, session_factory, wecom, clock
) -> None:
    content = "**新工单 HG-20261128-0001** <font color=\"warning\">紧急</font>\n> 幸福里3栋2单元1502 厨房漏水 💧"
    (nid,) = queue(session_factory, [content], mentions=["zhangwei"])

    assert await make_dispatcher().run_once() == 1

    (message,) = wecom.fake.messages
    expected = content + "\n<@zhangwei>"
    assert message.key == KEY
    assert message.payload == {"msgtype": "markdown", "markdown": {"content": expected}}
    # On the wire as UTF-8 bytes (not \u escapes), exactly as queued.
    assert json.dumps(expected, ensure_ascii=False).encode("utf-8") in message.raw
    assert b"\\u" not in message.raw
    row = rows(session_factory)[nid]
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, clock.now)


async def test_restarted_dispatcher_does_not_resend_sent_rows(
    make_dispatcher, session_factory, database_url, wecom, clock
) -> None:
    queue(session_factory, ["只发一次"])
    assert await make_dispatcher().run_once() == 1

    engine = make_engine(database_url)  # a fresh process: its own engine, its own memory
    try:
        restarted = make_dispatcher(make_session_factory(engine))
        assert await restarted.run_once() == 0
        clock.advance(24 * 3600)
        assert await restarted.run_once() == 0
    finally:
        engine.dispose()
    assert contents_received(wecom) == ["只发一次"]


async def test_server_error_then_success_is_delivered_on_the_retry_with_attempts_recorded(
    make_dispatcher, session_factory, wecom, clock
) -> None:
    (nid,) = queue(session_factory, ["重试后送达"])
    wecom.fake.fail_next(1, status=500)
    dispatcher = make_dispatcher()

    assert await dispatcher.run_once() == 1
    row = rows(session_factory)[nid]
    assert (row.status, row.attempts) == ("pending", 1)
    assert "HTTP 500" in row.last_error
    assert dt.timedelta(seconds=1.5) <= row.next_attempt_at - clock.now <= dt.timedelta(seconds=2.5)

    assert await dispatcher.run_once() == 0  # backing off: not due yet
    clock.advance(3)
    assert await dispatcher.run_once() == 1

    row = rows(session_factory)[nid]
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert contents_received(wecom) == ["重试后送达"]


async def test_persistent_failure_marks_the_row_failed_after_max_attempts_and_keeps_it(
    make_dispatcher, session_factory, wecom, clock
) -> None:
    (nid,) = queue(session_factory, ["一直失败"])
    wecom.fake.fail_next(100, status=503)
    dispatcher = make_dispatcher()

    for _ in range(6):
        await dispatcher.run_once()
        clock.advance(400)  # past the longest back-off

    row = rows(session_factory)[nid]
    assert (row.status, row.attempts) == ("failed", 3)  # HG_DISPATCH_MAX_ATTEMPTS=3
    assert "HTTP 503" in row.last_error
    assert len(wecom.fake.exchanges) == 3


async def test_invalid_webhook_key_fails_at_once(make_dispatcher, session_factory, wecom) -> None:
    wecom.fake.allowed_keys = {OTHER_KEY}
    (nid,) = queue(session_factory, ["发错了群"])

    assert await make_dispatcher().run_once() == 1

    row = rows(session_factory)[nid]
    assert (row.status, row.attempts) == ("failed", 1)
    assert "93000" in row.last_error
    assert wecom.fake.errcodes == [93000]


async def test_rows_without_a_webhook_key_go_to_the_notify_log_as_undelivered(
    make_dispatcher, session_factory, settings, wecom
) -> None:
    (no_key,) = queue(session_factory, ["群没有机器人"], webhook_key=None, with_ticket=True)
    (no_group,) = queue(session_factory, ["没有群"], webhook_key=None, group=False)

    assert await make_dispatcher().run_once() == 2

    lines = [json.loads(line) for line in settings.notify_log.read_text(encoding="utf-8").splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert set(by_id) == {no_key, no_group}
    assert by_id[no_key]["content"] == "群没有机器人"
    assert by_id[no_key]["ticket_id"] is not None and by_id[no_group]["ticket_id"] is None
    assert {line["status"] for line in lines} == {"undelivered"}
    assert {line["purpose"] for line in lines} == {"new_ticket"}
    assert {r.status for r in rows(session_factory).values()} == {"undelivered"}
    assert wecom.fake.exchanges == []


async def test_rate_limit_holds_the_overflow_for_a_robot_but_keeps_serving_the_others(
    make_dispatcher, session_factory, wecom, clock
) -> None:
    busy = [f"消息{i:02d}" for i in range(25)]
    queue(session_factory, busy)
    queue(session_factory, ["别的群1", "别的群2", "别的群3"], webhook_key=OTHER_KEY)
    dispatcher = make_dispatcher()

    assert await dispatcher.run_once() == 23
    assert contents_received(wecom) == busy[:20]
    assert contents_received(wecom, OTHER_KEY) == ["别的群1", "别的群2", "别的群3"]
    held = [r for r in rows(session_factory).values() if r.status == "pending"]
    assert len(held) == 5 and {r.attempts for r in held} == {0}

    assert await dispatcher.run_once() == 0  # still within the minute
    clock.advance(60)
    assert await dispatcher.run_once() == 5

    assert contents_received(wecom) == busy
    assert 45009 not in wecom.fake.errcodes


async def test_two_dispatchers_running_concurrently_deliver_every_row_exactly_once(
    make_dispatcher, session_factory, database_url, wecom
) -> None:
    expected = []
    for key in ("robot-a-000000001", "robot-b-000000002", "robot-c-000000003"):
        batch = [f"{key}-{i}" for i in range(10)]
        queue(session_factory, batch, webhook_key=key)
        expected += batch
    wecom.fake.latency = 0.002  # let the two processes interleave
    engine = make_engine(database_url)
    try:
        first, second = make_dispatcher(), make_dispatcher(make_session_factory(engine))
        handled = 0
        for _ in range(5):
            handled += sum(await asyncio.gather(first.run_once(), second.run_once()))
    finally:
        engine.dispose()

    received = [m.payload["markdown"]["content"] for m in wecom.fake.messages]
    assert sorted(received) == sorted(expected)  # every row, none twice
    assert handled == 30
    assert {(r.status, r.attempts) for r in rows(session_factory).values()} == {("sent", 1)}


async def test_robot_answering_45009_pauses_that_robot_without_spending_attempts(
    make_dispatcher, session_factory, wecom, clock
) -> None:
    ids = queue(session_factory, ["一", "二", "三"])
    wecom.fake.fail_next(1, errcode=45009)
    dispatcher = make_dispatcher()

    assert await dispatcher.run_once() == 1
    first = rows(session_factory)[ids[0]]
    assert (first.status, first.attempts) == ("pending", 0)
    assert "45009" in first.last_error
    assert first.next_attempt_at - clock.now >= dt.timedelta(seconds=60)

    clock.advance(30)
    assert await dispatcher.run_once() == 0
    assert len(wecom.fake.exchanges) == 1  # nothing more was sent to the robot

    clock.advance(31)
    assert await dispatcher.run_once() == 3
    assert sorted(contents_received(wecom)) == sorted(["一", "二", "三"])


async def test_delivery_log_names_the_notification_and_never_the_key_or_phone(
    make_dispatcher, session_factory, wecom, clock, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="bot")
    (nid,) = queue(session_factory, ["联系电话 13800138000"], with_ticket=True)
    wecom.fake.fail_next(1, status=502)
    dispatcher = make_dispatcher()
    await dispatcher.run_once()
    clock.advance(5)
    await dispatcher.run_once()

    assert f"notification {nid} (ticket " in caplog.text
    assert "sent on attempt 2" in caplog.text
    assert KEY not in caplog.text
    assert "13800138000" not in caplog.text


async def test_run_forever_keeps_delivering_until_stopped(make_dispatcher, session_factory, wecom) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(make_dispatcher().run_forever(stop))
    queue(session_factory, ["后台发送"])
    for _ in range(200):
        if wecom.fake.messages:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert contents_received(wecom) == ["后台发送"]


async def test_serve_wires_its_own_engine_and_http_session_and_stops_on_request(
    settings, session_factory, wecom
) -> None:
    queue(session_factory, ["由 serve 发送"])
    wecom.fake.clock = time.monotonic  # serve runs on the real clock
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    for _ in range(300):
        if wecom.fake.messages:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert contents_received(wecom) == ["由 serve 发送"]
    assert {r.status for r in rows(session_factory).values()} == {"sent"}


async def test_a_five_minute_wecom_outage_delays_every_card_and_loses_none(
        tmp_path, database_url, wecom, session_factory, http, clock) -> None:
    settings = _settings(tmp_path, database_url, wecom.url, HG_DISPATCH_MAX_ATTEMPTS="")  # the default
    dispatcher = Dispatcher(settings, session_factory,
                            WeComRobotClient(http, settings.wecom_webhook_url, timeout=settings.http_timeout),
                            clock=clock, rng=random.Random(7))
    expected = queue(session_factory, ["停水通知", "新工单"]) + queue(session_factory, ["志愿者报名"],
                                                                   webhook_key=OTHER_KEY)
    outage_ends = clock.now + dt.timedelta(minutes=5)
    wecom.fake.fail_next(10 ** 6, status=503)  # down: every request answered 503 until the outage ends
    while clock.now < outage_ends:
        await dispatcher.run_once()
        assert {r.status for r in rows(session_factory).values()} == {"pending"}  # nothing given up
        clock.advance(5)
    wecom.fake._scripted.clear()  # WeCom is back
    for _ in range(120):
        await dispatcher.run_once()
        if {r.status for r in rows(session_factory).values()} == {"sent"}:
            break
        clock.advance(5)
    stored = rows(session_factory)
    assert {stored[i].status for i in expected} == {"sent"}
    received = [m.payload["markdown"]["content"] for m in wecom.fake.messages]
    assert sorted(received) == sorted(["停水通知", "新工单", "志愿者报名"])  # each exactly once
    assert max(r.attempts for r in stored.values()) < settings.dispatch_max_attempts
