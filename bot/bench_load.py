"""`make bench-load`: production mode under load through the WeChat channel, with the tickets counted.

One run, on this machine:

1. A fresh PostgreSQL database and Redis database 12 (flushed); the production layout starts on them
   (bot/production.py through bot/devtools/stack.py: nginx, two Rasa replicas of one worker each, two action
   servers, two dispatchers) with the demo WeChat account and its local fake API.
2. Capacity: `--concurrency` residents (50) talk at once for `--duration` seconds, each sending its next message
   as soon as the last one is answered. Every message is a WeChat push: signed, AES-encrypted XML, through nginx.
3. Half load: half the capacity offered, paced, by the same number of residents for the same time; throughput,
   p50/p95/p99, errors and how many pushes were answered passively within 4.5 s.
4. Tickets: every resident's round of the script reports a leak (address and phone); each round whose last
   answer went through must end with exactly one ticket in PostgreSQL. Lost (a report without a ticket) and
   duplicated (two tickets for one report) are counted from the database.

Prints the JSON summary and the targets of issue 10 as met / NOT met, writes reports/bench_load.json; exits 0
(it measures, it does not gate). `--profile rasa-1` (or actions-1, nginx…) records that process with py-spy
during the capacity run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional

from bot.bench import Run, _load_average, half_load_rate, run_figures, served
from bot.config import PROJECT_ROOT
from bot.production import drop_database

REPORT = PROJECT_ROOT / "reports" / "bench_load.json"
REDIS_DB = 12
PG_ADMIN = os.environ.get("HG_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _fresh_database() -> str:
    from bot.production import ensure_postgres

    url = PG_ADMIN.rsplit("/", 1)[0] + f"/hg_bench_load_{uuid.uuid4().hex[:8]}"
    ensure_postgres(url)
    return url


def _fresh_redis() -> str:
    import redis

    from bot.production import ensure_redis

    url = os.environ.get("HG_BENCH_REDIS_URL", f"redis://127.0.0.1:6379/{REDIS_DB}")
    ensure_redis(url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def ticket_figures(database_url: str, run: Run) -> Dict[str, Any]:
    """Tickets expected (reports whose every message was answered) against tickets in the database."""
    from bot.store.db import make_engine, make_session_factory, unit_of_work
    from bot.store.models import Ticket

    failed = set(run.failed_senders)
    expected = [s for s in run.reports if s not in failed]
    senders: List[str] = []
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            for start in range(0, len(run.reports), 500):
                chunk = run.reports[start:start + 500]
                senders += [s for (s,) in session.query(Ticket.sender_id).filter(Ticket.sender_id.in_(chunk))]
    finally:
        engine.dispose()
    per_sender = Counter(senders)
    return {"expected": len(expected), "created": sum(per_sender[s] for s in expected),
            "lost": sum(1 for s in expected if per_sender[s] == 0),
            "duplicated": sum(per_sender[s] - 1 for s in expected if per_sender[s] > 1),
            "reports_with_an_unanswered_message": len(set(run.reports) & failed)}


def _phase(url: str, concurrency: int, duration: float, rate: float, label: str) -> Run:
    prefix = f"o_load_{label}_{int(time.time())}"
    return asyncio.run(served(url, "wechat", 10 ** 9, concurrency, rate, duration=duration, prefix=prefix))


def bench(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole run (see the module docstring); returns the summary."""
    from bot.devtools.stack import start_stack
    from bot.training import ensure_model

    model = ensure_model(quiet=True)
    database_url, redis_url = _fresh_database(), _fresh_redis()
    summary: Dict[str, Any] = {"command": "make bench-load" + (f" BENCH_ARGS='{' '.join(args.argv)}'"
                                                                if args.argv else ""),
                               "cpus": os.cpu_count(), "concurrency": args.concurrency, "duration_s": args.duration,
                               "layout": "nginx → 2 Rasa replicas (1 worker each), 2 action servers; PostgreSQL, "
                                         "Redis; 2 dispatchers", "load_average": {"start": _load_average()}}
    profile: Optional[Dict[str, Any]] = None
    try:
        with tempfile.TemporaryDirectory(prefix="hg-bench-load-") as scratch:
            started = time.monotonic()
            stack = start_stack(model, Path(scratch), database_url=database_url, redis_url=redis_url,
                                webchat=True, replicas=True)
            summary["start_s"] = round(time.monotonic() - started, 1)
            print(f"production layout ready in {summary['start_s']} s", flush=True)
            url = f"{stack.settings.rasa_url}/webhooks/wechat/webhook"
            try:
                _phase(url, min(10, args.concurrency), 10, 0.0, "warm")
                if args.profile:
                    from bot.devtools.profiling import Recording, summary as profile_summary

                    with Recording(stack.supervisor.procs[args.profile].pid, f"bench-load-{args.profile}") as rec:
                        capacity = _phase(url, args.concurrency, args.duration, 0.0, "capacity")
                    profile = {"process": args.profile, **profile_summary(rec.path)}
                else:
                    capacity = _phase(url, args.concurrency, args.duration, 0.0, "capacity")
                summary["capacity"] = {**run_figures(capacity), "tickets": ticket_figures(database_url, capacity)}
                summary["load_average"]["capacity"] = _load_average()
                print(f"capacity: {summary['capacity']['msgs_per_s']} msg/s", flush=True)
                rate = args.rate or half_load_rate(summary["capacity"]["msgs_per_s"])
                if rate:
                    half = _phase(url, args.concurrency, args.duration, rate, "half")
                    summary["half_load"] = {**run_figures(half), "tickets": ticket_figures(database_url, half)}
                    summary["load_average"]["half_load"] = _load_average()
                summary["restarts"] = dict(stack.supervisor.restarts)
            finally:
                stack.stop()
                summary["logged_errors"] = logged_errors(Path(scratch) / "logs")
    finally:
        drop_database(database_url)
    if profile is not None:
        summary["profile"] = profile
    summary["targets"] = targets(summary, args.concurrency)
    return summary


