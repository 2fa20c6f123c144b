"""In headless Chromium, a resident reports a leak on the web chat page and sees the ticket number."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest

from bot.channels.webchat import openid_for
from bot.config import PROJECT_ROOT
from bot.devtools.stack import Stack, start_stack
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Ticket
from tests.chromium_kit import ensure_chromium, headless_page

pytestmark = pytest.mark.slow

SCREENSHOT = PROJECT_ROOT / "reports" / "webchat_leak.png"
TICKET_NUMBER = re.compile(r"HG-\d{8}-\d{4}")
# Type into the box and press the send button, as a resident does; returns how many replies were shown before.
TYPE_AND_SEND = """(() => {
  const before = document.querySelectorAll('#messages .msg.in').length;
  const input = document.getElementById('input');
  input.value = %s;
  input.dispatchEvent(new Event('input', {bubbles: true}));
  document.getElementById('send').click();
  return before;
})()"""


@pytest.fixture(scope="module")
def stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    ensure_chromium()  # before the stack: installing it may take a while
    running = start_stack(trained_model, tmp_path_factory.mktemp("webchat"), webchat=True)
    yield running
    running.stop()


async def test_resident_reports_a_leak_on_the_web_chat_page_and_sees_the_ticket_number(stack: Stack) -> None:
    async with headless_page() as page:
        await page.navigate(stack.webchat_url, "document.body && document.body.dataset.ready === '1'")
        assert await page.evaluate("document.getElementById('title').textContent") == "红星社区"
        replies = []
        for text in ["洗衣机下水管堵了，阳台都是水", "吉利花园3号楼2单元501", "13812345678"]:
            before = await page.evaluate(TYPE_AND_SEND % json.dumps(text, ensure_ascii=False))
            await page.wait_for(f"document.querySelectorAll('#messages .msg.in').length > {before}"
                                " && document.body.dataset.pending === '0'", timeout=30)
            replies.append(await page.evaluate(
                "[...document.querySelectorAll('#messages .msg.in .bubble')].map(b => b.textContent).join('\\n')"))
        shown = await page.evaluate("document.getElementById('messages').innerText")
        client = await page.evaluate("document.body.dataset.client")
        await page.screenshot(SCREENSHOT)

    assert "地址" in replies[0] and "电话" in replies[1]
    assert "吉利花园3号楼2单元501" in shown and "13812345678" in shown  # the resident's own bubbles
    found = TICKET_NUMBER.search(replies[2])
    assert found, f"no ticket number on the page:\n{shown}"
    engine = make_engine(stack.settings.database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            ticket = session.query(Ticket).filter_by(sender_id=openid_for(client)).one()
            assert ticket.number == found.group(0)
            assert (ticket.kind, ticket.building, ticket.unit, ticket.room) == ("leak", 3, 2, 501)
    finally:
        engine.dispose()
    assert SCREENSHOT.stat().st_size > 10_000
