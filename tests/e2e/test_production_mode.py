"""Production mode: tickets and conversations in PostgreSQL, Redis as Rasa's lock store."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import redis
from sqlalchemy import text

from bot.devtools.stack import Stack, start_stack
from bot.identity import rest_sender
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import Ticket
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_postgres_database("hg_e2e") as url:
        yield url


@pytest.fixture(scope="module")
def prod_stack(trained_model: Path, pg_database: str, redis_url: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(trained_model, tmp_path_factory.mktemp("prod"), database_url=pg_database,
                          redis_url=redis_url)
    yield running
    running.stop()


def test_leak_in_production_mode_is_stored_in_postgresql_with_a_redis_lock_store(
        prod_stack: Stack, pg_database: str, redis_url: str) -> None:
    prod_stack.say("prod-1", "楼上往下漏水，天花板都湿了")
    prod_stack.say("prod-1", "金穗园2号楼1单元1503")
    receipt = "".join(r.get("text", "") for r in prod_stack.say("prod-1", "13912345678"))
    assert "工单号：HG-" in receipt
    engine = make_engine(pg_database)
    with unit_of_work(make_session_factory(engine)) as s:
        ticket = s.query(Ticket).filter_by(sender_id=rest_sender("prod-1")).one()
        assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("金穗园", 2, 1, 1503)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = :sender"),
                              {"sender": rest_sender("prod-1")}).scalar()
    engine.dispose()
    assert stored > 5, "the conversation is not in the PostgreSQL tracker store"
    db = redis_url.rsplit("/", 1)[1]
    clients = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/0").client_list()
    assert any(c.get("db") == db for c in clients), "Rasa holds no connection to the Redis lock store"
