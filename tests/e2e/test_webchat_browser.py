"""In headless Chromium on a phone, a resident reports a leak on the web chat page and sees the ticket number."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from bot.channels.webchat import openid_for
from bot.devtools.stack import Stack
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Ticket
from tests.browser import REPORTS, save_screenshot

pytestmark = pytest.mark.slow

SCREENSHOT = REPORTS / "webchat_leak.png"
TICKET_NUMBER = re.compile(r"HG-\d{8}-\d{4}")
REPLY_TIMEOUT_MS = 30_000  # one turn through the WeChat channel, Rasa and the action server on a busy machine


async def test_resident_reports_a_leak_on_the_web_chat_page_and_sees_the_ticket_number(
        stack: Stack, phone_page: Page) -> None:
    page = phone_page
    await page.goto(stack.webchat_url)
    body = page.locator("body")
    await expect(body).to_have_attribute("data-ready", "1")
    await expect(page.locator("#title")).to_have_text("红星社区")
    box = page.get_by_label("输入消息")
    send = page.get_by_role("button", name="发送")
    incoming = page.locator("#messages .msg.in .bubble")
    typed = ["洗衣机下水管堵了，阳台都是水", "吉利花园3号楼2单元501", "13812345678"]
    replies = []
    for text in typed:
        before = await incoming.count()
        await expect(send).to_be_disabled()  # nothing typed yet
        await box.press_sequentially(text)
        await send.click()
        await expect(box).to_have_value("")
        await expect(incoming.nth(before)).to_be_visible(timeout=REPLY_TIMEOUT_MS)
        await expect(body).to_have_attribute("data-pending", "0", timeout=REPLY_TIMEOUT_MS)
        replies.append("\n".join(await incoming.all_text_contents()))
    await expect(page.locator("#messages .msg.out .bubble")).to_have_text(typed)
    shown = await page.locator("#messages").inner_text()
    client = await body.get_attribute("data-client")
    screenshot = await save_screenshot(page, "webchat_leak")

    assert "地址" in replies[0] and "电话" in replies[1]
    assert "吉利花园3号楼2单元501" in shown and "13812345678" in shown  # the resident's own bubbles
    found = TICKET_NUMBER.search(replies[2])
    assert found, f"no ticket number on the page:\n{shown}"
    assert client
    engine = make_engine(stack.settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            ticket = session.query(Ticket).filter_by(sender_id=openid_for(client)).one()
            assert ticket.number == found.group(0)
            assert (ticket.kind, ticket.building, ticket.unit, ticket.room) == ("leak", 3, 2, 501)
    finally:
        engine.dispose()
    assert screenshot == SCREENSHOT and SCREENSHOT.stat().st_size > 10_000
