"""Production mode (`make run-prod`): PostgreSQL, Redis, several Rasa and action-server replicas behind nginx.

    residents ──► nginx :HG_RASA_PORT ──► Rasa replica 1 … N ──► nginx :HG_ACTION_PORT ──► action server 1 … M
                                             │   tracker store: PostgreSQL, lock store: Redis
    staff ──────► console :HG_CONSOLE_PORT ──┘   (every Rasa replica pulls the deployed model from the console)
    dispatcher (leader) + dispatcher (standing by) ──► WeCom robots, WeChat customer-service messages

Every part talks to the others over TCP by URL, so each can move to a machine of its own: PostgreSQL and Redis by
DATABASE_URL and REDIS_URL, the replicas by the upstream lists of nginx, the console by HG_MODEL_SERVER_URL and
HG_CONSOLE_BASE_URL. This module finds (or starts) the local PostgreSQL and Redis, writes nginx's configuration
and starts nginx in the foreground as one more supervised child; the processes themselves are the same as in
the embedded default (bot/runner.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Sequence
from urllib.parse import urlparse, urlunparse

from bot.config import PROJECT_ROOT, Settings

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/hongguanjia"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


class ProductionUnavailable(RuntimeError):
    """A part production mode needs is not there and could not be started; the message says what to do."""


@dataclass(frozen=True)
class Replicas:
    """Where the Rasa and action-server replicas listen; nginx listens on the public ports in front of them."""

    rasa_ports: Sequence[int]
    action_ports: Sequence[int]
    dispatchers: int = 2


def _postgres_up(url: str) -> bool:
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("select 1"))
        finally:
            engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable (yet)"
        return False


def _maintenance_url(url: str) -> str:
    parsed = urlparse(url)
    return urlunparse(parsed._replace(path="/postgres", query=""))


def ensure_postgres(url: str, create: bool = True, wait_s: float = 30.0) -> None:
    """Reach the PostgreSQL server of `url`, starting this machine's cluster when it is installed but stopped,
    and create the database of `url` when it does not exist yet (`create`)."""
    admin = _maintenance_url(url)
    if not _postgres_up(admin):
        host = urlparse(url).hostname or "localhost"
        clusters = sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
        if host not in ("127.0.0.1", "localhost", "::1") or not clusters or not shutil.which("pg_ctlcluster"):
            raise ProductionUnavailable(
                f"PostgreSQL is not reachable at {_safe(admin)} and is not installed on this machine to be started. "
                "Install it (Debian: apt-get install postgresql) or set DATABASE_URL to a running server.")
        for cluster in clusters:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster.parent.name, "main", "start"],
                           check=False, capture_output=True)
        deadline = time.monotonic() + wait_s
        while not _postgres_up(admin):
            if time.monotonic() > deadline:
                raise ProductionUnavailable(f"PostgreSQL was started but does not answer at {_safe(admin)}; see "
                                            "/var/log/postgresql/")
            time.sleep(0.5)
    if create:
        _create_database(url, admin)


def _create_database(url: str, admin: str) -> None:
    from sqlalchemy import create_engine, text

    name = urlparse(url).path.lstrip("/")
    if not name or name == "postgres":
        return
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(text('CREATE DATABASE "{}"'.format(name.replace('"', '""'))))
    finally:
        engine.dispose()


def drop_database(url: str) -> None:
    """Drop the database of `url` (closing the connections still open to it), if it exists."""
    from sqlalchemy import create_engine, text

    name = urlparse(url).path.lstrip("/")
    engine = create_engine(_maintenance_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                         {"n": name})
            conn.execute(text('DROP DATABASE IF EXISTS "{}"'.format(name.replace('"', '""'))))
    finally:
        engine.dispose()


def ensure_redis(url: str, wait_s: float = 5.0) -> None:
    """Reach the Redis server of `url`, starting this machine's redis-server when it is installed but stopped."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        try:
            client.ping()
            return
        except redis.exceptions.ConnectionError:
            pass
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
        if host not in ("127.0.0.1", "localhost", "::1") or not shutil.which("redis-server"):
            raise ProductionUnavailable(
                f"Redis is not reachable at {host}:{port} and is not installed on this machine to be started. "
                "Install it (Debian: apt-get install redis-server) or set REDIS_URL to a running server.")
        # The machine's own way of starting it: keeps nothing on disk (the lock store and the caches are
        # short-lived by design; see README, production mode).
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(port),
                        "--save", "", "--appendonly", "no"], check=False, capture_output=True)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise ProductionUnavailable(f"redis-server was started but does not answer on {host}:{port}")
                time.sleep(0.2)
    finally:
        client.close()


def nginx_binary() -> str:
    """Debian's nginx, installed with apt-get (scripts/ensure_nginx.sh) when missing and this is root."""
    for candidate in (shutil.which("nginx"), *NGINX_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return candidate
    result = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "ensure_nginx.sh")], capture_output=True,
                            text=True)
    for candidate in NGINX_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise ProductionUnavailable("nginx is not installed: " + (result.stderr.strip() or "apt-get install nginx"))


