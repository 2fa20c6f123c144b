"""The machine's state file shared by real processes: one claim per WeChat push, one access token, one offer."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from bot.config import Settings
from bot.local_state import LocalState, _set_wal
from bot.wechat.dedupe import LocalDedupeStore, Outcome, wait_for_outcome
from bot.wechat.options import LocalOptionStore
from bot.wechat.render import Option
from bot.wechat.runtime import WeChatConfig, WeChatResources
from bot.wechat.token import AccessTokenManager, LocalTokenStore, shared_token_store

FORK = multiprocessing.get_context("fork")


def test_keys_expire_and_set_honours_nx_and_xx(tmp_path: Path) -> None:
    now = [1000.0]
    state = LocalState(tmp_path / "state.db", clock=lambda: now[0])
    assert not state.set("k", "a", 10, xx=True), "XX on an absent key"
    assert state.set("k", "a", 10, nx=True)
    assert not state.set("k", "b", 10, nx=True)
    assert state.set("k", "c", 10, xx=True) and state.get("k") == "c"
    assert not state.delete("k", expected="a") and state.get("k") == "c"
    now[0] += 10.5
    assert state.get("k") is None
    assert state.set("k", "d", 10, nx=True), "an expired key counts as absent"
    assert state.delete("k", expected="d") and state.get("k") is None


def _claim(path: str, start: "multiprocessing.Event", results: "multiprocessing.Queue") -> None:
    store = LocalDedupeStore(LocalState(path))
    start.wait(10)

    async def run() -> None:
        won = await store.claim("gh_account:msg-42")
        if won:
            await asyncio.sleep(0.1)
            await store.settle("gh_account:msg-42", Outcome("已收到"))
            results.put((os.getpid(), True, "已收到"))
            return
        outcome = await wait_for_outcome(store, "gh_account:msg-42", time.monotonic() + 5)
        results.put((os.getpid(), False, outcome.reply if outcome else None))

    asyncio.run(run())


def test_a_wechat_push_is_claimed_once_across_processes_and_the_others_get_its_outcome(tmp_path: Path) -> None:
    start, results = FORK.Event(), FORK.Queue()
    procs = [FORK.Process(target=_claim, args=(str(tmp_path / "state.db"), start, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    start.set()
    got: List[Tuple[int, bool, str]] = [results.get(timeout=30) for _ in procs]
    for proc in procs:
        proc.join(10)
    assert sum(won for _pid, won, _reply in got) == 1
    assert {reply for _pid, _won, reply in got} == {"已收到"}, "a retry did not get the first delivery's reply"


def _get_token(path: str, fetches: str, start: "multiprocessing.Event", results: "multiprocessing.Queue") -> None:
    async def fetch() -> Tuple[str, int]:
        with open(fetches, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()}\n")
        await asyncio.sleep(0.2)  # a slow WeChat API: the others must wait, not fetch their own
        return f"token-of-{os.getpid()}", 7200

    async def run() -> None:
        async with shared_token_store(None, 5.0, Path(path)) as store:
            assert isinstance(store, LocalTokenStore)
            start.wait(10)
            results.put(await AccessTokenManager(store, fetch).get())

    asyncio.run(run())


def test_processes_without_redis_share_one_access_token_fetched_once(tmp_path: Path) -> None:
    fetches = tmp_path / "fetches"
    start, results = FORK.Event(), FORK.Queue()
    procs = [FORK.Process(target=_get_token, args=(str(tmp_path / "state.db"), str(fetches), start, results))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    start.set()
    tokens = {results.get(timeout=30) for _ in procs}
    for proc in procs:
        proc.join(10)
    assert len(fetches.read_text().split()) == 1, "more than one process fetched a token"
    assert len(tokens) == 1


async def test_a_discarded_token_is_dropped_only_if_it_is_still_the_stored_one(tmp_path: Path) -> None:
    calls = []

    async def fetch() -> Tuple[str, int]:
        calls.append(1)
        return f"token-{len(calls)}", 7200

    store = LocalTokenStore(LocalState(tmp_path / "state.db"))
    manager = AccessTokenManager(store, fetch)
    assert await manager.get() == "token-1"
    await manager.invalidate("token-0")  # an older token: the current one stays
    assert await manager.get() == "token-1"
    await manager.invalidate("token-1")
    assert await manager.get() == "token-2"


def _offer(path: str) -> None:
    async def run() -> None:
        await LocalOptionStore(LocalState(path)).remember("o_resident", [Option("报修", "/report"),
                                                                          Option("查进度", "/status")])

    asyncio.run(run())


async def test_numbered_options_offered_by_one_process_are_recalled_by_another(tmp_path: Path) -> None:
    proc = FORK.Process(target=_offer, args=(str(tmp_path / "state.db"),))
    proc.start()
    proc.join(30)
    store = LocalOptionStore(LocalState(tmp_path / "state.db"))
    assert await store.recall("o_resident") == [Option("报修", "/report"), Option("查进度", "/status")]
    await store.remember("o_resident", [])
    assert await store.recall("o_resident") == []


async def test_the_channel_uses_the_state_file_without_redis(tmp_path: Path) -> None:
    settings = Settings.from_env({"HG_VAR_DIR": str(tmp_path), "WECHAT_TOKEN": "t"}, env_file=tmp_path / ".env")
    resources = await WeChatResources.open(WeChatConfig.from_settings(settings))
    try:
        assert isinstance(resources.dedupe, LocalDedupeStore)
        assert isinstance(resources.options, LocalOptionStore)
        assert await resources.dedupe.claim("k")
        assert not await LocalDedupeStore(LocalState(settings.local_state_path)).claim("k")
    finally:
        await resources.close()


class _LockedTwice:
    """A connection whose first two journal-mode switches fail the way a concurrent opener makes them fail."""

    def __init__(self, error: str = "database is locked") -> None:
        self.calls, self.error = 0, error

    def execute(self, sql: str):
        self.calls += 1
        if self.calls <= 2:
            raise sqlite3.OperationalError(self.error)
        return None


def test_switching_to_wal_retries_while_another_process_holds_the_file() -> None:
    conn = _LockedTwice()
    _set_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 3


def test_switching_to_wal_does_not_hide_other_errors() -> None:
    conn = _LockedTwice("disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _set_wal(conn)  # type: ignore[arg-type]
    assert conn.calls == 1
