"""On phones: a resident reports a leak on the web chat page, grid worker 周明 handles it in the console, the resident rates it."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from bot.channels.webchat import openid_for
from bot.devtools.stack import Stack
from bot.messages import RATING_THANKS
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Ticket
from tests.browser import PHONE, REPORTS, open_page, save_screenshot
from tests.console_kit import DEMO_PASSWORD

pytestmark = pytest.mark.slow

TICKET_NUMBER = re.compile(r"HG-\d{8}-\d{4}")
REPLY_TIMEOUT_MS = 30_000  # one turn through the channel, Rasa and the action server on a busy machine
DELIVERY_TIMEOUT_MS = 60_000  # a ticket update: outbox → dispatcher → fake WeChat API → the page's poll


async def _say(page: Page, text: str) -> None:
    """Type `text` into the web chat and wait until its reply has arrived."""
    body = page.locator("body")
    incoming = page.locator("#messages .msg.in .bubble")
    before = await incoming.count()
    await page.get_by_label("输入消息").press_sequentially(text)
    await page.get_by_role("button", name="发送").click()
    await expect(incoming.nth(before)).to_be_visible(timeout=REPLY_TIMEOUT_MS)
    await expect(body).to_have_attribute("data-pending", "0", timeout=REPLY_TIMEOUT_MS)


async def test_a_grid_worker_handles_a_leak_on_his_phone_and_the_resident_sees_it_through_and_rates_it(
        stack: Stack, phone_page: Page, browser: Browser) -> None:
    resident = phone_page
    await resident.goto(stack.webchat_url)
    await expect(resident.locator("body")).to_have_attribute("data-ready", "1")
    for text in ("洗衣机下水管堵了，阳台都是水", "吉利花园3号楼2单元501", "13812345678"):
        await _say(resident, text)
    incoming = resident.locator("#messages .msg.in .bubble")
    found = TICKET_NUMBER.search((await incoming.all_text_contents())[-1])
    assert found, "\n".join(await incoming.all_text_contents())
    number = found.group(0)
    client = await resident.locator("body").get_attribute("data-client")
    assert client

    async with open_page(browser, PHONE) as staff:
        await staff.goto(stack.console_url + "/")
        await expect(staff).to_have_url(re.compile(r"/login"))
        await staff.get_by_label("账号").fill("zhouming")
        await staff.get_by_label("密码").fill(DEMO_PASSWORD)
        await staff.get_by_role("button", name="登录").click()
        card = staff.locator(f'li.ticket[data-number="{number}"]')
        await expect(card).to_be_visible()
        await expect(card).to_contain_text("待受理")
        await expect(card).to_contain_text("吉利花园3号楼2单元501室")
        assert "13812345678" not in await staff.content()  # only masked in the queue
        queue_shot = await save_screenshot(staff, "console_queue")

        await card.click()
        await expect(staff).to_have_url(re.compile(rf"/tickets/{number}$"))
        await expect(staff.locator('a[href="tel:13812345678"]')).to_be_visible()
        await staff.get_by_label("预计上门时间").fill("20分钟内")
        await staff.get_by_role("button", name="接单", exact=True).click()
        await expect(staff.get_by_role("status")).to_have_text("已接单。")
        await expect(staff.locator("#status")).to_have_text("已派单")
        await staff.get_by_role("button", name="开始处理", exact=True).click()
        await expect(staff.locator("#status")).to_have_text("处理中")
        await staff.get_by_label("处理结果").fill("疏通了下水管")
        await staff.get_by_role("button", name="办结", exact=True).click()
        await expect(staff.locator("#status")).to_have_text("已办结")
        await expect(staff.locator(".events")).to_contain_text("处理中 → 已办结")
        ticket_shot = await save_screenshot(staff, "console_ticket", full_page=True)

    messages = resident.locator("#messages")
    await expect(messages).to_contain_text(f"您的工单 {number} 已由周明负责，预计20分钟内", timeout=DELIVERY_TIMEOUT_MS)
    await expect(messages).to_contain_text(f"您的工单 {number} 已办结：疏通了下水管", timeout=DELIVERY_TIMEOUT_MS)
    await _say(resident, "5分 师傅很负责")
    await expect(incoming.last).to_contain_text(RATING_THANKS.split("！")[0])
    rated_shot = await save_screenshot(resident, "webchat_rated")

    engine = make_engine(stack.settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            ticket = session.query(Ticket).filter_by(number=number).one()
            assert ticket.sender_id == openid_for(client)
            assert (ticket.status, ticket.rating, ticket.resolution) == ("closed", 5, "疏通了下水管")
            assert ticket.assignee.key == "zhouming"
    finally:
        engine.dispose()
    for shot, name in ((queue_shot, "console_queue"), (ticket_shot, "console_ticket"), (rated_shot, "webchat_rated")):
        assert shot == REPORTS / f"{name}.png" and shot.stat().st_size > 10_000
