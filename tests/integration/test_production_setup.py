"""Production mode's set-up (bot/production.py): defaults, replica ports, nginx's configuration, clear messages."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.config import Settings
from bot.production import (
    DEFAULT_DATABASE_URL,
    DEFAULT_REDIS_URL,
    ProductionUnavailable,
    Replicas,
    ensure_postgres,
    ensure_redis,
    nginx_binary,
    nginx_command,
    prepare,
    production_env,
    replicas_for,
)
from tests.conftest import PG_ADMIN_URL


def test_production_mode_defaults_to_the_local_postgresql_and_redis_but_keeps_what_is_configured() -> None:
    env = production_env({})
    assert (env["DATABASE_URL"], env["REDIS_URL"], env["HG_RASA_WORKERS"]) == \
        (DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, "1")
    mine = production_env({"DATABASE_URL": "postgresql://hg@db.internal/hg", "HG_RASA_WORKERS": "2"})
    assert (mine["DATABASE_URL"], mine["HG_RASA_WORKERS"]) == ("postgresql://hg@db.internal/hg", "2")


def test_replica_ports_follow_the_public_ports_or_the_lists_given(tmp_path: Path) -> None:
    base = {"HG_RASA_PORT": "6005", "HG_ACTION_PORT": "6055"}
    default = replicas_for(Settings.from_env(base, env_file=tmp_path / "none"))
    assert (list(default.rasa_ports), list(default.action_ports), default.dispatchers) == \
        ([6015, 6016], [6065, 6066], 2)
    three = replicas_for(Settings.from_env({**base, "HG_RASA_REPLICAS": "3", "HG_ACTION_REPLICA_PORTS": "7001, 7002"},
                                           env_file=tmp_path / "none"))
    assert (list(three.rasa_ports), list(three.action_ports)) == ([6015, 6016, 6017], [7001, 7002])
    with pytest.raises(ProductionUnavailable, match="port numbers"):
        replicas_for(Settings.from_env({"HG_RASA_REPLICA_PORTS": "5015,abc"}, env_file=tmp_path / "none"))
    with pytest.raises(ProductionUnavailable, match="at least 1"):
        replicas_for(Settings.from_env({"HG_ACTION_REPLICAS": "0"}, env_file=tmp_path / "none"))


def test_nginx_accepts_the_configuration_written_for_the_replicas(tmp_path: Path) -> None:
    cmd = nginx_command(tmp_path / "nginx", 6005, 6055, Replicas(rasa_ports=[6015, 6016], action_ports=[6065]))
    assert cmd[:1] == [nginx_binary()] and cmd[-2:] == ["-g", "daemon off;"]
    conf = (tmp_path / "nginx" / "nginx.conf").read_text()
    assert "listen 127.0.0.1:6005;" in conf and "server 127.0.0.1:6016 max_fails=1" in conf
    assert "proxy_next_upstream_tries 2;" in conf and "proxy_next_upstream_tries 1;" in conf
    check = subprocess.run([cmd[0], "-t", "-p", cmd[2], "-c", cmd[4]], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_prepare_refuses_sqlite_and_a_missing_redis_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ProductionUnavailable, match="PostgreSQL"):
        prepare(Settings.from_env({"DATABASE_URL": "sqlite:///x.db", "REDIS_URL": DEFAULT_REDIS_URL},
                                  env_file=tmp_path / "none"))
    with pytest.raises(ProductionUnavailable, match="REDIS_URL"):
        prepare(Settings.from_env({"DATABASE_URL": DEFAULT_DATABASE_URL, "REDIS_URL": ""},
                                  env_file=tmp_path / "none"))


def test_an_unreachable_server_on_another_machine_is_named_not_started() -> None:
    with pytest.raises(ProductionUnavailable, match="not reachable at postgresql://hg:\\*\\*\\*@192.0.2.1"):
        ensure_postgres("postgresql://hg:secret@192.0.2.1:5432/hg?connect_timeout=1", wait_s=1)
    with pytest.raises(ProductionUnavailable, match="Redis is not reachable at 192.0.2.1:6379"):
        ensure_redis("redis://192.0.2.1:6379/0", wait_s=1)


def test_the_database_is_created_when_it_does_not_exist_yet() -> None:
    name = f"hg_prod_setup_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        ensure_postgres(url)
        ensure_postgres(url)  # a second start finds it
        with admin.connect() as conn:
            assert conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar() == 1
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
