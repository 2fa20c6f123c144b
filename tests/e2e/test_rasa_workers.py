"""Two Rasa workers serve one conversation consistently: one turn at a time, nothing lost, a WeChat retry runs once.

The stack (tests/e2e/conftest.py) runs Rasa with HG_RASA_WORKERS=2 (the default) and, without Redis, the SQLite
lock store of bot/rasa_locks.py. Which worker took a message shows in the lock store: each ticket carries the pid
of the worker that queued it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Set

import pytest

from bot.devtools.stack import Stack
from bot.identity import rest_sender
from bot.rasa_locks import KEY_PREFIX
from bot.wechat.crypto import MessageCrypto
from bot.wechat.demo import DEMO_ACCOUNT, DEMO_AES_KEY, DEMO_APPID, DEMO_TOKEN
from bot.wechat.simulator import WeChatServerSimulator

pytestmark = pytest.mark.slow

# Messages the assistant answers with a reply of its own and no form: greetings and thanks from the training data.
MESSAGES = ["你好", "您好", "在吗", "在不在啊", "喂，有人吗", "谢谢", "谢谢你", "多谢", "太感谢了", "非常感谢",
            "你好呀", "您好，在吗", "在的话回一下", "感谢感谢", "谢了", "辛苦了"]


def _worker_pids(stack: Stack) -> Set[int]:
    """The Rasa server's worker processes: the children of the process the stack started."""
    main = stack.supervisor.procs["rasa"].pid
    children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    return {int(pid) for pid in children}


def _wait_until_every_worker_serves(stack: Stack, workers: int, timeout: float = 300) -> None:
    """The stack is ready once one worker answers; the others may still be loading the model (each logs when up)."""
    log = stack.settings.var_dir / "logs" / "rasa.log"
    deadline = time.monotonic() + timeout
    while log.read_text(errors="replace").count("Rasa server is up and running.") < workers:
        assert time.monotonic() < deadline, f"not all {workers} Rasa workers came up within {timeout} s"
        time.sleep(0.5)


def _tracker(stack: Stack, sender_id: str) -> List[Dict[str, Any]]:
    url = f"{stack.settings.rasa_url}/conversations/{sender_id}/tracker?token={stack.token}"
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - local server
        return json.loads(resp.read().decode("utf-8"))["events"]


class _TicketWatcher:
    """Samples the lock store while a burst runs and remembers which processes held tickets for one conversation."""

    def __init__(self, path: Path, sender_id: str) -> None:
        self._path, self._key = path, KEY_PREFIX + sender_id
        self.owners: Set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "_TicketWatcher":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, timeout=5)
        try:
            while not self._stop.is_set():
                row = conn.execute("SELECT value FROM state WHERE key = ?", (self._key,)).fetchone()
                if row:
                    self.owners.update(json.loads(row[0])["owners"].values())
                time.sleep(0.005)
        finally:
            conn.close()


def _turns(events: List[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """The tracker cut into turns: each starts with a user event and runs up to the next one."""
    turns: List[List[Dict[str, Any]]] = []
    for event in events:
        if event["event"] == "user":
            turns.append([event])
        elif turns:
            turns[-1].append(event)
    return turns


def test_concurrent_messages_of_one_sender_across_two_workers_stay_one_turn_at_a_time(stack: Stack) -> None:
    workers = _worker_pids(stack)
    assert len(workers) == 2, f"the stack should run 2 Rasa workers, found {workers}"
    _wait_until_every_worker_serves(stack, len(workers))
    sender = "e2e-workers-burst"
    with _TicketWatcher(stack.settings.local_state_path, rest_sender(sender)) as watcher:
        with ThreadPoolExecutor(len(MESSAGES)) as pool:
            replies = dict(zip(MESSAGES, pool.map(lambda text: stack.say(sender, text, timeout=120), MESSAGES)))
    assert watcher.owners == workers, f"tickets were queued by {watcher.owners}, not by both workers {workers}"

    turns = _turns(_tracker(stack, rest_sender(sender)))
    assert sorted(turn[0]["text"] for turn in turns) == sorted(MESSAGES), "a message was lost or stored twice"
    for turn in turns:
        text = turn[0]["text"]
        bot_texts = [e.get("text") for e in turn if e["event"] == "bot"]
        assert bot_texts, f"no reply stored after {text!r}"
        assert bot_texts == [r.get("text") for r in replies[text]], \
            f"the turn stored after {text!r} is not the one its request was answered with (turns interleaved)"
        actions = [e["name"] for e in turn if e["event"] == "action"]
        assert actions and actions[-1] == "action_listen", f"the turn of {text!r} did not end before the next began"
        assert actions.count("action_listen") == 1, f"the turn of {text!r} holds another turn's actions"


def test_a_wechat_retry_landing_on_either_worker_runs_one_turn(stack: Stack) -> None:
    simulator = WeChatServerSimulator(DEMO_TOKEN, DEMO_ACCOUNT, MessageCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID))
    openid = "o_e2e_workers_retry"
    _wait_until_every_worker_serves(stack, 2)
    push = simulator.text_push(openid, "你好", msg_id="7311000000000000042")
    url = f"{stack.settings.rasa_url}/webhooks/wechat/webhook?" + urllib.parse.urlencode(push.query)

    def deliver(_copy: int) -> str:
        req = urllib.request.Request(url, data=push.body, headers={"Content-Type": "text/xml; charset=utf-8"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local server
            return resp.read().decode("utf-8")

    # Six copies at once (WeChat's three tries, twice over) on six connections, which the kernel spreads over
    # both workers: a claim kept per worker would run a turn in each.
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(deliver, range(6)))
    replies = {simulator.open_reply(answer, push) for answer in answers}
    # The same passive reply to every copy (or `success` to all of them, should the turn outrun the budget).
    assert len(replies) == 1, f"the copies were answered differently: {replies}"
    user_events = [e for e in _tracker(stack, openid) if e["event"] == "user"]
    assert [e["text"] for e in user_events] == ["你好"], "a retried push ran a second turn"
