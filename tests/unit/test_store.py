"""The schema migrates on SQLite and PostgreSQL and enforces its unique keys."""

import pytest
from sqlalchemy.exc import IntegrityError

from bot.store.db import unit_of_work
from bot.store.models import ChatGroup, Ticket


def test_migrated_schema_accepts_a_ticket(session_factory) -> None:
    with unit_of_work(session_factory) as s:
        s.add(Ticket(number="HG-20261128-0001", kind="leak", sender_id="u1", description="漏水"))
    with unit_of_work(session_factory) as s:
        assert s.query(Ticket).one().status == "open"


def test_ticket_numbers_are_unique(session_factory) -> None:
    with unit_of_work(session_factory) as s:
        s.add(Ticket(number="HG-20261128-0001", kind="leak", sender_id="u1", description="a"))
    with pytest.raises(IntegrityError):
        with unit_of_work(session_factory) as s:
            s.add(Ticket(number="HG-20261128-0001", kind="repair", sender_id="u2", description="b"))


def test_failed_unit_of_work_writes_nothing(session_factory) -> None:
    with pytest.raises(RuntimeError):
        with unit_of_work(session_factory) as s:
            s.add(ChatGroup(key="g", name="群", kind="office"))
            s.flush()
            raise RuntimeError("boom")
    with unit_of_work(session_factory) as s:
        assert s.query(ChatGroup).count() == 0


def test_the_migrations_build_the_schema_the_models_describe(database_url) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.store.db import make_engine
    from bot.store.models import Base

    engine = make_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    # Server defaults and index spellings may differ by dialect; tables, columns and constraints may not.
    serious = [d for d in diff if not (isinstance(d, tuple) and d[0] in ("add_index", "remove_index"))]
    assert serious == [], serious


def test_a_migrated_sqlite_file_is_in_wal_mode_from_the_start(tmp_path) -> None:
    import sqlite3

    from bot.store.db import migrate

    migrate(f"sqlite:///{tmp_path / 'hg.db'}")
    with sqlite3.connect(tmp_path / "hg.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_first_connection_switches_to_wal_while_another_process_writes(tmp_path) -> None:
    """SQLite refuses the switch to WAL at once ("database is locked", no busy wait) while another connection
    writes: the engine's first connection waits for it instead of failing the caller's query."""
    import sqlite3
    import threading

    from bot.store.db import make_engine

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # a rollback-journal file, as older migrations left it
        raw.execute("CREATE TABLE t (x INTEGER)")
    writer = sqlite3.connect(path, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, writer.commit).start()
    engine = make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    finally:
        engine.dispose()
        writer.close()
