"""Transcript export: residents' messages read from Rasa's own SQL tracker store, flagged where the assistant went
wrong, near-duplicates grouped, and no personal data in what comes out (file or CLI)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.config import PROJECT_ROOT
from bot.services import transcripts
from bot.store.db import unit_of_work
from bot.store.models import Resident
from tests.helpers import community_db

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
START = dt.datetime(2026, 12, 1, 2, 0)  # 10:00 in Tianjin


class Conversation:
    """Events of one resident, a few seconds apart, as the Rasa server stores them."""

    def __init__(self, sender: str, at: dt.datetime = START) -> None:
        self.sender, self.t, self.events = sender, at.replace(tzinfo=dt.timezone.utc).timestamp(), []  # type: ignore

    def _at(self, seconds: float = 5) -> float:
        self.t += seconds
        return self.t

    def says(self, text: str, intent: str, confidence: float = 0.95, after: float = 20) -> "Conversation":
        self.events.append(UserUttered(text, {"name": intent, "confidence": confidence}, timestamp=self._at(after)))
        return self

    def bot(self, *actions: str) -> "Conversation":
        for name in actions:
            if name.startswith("loop:"):
                self.events.append(ActiveLoop(name[5:] or None, timestamp=self._at(0.01)))
            else:
                self.events.append(ActionExecuted(name, timestamp=self._at(0.01)))
        self.events.append(ActionExecuted(ACTION_LISTEN_NAME, timestamp=self._at(0.01)))
        return self


def _store(conversations: List[Conversation], db: Path) -> str:
    store = SQLTrackerStore(domain=DOMAIN, dialect="sqlite", db=str(db))
    import asyncio

    async def save() -> None:
        for c in conversations:
            events: List[Event] = list(c.events)
            await store.save(DialogueStateTracker.from_events(c.sender, events, DOMAIN.slots))

    asyncio.run(save())
    store.engine.dispose()
    return f"sqlite:///{db}"


def _flags(messages: List[transcripts.Message]) -> List[Tuple[str, List[str]]]:
    return [(m.text, sorted(m.flags)) for m in messages]


@pytest.fixture
def factory(sqlite_url):
    return community_db(sqlite_url)


def test_each_sign_of_a_misunderstanding_is_flagged_on_the_message_it_concerns(tmp_path) -> None:
    conversations = [
        Conversation("wx:a")
        .says("你好", "greet").bot("utter_greet")
        .says("楼道里的感应灯不亮了好几天", "nlu_fallback", 0.31).bot("action_fallback")
        .says("楼道感应灯坏了好几天了", "request_repair", 0.88, after=30).bot("utter_repair_ack", "repair_form",
                                                                      "loop:repair_form"),
        Conversation("wx:b")
        .says("我家厨房漏水了", "report_leak").bot("utter_leak_safety", "leak_form", "loop:leak_form")
        .says("吉利花园", "inform").bot("leak_form")
        .says("算了不报了", "deny", 0.4).bot("loop:", "action_reset_form"),
        Conversation("wx:c")
        .says("有义诊吗", "ask_clinic", 0.99).bot("action_list_clinics")
        .says("不对，我问的是疫苗", "deny", 0.6).bot("utter_anything_else")
        .says("转人工", "human_handoff").bot("action_handoff"),
        Conversation("wx:d")
        .says("我家漏水", "report_leak").bot("utter_leak_safety", "leak_form", "loop:leak_form")
        .says("吉利花园3号楼2单元501", "inform").bot("leak_form")
        .says("13812345678", "inform").bot("leak_form", "loop:", "action_submit_ticket"),
    ]
    url = _store(conversations, tmp_path / "tracker.db")
    messages = transcripts.read_messages(url, START - dt.timedelta(hours=1), START + dt.timedelta(hours=2))
    flags = dict(_flags(messages))
    assert flags["你好"] == []
    assert flags["楼道里的感应灯不亮了好几天"] == ["fallback", "rephrased"]
    # The repair form is still open, untouched for longer than IDLE when the window ends: it was left.
    assert flags["楼道感应灯坏了好几天了"] == ["abandoned_form"]
    assert flags["吉利花园"] == []
    assert flags["算了不报了"] == ["abandoned_form", "low_confidence"]
    assert flags["不对，我问的是疫苗"] == ["objection"]
    assert flags["转人工"] == ["handoff"]
    assert flags["13812345678"] == [] and flags["吉利花园3号楼2单元501"] == []
    first = next(m for m in messages if m.text == "楼道里的感应灯不亮了好几天")
    assert first.intent == "nlu_fallback" and first.confidence == pytest.approx(0.31)
    assert first.answered_by == ["action_fallback"]
    # Only what was stored in the window is read.
    assert transcripts.read_messages(url, START + dt.timedelta(hours=1)) == []


def test_near_duplicates_form_one_group_worst_first_with_the_models_suggestion(tmp_path, factory) -> None:
    conversations = [Conversation(f"wx:{n}", START + dt.timedelta(minutes=10 * n))
                     .says(text, "nlu_fallback", 0.2).bot("action_fallback")
                     for n, text in enumerate(["电梯又停了，困在里面了", "电梯又停了，困在里面了！", "电梯又停了 困在里面了"])]
    conversations.append(Conversation("wx:x").says("几点下班", "faq", 0.4).bot("utter_faq"))
    conversations.append(Conversation("wx:y").says("谢谢", "thank").bot("utter_you_are_welcome"))
    url = _store(conversations, tmp_path / "tracker.db")
    report = transcripts.export(url, factory, START - dt.timedelta(hours=1))
    assert report["messages"] == 5 and report["flagged"] == 4
    assert report["flags"]["fallback"] == 3 and report["flags"]["low_confidence"] == 1
    first, second = report["groups"]
    assert first["count"] == 3 and first["senders"] == 3 and first["suggestion"] == "nlu_fallback"
    assert first["flags"] == {"fallback": 3} and len(first["examples"]) == 3
    assert second["text"] == "几点下班" and second["suggestion"] == "faq" and second["confidence"] == 0.4
    everything = transcripts.export(url, factory, START - dt.timedelta(hours=1), only_flagged=False)
    assert sum(g["count"] for g in everything["groups"]) == 5


FULL_OF_PERSONAL_DATA = [
    "我叫陈国强，电话13920001234，身份证120101198003151234，家里漏水了",
    "联系人刘桂兰 022-23456789，车牌津B7K2Q9挡住消防通道",
    "王阿姨家没人，找一下网格长王建国",
    "我是何晓雨的邻居，手机号 139 2000 5678",
]


def test_an_export_holds_no_personal_data(tmp_path, factory, monkeypatch) -> None:
    with unit_of_work(factory) as s:
        s.add(Resident(sender_id="wx:p0", name="陈国强"))
    conversations = [Conversation(f"wx:p{n}", START + dt.timedelta(minutes=n)).says(t, "nlu_fallback", 0.1)
                     .bot("action_fallback") for n, t in enumerate(FULL_OF_PERSONAL_DATA)]
    url = _store(conversations, tmp_path / "tracker.db")
    out = json.dumps(transcripts.export(url, factory, START - dt.timedelta(hours=1)), ensure_ascii=False)
    for secret in ("陈国强", "13920001234", "120101198003151234", "刘桂兰", "23456789", "津B7K2Q9", "王建国", "何晓雨",
                   "5678", "王阿姨", "wx:p"):
        assert secret not in out, secret
    assert "漏水" in out and "消防通道" in out and "网格长" in out


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="漏水电梯灯坏了吗楼道义诊几点", min_size=1, max_size=12), min_size=1, max_size=12))
def test_grouping_keeps_every_message_once(texts: List[str]) -> None:
    messages = [transcripts.Message(f"s{i}", START + dt.timedelta(seconds=i), t, "inform", 0.2, flags=["fallback"])
                for i, t in enumerate(texts)]
    groups = transcripts.group(messages, transcripts.Masker())
    assert sum(g.count for g in groups) == len(texts)
    assert [g.score for g in groups] == sorted((g.score for g in groups), reverse=True)


def test_the_cli_writes_the_export_and_says_what_it_found(tmp_path, sqlite_url) -> None:
    db_file = Path(sqlite_url[len("sqlite:///"):])
    community_db(sqlite_url)
    _store([Conversation("wx:z", dt.datetime.utcnow() - dt.timedelta(minutes=5))
            .says("我叫陈国强，电梯坏了", "nlu_fallback", 0.2).bot("action_fallback")],
           db_file.with_name("tracker.db"))
    out = tmp_path / "export.json"
    env = {**os.environ, "DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path)}
    today = dt.date.today().isoformat()
    result = subprocess.run([sys.executable, "-m", "bot", "transcripts", "export", "--since", today, "--out",
                             str(out)], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 条居民消息" in result.stdout and "没听懂 1" in result.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["groups"][0]["text"] == "我叫[姓名]，电梯坏了"
    bad = subprocess.run([sys.executable, "-m", "bot", "transcripts", "export", "--since", "12/01"],
                         cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a date" in bad.stderr
