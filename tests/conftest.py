"""Shared fixtures: real databases (SQLite and PostgreSQL) migrated to the newest schema."""

from __future__ import annotations

import os
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


def ensure_postgres() -> None:
    """Find the local PostgreSQL server, starting it when it is installed but stopped (bot/production.py)."""
    from bot.production import ProductionUnavailable, ensure_postgres as reach

    try:
        reach(PG_ADMIN_URL, create=False)
    except ProductionUnavailable as exc:
        pytest.fail(str(exc))


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """Create an empty PostgreSQL database, yield its URL, and drop it afterwards."""
    from bot.production import drop_database, ensure_postgres as reach

    ensure_postgres()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{prefix}_{uuid.uuid4().hex[:10]}"
    reach(url)  # creates it
    try:
        yield url
    finally:
        drop_database(url)  # a new connection: it works after a PostgreSQL restart too


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
    """Find the local Redis server at `url`, starting it when it is installed but not running (bot/production.py)."""
    from bot.production import ProductionUnavailable, ensure_redis as reach

    try:
        reach(url)
    except ProductionUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The local Redis (database 13, flushed), started when it is installed but not running."""
    import redis

    ensure_redis(REDIS_TEST_URL)
    client = redis.Redis.from_url(REDIS_TEST_URL)
    client.flushdb()
    client.close()
    return REDIS_TEST_URL
