"""The admins' loop end to end, on a stack of its own: residents send messages the running model gets wrong; an
admin collects and labels them in the console (a real browser), retrains from the console, the comparison
passes, the model is swapped on the running server, and the same messages are now understood while a
conversation that was in the middle of a form goes on; rolling back restores the old predictions.

The opposite case, a deliberately wrong label set blocked by a real retrain's comparison, costs a second
training (about seven minutes here) and runs in `make bench-gate` (tests/e2e/bench_retrain_blocked.py); the
refusal to deploy an ungated model is covered by tests/integration/test_model_registry.py and
test_console_models.py."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
from playwright.async_api import Page, expect

from bot.devtools.stack import Stack, start_stack
from bot.services import models
from bot.store.db import make_engine, make_session_factory
from tests.console_kit import DEMO_PASSWORD

pytestmark = pytest.mark.slow

# Noise complaints in words the shipped model does not know (it falls back on both).
MISUNDERSTOOD = {"狗叫了一晚上": "give_feedback", "隔壁狗子整宿叫唤": "give_feedback"}
RETRAIN_TIMEOUT_MS = 20 * 60_000  # validate, train (about 4 min here), compare (about 2 min)
SWAP_TIMEOUT_MS = 180_000


@pytest.fixture(scope="module")
def loop_stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(trained_model, tmp_path_factory.mktemp("retrain-loop"))
    yield running
    running.stop()


def _intent(stack: Stack, text: str) -> str:
    """What the running model makes of `text` (Rasa's authenticated /model/parse, the fallback included)."""
    req = urllib.request.Request(f"{stack.settings.rasa_url}/model/parse?token={stack.token}",
                                 data=json.dumps({"text": text}).encode("utf-8"),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local server
        return json.loads(resp.read().decode("utf-8"))["intent"]["name"]


def _texts(replies: List[Dict[str, object]]) -> str:
    return "\n".join(str(r.get("text") or "") for r in replies)


async def _login(page: Page, stack: Stack) -> None:
    await page.goto(stack.console_url + "/login")
    await page.get_by_label("账号").fill("admin")
    await page.get_by_label("密码").fill(DEMO_PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).not_to_have_url(re.compile(r"/login"))


async def _retrain(page: Page, stack: Stack) -> str:
    """Click 重新训练 and wait for the outcome line the page shows when the job is over."""
    await page.goto(stack.console_url + "/admin/models")
    await page.get_by_role("button", name="重新训练").click()
    await expect(page.get_by_role("status")).to_have_text("已开始重新训练，进度见下方。")
    # the steps appear as they happen (the page polls), before the outcome
    await expect(page.locator("#job li", has_text="训练新模型")).to_be_visible(timeout=120_000)
    outcome = page.locator("#job p", has_text="新模型 v")
    await expect(outcome).to_be_visible(timeout=RETRAIN_TIMEOUT_MS)
    return await outcome.inner_text()


async def test_admins_fix_what_the_assistant_misunderstood_deploy_the_retrained_model_and_roll_back(
        loop_stack: Stack, desktop_page: Page) -> None:
    stack, page = loop_stack, desktop_page
    factory = make_session_factory(make_engine(stack.settings.database_url))
    v1 = models.deployed(factory).model
    before = {text: _intent(stack, text) for text in MISUNDERSTOOD}
    assert all(before[t] != want for t, want in MISUNDERSTOOD.items()), before
    for n, text in enumerate(MISUNDERSTOOD):
        stack.say(f"loop-resident-{n}", text)
    assert "详细地址" in _texts(stack.say("loop-mid-form", "厨房水管爆了 水哗哗往外喷"))

    # label in the console
    await _login(page, stack)
    await page.goto(stack.console_url + "/admin/review")
    await page.get_by_role("button", name="收集").click()
    for text, intent in MISUNDERSTOOD.items():
        item = page.locator("section.review-item", has_text=text)
        await expect(item).to_be_visible()
        await item.get_by_label("意图").select_option(intent)
        await item.get_by_role("button", name="采纳").click()
        await expect(page.get_by_role("status")).to_contain_text("已采纳")
    reviewed = "\n".join(p.read_text(encoding="utf-8") for p in stack.settings.reviewed_dir.glob("*.yml"))
    assert all(text in reviewed for text in MISUNDERSTOOD), reviewed

    # retrain, compare, deploy from the console
    outcome = await _retrain(page, stack)
    assert "对比通过" in outcome, outcome
    v2 = models.versions(factory)[0]
    assert v2.id != v1.id and v2.gate_passed is True and v2.gated_against == v1.id
    await page.goto(stack.console_url + "/admin/models")
    await page.locator(f"#version-{v2.id}").get_by_role("button", name="上线").click()
    await expect(page.locator("#deployed")).to_have_text(f"v{v2.id}")
    await expect(page.locator("#workers")).not_to_contain_text("旧模型", timeout=SWAP_TIMEOUT_MS)
    await expect(page.locator("#workers")).not_to_contain_text("正在加载", timeout=SWAP_TIMEOUT_MS)
    assert models.rollout(factory, v2.sha256).done
    assert {text: _intent(stack, text) for text in MISUNDERSTOOD} == MISUNDERSTOOD
    after = _texts(stack.say("loop-mid-form", "吉利花园3号楼2单元501"))  # the question asked before the swap
    assert "详细地址" not in after and ("电话" in after or "手机" in after), after

    # roll back from the console: the old predictions are back
    await page.get_by_label("回退原因").fill("测试回退")
    await page.get_by_role("button", name="回退到上一版").click()
    await expect(page.locator("#deployed")).to_have_text(f"v{v1.id}")
    await expect(page.locator("#workers")).not_to_contain_text("旧模型", timeout=SWAP_TIMEOUT_MS)
    await expect(page.locator("#workers")).not_to_contain_text("正在加载", timeout=SWAP_TIMEOUT_MS)
    assert {text: _intent(stack, text) for text in MISUNDERSTOOD} == before
