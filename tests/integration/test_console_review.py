"""The console's review page: an admin collects the flagged messages, labels one, and the label lands in the
reviewed data; refusals (duplicate, stale page, bad entity) come back on the page with the reason."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import AsyncIterator

import pytest
from sqlalchemy.orm import sessionmaker

from bot import nlu_data
from bot.config import Settings
from bot.services.community import load_community
from bot.store.db import unit_of_work
from tests.console_kit import DEMO_PASSWORD, ServedConsole, serve_console
from tests.helpers import community_db
from tests.integration.test_communities import LANXING
from tests.integration.test_transcripts import Conversation, _store


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                              "HG_REVIEWED_DIR": str(tmp_path / "reviewed"),
                              "HG_CONSOLE_SECRET": "test-console-secret-0123456789"})


@pytest.fixture
def factory(sqlite_url: str, clock) -> sessionmaker:
    f = community_db(sqlite_url)
    tracker_db = Path(sqlite_url[len("sqlite:///"):]).with_name("tracker.db")
    start = clock.now - dt.timedelta(days=1)
    _store([Conversation("wx:1", start).says("我叫陈国强，吉利花园的电梯又困人了", "nlu_fallback", 0.2)
            .bot("action_fallback"),
            Conversation("wx:2", start).says("有义诊吗", "ask_clinic", 0.99).bot("action_list_clinics")],
           tracker_db)
    return f


@pytest.fixture
async def console(settings: Settings, factory: sessionmaker, clock) -> AsyncIterator[ServedConsole]:
    async with serve_console(settings, factory, clock) as served:
        yield served


def _form_of(page: str) -> tuple:
    item = re.search(r'action="/admin/review/(\d+)"', page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert item and version, page
    return int(item.group(1)), version.group(1)


async def test_an_admin_collects_labels_and_the_label_reaches_the_reviewed_data(console, settings) -> None:
    admin = await console.signed_in("admin")
    csrf = await admin.csrf()
    empty = await admin.get("/admin/review")
    assert empty.status == 200 and "没有待审核的消息" in empty.text
    collected = await admin.post("/admin/review/collect", {"csrf_token": csrf, "days": "7"})
    assert collected.status == 303 and collected.location == "/admin/review?new=1"
    page = await admin.get(collected.location)
    assert "收集到 1 组" in page.text
    assert "我叫[姓名]，吉利花园的电梯又困人了" in page.text and "陈国强" not in page.text
    assert "有义诊吗" not in page.text  # understood well: nothing to review
    item, version = _form_of(page.text)

    bad = await admin.post(f"/admin/review/{item}", {"csrf_token": csrf, "version": version, "action": "accept",
                                                      "intent": "request_repair", "entity-0": "facility",
                                                      "entity-text-0": "水管"})
    assert bad.status == 400 and "原样出现的词" in bad.text
    accepted = await admin.post(f"/admin/review/{item}", {
        "csrf_token": csrf, "version": version, "action": "accept", "intent": "request_repair",
        "entity-0": "community", "entity-text-0": "吉利花园", "entity-1": "facility", "entity-text-1": "电梯"})
    assert accepted.status == 303 and accepted.location == "/admin/review?done=accepted"
    files = list(settings.reviewed_dir.glob("*.yml"))
    assert len(files) == 1
    assert nlu_data.examples(files[0]) == [("我叫张某，吉利花园的电梯又困人了", "request_repair")]
    assert "[吉利花园](community)" in files[0].read_text(encoding="utf-8")

    stale = await admin.post(f"/admin/review/{item}", {"csrf_token": csrf, "version": version, "action": "ignore"})
    assert stale.status == 409 and "其他管理员" in stale.text
    done = await admin.get("/admin/review?status=accepted")
    assert "我叫[姓名]，吉利花园的电梯又困人了" in done.text and "社区管理员" in done.text


async def test_a_duplicate_of_the_training_data_is_refused_on_the_page(console, factory, clock) -> None:
    from bot.store.db import unit_of_work
    from bot.store.models import ReviewItem

    text, intent = nlu_data.examples(Path("data/nlu").resolve())[0]
    with unit_of_work(factory) as s:
        s.add(ReviewItem(key="d" * 64, text=text, examples=[text], suggestion=intent, confidence=0.1, count=1,
                         flags={"fallback": 1}, source="test", status="pending", entities=[], version=1))
    admin = await console.signed_in("gaohong")
    csrf = await admin.csrf()
    page = await admin.get("/admin/review")
    item, version = _form_of(page.text)
    refused = await admin.post(f"/admin/review/{item}", {"csrf_token": csrf, "version": version,
                                                          "action": "accept", "intent": intent})
    assert refused.status == 400 and "data/nlu/" in refused.text and "不用再加" in refused.text


async def test_bad_collect_input_and_other_roles_are_refused(console) -> None:
    admin = await console.signed_in("admin")
    csrf = await admin.csrf()
    bad = await admin.post("/admin/review/collect", {"csrf_token": csrf, "days": "0"})
    assert bad.status == 400 and "1 到 90" in bad.text
    leader = await console.signed_in("wangjianguo")
    assert (await leader.get("/admin/review")).status == 403
    leader_csrf = await leader.csrf()
    assert (await leader.post("/admin/review/collect", {"csrf_token": leader_csrf, "days": "7"})).status == 403


async def test_another_communitys_admin_neither_sees_nor_decides_the_demo_communitys_messages(
        console, factory) -> None:
    with unit_of_work(factory) as session:
        load_community(session, {**LANXING, "console": {"demo_password": DEMO_PASSWORD}}, dt.date.today())
    admin = await console.signed_in("admin")
    await admin.post("/admin/review/collect", {"csrf_token": await admin.csrf(), "days": "7"})
    item, version = _form_of((await admin.get("/admin/review")).text)
    other = await console.signed_in("lx-admin")
    page = await other.get("/admin/review")
    assert page.status == 200 and "没有待审核的消息" in page.text and "电梯又困人了" not in page.text
    refused = await other.post(f"/admin/review/{item}", {"csrf_token": await other.csrf(), "version": version,
                                                          "action": "ignore"})
    assert refused.status == 404
    street = await console.signed_in("street")
    street_page = (await street.get("/admin/review")).text
    assert "电梯又困人了" in street_page
    assert "红星社区的居民" in street_page  # the street office sees whose residents wrote it
    assert "电梯又困人了" in (await admin.get("/admin/review")).text  # still pending, for its own admin
