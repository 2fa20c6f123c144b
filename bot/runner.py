"""`make run`: start the action server, the Rasa server, the dispatcher and the staff console; Ctrl-C stops all.

Without WECHAT_TOKEN (environment or .env) the WeChat channel runs on the demo account (bot/wechat/demo.py,
safe mode) against a local fake WeChat API on FAKE_WECHAT_PORT, and the web chat page is switched on.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Tuple

from bot.config import PROJECT_ROOT, Settings, rasa_env
from bot.wechat.accounts import load_accounts

if TYPE_CHECKING:
    from bot.production import Replicas

FAKE_WECOM_PORT = 5099
FAKE_WECHAT_PORT = 5098


def demo_wechat_env() -> Dict[str, str]:
    """The environment that runs the WeChat channel on the demo account, the local fake API and the web chat page."""
    from bot.wechat.demo import demo_env

    return {**demo_env(f"http://127.0.0.1:{FAKE_WECHAT_PORT}"), "HG_WEBCHAT": "1"}


def fake_wechat_command(port: int, appid: Optional[str] = None, secret: Optional[str] = None) -> List[str]:
    """The command that serves the fake WeChat API on `port` for the account `appid` (the demo account's by
    default)."""
    from bot.wechat.demo import DEMO_APPID, DEMO_SECRET

    return [sys.executable, "-m", "bot.devtools.fake_wechat", "--port", str(port), "--appid", appid or DEMO_APPID,
            "--secret", secret or DEMO_SECRET]


def console_command(port: int) -> List[str]:
    """The command that serves the staff console on `port`."""
    return [sys.executable, "-m", "bot", "console", "--port", str(port)]


def console_banner(settings: Settings) -> str:
    """The start-up lines about the staff console: its address and the accounts still on the demo password."""
    from bot.console.texts import role_label
    from bot.services.accounts import demo_accounts
    from bot.services.community import read_community
    from bot.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        demo = demo_accounts(make_session_factory(engine))
    finally:
        engine.dispose()
    lines = [f"  工作台 / staff console:  {settings.console_base_url}/"]
    if demo:
        console = read_community(settings.community_dir).get("console") or {}
        password = console.get("demo_password") if isinstance(console, dict) else None
        lines.append(f"    演示账号 / demo accounts (密码 / password: {password}):")
        lines += [f"      {s.key:<12} {s.name}  {role_label(s.role)} ({s.role})" for s in demo]
        lines.append("    设置正式密码 / set a real password:  .venv/bin/python -m bot staff password KEY")
    return "\n".join(lines) + "\n"


def rasa_command(*args: str) -> List[str]:
    """The command that runs Rasa's CLI with `args`, our corrections of Rasa installed first (bot/rasa_boot.py)."""
    return [sys.executable, "-m", "bot.rasa_boot", *args]


def webchat_url(settings: Settings) -> str:
    """Where the web chat page is served."""
    return f"{settings.rasa_url}/webhooks/wechat/chat"


