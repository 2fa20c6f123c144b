"""bot/rasa_tracker.py: the same trackers as Rasa's SQL store, from one query a turn, across several workers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, List

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings, strategies as st
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from bot.config import PROJECT_ROOT
from bot.rasa_tracker import CachingSQLTrackerStore

DOMAIN = Domain.load(str(PROJECT_ROOT / "domain.yml"))
INTENTS = ["report_leak", "request_repair", "ask_clinic", "inform", "affirm", "deny", "greet"]
SLOTS = ["description", "address", "phone", "contact_name"]


def _store(cls: type, db: Path) -> Any:
    return cls(domain=DOMAIN, dialect="sqlite", db=str(db))


def _statements(store: Any) -> List[str]:
    """Every SQL statement the store runs from now on."""
    seen: List[str] = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_: seen.append(statement.split()[0].upper()))
    return seen


class Clock:
    """Strictly increasing event timestamps (Rasa orders sessions by them)."""

    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        self.t += 0.01
        return self.t


def _session_start(clock: Clock) -> List[Event]:
    return [ActionExecuted(ACTION_SESSION_START_NAME, timestamp=clock()), SessionStarted(timestamp=clock()),
            ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock())]


def _turn(clock: Clock, intent: str, text: str, slot: str, value: str) -> List[Event]:
    return [UserUttered(text, {"name": intent, "confidence": 0.9}, timestamp=clock()),
            ActionExecuted("utter_ask_address", timestamp=clock()), SlotSet(slot, value, timestamp=clock()),
            BotUttered(f"好的：{text}", timestamp=clock()), ActionExecuted(ACTION_LISTEN_NAME, timestamp=clock())]


async def _take_turn(store: Any, sender: str, events: List[Event]) -> None:
    """What Rasa does in a turn: retrieve (or create), add the turn's events, save."""
    tracker = await store.retrieve(sender)
    if tracker is None:
        tracker = DialogueStateTracker(sender, DOMAIN.slots)
    for event in events:
        tracker.update(event)
    await store.save(tracker)


def _same(ours: DialogueStateTracker, rasa: DialogueStateTracker) -> None:
    """Rasa's tracker of the latest session, event for event (ours may still hold the action_session_start
    that began it), with the same slots and latest message."""
    theirs = [e.as_dict() for e in rasa.events]
    mine = [e.as_dict() for e in ours.events]
    assert mine[len(mine) - len(theirs):] == theirs
    assert len(mine) - len(theirs) in (0, 1)
    assert ours.current_slot_values() == rasa.current_slot_values()
    assert ours.latest_message.as_dict() == rasa.latest_message.as_dict()


turns = st.lists(st.tuples(st.sampled_from(INTENTS), st.text("漏水楼号单元我家", min_size=1, max_size=8),
                           st.sampled_from(SLOTS), st.text("0123456789号楼", min_size=1, max_size=6),
                           st.integers(0, 2), st.booleans()), min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=turns)
async def test_every_turn_sees_what_rasas_store_would_load_whichever_worker_takes_it(
        tmp_path_factory: pytest.TempPathFactory, script: list) -> None:
    db = tmp_path_factory.mktemp("tracker") / "tracker.db"
    workers = [_store(CachingSQLTrackerStore, db), _store(CachingSQLTrackerStore, db)]
    rasa = _store(SQLTrackerStore, db)
    clock = Clock()
    sender = "o_resident"
    await _take_turn(workers[0], sender, _session_start(clock))
    for intent, text, slot, value, who, new_session in script:
        store = workers[who % 2]
        if new_session and who == 2:  # now and then the session expires and the next one begins
            await _take_turn(store, sender, _session_start(clock))
        await _take_turn(store, sender, _turn(clock, intent, text, slot, value))
        for worker in workers:
            _same(await worker.retrieve(sender), await rasa.retrieve(sender))


