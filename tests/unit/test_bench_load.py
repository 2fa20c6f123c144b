"""make bench-load's own logic: the time budget, the street office's communities and accounts, tickets expected against
tickets stored (and in which community), the verdicts."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from bot.address import Address, BuildingDirectory, parse_address
from bot.bench import SCRIPT, Outcome, Route, play, script_text
from bot.bench_load import (DEMO_ESTATE, DISTRICT, community_of_sender, logged_errors, targets, ticket_figures,
                            write_district)
from bot.services import tickets
from bot.services.community import community_of, load_community, read_communities
from bot.services.community import estates as community_estates
from bot.store.db import make_engine, make_session_factory, migrate, unit_of_work
from bot.store.models import DEFAULT_COMMUNITY, Community


def test_a_timed_run_stops_sending_when_its_time_is_up_and_records_each_finished_report() -> None:
    async def send(sender: str, text: str) -> Outcome:
        await asyncio.sleep(0.002)
        return Outcome(True, None)

    started = time.perf_counter()
    run = asyncio.run(play(send, "wechat", 10 ** 9, 5, duration=0.5, prefix="o_t"))
    assert 0.5 <= time.perf_counter() - started < 1.5
    assert len(run.latencies) > 5 * len(SCRIPT)  # several rounds each
    assert len(run.reports) >= 5 and len(set(run.reports)) == len(run.reports)  # each finished report once
    assert all(s.startswith("o_t-") for s in run.reports)
    # every round that got past the phone step is recorded: rounds started minus those cut short by the clock
    assert len(run.reports) >= len(run.latencies) // len(SCRIPT) - 5


def test_tickets_are_counted_lost_and_duplicated_per_finished_report(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    migrate(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    for sender in ("o_a", "o_b", "o_b"):  # a: one ticket; b: two for one report; c: none
        tickets.open_ticket(factory, tickets.TicketRequest(kind="feedback", sender_id=sender, description="建议"))
    engine.dispose()

    class R:
        reports = ["o_a", "o_b", "o_c", "o_d"]
        failed_senders = ["o_d"]  # a message of d's round got no answer: its ticket is not expected

    figures = ticket_figures(url, R())  # type: ignore[arg-type]
    assert figures == {"expected": 3, "created": 3, "lost": 1, "duplicated": 1,
                       "reports_with_an_unanswered_message": 1}


def test_the_verdicts_follow_the_figures() -> None:
    good = {"errors": 0, "p99_ms": 400.0, "passive_within_4_5s_pct": 100.0,
            "tickets": {"lost": 0, "duplicated": 0}}
    assert set(targets({"capacity": good, "half_load": good}, 50).values()) == {"met"}
    slow = {**good, "p99_ms": 1200.0}
    verdicts = targets({"capacity": good, "half_load": slow}, 50)
    assert verdicts["p99 <= 1 s at half the capacity"] == "NOT met"
    lost = {**good, "tickets": {"lost": 1, "duplicated": 0}}
    assert targets({"capacity": lost, "half_load": good}, 50)["0 lost or duplicated tickets"] == "NOT met"
    assert targets({"capacity": good, "half_load": good}, 20)["20 concurrent conversations, 0 errors"] == "NOT met"


def test_logged_errors_are_counted_per_log(tmp_path: Path) -> None:
    (tmp_path / "rasa-1.log").write_text("2026 INFO ok\n2026 ERROR    x - boom\n", encoding="utf-8")
    (tmp_path / "actions-1.log").write_text("2026 INFO ticket not opened for o_a: limit\n", encoding="utf-8")
    (tmp_path / "console.log").write_text("2026 INFO fine\n", encoding="utf-8")
    found = logged_errors(tmp_path)
    assert {k: v["count"] for k, v in found.items()} == {"actions-1.log": 1, "rasa-1.log": 1}



@pytest.fixture
def district(tmp_path: Path) -> Iterator[Tuple[str, Dict[str, str]]]:
    """The demo community and three more of the street office, loaded in SQLite as make bench-load loads them."""
    estates = write_district(tmp_path / "communities", 4)
    url = f"sqlite:///{tmp_path / 'hg.db'}"
    migrate(url)
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        for data in read_communities(tmp_path / "communities"):
            load_community(session, data, dt.date(2026, 12, 7))
    engine.dispose()
    yield url, estates


def test_the_street_offices_communities_load_and_every_script_address_is_one_of_their_own(district) -> None:
    url, estates = district
    assert estates == {"lanxing": "蓝湾花园", "lvzhou": "绿洲家园", "qingshan": "青山里"}
    engine = make_engine(url)
    with unit_of_work(make_session_factory(engine)) as session:
        assert {c.key for c in session.query(Community)} == {DEFAULT_COMMUNITY, *estates}
        directory = BuildingDirectory(community_estates(session))
        homes = {estate: community_of(session, estate) for estate in estates.values()}
    engine.dispose()
    assert homes == {estate: key for key, estate in estates.items()}
    step = next(i for i, line in enumerate(SCRIPT) if DEMO_ESTATE in line)
    for key, estate in estates.items():
        script = [line.replace(DEMO_ESTATE, estate) for line in SCRIPT]
        for number in range(12):  # every resident's address line is a room of their own estate
            line = script_text(step, number, 1, script)
            check = directory.check(parse_address(line, directory.estates), require_unit=True, require_room=True)
            assert check.ok and check.address.community == estate, (line, check)


def test_the_district_is_bounded_by_its_named_communities(tmp_path: Path) -> None:
    for count in (0, len(DISTRICT) + 2):
        with pytest.raises(ValueError):
            write_district(tmp_path, count)


async def test_residents_are_spread_over_the_accounts_in_turn_each_with_its_own_script() -> None:
    said: Dict[str, List[str]] = {}

    def route(name: str, estate: str) -> Route:
        async def send(sender: str, text: str) -> Outcome:
            await asyncio.sleep(0)  # a reply takes a while: the residents take turns
            said.setdefault(name, []).append(f"{sender} {text}")
            return Outcome(True, None)

        return Route(send, [s.replace(DEMO_ESTATE, estate) for s in SCRIPT], f"o_t_{name}")

    run = await play(None, "wechat", 3 * len(SCRIPT), 3,
                     routes=[route("default", DEMO_ESTATE), route("lanxing", "蓝湾花园"), route("lvzhou", "绿洲家园")])
    assert {name: len(lines) for name, lines in said.items()} == dict.fromkeys(("default", "lanxing", "lvzhou"),
                                                                               len(SCRIPT))
    assert any("蓝湾花园" in line for line in said["lanxing"]) and not any(DEMO_ESTATE in line for line in said["lanxing"])
    assert all(line.startswith("o_t_lvzhou-2-1 ") for line in said["lvzhou"])
    assert sorted(community_of_sender(s) for s in run.reports) == ["default", "lanxing", "lvzhou"]


def test_tickets_of_another_community_than_the_senders_are_counted(district) -> None:
    url, _estates = district
    engine = make_engine(url)
    factory = make_session_factory(engine)
    for sender, estate in (("o_x_lanxing-1-1", "蓝湾花园"), ("o_x_lanxing-2-1", DEMO_ESTATE),
                           ("o_x_default-3-1", DEMO_ESTATE)):
        tickets.open_ticket(factory, tickets.TicketRequest(kind="leak", sender_id=sender, description="漏水",
                                                           address=Address(estate, 2, 1, 101)))
    engine.dispose()

    class R:
        reports = ["o_x_lanxing-1-1", "o_x_lanxing-2-1", "o_x_default-3-1"]
        failed_senders: List[str] = []

    figures = ticket_figures(url, R(), by_community=True)  # type: ignore[arg-type]
    assert figures["wrong_community"] == 1 and figures["lost"] == 0  # lanxing-2 reported in 吉利花园
    assert figures["created_per_community"] == {DEFAULT_COMMUNITY: 2, "lanxing": 1}
    assert "wrong_community" not in ticket_figures(url, R())  # type: ignore[arg-type]
    verdict = targets({"capacity": {"errors": 0, "tickets": figures}}, 50)["every ticket in its own community"]
    assert verdict == "NOT met"
