"""`make bench-staff`: how fast a resident's urgent ticket reaches the groups, and how fast the console answers staff.

1. Delivery: residents report urgent leaks over REST (three messages each); the time from sending the last
   message to the fake WeCom robot receiving the ticket's first card, p50/p95 over `--tickets` tickets. Tickets
   are paced (`--every` seconds apart) and spread over the estates, because each real robot takes at most
   20 messages a minute: a burst through one robot would measure WeCom's rate limit, not us.
2. Console: `--staff` staff members sign in at once (timed on its own: argon2 is slow on purpose), then each
   loads their queue and a ticket page in turn, `--rounds` times; p50/p95 of the page latency.

Prints a JSON summary at the end. Runs the real stack (bot/devtools/stack.py) on free ports. `--profile console`
(or `rasa`, `dispatcher`, `actions`) records that process with py-spy during the part that loads it (the console
part for the console, the delivery part otherwise) and adds the hottest functions to the summary
(bot/devtools/profiling.py; raw stacks under reports/profiles/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import aiohttp

from bot.bench import percentile

TICKET = re.compile(r"HG-\d{8}-\d{4}")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ESTATES = [("吉利花园", 12, 3, 6), ("和顺里", 8, 3, 5), ("金穗园", 6, 2, 18)]
STAFF = ["gaohong", "admin", "wangjianguo", "lishufen", "zhaogang", "sunli", "zhouming", "wuxia", "chenjing",
         "liuyang", "maguilan"]


def _address(i: int) -> str:
    name, buildings, units, floors = ESTATES[i % len(ESTATES)]
    building = 1 + (i // len(ESTATES)) % buildings
    return f"{name}{building}号楼{1 + i % units}单元{(1 + i % floors) * 100 + 1}"


async def _say(http: aiohttp.ClientSession, url: str, sender: str, text: str) -> str:
    async with http.post(url, json={"sender": sender, "message": text}) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"REST answered HTTP {resp.status}")
    return "\n".join(r.get("text", "") for r in body)


def _first_cards(log: Path) -> Dict[str, float]:
    """Ticket number → arrival time of its first card at the fake robot."""
    seen: Dict[str, float] = {}
    if not log.is_file():
        return seen
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        content = json.dumps(entry.get("payload"), ensure_ascii=False)
        for number in TICKET.findall(content):
            seen.setdefault(number, float(entry["ts"]))
    return seen


async def delivery(stack: "object", tickets: int, every: float, in_flight: int) -> Dict[str, object]:
    """Report urgent leaks and time each one's first WeCom card."""
    sent: Dict[str, float] = {}
    errors: List[str] = []
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int, http: aiohttp.ClientSession) -> None:
        async with gate:
            sender = f"bench-staff-{int(time.time())}-{i}"
            try:
                await _say(http, stack.rest_url, sender, "洗衣机下水管堵了，阳台都是水")
                await _say(http, stack.rest_url, sender, _address(i))
                started = time.time()
                receipt = await _say(http, stack.rest_url, sender, f"139{i:08d}")
            except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError) as exc:
                errors.append(type(exc).__name__)
                return
            found = TICKET.search(receipt)
            if found is None:
                errors.append("no ticket number in the reply")
                return
            sent[found.group(0)] = started

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = []
        for i in range(tickets):
            tasks.append(asyncio.create_task(one(i, http)))
            await asyncio.sleep(every)
        await asyncio.gather(*tasks)
    deadline = time.time() + 120
    arrived: Dict[str, float] = {}
    while time.time() < deadline:
        arrived = _first_cards(stack.wecom_log)
        if all(n in arrived for n in sent):
            break
        await asyncio.sleep(0.5)
    latencies = [(arrived[n] - t) * 1000 for n, t in sent.items() if n in arrived]
    return {"tickets": len(sent), "delivered": len(latencies), "errors": len(errors),
            "p50_ms": round(percentile(latencies, 50)), "p95_ms": round(percentile(latencies, 95)),
            "max_ms": round(max(latencies)) if latencies else None}


