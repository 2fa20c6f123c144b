"""Helpers shared by tests: the demo community in a database, and rasa_sdk trackers."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import subprocess
import threading
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncContextManager, AsyncIterator, Awaitable, Callable, Dict, List, Optional

from rasa_sdk import Tracker
from sqlalchemy.orm import sessionmaker

if TYPE_CHECKING:
    from sanic import Sanic

from actions import deps
from bot.config import PROJECT_ROOT, Settings, rasa_env
from bot.services.community import load_community, read_community
from bot.store.db import make_engine, make_session_factory, unit_of_work

NOW = dt.datetime(2026, 11, 28, 12, 0, 0)  # 20:00 in Tianjin


def community_db(database_url: str, today: dt.date = NOW.date()) -> sessionmaker:
    """A session factory over `database_url` with the demo community loaded."""
    factory = make_session_factory(make_engine(database_url))
    with unit_of_work(factory) as session:
        load_community(session, read_community(PROJECT_ROOT / "data" / "community"), today)
    return factory


def use_deps(database_url: str, tmp_path: Any, now: dt.datetime = NOW) -> deps.Deps:
    """Point the actions at a fresh demo-community database and a fixed clock."""
    settings = Settings.from_env({"DATABASE_URL": database_url, "HG_VAR_DIR": str(tmp_path)})
    d = deps.Deps(settings=settings, sessions=community_db(database_url, now.date()), now=lambda: now)
    deps.use(d)
    return d


def tracker(text: str = "", intent: str = "inform", sender: str = "resident-1", slots: Optional[Dict[str, Any]] = None,
            active_loop: Optional[str] = None, events: Optional[List[Dict[str, Any]]] = None,
            entities: Optional[List[Dict[str, Any]]] = None,
            ranking: Optional[List[Dict[str, Any]]] = None) -> Tracker:
    """A rasa_sdk tracker whose latest message is `text` classified as `intent`."""
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": entities or [],
              "intent_ranking": ranking or [{"name": intent, "confidence": 0.9}]}
    all_events = list(events or [])
    if active_loop:
        all_events.append({"event": "active_loop", "name": active_loop})
    all_events.append({"event": "user", "text": text, "parse_data": latest})
    return Tracker(sender, dict(slots or {}), latest, all_events, False, None,
                   {"name": active_loop} if active_loop else {}, "action_listen")


REPORTS = PROJECT_ROOT / "reports"


def quiet_env(**extra: str) -> Dict[str, str]:
    """Environment for Rasa subprocesses: less TensorFlow noise."""
    return rasa_env(**extra)


def run_rasa(args: List[str], timeout: int = 900, cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess:
    """Run Rasa's CLI with ARGS as the servers run it (bot/rasa_boot.py's corrections first: a model loads
    without Rasa's training step) and return the finished process (output captured)."""
    from bot.runner import rasa_command

    return subprocess.run(rasa_command(*args), cwd=cwd, env=quiet_env(), capture_output=True, text=True,
                          timeout=timeout)


@asynccontextmanager
async def serving(app: "Sanic") -> AsyncIterator[int]:
    """Serve a Sanic app on a free 127.0.0.1 port for the length of the block; yields the port."""
    from sanic import Sanic

    Sanic.test_mode = True  # lets one process start several Sanic apps (Sanic patches its protocol class)
    sock = free_socket()
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield sock.getsockname()[1]
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


def free_socket() -> socket.socket:
    """A listening, non-blocking socket on a free 127.0.0.1 port (for serving a Sanic app in a test)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(100)
    sock.setblocking(False)
    return sock


def undo_rasa_boot_after_test(monkeypatch: Any) -> None:
    """Let a test call `bot.rasa_boot.install()`: everything it replaces is put back when the test ends."""
    import rasa.core.agent
    import rasa.core.run
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.utils.tensorflow.models import RasaModel

    from bot import rasa_boot

    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    monkeypatch.setattr(RemoteAction, "__init__", RemoteAction.__init__)
    monkeypatch.setattr(rasa.core.run, "close_resources", rasa.core.run.close_resources)
    monkeypatch.setattr(RasaModel, "load", RasaModel.__dict__["load"])
    monkeypatch.setattr(rasa.core.agent, "_update_model_from_server", rasa.core.agent._update_model_from_server)
    monkeypatch.setattr(RemoteAction, "run", RemoteAction.run)
    monkeypatch.setattr(MessageProcessor, "_run_action", MessageProcessor._run_action)
    for name in ("_rasa_validate_action_result", "_rasa_remote_action_init", "_rasa_close_resources",
                 "_rasa_model_load", "_rasa_update_model", "_rasa_remote_action_run", "_rasa_run_action"):
        monkeypatch.setattr(rasa_boot, name, None)


class InThread:
    """An async context manager entered on an event loop of its own thread, for synchronous tests (hypothesis,
    schemathesis) that talk to a server it serves: `value` is what the block yields, `run` runs a coroutine there."""

    def __init__(self, make: Callable[[], AsyncContextManager[Any]], timeout: float = 60) -> None:
        self.loop = asyncio.new_event_loop()
        self._entered: "Future[Any]" = Future()
        self._timeout = timeout
        self._stop: Optional[asyncio.Event] = None
        self._thread = threading.Thread(target=self.loop.run_until_complete, args=(self._hold(make),), daemon=True)
        self._thread.start()
        self.value = self._entered.result(timeout=timeout)

    async def _hold(self, make: Callable[[], AsyncContextManager[Any]]) -> None:
        self._stop = asyncio.Event()
        try:
            async with make() as value:
                self._entered.set_result(value)
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - handed to the test that waits for the block
            if not self._entered.done():
                self._entered.set_exception(exc)
            raise

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run `coro` on the block's loop and wait for its result."""
        async def wrapped() -> Any:
            return await coro
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=self._timeout)

    def close(self) -> None:
        """Leave the block and end the thread."""
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=self._timeout)


def wait_for(probe: Callable[[], Any], timeout: float = 15.0, interval: float = 0.2) -> Any:
    """Ask `probe` until it answers something true or `timeout` seconds pass; returns its last answer."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    return probe()