async def test_a_turn_costs_one_select_and_its_inserts_and_no_reload(tmp_path: Path) -> None:
    store = _store(CachingSQLTrackerStore, tmp_path / "tracker.db")
    clock = Clock()
    await _take_turn(store, "o_a", _session_start(clock))
    await _take_turn(store, "o_a", _turn(clock, "report_leak", "漏水", "description", "漏水"))
    reloads = store.reloads
    seen = _statements(store)
    for i in range(5):
        await _take_turn(store, "o_a", _turn(clock, "inform", f"{i}号楼", "address", f"{i}号楼"))
    assert store.reloads == reloads
    assert seen.count("SELECT") == 5  # one catch-up query per turn, no count before saving
    assert seen.count("INSERT") == 5 * 5


async def test_another_workers_turns_are_caught_up_on_not_reloaded(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    a, b = _store(CachingSQLTrackerStore, db), _store(CachingSQLTrackerStore, db)
    clock = Clock()
    await _take_turn(a, "o_a", _session_start(clock))
    await _take_turn(b, "o_a", _turn(clock, "report_leak", "漏水", "description", "卫生间漏水"))
    await _take_turn(a, "o_a", _turn(clock, "inform", "3号楼", "address", "吉利花园3号楼"))
    await _take_turn(b, "o_a", _turn(clock, "inform", "139", "phone", "13900000000"))
    assert (a.reloads, b.reloads) == (1, 1)  # each looked the conversation up once; after that both catch up
    assert a.catch_ups == 1 and b.catch_ups == 1
    tracker = await a.retrieve("o_a")
    assert tracker.get_slot("description") == "卫生间漏水" and tracker.get_slot("phone") == "13900000000"


async def test_a_turn_that_failed_before_saving_is_not_handed_out_again(tmp_path: Path) -> None:
    store = _store(CachingSQLTrackerStore, tmp_path / "tracker.db")
    clock = Clock()
    await _take_turn(store, "o_a", _session_start(clock))
    tracker = await store.retrieve("o_a")
    reloads = store.reloads
    tracker.update(SlotSet("address", "never stored"))  # the turn breaks here, nothing is saved
    again = await store.retrieve("o_a")
    assert again is not tracker and again.get_slot("address") is None
    assert store.reloads == reloads + 1


async def test_a_new_session_stored_elsewhere_is_loaded_alone(tmp_path: Path) -> None:
    db = tmp_path / "tracker.db"
    a, b = _store(CachingSQLTrackerStore, db), _store(CachingSQLTrackerStore, db)
    clock = Clock()
    await _take_turn(a, "o_a", _session_start(clock))
    await _take_turn(a, "o_a", _turn(clock, "report_leak", "漏水", "description", "漏水"))
    await b.retrieve("o_a")
    await _take_turn(a, "o_a", _session_start(clock))  # the session expired; the next one begins
    tracker = await b.retrieve("o_a")
    assert tracker.get_slot("description") is None
    assert sum(isinstance(e, SessionStarted) for e in tracker.events) == 1
    assert not any(isinstance(e, UserUttered) for e in tracker.events)


def test_the_endpoints_file_names_this_store_and_rasa_builds_it(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HG_ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    monkeypatch.setenv("HG_TRACKER_DIALECT", "sqlite")
    monkeypatch.setenv("HG_TRACKER_URL", "")
    monkeypatch.setenv("HG_TRACKER_DB", str(tmp_path / "tracker.db"))
    config = read_endpoint_config(str(PROJECT_ROOT / "endpoints.yml"), "tracker_store")
    store = TrackerStore.create(config, DOMAIN)
    inner: Iterator[Any] = (getattr(store, name, None) for name in ("_tracker_store", "tracker_store"))
    actual = next((s for s in inner if s is not None), store)
    while hasattr(actual, "_tracker_store"):
        actual = actual._tracker_store
    assert type(actual) is CachingSQLTrackerStore  # Rasa falls back to memory, silently, on a wrong path