def tracker_env(settings: Settings) -> Dict[str, str]:
    """Environment variables that endpoints.yml reads for the tracker store and action server."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        db_file = Path(url[len("sqlite:///"):])
        tracker_url = f"sqlite:///{db_file.with_name('tracker.db')}"
        dialect, db = "sqlite", str(db_file.with_name("tracker.db"))
    else:
        tracker_url, dialect, db = url, url.split(":", 1)[0].split("+", 1)[0], url.rsplit("/", 1)[-1].split("?")[0]
    return {"HG_ACTION_ENDPOINT_URL": settings.action_endpoint_url, "HG_TRACKER_URL": tracker_url,
            "HG_TRACKER_DIALECT": dialect, "HG_TRACKER_DB": db}


MODEL_PULL_S = 2  # how often every Rasa worker asks the console which model to serve


def model_server_env(settings: Settings) -> Dict[str, str]:
    """Where every Rasa worker asks for the deployed model (the console, bot/console/models.py): this machine's
    console unless HG_MODEL_SERVER_URL names another (Rasa on a machine of its own)."""
    return {"HG_MODEL_SERVER_URL": settings.extra.get("HG_MODEL_SERVER_URL")
            or f"http://127.0.0.1:{settings.console_port}/models/deployed"}


# Rasa's model-server protocol: each worker asks every MODEL_PULL_S seconds, with the Rasa token.
_MODELS = ("\nmodels:\n  url: ${HG_MODEL_SERVER_URL}\n  token: ${HG_RASA_TOKEN}\n"
           f"  wait_time_between_pulls: {MODEL_PULL_S}\n")


def endpoints_file(settings: Settings) -> Path:
    """A copy of endpoints.yml with the model server (the console) and a lock store that lets several Rasa
    workers share conversations: Redis when REDIS_URL is set, else the machine's state file (bot/rasa_locks.py)."""
    base = PROJECT_ROOT / "endpoints.yml"
    target = settings.var_dir / "endpoints.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    _sqlite_tracker_in_wal_mode(settings)
    if not settings.redis_url:
        target.write_text(base.read_text(encoding="utf-8") + _MODELS + (
            "\nlock_store:\n  type: bot.rasa_locks.SQLiteLockStore\n"
            f"  path: {json.dumps(str(settings.local_state_path))}\n"), encoding="utf-8")
        return target
    from urllib.parse import urlparse

    redis = urlparse(settings.redis_url)
    target.write_text(base.read_text(encoding="utf-8") + _MODELS + (
        "\nlock_store:\n  type: redis\n"
        f"  url: {redis.hostname or '127.0.0.1'}\n  port: {redis.port or 6379}\n"
        f"  db: {int((redis.path or '/0').strip('/') or 0)}\n"
        + (f"  password: {redis.password}\n" if redis.password else "")), encoding="utf-8")
    return target


def _sqlite_tracker_in_wal_mode(settings: Settings) -> None:
    """Put a SQLite tracker store in WAL mode (kept by the file): several Rasa workers then read conversations
    while another writes, instead of waiting in SQLite's busy handler."""
    url = tracker_env(settings)["HG_TRACKER_URL"]
    if not url.startswith("sqlite:///"):
        return
    import sqlite3

    path = Path(url[len("sqlite:///"):])
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=30)
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
    finally:
        conn.close()


def serve_trained_model(settings: Settings, model: Path, log: Callable[[str], None] = print) -> None:
    """Put the model trained from the repository's data in the registry; serve it if it was never deployed and no
    admin manages the models yet (bot/services/models.py `deploy`): an admin's deploy or rollback stands across
    restarts, and a model with reviewed labels goes through the gate."""
    from bot.errors import InvalidState
    from bot.services import models
    from bot.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        version = models.register(factory, model, actor=models.RUNNER)
        try:
            models.deploy(factory, version.id, runner=True, reason="按仓库里的训练数据训练的模型")
            log(f"model: serving v{version.id} ({version.file})")
        except InvalidState:
            current = models.deployed(factory)
            if current is not None and current.model.id != version.id:
                log(f"model: serving v{current.model.id} ({current.model.file}), deployed by {current.actor}; "
                    f"the model of the current data is v{version.id} (python -m bot model list)")
    finally:
        engine.dispose()


def wait_model_served(settings: Settings, timeout: float, procs: List[subprocess.Popen]) -> bool:
    """Wait until every Rasa worker serves the deployed model (it asks the console every MODEL_PULL_S s)."""
    from bot.services import models
    from bot.store.db import make_engine, make_session_factory

    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not any(p.poll() is not None for p in procs):
            current = models.deployed(factory)
            if current is not None and models.rollout(factory, current.model.sha256).done:
                return True
            time.sleep(0.5)
        return False
    finally:
        engine.dispose()


def workers_env(settings: Settings) -> Dict[str, str]:
    """The Rasa server's worker count (HG_RASA_WORKERS), which Rasa reads as SANIC_WORKERS."""
    return {"SANIC_WORKERS": str(settings.rasa_workers)}


def _wait_http(url: str, timeout: float, procs: List[subprocess.Popen]) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local health check
                if resp.status < 500:
                    return True
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return True  # it answers, even if not on this path
            time.sleep(0.5)
        except OSError:  # not listening yet
            time.sleep(0.5)
    return False


