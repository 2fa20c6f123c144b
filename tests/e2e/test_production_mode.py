"""Production mode (bot/production.py): PostgreSQL, Redis, two Rasa and two action-server replicas behind nginx,
two dispatchers of which one leads. Short versions of the fault scenarios: a replica or the dispatcher leader is
killed with SIGKILL in the middle of a conversation, and the residents' conversations and notifications go on.
Two communities, as make bench-load runs them: the demo one on the shared account and 蓝星社区 on its own.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
import redis
from sqlalchemy import text

from bot import messages
from bot.bench_load import write_district
from bot.devtools.stack import Stack, start_stack
from bot.identity import rest_sender
from bot.runner import _wait_http, wait_model_served
from bot.services import leases
from bot.store.db import make_engine, make_session_factory, unit_of_work
from bot.store.models import ChatGroup, Notification, Ticket
from bot.wechat.crypto import MessageCrypto
from bot.wechat.simulator import WeChatServerSimulator
from tests.conftest import fresh_postgres_database
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

LEASE_S = 3  # the dispatcher leader's lease here: a standby takes over at most this long after the leader died


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_postgres_database("hg_e2e") as url:
        yield url


@pytest.fixture(scope="module")
def prod_stack(trained_model: Path, pg_database: str, redis_url: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("prod")
    own = write_district(work / "communities", 2)  # 蓝星社区 (蓝湾花园) beside the demo community
    running = start_stack(trained_model, work, database_url=pg_database, redis_url=redis_url, replicas=True,
                          extra_env={"HG_DISPATCH_LEASE_SECONDS": str(LEASE_S)}, webchat=True,
                          communities=work / "communities", own_accounts=list(own))
    yield running
    running.stop()


def _file_leak(stack: Stack, sender: str, between: Callable[[], None] = lambda: None) -> str:
    """A resident reports a leak in three turns; `between` runs after the first. Returns the receipt."""
    first = "".join(r.get("text", "") for r in stack.say(sender, "楼上往下漏水，天花板都湿了"))
    assert "地址" in first or "小区" in first, first
    between()
    stack.say(sender, "金穗园2号楼1单元1503")
    return "".join(r.get("text", "") for r in stack.say(sender, "13912345678"))


def _tickets(database_url: str, sender: str) -> List[Ticket]:
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as s:
            found = s.query(Ticket).filter_by(sender_id=rest_sender(sender)).all()
            s.expunge_all()
            return found
    finally:
        engine.dispose()


def _kill(stack: Stack, name: str) -> int:
    pid = stack.supervisor.procs[name].pid
    os.killpg(pid, signal.SIGKILL)
    stack.supervisor.procs[name].wait(timeout=10)
    return pid


def test_leak_in_production_mode_is_stored_in_postgresql_with_a_redis_lock_store(
        prod_stack: Stack, pg_database: str, redis_url: str) -> None:
    assert "工单号：HG-" in _file_leak(prod_stack, "prod-1")
    (ticket,) = _tickets(pg_database, "prod-1")
    assert (ticket.community, ticket.building, ticket.unit, ticket.room) == ("金穗园", 2, 1, 1503)
    engine = make_engine(pg_database)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM events WHERE sender_id = :sender"),
                              {"sender": rest_sender("prod-1")}).scalar()
    engine.dispose()
    assert stored > 5, "the conversation is not in the PostgreSQL tracker store"
    db = redis_url.rsplit("/", 1)[1]
    clients = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/0").client_list()
    assert any(c.get("db") == db for c in clients), "Rasa holds no connection to the Redis lock store"


def test_a_resident_of_a_community_on_its_own_account_reports_in_that_community_through_nginx(
        prod_stack: Stack, pg_database: str) -> None:
    account = prod_stack.accounts["lanxing"]
    simulator = WeChatServerSimulator(account.token, "gh_lanxing",
                                      MessageCrypto(account.token, account.aes_key, account.appid))
    openid = "o_prod_lanxing_1"
    url = f"{prod_stack.settings.rasa_url}/webhooks/wechat/webhook/lanxing"

    def say(text: str) -> str:
        push = simulator.text_push(openid, text)
        req = urllib.request.Request(f"{url}?{urllib.parse.urlencode(push.query)}", data=push.body,
                                     headers={"Content-Type": "text/xml; charset=utf-8"})
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - local server
            reply = simulator.open_reply(resp.read().decode("utf-8"), push)
        assert reply is not None, f"{text!r} was not answered passively"
        return reply

    assert "地址" in say("楼上往下漏水，天花板都湿了")
    say("蓝湾花园2号楼1单元101")
    assert "工单号：HG-" in say("13912345678")
    engine = make_engine(pg_database)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            (ticket,) = session.query(Ticket).filter_by(sender_id=openid).all()
            assert (ticket.community_key, ticket.community, ticket.building) == ("lanxing", "蓝湾花园", 2)
            told = {g.community_key for g in session.query(ChatGroup).join(Notification, Notification.group_id
                                                                          == ChatGroup.id)
                    .filter(Notification.ticket_id == ticket.id)}
    finally:
        engine.dispose()
    assert told == {"lanxing"}, "a card of 蓝星社区's ticket went to another community's group"


def test_nginx_spreads_residents_over_both_rasa_replicas(prod_stack: Stack) -> None:
    replicas = prod_stack.replicas
    assert replicas is not None and prod_stack.supervisor.procs["nginx"].poll() is None
    for i in range(8):
        prod_stack.say(f"prod-spread-{i}", "你好")
    access = (prod_stack.settings.var_dir / "nginx" / "access.log").read_text()
    served = [len(re.findall(rf'"POST /webhooks/rest/webhook [^"]*" 200 upstream=127\.0\.0\.1:{port}\b', access))
              for port in replicas.rasa_ports]
    assert len(served) == 2 and all(n >= 2 for n in served), (served, access[-2000:])


def test_a_rasa_replica_killed_mid_conversation_the_conversation_goes_on_with_its_state(
        prod_stack: Stack, pg_database: str) -> None:
    killed: List[int] = []
    receipt = _file_leak(prod_stack, "prod-kill-rasa", between=lambda: killed.append(_kill(prod_stack, "rasa-1")))
    assert killed and "工单号：HG-" in receipt, receipt
    (ticket,) = _tickets(pg_database, "prod-kill-rasa")  # once, with the address given after the kill
    assert (ticket.community, ticket.building, ticket.room) == ("金穗园", 2, 1503)
    # the supervisor starts the replica again; it takes the deployed model and serves again
    assert prod_stack.supervisor.revive() == ["rasa-1"]
    procs = list(prod_stack.supervisor.procs.values())
    assert _wait_http(f"http://127.0.0.1:{prod_stack.replicas.rasa_ports[0]}/", 300, procs)
    assert wait_model_served(prod_stack.settings, 300, procs)
    assert "工单号：HG-" in _file_leak(prod_stack, "prod-after-revive")


def test_an_action_server_killed_mid_conversation_the_other_one_files_the_ticket(
        prod_stack: Stack, pg_database: str) -> None:
    receipt = _file_leak(prod_stack, "prod-kill-actions", between=lambda: _kill(prod_stack, "actions-1"))
    assert "工单号：HG-" in receipt, receipt
    assert len(_tickets(pg_database, "prod-kill-actions")) == 1
    assert prod_stack.supervisor.revive() == ["actions-1"]
    assert _wait_http(f"http://127.0.0.1:{prod_stack.replicas.action_ports[0]}/health", 60,
                      list(prod_stack.supervisor.procs.values()))


def test_with_the_action_servers_down_residents_are_told_busy_and_the_form_goes_on_when_they_are_back(
        prod_stack: Stack, pg_database: str) -> None:
    sender = "prod-actions-down"
    assert "地址" in "".join(r.get("text", "") for r in prod_stack.say(sender, "楼上往下漏水，天花板都湿了"))
    _kill(prod_stack, "actions-1")
    _kill(prod_stack, "actions-2")
    busy = prod_stack.say(sender, "金穗园2号楼1单元1503")
    assert [r.get("text") for r in busy] == [messages.SYSTEM_BUSY], busy
    tracker = _tracker(prod_stack, sender)
    assert tracker["active_loop"].get("name") == "leak_form" and tracker["slots"]["address"] is None
    assert tracker["latest_message"].get("text") != "金穗园2号楼1单元1503"  # the turn was undone
    assert _tickets(pg_database, sender) == []
    assert sorted(prod_stack.supervisor.revive()) == ["actions-1", "actions-2"]
    procs = list(prod_stack.supervisor.procs.values())
    assert _wait_http(f"http://127.0.0.1:{prod_stack.settings.action_port}/health", 60, procs)
    time.sleep(5)  # nginx tries a replica it saw fail again after fail_timeout (5 s)
    asked = "".join(r.get("text", "") for r in prod_stack.say(sender, "金穗园2号楼1单元1503"))
    assert "电话" in asked, asked
    receipt = "".join(r.get("text", "") for r in prod_stack.say(sender, "13912345678"))
    assert "工单号：HG-" in receipt, receipt
    (ticket,) = _tickets(pg_database, sender)
    assert (ticket.community, ticket.building, ticket.room) == ("金穗园", 2, 1503)


def _tracker(stack: Stack, sender: str) -> dict:
    import json
    import urllib.request

    url = f"{stack.settings.rasa_url}/conversations/{rest_sender(sender)}/tracker?token={stack.token}"
    with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - local server
        return json.loads(resp.read().decode("utf-8"))


def test_postgresql_and_redis_restarted_mid_conversation_the_conversation_goes_on_and_files_one_ticket(
        prod_stack: Stack, pg_database: str) -> None:
    sender = "prod-restarts"
    assert "地址" in "".join(r.get("text", "") for r in prod_stack.say(sender, "楼上往下漏水，天花板都湿了"))
    _restart_postgresql()
    asked = "".join(r.get("text", "") for r in prod_stack.say(sender, "金穗园2号楼1单元1503"))
    assert "电话" in asked, asked
    _restart_redis(prod_stack.settings.redis_url)  # the lock store and the caches start empty
    receipt = "".join(r.get("text", "") for r in prod_stack.say(sender, "13912345678"))
    assert "工单号：HG-" in receipt, receipt
    (ticket,) = _tickets(pg_database, sender)
    assert (ticket.community, ticket.building, ticket.room) == ("金穗园", 2, 1503)
    assert all(prod_stack.supervisor.procs[n].poll() is None for n in ("rasa-1", "rasa-2", "console", "nginx"))


def _restart_postgresql() -> None:
    import subprocess

    from bot.production import _postgres_up

    for version in sorted(p.name for p in Path("/etc/postgresql").iterdir()):
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                       capture_output=True, timeout=120)
    assert wait_for(lambda: _postgres_up("postgresql://postgres@127.0.0.1:5432/postgres"), 60)


def _restart_redis(url: str) -> None:
    """Stop the machine's Redis (SHUTDOWN NOSAVE) and start it again as the machine starts it."""
    from bot.production import ensure_redis

    client = redis.Redis.from_url(url)
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass  # it closes the connection as it goes
    client.close()
    ensure_redis(url)


