"""In headless Chromium: a resident asks for a person on the web chat page, duty staff answer in the console
inbox and hand the conversation back, and the assistant answers again."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from bot.channels.webchat import openid_for
from bot.devtools.stack import Stack
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Handoff, HandoffReply
from tests.browser import REPORTS, save_screenshot

pytestmark = pytest.mark.slow

REPLY_TIMEOUT_MS = 30_000  # one turn through the WeChat channel, Rasa and the action server on a busy machine
STAFF_REPLY = "您好，我是值班的马桂兰，请问有什么可以帮您？"


async def _say(page: Page, text: str) -> None:
    """Type and send one message on the web chat page and wait until the page has its answer (if any)."""
    box = page.get_by_label("输入消息")
    await box.press_sequentially(text)
    await page.get_by_role("button", name="发送").click()
    await expect(box).to_have_value("")
    await expect(page.locator("#messages .msg.out .bubble").last).to_have_text(text)
    await expect(page.locator("body")).to_have_attribute("data-pending", "0", timeout=REPLY_TIMEOUT_MS)


async def test_duty_staff_answer_a_handoff_in_the_console_and_hand_it_back_to_the_assistant(
        stack: Stack, phone_page: Page, desktop_page: Page) -> None:
    chat, console = phone_page, desktop_page
    await chat.goto(stack.webchat_url)
    body = chat.locator("body")
    await expect(body).to_have_attribute("data-ready", "1")
    incoming = chat.locator("#messages .msg.in .bubble")

    before = await incoming.count()
    await _say(chat, "我要找真人，转人工")
    await expect(incoming.nth(before)).to_contain_text("值班工作人员", timeout=REPLY_TIMEOUT_MS)
    quiet = await incoming.count()
    await _say(chat, "你好？有人吗")  # the request is answered (data-pending 0) with no message from the assistant
    await expect(incoming).to_have_count(quiet)
    client = await body.get_attribute("data-client")
    assert client
    openid = openid_for(client)

    await console.goto(f"{stack.console_url}/handoffs")
    await console.get_by_label("账号").fill("maguilan")
    await console.get_by_label("密码").fill("hongxing-demo")
    await console.get_by_role("button", name="登录").click()
    await expect(console).to_have_url(f"{stack.console_url}/handoffs")
    row = console.locator("li.handoff", has_text=openid)
    await expect(row).to_contain_text("已等待")
    await expect(row).to_contain_text("我要找真人，转人工")
    inbox_shot = await save_screenshot(console, "handoff_inbox")
    await row.get_by_role("link").click()
    conversation = console.locator("ol.conversation")
    await expect(conversation).to_contain_text("你好？有人吗")
    await expect(conversation).to_contain_text("我要找真人，转人工")
    await console.get_by_label("回复居民").fill(STAFF_REPLY)
    await console.get_by_role("button", name="发送回复").click()
    await expect(console.locator("li.turn.staff").last).to_contain_text(STAFF_REPLY)

    await expect(incoming.nth(quiet)).to_have_text(f"社区值班人员马桂兰：{STAFF_REPLY}", timeout=REPLY_TIMEOUT_MS)
    chat_shot = await save_screenshot(chat, "handoff_webchat")  # the staff answer on the resident's phone
    await console.reload()
    await expect(console.locator("li.turn.staff .delivery").last).to_have_text("已送达", timeout=REPLY_TIMEOUT_MS)

    await console.get_by_role("button", name="交还助手").click()
    await expect(console).to_have_url(re.compile(r"/handoffs\?released=\d+$"))
    await expect(console.locator(".notice")).to_contain_text("已交还助手")
    await expect(console.locator("li.handoff", has_text=openid)).to_have_count(0)

    after = await incoming.count()
    await _say(chat, "最近有义诊吗")
    await expect(incoming.nth(after)).to_contain_text("义诊", timeout=REPLY_TIMEOUT_MS)
    answers = (await incoming.all_text_contents())[after:]
    assert answers[0].startswith("近期义诊安排"), answers  # the clinic list, not a fallback that offers 查义诊
    assert not any("没太明白" in text or "没能理解" in text for text in answers), answers

    engine = make_engine(stack.settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            [row_db] = session.query(Handoff).filter_by(sender_id=openid).all()
            assert row_db.released_at is not None and row_db.released_by == "maguilan"
            [saved] = session.query(HandoffReply).filter_by(handoff_id=row_db.id).all()
            assert saved.text == STAFF_REPLY and saved.notification_id is not None
    finally:
        engine.dispose()
    assert inbox_shot == REPORTS / "handoff_inbox.png" and inbox_shot.stat().st_size > 10_000
    assert chat_shot == REPORTS / "handoff_webchat.png" and chat_shot.stat().st_size > 10_000