class Supervisor:
    """Starts child processes and stops them all together; restarts the ones started with `restart=True`."""

    def __init__(self) -> None:
        self.procs: Dict[str, subprocess.Popen] = {}
        self._specs: Dict[str, Tuple[List[str], Dict[str, str], Optional[Path]]] = {}
        self.restarts: Dict[str, int] = {}

    def start(self, name: str, cmd: List[str], env: Dict[str, str], log: Optional[Path] = None,
              restart: bool = False) -> None:
        """Start one child in its own process group; a `restart` child is started again when it ends (`revive`)."""
        out = open(log, "ab") if log else None  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                                            if out else None, start_new_session=True)
        if out is not None:
            out.close()  # the child holds its own copy
        if restart:
            self._specs[name] = (cmd, env, log)

    def revive(self) -> List[str]:
        """Start again every `restart` child that has ended; returns their names."""
        revived = []
        for name, (cmd, env, log) in self._specs.items():
            if self.procs[name].poll() is not None:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.start(name, cmd, env, log, restart=True)
                revived.append(name)
        return revived

    def stop(self) -> None:
        """SIGTERM every child, wait, then SIGKILL what is left."""
        self._specs.clear()
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    def wait(self, on_revive: Callable[[str], None] = lambda _name: None) -> str:
        """Block until a child that is not restarted exits; returns its name. Restarted children are revived."""
        while True:
            for name in self.revive():
                on_revive(name)
            for name, proc in self.procs.items():
                if name not in self._specs and proc.poll() is not None:
                    return name
            time.sleep(0.5)


def start_services(sup: Supervisor, settings: Settings, env: Dict[str, str], model: Path, token: str,
                   logs: Path, log: Callable[[str], None] = print, replicas: Optional["Replicas"] = None) -> bool:
    """Start the action server, the dispatcher, the console and Rasa, in that order, and wait until every Rasa
    worker serves the deployed model; False if a process ended or did not answer in time (see `logs`).

    The console comes before Rasa: every Rasa worker asks it for the deployed model. With `replicas`
    (production mode, bot/production.py) nginx listens on the Rasa and action ports in front of several of
    each, two dispatchers run (one leads), and a replica or dispatcher that ends is started again."""
    py = sys.executable
    many = replicas is not None
    action_ports = list(replicas.action_ports) if many else [settings.action_port]
    rasa_ports = list(replicas.rasa_ports) if many else [settings.rasa_port]
    if many:
        from bot.production import nginx_command

        sup.start("nginx", nginx_command(settings.var_dir / "nginx", settings.rasa_port, settings.action_port,
                                         replicas), env, logs / "nginx.out")
    for i, port in enumerate(action_ports, 1):
        name = f"actions-{i}" if many else "actions"
        sup.start(name, [py, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)], env,
                  logs / f"{name}.log", restart=many)
    for i in range(1, (replicas.dispatchers if many else 1) + 1):
        name = f"dispatcher-{i}" if many else "dispatcher"
        sup.start(name, [py, "-m", "bot", "dispatch"], env, logs / f"{name}.log", restart=many)
    sup.start("console", console_command(settings.console_port), env, logs / "console.log")
    serve_trained_model(settings, model, log)
    if not _wait_http(f"http://127.0.0.1:{settings.console_port}/health", 60, list(sup.procs.values())):
        return False
    for i, port in enumerate(rasa_ports, 1):
        name = f"rasa-{i}" if many else "rasa"
        sup.start(name, rasa_command("run", "--model", str(model), "--endpoints", str(endpoints_file(settings)),
                                     "--credentials", str(PROJECT_ROOT / "credentials.yml"), "--port", str(port),
                                     "--enable-api", f"--auth-token={token}"),
                  {**env, **workers_env(settings)}, logs / f"{name}.log", restart=many)
    procs = list(sup.procs.values())
    return (all(_wait_http(f"http://127.0.0.1:{port}/health", 120, procs) for port in action_ports)
            and all(_wait_http(f"http://127.0.0.1:{port}/", 300, procs) for port in rasa_ports)
            and wait_model_served(settings, 300, procs)
            and (not many or (_wait_http(f"http://127.0.0.1:{settings.action_port}/health", 30, procs)
                              and _wait_http(f"{settings.rasa_url}/", 30, procs))))