def test_the_dispatcher_leader_killed_the_one_standing_by_delivers_every_card_once(
        prod_stack: Stack, pg_database: str) -> None:
    engine = make_engine(pg_database)
    factory = make_session_factory(engine)
    try:
        holder = wait_for(lambda: leases.holder_of(factory, leases.DISPATCHER, dt.datetime.utcnow()), 30)
        assert holder and wait_for(lambda: _nothing_pending(factory), 60)  # earlier cards are out before we count
        leader = next(name for name, proc in prod_stack.supervisor.procs.items()
                      if name.startswith("dispatcher-") and holder.endswith(f":{proc.pid}"))
        _kill(prod_stack, leader)
        killed_at, before = time.monotonic(), len(prod_stack.wecom_messages())
        assert "工单号：HG-" in _file_leak(prod_stack, "prod-kill-dispatcher")
        (ticket,) = _tickets(pg_database, "prod-kill-dispatcher")
        assert wait_for(lambda: any(ticket.number in str(m) for m in prod_stack.wecom_messages()), 60)
        took_over = time.monotonic() - killed_at
        new_holder = leases.holder_of(factory, leases.DISPATCHER, dt.datetime.utcnow())
        assert new_holder is not None and new_holder != holder
        time.sleep(LEASE_S)  # anything sent twice would show by now
        delivered = [m["payload"] for m in prod_stack.wecom_messages()[before:]]
        with unit_of_work(factory) as s:
            rows = s.query(Notification).filter_by(ticket_id=ticket.id, channel="wecom_robot").all()
            assert rows and all(r.status == "sent" and r.attempts == 1 for r in rows), [(r.status, r.attempts)
                                                                                         for r in rows]
            # each card exactly once (two groups may get the same card: compare the multisets)
            expected = [r.payload for r in rows]
            assert [delivered.count(p) for p in expected] == [expected.count(p) for p in expected]
        assert took_over < 60
    finally:
        engine.dispose()
    assert prod_stack.supervisor.revive() == [leader]


def _nothing_pending(factory) -> bool:
    with unit_of_work(factory) as s:
        return s.query(Notification).filter_by(status="pending").count() == 0


