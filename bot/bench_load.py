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

A street office: `--communities N` (default 3) loads N-1 more communities beside the demo one, each with an
Official Account of its own (fresh credentials, its own fake WeChat API, HG_WECHAT_ACCOUNTS). The residents are
spread over the accounts in turn: the demo community's write to the shared account, the others to their own
community's endpoint (/webhooks/wechat/webhook/<key>) about an address in their own estate. Every ticket must
belong to the community of the account it was reported through (`wrong_community`: tickets that do not).

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

import aiohttp
import yaml

from bot.bench import SCRIPT, Route, Run, _load_average, half_load_rate, play, run_figures, wechat_send
from bot.config import PROJECT_ROOT
from bot.production import drop_database
from bot.store.models import DEFAULT_COMMUNITY

REPORT = PROJECT_ROOT / "reports" / "bench_load.json"
REDIS_DB = 12
PG_ADMIN = os.environ.get("HG_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEMO_ESTATE = "吉利花园"  # the estate the script's address line names (bot/bench.py SCRIPT)
# The street office's other communities: key, name, the one estate residents report from.
DISTRICT = [("lanxing", "蓝星社区", "蓝湾花园"), ("lvzhou", "绿洲社区", "绿洲家园"), ("qingshan", "青山社区", "青山里"),
            ("chunhui", "春晖社区", "春晖苑"), ("mingde", "明德社区", "明德园"), ("taoyuan", "桃源社区", "桃源新村"),
            ("yongan", "永安社区", "永安里"), ("fuxing", "复兴社区", "复兴家园"), ("heping", "和平社区", "和平花园"),
            ("xinhua", "新华社区", "新华里"), ("guangming", "光明社区", "光明小区")]


def district_community(key: str, name: str, estate: str) -> Dict[str, Any]:
    """A community file of the street office: one estate whose buildings, units and rooms cover every address
    of the script, its groups, staff, one grid, a help team, a night-duty roster."""
    def staff(role: str, label: str, **more: Any) -> Dict[str, Any]:
        return {"key": f"{key}-{label}", "name": f"{name}{label}", "role": role, **more}

    group = {suffix: f"{key}-{suffix}" for suffix in ("office", "property", "grid-1", "volunteers")}
    return {
        "community": {"key": key, "name": name, "office_phone": "022-23450000",
                      "office_hours": "周一至周五 8:30-17:30",
                      "property_contacts": [f"{estate}物业服务中心：022-23450001"]},
        "estates": [{"name": estate, "aliases": [], "property_managed": True, "buildings": {"from": 1, "to": 6},
                     "units": 3, "floors": 6, "rooms_per_floor": 2}],
        "groups": [{"key": group["office"], "name": f"{name}值班群", "kind": "office",
                    "webhook_key": f"demo-{key}-office"},
                   {"key": group["property"], "name": f"{estate}物业管家群", "kind": "property",
                    "webhook_key": f"demo-{key}-property"},
                   {"key": group["grid-1"], "name": f"{name}第一网格工作群", "kind": "grid",
                    "webhook_key": f"demo-{key}-grid-1"},
                   {"key": group["volunteers"], "name": f"{name}志愿者群", "kind": "team",
                    "webhook_key": f"demo-{key}-volunteers"}],
        "staff": [staff("grid_leader", "leader"), staff("duty", "duty", on_duty=True), staff("duty", "night"),
                  staff("property_manager", "pm", estates=[estate]), staff("admin", "admin"),
                  staff("team_lead", "lead")],
        "grids": [{"key": f"{key}-grid-1", "name": f"{name}第一网格", "leader": f"{key}-leader", "members": [],
                   "group": group["grid-1"], "property_group": group["property"], "estate": estate,
                   "buildings": {"from": 1, "to": 6}}],
        "volunteer_teams": [{"number": 1, "colour": "红色", "name": f"{name}红管家服务队", "short": "红管家",
                             "lead": f"{key}-lead", "group": group["volunteers"]},
                            {"number": 2, "colour": "黄色", "name": f"{name}邻里互助志愿服务队", "short": "邻里互助",
                             "lead": f"{key}-lead", "group": group["volunteers"]}],
        "duty_roster": [{"staff": f"{key}-night", "weekdays": [1, 2, 3, 4, 5, 6, 7], "from": "22:00", "to": "07:00"}],
        "help_team": 2,
        "office_group": group["office"],
    }


def write_district(folder: Path, count: int) -> Dict[str, str]:
    """The demo community's file and `count` - 1 more of DISTRICT in `folder`; returns the others' estate by key."""
    if not 1 <= count <= len(DISTRICT) + 1:
        raise ValueError(f"--communities must be 1 to {len(DISTRICT) + 1}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "community.yml").write_bytes((PROJECT_ROOT / "data" / "community" / "community.yml").read_bytes())
    estates = {}
    for key, name, estate in DISTRICT[:count - 1]:
        (folder / f"{key}.yml").write_text(yaml.safe_dump(district_community(key, name, estate), allow_unicode=True),
                                           encoding="utf-8")
        estates[key] = estate
    return estates


def routes(session: aiohttp.ClientSession, rasa_url: str, accounts: Dict[str, Any], estates: Dict[str, str],
           label: str) -> List[Route]:
    """The shared account (the demo community) and each community's own account, residents taken in turn."""
    stamp = int(time.time())
    shared = Route(wechat_send(session, f"{rasa_url}/webhooks/wechat/webhook"), SCRIPT,
                   f"o_load_{label}_{stamp}_{DEFAULT_COMMUNITY}")
    own = [Route(wechat_send(session, f"{rasa_url}/webhooks/wechat/webhook/{key}", accounts[key]),
                 [line.replace(DEMO_ESTATE, estates[key]) for line in SCRIPT], f"o_load_{label}_{stamp}_{key}")
           for key in estates]
    return [shared, *own]


def community_of_sender(sender: str) -> str:
    """The community a bench sender (`<prefix>_<community key>-<number>-<round>`) reports in."""
    return sender.rsplit("-", 2)[0].rsplit("_", 1)[1]


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


def ticket_figures(database_url: str, run: Run, by_community: bool = False) -> Dict[str, Any]:
    """Tickets expected (reports whose every message was answered) against tickets in the database; with
    `by_community`, also per community and how many tickets landed in another community than the sender's
    (`community_of_sender`)."""
    from bot.store.db import make_engine, make_session_factory, unit_of_work
    from bot.store.models import Ticket

    failed = set(run.failed_senders)
    expected = [s for s in run.reports if s not in failed]
    rows: List[tuple] = []
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            for start in range(0, len(run.reports), 500):
                chunk = run.reports[start:start + 500]
                rows += session.query(Ticket.sender_id, Ticket.community_key).filter(Ticket.sender_id.in_(chunk)).all()
    finally:
        engine.dispose()
    per_sender = Counter(sender for sender, _key in rows)
    figures: Dict[str, Any] = {
        "expected": len(expected), "created": sum(per_sender[s] for s in expected),
        "lost": sum(1 for s in expected if per_sender[s] == 0),
        "duplicated": sum(per_sender[s] - 1 for s in expected if per_sender[s] > 1),
        "reports_with_an_unanswered_message": len(set(run.reports) & failed)}
    if by_community:
        figures["wrong_community"] = sum(1 for sender, key in rows if key != community_of_sender(sender))
        figures["created_per_community"] = dict(sorted(Counter(key for _sender, key in rows).items()))
    return figures


def _phase(stack: Any, estates: Dict[str, str], concurrency: int, duration: float, rate: float, label: str) -> Run:
    async def run() -> Run:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         connector=aiohttp.TCPConnector(limit=max(100, 2 * concurrency))) as session:
            return await play(None, "wechat", 10 ** 9, concurrency, rate, duration=duration,
                              routes=routes(session, stack.settings.rasa_url, stack.accounts, estates, label))

    return asyncio.run(run())


def bench(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole run (see the module docstring); returns the summary."""
    from bot.devtools.stack import start_stack
    from bot.training import ensure_model

    model = ensure_model(quiet=True)
    database_url, redis_url = _fresh_database(), _fresh_redis()
    summary: Dict[str, Any] = {"command": "make bench-load" + (f" BENCH_ARGS='{' '.join(args.argv)}'"
                                                                if args.argv else ""),
                               "cpus": os.cpu_count(), "concurrency": args.concurrency, "duration_s": args.duration,
                               "communities": args.communities,
                               "accounts": "the shared one (demo community)"
                                           + (f" + {args.communities - 1} communities' own" if args.communities > 1
                                              else ""),
                               "layout": "nginx → 2 Rasa replicas (1 worker each), 2 action servers; PostgreSQL, "
                                         "Redis; 2 dispatchers", "load_average": {"start": _load_average()}}
    profile: Optional[Dict[str, Any]] = None
    try:
        with tempfile.TemporaryDirectory(prefix="hg-bench-load-") as scratch:
            estates = write_district(Path(scratch) / "communities", args.communities)
            started = time.monotonic()
            stack = start_stack(model, Path(scratch), database_url=database_url, redis_url=redis_url,
                                webchat=True, replicas=True, communities=Path(scratch) / "communities",
                                own_accounts=list(estates))
            summary["start_s"] = round(time.monotonic() - started, 1)
            print(f"production layout ready in {summary['start_s']} s", flush=True)
            by_community = bool(estates)
            try:
                _phase(stack, estates, min(10, args.concurrency), 10, 0.0, "warm")
                if args.profile:
                    from bot.devtools.profiling import Recording, summary as profile_summary

                    with Recording(stack.supervisor.procs[args.profile].pid, f"bench-load-{args.profile}") as rec:
                        capacity = _phase(stack, estates, args.concurrency, args.duration, 0.0, "capacity")
                    profile = {"process": args.profile, **profile_summary(rec.path)}
                else:
                    capacity = _phase(stack, estates, args.concurrency, args.duration, 0.0, "capacity")
                summary["capacity"] = {**run_figures(capacity),
                                       "tickets": ticket_figures(database_url, capacity, by_community)}
                summary["load_average"]["capacity"] = _load_average()
                print(f"capacity: {summary['capacity']['msgs_per_s']} msg/s", flush=True)
                rate = args.rate or half_load_rate(summary["capacity"]["msgs_per_s"])
                if rate:
                    half = _phase(stack, estates, args.concurrency, args.duration, rate, "half")
                    summary["half_load"] = {**run_figures(half),
                                            "tickets": ticket_figures(database_url, half, by_community)}
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
        "every ticket in its own community": verdict(bool(runs) and all(r["tickets"].get("wrong_community", 0) == 0
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
    parser.add_argument("--communities", type=int, default=3,
                        help="communities of the street office: the demo one on the shared account, the others "
                             f"on their own accounts (3; 1 to {len(DISTRICT) + 1})")
    parser.add_argument("--rate", type=float, default=0.0, help="msg/s of the paced phase (default: half capacity)")
    parser.add_argument("--profile", help="record this process with py-spy during the capacity run (rasa-1, …)")
    args = parser.parse_args(argv)
    if not 1 <= args.communities <= len(DISTRICT) + 1:
        parser.error(f"--communities must be 1 to {len(DISTRICT) + 1}")
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
