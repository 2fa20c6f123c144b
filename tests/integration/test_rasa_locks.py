"""The SQLite lock store across real processes: FIFO per conversation, one turn at a time, no holder blocks for ever."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import sqlite3
import statistics
import time
from pathlib import Path
from typing import List, Tuple

import pytest
from rasa.core.lock_store import LockError
from rasa.core.utils import number_of_sanic_workers
from rasa.utils.endpoints import EndpointConfig

from bot.config import Settings
from bot.rasa_locks import SQLiteLockStore, process_alive
from bot.runner import endpoints_file

FORK = multiprocessing.get_context("fork")  # as Sanic starts its workers
SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter that reads TICKET_LOCK_LIFETIME itself


def _store(path: Path) -> SQLiteLockStore:
    return SQLiteLockStore(EndpointConfig(type="bot.rasa_locks.SQLiteLockStore", path=str(path)))


def _queue_then_record(path: str, name: str, queued: "multiprocessing.Queue", log: str) -> None:
    """Take a ticket, say so, wait for the turn and append `name` to `log` while holding it."""
    store = _store(Path(path))
    issue = store.issue_ticket

    def issue_and_tell(conversation_id: str, *args: float) -> int:
        number = issue(conversation_id, *args)
        queued.put((name, number))
        return number

    store.issue_ticket = issue_and_tell  # type: ignore[method-assign]

    async def turn() -> None:
        async with store.lock("resident-1"):
            with open(log, "a", encoding="utf-8") as out:
                out.write(name + "\n")
            await asyncio.sleep(0.01)

    asyncio.run(turn())


def test_tickets_are_served_in_the_order_they_were_issued_across_processes(tmp_path: Path) -> None:
    state, log = tmp_path / "state.db", tmp_path / "order.log"
    holder = _store(state)
    ticket = holder.issue_ticket("resident-1")  # everyone queues behind this one
    queued = FORK.Queue()
    procs = []
    issued: List[Tuple[str, int]] = []
    for i in range(6):
        proc = FORK.Process(target=_queue_then_record, args=(str(state), f"p{i}", queued, str(log)))
        proc.start()
        procs.append(proc)
        issued.append(queued.get(timeout=30))  # the next process starts only once this one holds a ticket
    assert not log.exists(), "a process got the lock while another ticket was being served"
    holder.cleanup("resident-1", ticket)
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert [n for _name, n in issued] == list(range(ticket + 1, ticket + 7))
    assert log.read_text(encoding="utf-8").split() == [name for name, _n in issued]
    assert holder.get_lock("resident-1") is None, "the last turn leaves no lock behind"


def _count_turns(path: str, counter: str, intervals: str, turns: int) -> None:
    """`turns` unprotected read-modify-writes of a counter file, each inside the conversation's lock."""
    store = _store(Path(path))

    async def run() -> None:
        for _ in range(turns):
            async with store.lock("resident-2"):
                start = time.time()
                value = int(Path(counter).read_text())
                await asyncio.sleep(0.005)  # a lost update shows if another turn runs meanwhile
                Path(counter).write_text(str(value + 1))
                end = time.time()
            with open(intervals, "a", encoding="utf-8") as out:
                out.write(json.dumps([start, end]) + "\n")

    asyncio.run(run())


def test_one_turn_at_a_time_per_conversation_across_processes_with_no_second_long_wait(tmp_path: Path) -> None:
    counter, intervals = tmp_path / "counter", tmp_path / "intervals.jsonl"
    counter.write_text("0")
    procs = [FORK.Process(target=_count_turns, args=(str(tmp_path / "state.db"), str(counter), str(intervals), 15))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert counter.read_text() == "45", "two turns of one conversation overlapped and lost an update"
    spans = sorted(json.loads(line) for line in intervals.read_text().splitlines())
    assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:])), "turns overlapped"
    gaps = [nxt[0] - prev[1] for prev, nxt in zip(spans, spans[1:])]
    # Rasa's own poll (1 s) would put most gaps near a second; ours polls every 10 ms.
    assert statistics.median(gaps) < 0.1, f"a queued turn waited too long: median gap {statistics.median(gaps):.3f} s"


def _hold_for_ever(path: str, held: "multiprocessing.Event") -> None:
    store = _store(Path(path))

    async def run() -> None:
        async with store.lock("resident-3"):
            held.set()
            await asyncio.sleep(3600)

    asyncio.run(run())