def _upstream(name: str, ports: Sequence[int]) -> str:
    # A replica that refuses connections is left out for 5 s; the request goes to the next one.
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
    return f"  upstream {name} {{\n{servers}  }}\n"


def _proxy_server(listen: int, upstream: str, tries: int, read_timeout_s: int) -> str:
    return f"""  server {{
    listen 127.0.0.1:{listen};
    client_max_body_size 2m;
    client_body_buffer_size 2m;
    location / {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_connect_timeout 2s;
      proxy_read_timeout {read_timeout_s}s;
      # a replica that is down (refused, reset before the request was sent, or 502/503) is skipped; a request
      # that reached a replica is never sent twice (nginx does not repeat a POST that was sent)
      proxy_next_upstream error timeout http_502 http_503;
      proxy_next_upstream_tries {tries};
    }}
  }}
"""


def nginx_config(prefix: Path, rasa_port: int, action_port: int, replicas: Replicas) -> str:
    """nginx's configuration: the Rasa replicas behind `rasa_port`, the action servers behind `action_port`."""
    temp = prefix / "temp"
    # Started as root, nginx would run its workers as `nobody`, who may not enter the project's folders.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return f"""# Written by bot/production.py for `make run-prod`; regenerated at every start.
{user}worker_processes 1;
pid {prefix / 'nginx.pid'};
error_log {prefix / 'error.log'} warn;
events {{
  worker_connections 1024;
}}
http {{
  log_format replicas '$remote_addr [$time_local] "$request" $status upstream=$upstream_addr '
                      '$upstream_response_time';
  access_log {prefix / 'access.log'} replicas;
  client_body_temp_path {temp / 'body'};
  proxy_temp_path {temp / 'proxy'};
  fastcgi_temp_path {temp / 'fastcgi'};
  uwsgi_temp_path {temp / 'uwsgi'};
  scgi_temp_path {temp / 'scgi'};
{_upstream('rasa_replicas', replicas.rasa_ports)}{_upstream('action_servers', replicas.action_ports)}\
{_proxy_server(rasa_port, 'rasa_replicas', len(replicas.rasa_ports), 60)}\
{_proxy_server(action_port, 'action_servers', len(replicas.action_ports), 30)}}}
"""


def nginx_command(prefix: Path, rasa_port: int, action_port: int, replicas: Replicas) -> List[str]:
    """Write nginx's configuration under `prefix` and return the command that runs it in the foreground."""
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "temp" / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, rasa_port, action_port, replicas), encoding="utf-8")
    binary = nginx_binary()
    check = subprocess.run([binary, "-t", "-q", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise ProductionUnavailable(f"nginx refused its configuration {conf}: {check.stderr.strip()}")
    return [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]


def _safe(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        parsed = parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@"))
    return urlunparse(parsed)


def production_env(env: Mapping[str, str]) -> Dict[str, str]:
    """The environment of production mode: `env` with PostgreSQL and Redis where it names none, and one Sanic
    worker per Rasa replica unless HG_RASA_WORKERS says otherwise (replicas, not workers, are what nginx sees)."""
    merged = dict(env)
    merged.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    merged.setdefault("REDIS_URL", DEFAULT_REDIS_URL)
    merged.setdefault("HG_RASA_WORKERS", "1")
    return merged


def _ports(env: Mapping[str, str], name: str, count_name: str, first: int) -> List[int]:
    listed = [p.strip() for p in (env.get(name) or "").split(",") if p.strip()]
    if listed:
        try:
            return [int(p) for p in listed]
        except ValueError:
            raise ProductionUnavailable(f"{name} must list port numbers, like 5015,5016: {env.get(name)!r}") from None
    count = int(env.get(count_name) or 2)
    if count < 1:
        raise ProductionUnavailable(f"{count_name} must be at least 1")
    return [first + i for i in range(count)]


def replicas_for(settings: Settings) -> Replicas:
    """The replicas of production mode: HG_RASA_REPLICAS (2) Rasa servers from port HG_RASA_PORT + 10 and
    HG_ACTION_REPLICAS (2) action servers from HG_ACTION_PORT + 10, or the ports HG_RASA_REPLICA_PORTS and
    HG_ACTION_REPLICA_PORTS list (comma-separated)."""
    env = settings.extra
    return Replicas(rasa_ports=_ports(env, "HG_RASA_REPLICA_PORTS", "HG_RASA_REPLICAS", settings.rasa_port + 10),
                    action_ports=_ports(env, "HG_ACTION_REPLICA_PORTS", "HG_ACTION_REPLICAS",
                                        settings.action_port + 10),
                    dispatchers=int(env.get("HG_DISPATCHERS") or 2))


def prepare(settings: Settings) -> None:
    """Make sure PostgreSQL (with the database) and Redis answer before anything starts; a clear error if not."""
    if not settings.database_url.startswith("postgresql"):
        raise ProductionUnavailable(f"production mode keeps tickets and conversations in PostgreSQL; DATABASE_URL "
                                    f"is {_safe(settings.database_url)}")
    if not settings.redis_url:
        raise ProductionUnavailable("production mode needs Redis (REDIS_URL)")
    ensure_postgres(settings.database_url)
    ensure_redis(settings.redis_url)
