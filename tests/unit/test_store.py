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