async def _login(http: aiohttp.ClientSession, base: str, key: str, password: str) -> None:
    async with http.get(f"{base}/login") as resp:
        page = await resp.text()
    token = CSRF.search(page)
    if token is None:
        raise RuntimeError("no CSRF field on the login page")
    async with http.post(f"{base}/login", data={"key": key, "password": password, "csrf_token": token.group(1),
                                                "next": "/"}, allow_redirects=False) as resp:
        if resp.status not in (302, 303):
            raise RuntimeError(f"login of {key} answered HTTP {resp.status}")


async def console(stack: "object", staff: int, rounds: int, password: str) -> Dict[str, object]:
    """`staff` signed-in clients at once, each loading its queue and then a ticket from it, `rounds` times."""
    base = stack.console_url.rstrip("/")
    latencies: List[float] = []
    errors: List[str] = []

    signed_in = asyncio.Event()
    ready: List[int] = []
    logins: List[float] = []

    async def client(i: int) -> None:
        number: Optional[str] = None  # a ticket of this client's queue, once it has loaded one
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=30)) as http:
            started = time.perf_counter()
            try:
                await _login(http, base, STAFF[i % len(STAFF)], password)
            except (aiohttp.ClientError, RuntimeError, asyncio.TimeoutError) as exc:
                errors.append(f"login: {exc}")
                return
            finally:
                ready.append(i)
                if len(ready) == staff:
                    signed_in.set()
            logins.append((time.perf_counter() - started) * 1000)
            # Signing in hashes a password on purpose (argon2): it is timed on its own, and the page rounds
            # start once everyone is in, as on a shift where staff keep the console open.
            await signed_in.wait()
            for _ in range(rounds):
                for path in ("/", None):
                    target = path or (f"/tickets/{number}" if number else "/")
                    started = time.perf_counter()
                    try:
                        async with http.get(base + target, allow_redirects=False) as resp:
                            body = await resp.text()
                            if resp.status != 200:
                                errors.append(f"{target}: HTTP {resp.status}")
                    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                        errors.append(type(exc).__name__)
                        continue
                    latencies.append((time.perf_counter() - started) * 1000)
                    if path == "/":
                        found = TICKET.search(body)
                        number = found.group(0) if found else None

    await asyncio.gather(*(client(i) for i in range(staff)))
    return {"staff": staff, "requests": len(latencies), "errors": len(errors), "error_samples": errors[:5],
            "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1),
            "login_p50_ms": round(percentile(logins, 50), 1), "login_p95_ms": round(percentile(logins, 95), 1)}


@contextlib.contextmanager
def _profiled(stack: "object", process: Optional[str], part: str, summary: Dict[str, object]) -> Iterator[None]:
    """Record `process` with py-spy while `part` runs, if that is the part that loads it."""
    if process is None or (part == "console") != (process == "console"):
        yield
        return
    from bot.devtools.profiling import Recording, summary as profile_summary

    with Recording(stack.supervisor.procs[process].pid, f"bench-staff-{process}") as recording:
        yield
    summary["profile"] = {"process": process, "part": part, **profile_summary(recording.path)}


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `make bench-staff`."""
    from bot.devtools.stack import start_stack
    from bot.training import ensure_model

    parser = argparse.ArgumentParser(prog="make bench-staff")
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between two residents starting")
    parser.add_argument("--in-flight", type=int, default=5, help="residents talking at once")
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", choices=("console", "rasa", "dispatcher", "actions"),
                        help="record this process with py-spy during its part of the run")
    args = parser.parse_args(argv)
    model = ensure_model(quiet=True)
    with tempfile.TemporaryDirectory(prefix="hg-bench-staff-") as scratch:
        stack = start_stack(model, Path(scratch))
        try:
            summary: Dict[str, object] = {}
            with _profiled(stack, args.profile, "delivery", summary):
                summary["delivery"] = asyncio.run(delivery(stack, args.tickets, args.every, args.in_flight))
            with _profiled(stack, args.profile, "console", summary):
                summary["console"] = asyncio.run(console(stack, args.staff, args.rounds, "hongxing-demo"))
        finally:
            stack.stop()
    print(json.dumps(summary, ensure_ascii=False, indent=2))
    delivered = summary["delivery"]
    ok = delivered["errors"] == 0 and delivered["delivered"] == delivered["tickets"]  # type: ignore[index]
    return 0 if ok and summary["console"]["errors"] == 0 else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
