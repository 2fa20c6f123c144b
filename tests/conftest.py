"""Shared fixtures: real databases (SQLite and PostgreSQL) migrated to the newest schema."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from bot.store.db import make_engine, make_session_factory, migrate
from bot.training import ensure_model

# Playwright fixtures (browser, phone_page, desktop_page) for every browser test; see tests/browser.py.
pytest_plugins = ["tests.browser"]

PG_ADMIN_URL = os.environ.get("HG_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable yet"
        return False


def ensure_postgres() -> None:
    """Find the local PostgreSQL server, starting it when it is installed but stopped."""
    if _postgres_reachable():
        return
    versions = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    for version in versions:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version.name, "main", "start"],
            check=False, capture_output=True,
        )
    if not _postgres_reachable():
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL} and could not be started")


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, and drop it afterwards."""
    ensure_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    with fresh_postgres_database("hg_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: SQLite in a temp folder, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hg.db'}"
        migrate(url)
        yield url
        return
    base_url = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base_url}?options=-csearch_path%3D{schema}"
    migrate(url)
    try:
        yield url
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated, empty SQLite database in a temp folder."""
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    migrate(url)
    return url


@pytest.fixture
def session_factory(database_url: str) -> Iterator[sessionmaker]:
    """A session factory over the parametrised database (SQLite and PostgreSQL)."""
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """Path of the model for the current training data, training it (once) when needed."""
    return ensure_model(quiet=True)


REDIS_TEST_URL = os.environ.get("HG_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def ensure_redis(url: str) -> None:
    """Find the local Redis server at `url`, starting it when it is installed but not running."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        for attempt in range(21):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if attempt == 0:
                    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379",
                                    "--save", "", "--appendonly", "no"], check=False, capture_output=True)
                time.sleep(0.25)
        pytest.fail(f"Redis is not reachable at {url} and could not be started")
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (database 13, flushed), started when it is installed but not running."""
    import redis

    ensure_redis(REDIS_TEST_URL)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    client.close()
    return REDIS_TEST_URL