def logged_errors(logs: Path, samples: int = 5) -> Dict[str, Any]:
    """ERROR lines (and refused tickets) the processes logged during the run, counted per log, with samples."""
    found: Dict[str, Any] = {}
    for log in sorted(logs.glob("*.log")):
        lines = [line for line in log.read_text(errors="replace").splitlines()
                 if " ERROR " in line or "ticket not opened" in line]
        if lines:
            found[log.name] = {"count": len(lines), "samples": [line[:300] for line in lines[:samples]]}
    return found


def targets(summary: Dict[str, Any], concurrency: int) -> Dict[str, str]:
    """Issue 10's targets as met / NOT met."""
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    half = summary.get("half_load") or {}
    runs = [r for r in (summary.get("capacity"), half) if r]
    return {
        f"{concurrency} concurrent conversations, 0 errors": verdict(concurrency >= 50 and bool(runs)
                                                                     and all(r["errors"] == 0 for r in runs)),
        "0 lost or duplicated tickets": verdict(bool(runs) and all(r["tickets"]["lost"] == 0
                                                                   and r["tickets"]["duplicated"] == 0
                                                                   for r in runs)),
        "p99 <= 1 s at half the capacity": verdict(bool(half) and half["p99_ms"] <= 1000),
        "every callback answered within 4.5 s (half load)": verdict(bool(half)
                                                                    and half["passive_within_4_5s_pct"] == 100.0),
    }


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `python -m bot.bench_load` (`make bench-load`, arguments in BENCH_ARGS)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="make bench-load")
    parser.add_argument("--concurrency", type=int, default=50, help="residents talking at once (50)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of each phase (60)")
    parser.add_argument("--rate", type=float, default=0.0, help="msg/s of the paced phase (default: half capacity)")
    parser.add_argument("--profile", help="record this process with py-spy during the capacity run (rasa-1, …)")
    args = parser.parse_args(argv)
    args.argv = argv
    summary = bench(args)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    for target, verdict in summary["targets"].items():
        print(f"  {verdict:8} {target}")
    print(f"written to {REPORT.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
