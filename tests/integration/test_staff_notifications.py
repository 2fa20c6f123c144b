"""Escalations fire once per level across restarts; residents hear about their ticket over WeChat; outages lose nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path
from typing import AsyncIterator, List

import pytest
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.config import Settings
from bot.devtools.fake_wechat import FakeWeChat, FakeWeChatServer, running_fake_wechat
from bot.notify.dispatcher import Dispatcher
from bot.notify.resident import WeChatResidentSender, housekeeping
from bot.notify.wecom import WeComRobotClient
from bot.services import lifecycle, residents, tickets
from bot.services.lifecycle import Context
from bot.store.db import unit_of_work
from bot.store.models import Escalation, Notification, Ticket
from bot.wechat.client import WeChatClient
from bot.wechat.token import MemoryTokenStore
from tests.helpers import community_db

OPENID = "oWX_notified_resident"
APPID, SECRET = "wxfake0000000001", "fake-app-secret"


def _settings(tmp_path: Path, database_url: str, webhook_url: str, **env: str) -> Settings:
    values = {"DATABASE_URL": database_url, "WECOM_WEBHOOK_URL": webhook_url, "HG_DISPATCH_MAX_ATTEMPTS": "5",
              "HG_NOTIFY_LOG": str(tmp_path / "notifications.log"), "HG_HTTP_TIMEOUT": "1",
              "HG_CONSOLE_BASE_URL": "http://console.test"}
    values.update(env)
    return Settings.from_env(env=values, env_file=tmp_path / "absent.env")


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    return community_db(sqlite_url)


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeWeChatServer]:
    async with running_fake_wechat(FakeWeChat(appid=APPID, secret=SECRET, template_ids={"TPL-ticket"})) as server:
        yield server


def _leak(factory: sessionmaker, at: dt.datetime, ctx: Context) -> str:
    request = tickets.TicketRequest(kind="leak", sender_id=OPENID, description="洗衣机下水管堵了，阳台都是水",
                                    address=Address("吉利花园", 3, 2, 501), contact_phone="13812345678")
    return tickets.open_ticket(factory, request, now=at, ctx=ctx).number


def _cards(factory: sessionmaker, purpose: str) -> List[Notification]:
    with unit_of_work(factory) as s:
        return s.query(Notification).filter(Notification.purpose == purpose).order_by(Notification.id).all()


async def test_an_unaccepted_urgent_leak_escalates_once_per_level_across_a_dispatcher_restart(
        factory, tmp_path, wecom, http, clock) -> None:
    settings = _settings(tmp_path, "sqlite://", wecom.url)
    ctx = Context.from_settings(settings)
    start = dt.datetime(2026, 11, 28, 4, 0)  # 12:00 in Tianjin: not night
    clock.now = start
    number = _leak(factory, start, ctx)

    def dispatcher() -> Dispatcher:
        return Dispatcher(settings, factory, WeComRobotClient(http, settings.wecom_webhook_url), clock=clock,
                          rng=random.Random(1), housekeeping=housekeeping(settings, factory), housekeeping_seconds=0)

    first = dispatcher()
    clock.advance(14 * 60)
    await first.run_once()
    assert _cards(factory, "escalation_unaccepted") == []
    clock.advance(2 * 60)
    await first.run_once()
    cards = _cards(factory, "escalation_unaccepted")
    assert len(cards) == 2  # the grid group (leader mentioned) and the duty/office group (secretary, duty)
    contents = [c.payload["markdown"]["content"] for c in cards]
    assert "<@WangJianGuo>" in contents[0] and "【催办】无人接单" in contents[0]
    assert "<@GaoHong>" in contents[1] and "<@MaGuiLan>" in contents[1]
    assert f"http://console.test/tickets/{number}" in contents[0]

    restarted = dispatcher()  # a restart: new process state, same database
    clock.advance(60)
    await restarted.run_once()
    assert len(_cards(factory, "escalation_unaccepted")) == 2

    lifecycle.perform(factory, "zhouming", number, "accept", ctx=ctx, now=clock.now)
    clock.advance(4 * 3600 + 60)  # past the 4-hour deadline of an urgent ticket
    await restarted.run_once()
    await dispatcher().run_once()
    overdue = _cards(factory, "escalation_overdue")
    assert len(overdue) == 1 and "<@WangJianGuo>" in overdue[0].payload["markdown"]["content"] \
        and "<@ZhouMing>" in overdue[0].payload["markdown"]["content"]
    with unit_of_work(factory) as s:
        assert sorted(e.level for e in s.query(Escalation)) == ["overdue", "unaccepted"]
    assert all(c.status == "sent" for c in _cards(factory, "escalation_unaccepted") + overdue)


async def test_a_leak_at_night_also_reaches_the_night_duty_roster(factory, tmp_path, wecom) -> None:
    ctx = Context.from_settings(_settings(tmp_path, "sqlite://", wecom.url))
    _leak(factory, dt.datetime(2026, 11, 28, 15, 30), ctx)  # 23:30 in Tianjin
    (night,) = _cards(factory, "night_duty")
    assert "<@ZhangDeShun>" in night.payload["markdown"]["content"]
    _leak(factory, dt.datetime(2026, 11, 28, 4, 0), ctx)  # noon
    assert len(_cards(factory, "night_duty")) == 1


async def test_residents_get_a_customer_service_message_inside_48_hours_and_a_template_outside(
        factory, tmp_path, wecom, http, clock, fake_api) -> None:
    settings = _settings(tmp_path, "sqlite://", wecom.url)
    ctx = Context.from_settings(settings)
    client = WeChatClient(http, APPID, SECRET, fake_api.base_url, MemoryTokenStore())
    sender = WeChatResidentSender(client, factory, template_id="TPL-ticket",
                                  template_fields=settings.wechat_template_fields, clock=clock)
    dispatcher = Dispatcher(settings, factory, WeComRobotClient(http, settings.wecom_webhook_url), clock=clock,
                            residents=sender)
    residents.record_inbound(factory, OPENID, clock.now - dt.timedelta(hours=1))
    number = _leak(factory, clock.now - dt.timedelta(seconds=5), ctx)
    lifecycle.perform(factory, "zhouming", number, "accept", eta="半小时内", ctx=ctx, now=clock.now)
    await dispatcher.run_once()
    assert [c.payload["text"]["content"] for c in fake_api.fake.messages][-1].startswith(f"您的工单 {number} 已由周明负责")

    residents.record_inbound(factory, OPENID, clock.now - dt.timedelta(hours=49))
    lifecycle.perform(factory, "zhouming", number, "resolve", note="疏通了下水管", ctx=ctx, now=clock.now)
    await dispatcher.run_once()
    (template,) = fake_api.fake.templates
    assert template.payload["template_id"] == "TPL-ticket" and template.payload["touser"] == OPENID
    assert template.payload["data"]["keyword1"] == {"value": number}
    assert "疏通了下水管" in template.payload["data"]["remark"]["value"]
    with unit_of_work(factory) as s:
        rows = s.query(Notification).filter_by(channel="wechat").all()
        assert {r.status for r in rows} == {"sent"} and len(rows) == 2


async def test_a_refused_resident_message_is_kept_failed_with_its_errcode_and_never_sent_twice(
        factory, tmp_path, wecom, http, clock, fake_api) -> None:
    settings = _settings(tmp_path, "sqlite://", wecom.url)
    ctx = Context.from_settings(settings)
    client = WeChatClient(http, APPID, SECRET, fake_api.base_url, MemoryTokenStore())
    sender = WeChatResidentSender(client, factory, template_id="", template_fields={}, clock=clock)
    dispatcher = Dispatcher(settings, factory, WeComRobotClient(http, settings.wecom_webhook_url), clock=clock,
                            residents=sender)
    residents.record_inbound(factory, OPENID, clock.now - dt.timedelta(hours=1))
    number = _leak(factory, clock.now - dt.timedelta(seconds=5), ctx)
    fake_api.fake.fail_next(1, errcode=45015)
    lifecycle.perform(factory, "zhouming", number, "accept", ctx=ctx, now=clock.now)
    for _ in range(3):
        await dispatcher.run_once()
        clock.advance(600)
    with unit_of_work(factory) as s:
        (row,) = s.query(Notification).filter_by(channel="wechat").all()
        assert row.status == "failed" and "45015" in row.last_error and row.attempts == 1
    assert fake_api.fake.messages == [] and fake_api.fake.templates == []


async def test_after_a_wecom_outage_every_card_is_delivered_exactly_once(factory, tmp_path, wecom, http, clock) -> None:
    settings = _settings(tmp_path, "sqlite://", wecom.url, HG_HTTP_TIMEOUT="0.5")
    ctx = Context.from_settings(settings)
    numbers = [_leak(factory, clock.now - dt.timedelta(seconds=5), ctx) for _ in range(3)]
    wecom.fake.fail_next(4, status=500)
    wecom.fake.fail_next(2, delay=2.0)  # hangs past the client's timeout
    dispatcher = Dispatcher(settings, factory, WeComRobotClient(http, settings.wecom_webhook_url, timeout=0.5),
                            clock=clock, rng=random.Random(3))
    for _ in range(40):
        await dispatcher.run_once()
        clock.advance(30)
        with unit_of_work(factory) as s:
            if s.query(Notification).filter(Notification.status == "pending").count() == 0:
                break
    with unit_of_work(factory) as s:
        rows = s.query(Notification).join(Ticket).filter(Ticket.number.in_(numbers)).all()
        assert rows and {r.status for r in rows} == {"sent"}
        expected = sorted((r.webhook_key, r.payload["markdown"]["content"]) for r in rows)
    await asyncio.sleep(2.1)  # let the hung requests finish on the fake's side, if they ever would
    received = sorted((d.key, d.payload["markdown"]["content"]) for d in wecom.fake.messages)
    assert received == expected
