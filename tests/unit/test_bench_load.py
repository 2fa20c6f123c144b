"""make bench-load's own logic: the time budget, tickets expected against tickets stored, the verdicts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.bench import SCRIPT, Outcome, play
from bot.bench_load import logged_errors, targets, ticket_figures
from bot.services import tickets
from bot.store.db import make_engine, make_session_factory, migrate


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
