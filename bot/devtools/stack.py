"""Starts the real stack (fake WeCom, action server, Rasa, dispatcher, console) on free ports for tests and the bench.

With `webchat=True` it also starts what `make run` starts without WECHAT_TOKEN: a fake WeChat API, the WeChat
channel on the demo account (safe mode) and the web chat page.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import yaml

from bot.config import PROJECT_ROOT, Settings, rasa_env

if TYPE_CHECKING:
    from bot.production import Replicas
from bot.runner import (
    Supervisor,
    _wait_http,
    fake_wechat_command,
    model_server_env,
    start_services,
    tracker_env,
    webchat_url,
)
from bot.services.community import load_community, read_communities
from bot.store.db import make_engine, make_session_factory, migrate, unit_of_work
from bot.wechat.accounts import Account


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Stack:
    """A running stack and how to reach it."""

    settings: Settings
    supervisor: Supervisor
    wecom_log: Path
    token: str
    wechat_api_base: Optional[str] = None  # the fake WeChat API, when started with webchat=True
    replicas: Optional["Replicas"] = None  # production mode's layout, when started with replicas=True
    # Communities with an Official Account of their own (started with own_accounts), by community key; each
    # account's API is a fake of its own at `api_base`.
    accounts: Dict[str, Account] = field(default_factory=dict)

    @property
    def webchat_url(self) -> str:
        """The web chat page (serves only when started with webchat=True)."""
        return webchat_url(self.settings)

    @property
    def console_url(self) -> str:
        """The staff console's base URL (no trailing slash)."""
        return self.settings.console_base_url

    @property
    def rest_url(self) -> str:
        """The REST channel's webhook."""
        return f"{self.settings.rasa_url}/webhooks/rest/webhook"

    def say(self, sender: str, text: str, timeout: float = 30) -> List[Dict[str, Any]]:
        """Send one message over REST as a REST client called `sender` and return the bot's replies.

        The database knows this conversation as `rest_sender(sender)` (`rest:<sender>`, bot/identity.py).
        """
        body = json.dumps({"sender": sender, "message": text}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.settings.rest_token:
            headers["Authorization"] = f"Bearer {self.settings.rest_token}"
        req = urllib.request.Request(self.rest_url, data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local server
            return json.loads(resp.read().decode("utf-8"))

    def wecom_messages(self) -> List[Dict[str, Any]]:
        """Everything the fake WeCom robot accepted so far."""
        if not self.wecom_log.is_file():
            return []
        return [json.loads(line) for line in self.wecom_log.read_text(encoding="utf-8").splitlines() if line]

    def healthy(self) -> bool:
        """True while every process runs and Rasa answers."""
        if any(p.poll() is not None for p in self.supervisor.procs.values()):
            return False
        try:
            with urllib.request.urlopen(f"{self.settings.rasa_url}/", timeout=5) as resp:  # noqa: S310
                return resp.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop every process."""
        self.supervisor.stop()


def start_stack(model: Path, workdir: Path, database_url: Optional[str] = None, today=None,
                redis_url: Optional[str] = None, webchat: bool = False,
                before_spawn: Optional[Callable[[Settings], None]] = None, replicas: bool = False,
                extra_env: Optional[Dict[str, str]] = None, communities: Optional[Path] = None,
                own_accounts: Sequence[str] = ()) -> Stack:
    """Migrate a fresh database, load the demo community and start every process; waits until ready.

    `webchat`: also run the fake WeChat API and put the WeChat channel on the demo account with the web chat page.
    `replicas`: production mode's layout (bot/production.py): nginx in front of two Rasa replicas (one worker
    each) and two action servers, two dispatchers; `Stack.replicas` says where they listen.
    `extra_env`: more settings for every process.
    `communities`: a folder of community files loaded instead of the demo community's (data/community).
    `own_accounts`: community keys (of `communities`) that get an Official Account of their own, with fresh
    credentials and a fake WeChat API each, in an accounts file (HG_WECHAT_ACCOUNTS); needs `webchat`. REST then
    needs a token (a real account is configured), which `Stack.say` sends.
    `before_spawn`: called with the stack's settings just before the first process starts (the bench times
    start-up from there).
    """
    import datetime as dt

    workdir.mkdir(parents=True, exist_ok=True)
    db_url = database_url or f"sqlite:///{workdir / 'hg.db'}"
    migrate(db_url)
    engine = make_engine(db_url)
    with unit_of_work(make_session_factory(engine)) as session:
        for data in read_communities(communities or PROJECT_ROOT / "data" / "community"):
            load_community(session, data, today or dt.date.today())
    engine.dispose()
    ports = {"HG_RASA_PORT": free_port(), "HG_ACTION_PORT": free_port(), "HG_CONSOLE_PORT": free_port()}
    wecom_port = free_port()
    token = secrets.token_urlsafe(12)
    env = rasa_env(DATABASE_URL=db_url, HG_VAR_DIR=str(workdir), HG_DISPATCH_INTERVAL="0.2",
               HG_REVIEWED_DIR=str(workdir / "reviewed"),
               WECOM_WEBHOOK_URL=f"http://127.0.0.1:{wecom_port}/cgi-bin/webhook/send", HG_RASA_TOKEN=token,
               HG_CONSOLE_BASE_URL=f"http://127.0.0.1:{ports['HG_CONSOLE_PORT']}",
               **{k: str(v) for k, v in ports.items()})
    if redis_url:
        env["REDIS_URL"] = redis_url
    layout = None
    if replicas:
        from bot.production import Replicas

        layout = Replicas(rasa_ports=[free_port(), free_port()], action_ports=[free_port(), free_port()])
        env["HG_RASA_WORKERS"] = "1"
    env.update(extra_env or {})
    wechat_port = free_port() if webchat else None
    wechat_api_base = f"http://127.0.0.1:{wechat_port}" if wechat_port else None
    if wechat_api_base:
        from bot.wechat.demo import demo_env

        env.update(demo_env(wechat_api_base), HG_WEBCHAT="1")
    if own_accounts and not wechat_api_base:
        raise ValueError("own_accounts needs webchat=True (the WeChat channel)")
    accounts = {key: _fresh_account(key, f"http://127.0.0.1:{free_port()}") for key in own_accounts}
    if accounts:
        env.update(HG_WECHAT_ACCOUNTS=str(_write_accounts(workdir / "wechat_accounts.yml", accounts)),
                   HG_REST_TOKEN=secrets.token_urlsafe(16))
    settings = Settings.from_env(env)
    env.update(tracker_env(settings), **model_server_env(settings))
    sup = Supervisor()
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    py = sys.executable
    wecom_log = logs / "wecom.jsonl"
    if before_spawn is not None:
        before_spawn(settings)
    sup.start("fake-wecom", [py, "-m", "bot.devtools.fake_wecom", "--port", str(wecom_port), "--log",
                             str(wecom_log)], env, logs / "fake_wecom.out")
    if wechat_port:
        sup.start("fake-wechat", fake_wechat_command(wechat_port), env, logs / "fake_wechat.out")
    for key, account in accounts.items():
        sup.start(f"fake-wechat-{key}", fake_wechat_command(_port(account), account.appid, account.secret), env,
                  logs / f"fake_wechat_{key}.out")
    ok = (start_services(sup, settings, env, model, token, logs, log=lambda _m: None, replicas=layout)
          and _wait_http(f"http://127.0.0.1:{wecom_port}/", 30, list(sup.procs.values()))
          and (not wechat_api_base or _wait_http(f"{wechat_api_base}/", 30, list(sup.procs.values())))
          and all(_wait_http(f"{a.api_base}/", 30, list(sup.procs.values())) for a in accounts.values()))
    if not ok:
        sup.stop()
        tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs.glob("*") if p.is_file())
        raise RuntimeError(f"stack did not start\n{tails}")
    # Rasa answers / before the model is fully warm; one round trip makes the first test's timing honest.
    stack = Stack(settings=settings, supervisor=sup, wecom_log=wecom_log, token=token,
                  wechat_api_base=wechat_api_base, replicas=layout, accounts=accounts)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            stack.say("warm-up", "你好")
            break
        except OSError:
            time.sleep(1)
    return stack


def _fresh_account(community: str, api_base: str) -> Account:
    """An Official Account for `community` with credentials made up for this run (a 43-character AES key)."""
    import base64

    return Account(community=community, token=secrets.token_hex(12), appid=f"wx{secrets.token_hex(8)}",
                   secret=secrets.token_hex(16),
                   aes_key=base64.b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("="),
                   api_base=api_base)


def _port(account: Account) -> int:
    return int(str(account.api_base).rsplit(":", 1)[1])


def _write_accounts(path: Path, accounts: Dict[str, Account]) -> Path:
    """The accounts file (bot/wechat/accounts.py) for `accounts`."""
    entries = {key: {"token": a.token, "appid": a.appid, "secret": a.secret, "aes_key": a.aes_key,
                     "api_base": a.api_base} for key, a in accounts.items()}
    path.write_text(yaml.safe_dump(entries, sort_keys=True), encoding="utf-8")
    path.chmod(0o600)
    return path