def run(settings: Settings, model: Path, replicas: Optional["Replicas"] = None) -> int:
    """Start everything, print how to talk to it, and wait for Ctrl-C (`replicas`: production mode)."""
    logs = settings.var_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = rasa_env(**tracker_env(settings), **model_server_env(settings))
    token = settings.rasa_token or secrets.token_urlsafe(16)
    (settings.var_dir / "rasa_token").write_text(token, encoding="utf-8")
    os.chmod(settings.var_dir / "rasa_token", 0o600)
    env["HG_RASA_TOKEN"] = token
    demo_wecom = "WECOM_WEBHOOK_URL" not in os.environ and "WECOM_WEBHOOK_URL" not in settings.extra
    # The demo account's token is public: never beside a community's real account, whose residents' OpenIDs it
    # could then speak as (bot/wechat/accounts.py).
    demo_wechat = not settings.wechat_token and not load_accounts(settings.wechat_accounts_file)
    sup = Supervisor()
    py = sys.executable

    def _stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit for both: a runner started in the background inherits an ignored SIGINT.
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if demo_wecom:
            env["WECOM_WEBHOOK_URL"] = f"http://127.0.0.1:{FAKE_WECOM_PORT}/cgi-bin/webhook/send"
            sup.start("fake-wecom", [py, "-m", "bot.devtools.fake_wecom", "--port", str(FAKE_WECOM_PORT),
                                     "--log", str(logs / "fake_wecom.jsonl")], env, logs / "fake_wecom.out")
        if demo_wechat:
            env.update(demo_wechat_env())
            sup.start("fake-wechat", fake_wechat_command(FAKE_WECHAT_PORT), env, logs / "fake_wechat.out")
        layout = (f"nginx :{settings.rasa_port} → Rasa " + ", ".join(f":{p}" for p in replicas.rasa_ports)
                  + f"; nginx :{settings.action_port} → action servers "
                  + ", ".join(f":{p}" for p in replicas.action_ports)
                  + f"; {replicas.dispatchers} dispatchers (one leads)" if replicas is not None else
                  f"action server :{settings.action_port}, Rasa :{settings.rasa_port}, dispatcher")
        print(f"starting: {layout}, console :{settings.console_port}"
              + (f", local fake WeCom :{FAKE_WECOM_PORT}" if demo_wecom else "")
              + (f", local fake WeChat API :{FAKE_WECHAT_PORT} (demo account)" if demo_wechat else "")
              + f" (logs in {logs})", flush=True)
        if not start_services(sup, settings, env, model, token, logs, replicas=replicas):
            print("failed to start; see the logs in " + str(logs), file=sys.stderr)
            return 1
        webchat_line = (f"  微信风格网页聊天 / WeChat-style web chat page:  {webchat_url(settings)}\n"
                        if demo_wechat else "")
        console_line = console_banner(settings)
        group_messages = logs / "fake_wecom.jsonl" if demo_wecom else settings.wecom_webhook_url
        example = json.dumps({"sender": "resident-1", "message": "洗衣机下水管堵了，阳台都是水"}, ensure_ascii=False)
        print(f"""
红管家已启动 / Hongguanjia is running.
  和助手对话 / talk to it (REST):
    curl -s {settings.rasa_url}/webhooks/rest/webhook -H 'Content-Type: application/json' \\
      -d '{example}'
  或者交互式 / or interactively:  .venv/bin/python -m bot chat --sender resident-1
{webchat_line}{console_line}  群消息 / group messages: {group_messages}
  转人工回复与交还 / answer and release a handoff:  {settings.console_base_url}/handoffs (值班人员 maguilan)
按 Ctrl-C 全部停止 / Ctrl-C stops everything.""", flush=True)
        ended = sup.wait(lambda name: print(f"{name} ended; started it again", file=sys.stderr, flush=True))
        print(f"{ended} exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        sup.stop()