def test_a_turn_killed_mid_way_releases_its_conversation_at_once(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    held = FORK.Event()
    proc = FORK.Process(target=_hold_for_ever, args=(str(state), held))
    proc.start()
    try:
        assert held.wait(30)
        store = _store(state)
        os.kill(proc.pid, signal.SIGKILL)
        time.sleep(0.2)  # dead but not reaped yet: a zombie, as a Sanic worker is until its parent waits
        assert not process_alive(proc.pid)

        async def next_turn() -> float:
            start = time.monotonic()
            async with store.lock("resident-3"):
                return time.monotonic() - start

        assert asyncio.run(next_turn()) < 1.0, "the next turn waited for the dead holder's lifetime"
    finally:
        proc.kill()
        proc.join(10)


def _queue_and_die(path: str) -> None:
    _store(Path(path)).issue_ticket("resident-6")  # queued, then the process ends without serving it


def test_a_ticket_queued_by_a_process_that_died_is_skipped_when_its_turn_comes(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    store = _store(state)
    first = store.issue_ticket("resident-6")
    proc = FORK.Process(target=_queue_and_die, args=(str(state),))
    proc.start()
    proc.join(30)
    assert [t.number for t in store.get_lock("resident-6").tickets] == [first, first + 1]

    async def next_turn() -> float:
        async def release_first() -> None:
            await asyncio.sleep(0.1)
            store.cleanup("resident-6", first)

        start = time.monotonic()
        releasing = asyncio.create_task(release_first())
        async with store.lock("resident-6") as held:
            assert held.now_serving == first + 2
            waited = time.monotonic() - start
        await releasing
        return waited

    assert asyncio.run(next_turn()) < 1.0, "the dead process's ticket blocked the queue"
    assert store.get_lock("resident-6") is None


def _hold_alive(path: str, held: "multiprocessing.Event") -> None:
    store = _store(Path(path))

    async def run() -> None:
        async with store.lock("resident-4"):  # default lifetime: TICKET_LOCK_LIFETIME, read by this interpreter
            held.set()
            await asyncio.sleep(3600)

    asyncio.run(run())


def test_a_stuck_holder_loses_the_lock_after_ticket_lock_lifetime(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    state = tmp_path / "state.db"
    monkeypatch.setenv("TICKET_LOCK_LIFETIME", "2")
    held = SPAWN.Event()
    proc = SPAWN.Process(target=_hold_alive, args=(str(state), held))
    proc.start()
    try:
        assert held.wait(60)
        store = _store(state)

        async def next_turn() -> float:
            start = time.monotonic()
            async with store.lock("resident-4"):
                return time.monotonic() - start

        waited = asyncio.run(next_turn())
        assert proc.is_alive(), "the holder must still run: only its ticket's lifetime may release the lock"
        assert 0.3 < waited < 2.5, f"waited {waited:.2f} s for a 2 s ticket taken just before"
    finally:
        proc.kill()
        proc.join(10)


def test_a_ticket_that_expired_while_queued_is_refused_as_rasa_does(tmp_path: Path) -> None:
    store = _store(tmp_path / "state.db")
    first = store.issue_ticket("resident-5", 30)

    async def late() -> None:
        async with store.lock("resident-5", lock_lifetime=0.05):
            pass

    async def scenario() -> None:
        task = asyncio.create_task(late())
        await asyncio.sleep(0.2)
        store.cleanup("resident-5", first)
        await task

    with pytest.raises(LockError):
        asyncio.run(scenario())


def test_rasa_accepts_several_workers_with_the_embedded_endpoints_and_a_wal_tracker(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    settings = Settings.from_env({"HG_VAR_DIR": str(tmp_path), "HG_RASA_WORKERS": "2"}, env_file=tmp_path / ".env")
    config = yaml.safe_load(endpoints_file(settings).read_text(encoding="utf-8"))["lock_store"]
    assert config == {"type": "bot.rasa_locks.SQLiteLockStore", "path": str(tmp_path / "local_state.db")}
    endpoint = EndpointConfig(**config)
    monkeypatch.setenv("SANIC_WORKERS", str(settings.rasa_workers))
    assert number_of_sanic_workers(endpoint) == 2
    from rasa.core.lock_store import LockStore

    assert isinstance(LockStore.create(endpoint), SQLiteLockStore)
    with sqlite3.connect(tmp_path / "tracker.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal", "workers would queue on SQLite's busy lock"
