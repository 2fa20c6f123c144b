"""`make bench-gate`: a deliberately wrong label set, retrained for real from the console, is blocked by the
comparison, and the running model stays. Residents repeat the held-out file's leak reports in other words; an
admin labels them as greetings. It trains a whole model (about seven minutes on this machine), so it is not part
of `make test` (the file name keeps it out of collection); the refusal to deploy a model whose comparison failed
is covered there by tests/integration/test_model_registry.py and test_console_models.py."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator

import pytest
from playwright.async_api import Page, expect

from bot import nlu_data, pii
from bot.devtools.stack import Stack, start_stack
from bot.errors import InvalidState
from bot.services import models, review
from bot.store.db import make_engine, make_session_factory
from tests.e2e.test_retrain_loop import MISUNDERSTOOD, _intent, _login, _retrain

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gate_stack(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(trained_model, tmp_path_factory.mktemp("retrain-blocked"))
    yield running
    running.stop()


def _wrong_labels() -> Dict[str, str]:
    """Near-copies of the held-out file's leak reports, labelled as greetings: the comparison must catch it."""
    leaks = [t for t, i in nlu_data.examples(Path("tests/nlu/heldout.yml"), base_intents=True) if i == "report_leak"]
    return {f"{t}啊": "greet" for t in leaks if pii.mask(t) == t}  # the review list shows them masked


async def test_a_wrong_label_set_is_blocked_by_the_comparison_and_the_running_model_stays(
        gate_stack: Stack, desktop_page: Page) -> None:
    stack, page = gate_stack, desktop_page
    factory = make_session_factory(make_engine(stack.settings.database_url))
    v1 = models.deployed(factory).model
    before = {text: _intent(stack, text) for text in MISUNDERSTOOD}
    wrong = _wrong_labels()
    assert len(wrong) >= 10, wrong
    for n, text in enumerate(wrong):
        stack.say(f"gate-wrong-{n}", text)
        stack.say(f"gate-wrong-{n}", text[:-1] + "呀")  # said again right after: the first one is flagged

    await _login(page, stack)
    await page.goto(stack.console_url + "/admin/review")
    await page.get_by_role("button", name="收集").click()
    await expect(page.get_by_role("status")).to_contain_text("组新的待审核消息")
    pending = {i.text: i for i in review.items(factory, review.PENDING, limit=500)}
    for text, intent in wrong.items():
        item = pending[text]
        review.decide(factory, item.id, "admin", version=item.version, action=review.ACCEPT, intent=intent,
                      reviewed_dir=stack.settings.reviewed_dir)

    outcome = await _retrain(page, stack)
    assert "对比未通过" in outcome and "macro-F1" in outcome, outcome
    candidate = models.versions(factory)[0]
    assert candidate.id != v1.id and candidate.gate_passed is False and candidate.gated_against == v1.id
    await page.goto(stack.console_url + "/admin/models")
    assert await page.locator(f"#version-{candidate.id}").get_by_role("button", name="上线").count() == 0
    with pytest.raises(InvalidState, match="没有通过对比"):
        models.deploy(factory, candidate.id, staff_key="admin")
    assert models.deployed(factory).model.id == v1.id
    assert {text: _intent(stack, text) for text in MISUNDERSTOOD} == before
