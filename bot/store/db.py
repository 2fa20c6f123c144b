"""Engine and session factory, created on demand (never at import)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from bot.config import PROJECT_ROOT


def make_engine(database_url: str) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout.

    A file database keeps a pool of connections (SQLAlchemy 1.4 would open, set up and close one per session
    with SQLite: under 20 staff at once that was about 15 % of the console's CPU, bench-staff --profile console).
    """
    if database_url.startswith("sqlite:///"):
        path = Path(database_url[len("sqlite:///"):])
        pooled = {}
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            pooled = {"poolclass": QueuePool, "pool_size": 5, "max_overflow": 10}
        engine = create_engine(
            database_url, future=True, connect_args={"check_same_thread": False, "timeout": 30}, **pooled
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            _wal(cur)
            cur.close()

        return engine
    return create_engine(database_url, future=True, pool_pre_ping=True)


def _wal(cur: sqlite3.Cursor, attempts: int = 100) -> None:
    """Put the database file in WAL mode unless it is already. Switching needs the file to itself, and SQLite
    answers "database is locked" at once (no busy wait) when another connection is switching or writing at
    that moment, so a first connection of two processes at once tries again for a few seconds."""
    for attempt in range(attempts):
        try:
            if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def make_session_factory(engine: Engine) -> sessionmaker:
    """A session factory whose sessions keep loaded values after commit."""
    return sessionmaker(bind=engine, future=True, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    session: Session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database schema to `revision` (the newest by default)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(PROJECT_ROOT / "bot" / "store" / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "bot" / "store" / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if database_url.startswith("sqlite:///"):
        Path(database_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(cfg, revision)
    if database_url.startswith("sqlite:///") and database_url != "sqlite:///:memory:":
        engine = make_engine(database_url)  # WAL from the start, before several processes open the file at once
        try:
            engine.connect().close()
        finally:
            engine.dispose()
