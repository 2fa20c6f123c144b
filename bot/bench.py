"""`make bench`: the model's capacity in-process and served, latency at half that load, memory and start-up.

One run, on this machine:

1. Unless `--skip-train`: a training from scratch, timed.
2. The stack starts (bot/devtools/stack.py). From the moment its first process starts, each process's health
   endpoint and Rasa's first answered REST message are timed apart (`startup`, `ready_s`).
3. In-process: a separate process (`python -m bot.bench inprocess`) loads the same model as a Rasa `Agent`
   with our corrections installed (bot/rasa_boot.py), an in-memory tracker store and the stack's action
   server, and plays the same residents, interleaved as asyncio tasks, through `Agent.handle_text`: the
   capacity of the model with no HTTP to Rasa (`inprocess_msgs_per_s`).
4. Served: the same residents over REST through the running stack, each sending again as soon as it is
   answered (`served_msgs_per_s`); with `--profile rasa` (or `actions`) py-spy records that process here.
5. Half load: 50 % of the served capacity offered, paced, over REST and as WeChat pushes (signed, AES-encrypted
   XML, answered passively or through the fake WeChat API).
6. After the stack stops: the import cost of Rasa's CLI (`python -X importtime -m bot.rasa_boot --version`).

Replies are checked, not only counted: every turn must be answered and every leak report in the script must end
with a ticket number, so a broken set-up cannot produce a fast figure. Prints the JSON summary and the targets of
issue 7 as met / NOT met, writes reports/bench.json, exits 0 (it measures; it does not gate).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import aiohttp

from bot.config import PROJECT_ROOT

# One resident's conversation; residents loop over it until the message budget is spent.
SCRIPT = [
    "你好",
    "最近有义诊吗",
    "有没有眼科的",
    "社区办公时间是几点",
    "洗衣机下水管堵了，阳台都是水",
    "吉利花园{building}号楼{unit}单元{room}",
    "138{tail:08d}",
    "我报的修怎么样了",
    "谢谢",
    "再见",
]
PHONE_STEP = 6  # the last answer of the leak report: its reply carries the new ticket's number
TICKET = re.compile(r"HG-\d{8}-\d{4}")
PASSIVE_WITHIN_MS = 4500  # WeChat waits 5 s for a passive reply; the channel answers asynchronously after that
REPORT = PROJECT_ROOT / "reports" / "bench.json"


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank; NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = math.ceil(q * len(ordered) / 100)  # the smallest value with at least q % of the values at or below it
    return ordered[max(0, min(len(ordered), rank) - 1)]


def half_load_rate(served_msgs_per_s: float, fraction: float = 0.5) -> float:
    """The rate (msg/s, one decimal) offered in the half-load runs; 0.0 when nothing was served."""
    if not served_msgs_per_s > 0:
        return 0.0
    return max(0.1, round(served_msgs_per_s * fraction, 1))


# --- memory: the Rasa server and its worker processes, read from /proc --------------------------------------


@dataclass(frozen=True)
class ProcessMemory:
    """One process's peak resident memory (VmHWM) and its part in the Rasa server."""

    pid: int
    role: str  # "worker" serves requests; "main" only supervises its workers; "helper" anything else it spawned
    peak_mb: float


def _parent_pid(stat: str) -> int:
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may contain spaces and parentheses.
    return int(stat[stat.rindex(")") + 2:].split()[1])


def descendants(pid: int, proc: Path = Path("/proc")) -> List[int]:
    """Every live descendant of `pid` (children, their children, …), parents before children."""
    parent_of: Dict[int, int] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                parent_of[int(entry.name)] = _parent_pid((entry / "stat").read_text())
            except (OSError, ValueError):
                continue  # gone meanwhile, or not a process
    found: List[int] = []
    frontier = [pid]
    while frontier:
        children = sorted(p for p, parent in parent_of.items() if parent in frontier)
        found += children
        frontier = children
    return found


def peak_rss_kb(pid: int, proc: Path = Path("/proc")) -> Optional[int]:
    """The process's peak resident set (VmHWM) in kB; None when it is gone."""
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cmdline(pid: int, proc: Path) -> Optional[bytes]:
    try:
        return (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None


def rasa_memory(pid: int, proc: Path = Path("/proc")) -> List[ProcessMemory]:
    """The Rasa server `pid` and its descendants with their peak RSS.

    Sanic's workers are forked from the server process and keep its command line; with any such child the
    server process is "main" and those children are the workers, otherwise the server process is the one
    worker. Other descendants (a multiprocessing resource tracker, …) are "helper".
    """
    root_cmd = _cmdline(pid, proc)
    root_peak = peak_rss_kb(pid, proc)
    if root_cmd is None or root_peak is None:
        return []
    children = []
    for child in descendants(pid, proc):
        peak, cmd = peak_rss_kb(child, proc), _cmdline(child, proc)
        if peak is not None and cmd is not None:
            children.append(ProcessMemory(child, "worker" if cmd == root_cmd else "helper", peak / 1024))
    root_role = "main" if any(c.role == "worker" for c in children) else "worker"
    return [ProcessMemory(pid, root_role, root_peak / 1024), *children]


class MemoryWatch:
    """Samples the Rasa server's processes in a thread and keeps each one's highest peak."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid = pid
        self.every = every
        self.peaks: Dict[int, ProcessMemory] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        """Read the processes once."""
        for seen in rasa_memory(self.pid):
            held = self.peaks.get(seen.pid)
            if held is None or seen.peak_mb > held.peak_mb:
                self.peaks[seen.pid] = seen

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> "MemoryWatch":
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def memory_figures(processes: List[ProcessMemory]) -> Dict[str, Any]:
    """`rasa_peak_rss_mb` (the largest worker) and the per-process list and total behind it."""
    workers = [p.peak_mb for p in processes if p.role == "worker"]
    return {"rasa_peak_rss_mb": round(max(workers), 1) if workers else None,
            "rasa_rss": {"workers": len(workers),
                         "per_process": [{"pid": p.pid, "role": p.role, "peak_mb": round(p.peak_mb, 1)}
                                         for p in sorted(processes, key=lambda p: p.pid)],
                         "total_mb": round(sum(p.peak_mb for p in processes), 1)}}


# --- start-up -------------------------------------------------------------------------------------------------


class StartupClock:
    """Times, from just before the stack's first process starts, when each part first answers.

    Used as start_stack's `before_spawn`: each probe polls in its own thread, so a slow process does not hide
    when a faster one became ready.
    """

    def __init__(self, poll: float = 0.1, give_up: float = 600.0) -> None:
        self.poll = poll
        self.give_up = give_up
        self.spawned_at: Optional[float] = None
        self.answered_at: Dict[str, float] = {}
        self._threads: List[threading.Thread] = []
        self._stop = threading.Event()

    def __call__(self, settings: Any) -> None:
        self.spawned_at = time.monotonic()
        body = json.dumps({"sender": "bench-ready-probe", "message": "你好"}).encode("utf-8")
        probes: Dict[str, Callable[[], urllib.request.Request]] = {
            "actions_health_s": lambda: urllib.request.Request(f"http://127.0.0.1:{settings.action_port}/health"),
            "console_health_s": lambda: urllib.request.Request(f"{settings.console_base_url}/health"),
            "rasa_root_s": lambda: urllib.request.Request(f"{settings.rasa_url}/"),
            "rasa_first_answer_s": lambda: urllib.request.Request(
                f"{settings.rasa_url}/webhooks/rest/webhook", data=body, headers={"Content-Type": "application/json"}),
        }
        for name, request in probes.items():
            thread = threading.Thread(target=self._probe, args=(name, request), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _probe(self, name: str, request: Callable[[], urllib.request.Request]) -> None:
        deadline = time.monotonic() + self.give_up
        while not self._stop.is_set() and time.monotonic() < deadline:
            req = request()
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - the local stack
                    payload = resp.read()
                if req.data is None or json.loads(payload or b"null"):  # a REST answer must say something
                    self.answered_at[name] = time.monotonic()
                    return
            except urllib.error.HTTPError as exc:
                if req.data is None and exc.code < 500:  # it answers, if not on this path (as start_stack waits)
                    self.answered_at[name] = time.monotonic()
                    return
            except (OSError, ValueError):
                pass  # not listening yet
            self._stop.wait(self.poll)

    def finish(self, timeout: float = 60.0) -> Dict[str, Optional[float]]:
        """Wait for the probes still running (up to `timeout` s), then seconds from spawn to each answer."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        start = self.spawned_at
        return {name: (round(self.answered_at[name] - start, 1) if start is not None and name in self.answered_at
                       else None)
                for name in ("actions_health_s", "console_health_s", "rasa_root_s", "rasa_first_answer_s")}


def parse_importtime(stderr: str) -> List[Tuple[str, int, int]]:
    """(module, depth, cumulative µs) of each line `python -X importtime` wrote."""
    found = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|", 2)
        if not cumulative.strip().isdigit():
            continue  # the header line
        stripped = name.lstrip(" ")
        found.append((stripped.strip(), (len(name) - len(stripped) - 1) // 2, int(cumulative)))
    return found


def import_costs(top: int = 8) -> Dict[str, Any]:
    """Wall time of `python -m bot.rasa_boot --version`, and under -X importtime the heaviest packages it imports."""
    from bot.config import rasa_env

    cmd = [sys.executable, "-m", "bot.rasa_boot", "--version"]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=rasa_env(), capture_output=True, timeout=600, check=False)
    wall = time.perf_counter() - started
    timed = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], cwd=PROJECT_ROOT, env=rasa_env(),
                           capture_output=True, text=True, timeout=600, check=False)
    modules = parse_importtime(timed.stderr)
    packages = sorted(((us, name) for name, _depth, us in modules if "." not in name), reverse=True)[:top]
    return {"command": "python -m bot.rasa_boot --version", "wall_s": round(wall, 1),
            "imports_s": round(sum(us for _name, depth, us in modules if depth == 0) / 1e6, 1),
            "heaviest_packages_s": [[round(us / 1e6, 2), name] for us, name in packages]}


# --- the simulated residents ----------------------------------------------------------------------------------


class Outcome(NamedTuple):
    """What one message got: answered passively (WeChat only, else None) and the reply texts (None: not read)."""

    passive: Optional[bool]
    texts: Optional[List[str]]


Send = Callable[[str, str], Awaitable[Outcome]]  # (sender, text) -> outcome


class Route(NamedTuple):
    """Where a resident writes and what they say: `send`, the `script` (addresses in their own estate) and the
    `prefix` of their senders."""

    send: Send
    script: Sequence[str]
    prefix: str


@dataclass
class Run:
    """Everything one load run recorded."""

    channel: str
    concurrency: int
    offered: float = 0.0  # msg/s offered in all; 0 = unpaced
    latencies: List[float] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)
    passive: List[bool] = field(default_factory=list)
    replies: Dict[str, List[Tuple[int, List[str]]]] = field(default_factory=dict)  # sender -> (script step, texts)
    elapsed: float = 0.0
    reports: List[str] = field(default_factory=list)  # senders whose leak report's last answer went through
    failed_senders: List[str] = field(default_factory=list)  # senders with a message that got no answer


class Budget:
    """A shared count of messages still to send, or (`until`, a time.perf_counter() instant) a time to send in."""

    def __init__(self, total: int, until: Optional[float] = None) -> None:
        self.left = total
        self.until = until

    def take(self) -> bool:
        """Take one message from the budget; False when none is left or the time is up."""
        if self.left <= 0 or (self.until is not None and time.perf_counter() >= self.until):
            return False
        self.left -= 1
        return True


def script_text(step: int, number: int, conversation: int, script: Sequence[str] = SCRIPT) -> str:
    """Line `step` of `script` as resident `number` says it in their `conversation`-th round (own address and
    phone)."""
    return script[step].format(building=1 + number % 6, unit=1 + number % 3, room=101 + (number % 6) * 100,
                               tail=number * 1000 + conversation)


async def resident(route: Route, number: int, budget: Budget, run: Run, interval: float, offset: float) -> None:
    """One simulated resident talking until the shared budget is used up.

    With `interval` > 0 the resident sends one message every `interval` seconds (waiting for each reply first,
    as a person would), starting after `offset` s; with 0 it sends the next message as soon as a reply arrives.
    Each round of the script is a new conversation (sender).
    """
    send, script, prefix = route
    step = 0
    conversation = 0
    loop = asyncio.get_running_loop()
    next_at = loop.time() + offset
    while budget.take():
        if interval:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
        position = step % len(script)
        if position == 0:
            conversation += 1
        sender = f"{prefix}-{number}-{conversation}"
        started = time.perf_counter()
        try:
            outcome = await send(sender, script_text(position, number, conversation, script))
            elapsed_ms = (time.perf_counter() - started) * 1000
            if run.channel == "wechat":
                run.passive.append(bool(outcome.passive) and elapsed_ms <= PASSIVE_WITHIN_MS)
            if outcome.texts is not None:
                run.replies.setdefault(sender, []).append((position, outcome.texts))
            if position == PHONE_STEP:
                run.reports.append(sender)
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError, ValueError) as exc:
            elapsed_ms = (time.perf_counter() - started) * 1000
            run.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            run.failed_senders.append(sender)
            if run.channel == "wechat":
                run.passive.append(False)
        run.latencies.append(elapsed_ms)
        step += 1


async def play(send: Optional[Send], channel: str, messages: int, concurrency: int, rate: float = 0.0,
               prefix: str = "bench", duration: Optional[float] = None, routes: Sequence[Route] = ()) -> Run:
    """`messages` messages from `concurrency` residents, offering `rate` msg/s in all (0: as fast as replies come);
    with `duration`, no new message after that many seconds. With `routes`, resident n talks through
    routes[n % len(routes)] instead of `send`, `SCRIPT` and `prefix`."""
    if not routes and send is None:
        raise ValueError("play needs `send` or `routes`")
    routes = list(routes) or [Route(send, SCRIPT, prefix)]  # type: ignore[arg-type]
    interval = concurrency / rate if rate else 0.0
    run = Run(channel=channel, concurrency=concurrency, offered=rate)
    started = time.perf_counter()
    budget = Budget(messages, until=started + duration if duration else None)
    await asyncio.gather(*(resident(routes[n % len(routes)], n, budget, run, interval, interval * n / concurrency)
                           for n in range(concurrency)))
    run.elapsed = time.perf_counter() - started
    return run


def check_replies(replies: Dict[str, List[Tuple[int, List[str]]]]) -> Dict[str, Any]:
    """Whether the replies are real: every turn answered, every leak report's last answer names a ticket."""
    turns = sum(len(v) for v in replies.values())
    unanswered = sum(1 for v in replies.values() for _step, texts in v if not any(t.strip() for t in texts))
    leak_ends = [texts for v in replies.values() for step, texts in v if step == PHONE_STEP]
    with_ticket = sum(1 for texts in leak_ends if any(TICKET.search(t) for t in texts))
    return {"turns": turns, "unanswered": unanswered, "leak_reports": len(leak_ends),
            "leak_reports_with_ticket": with_ticket,
            "ok": turns > 0 and unanswered == 0 and len(leak_ends) > 0 and with_ticket == len(leak_ends)}


def run_figures(run: Run) -> Dict[str, Any]:
    """The figures of one run (latencies in ms, rounded)."""
    lat = run.latencies
    figures: Dict[str, Any] = {
        "messages": len(lat), "concurrency": run.concurrency,
        "offered_msgs_per_s": round(run.offered, 1) if run.offered else "unpaced",
        "msgs_per_s": round(len(lat) / run.elapsed, 2) if run.elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
        "p99_ms": round(percentile(lat, 99), 1),
        "mean_ms": round(statistics.fmean(lat), 1) if lat else float("nan"),
        "errors": len(run.errors), "error_samples": sorted(set(run.errors))[:3]}
    if run.channel == "wechat":
        figures["passive_within_4_5s_pct"] = round(100.0 * sum(run.passive) / len(run.passive), 2) \
            if run.passive else 0.0
    if run.replies:
        figures["replies"] = check_replies(run.replies)
    return figures


def rest_send(session: aiohttp.ClientSession, url: str) -> Send:
    """Messages over the REST channel; the outcome carries the reply texts."""
    async def send(sender: str, text: str) -> Outcome:
        async with session.post(url, json={"sender": sender, "message": text}) as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or not isinstance(body, list):
                raise RuntimeError(f"HTTP {resp.status}")
        return Outcome(None, [str(m.get("text") or m.get("image") or "") for m in body if isinstance(m, dict)])

    return send


def wechat_send(session: aiohttp.ClientSession, url: str, account: Optional[Any] = None) -> Send:
    """Messages as WeChat pushes them (signed, AES-encrypted XML) to the demo account, or to `account` (a
    bot.wechat.accounts.Account: a community's own); the outcome says whether answered passively."""
    from bot.wechat.crypto import MessageCrypto
    from bot.wechat.demo import DEMO_ACCOUNT, DEMO_AES_KEY, DEMO_APPID, DEMO_TOKEN
    from bot.wechat.simulator import WeChatServerSimulator

    if account is None:
        simulator = WeChatServerSimulator(DEMO_TOKEN, DEMO_ACCOUNT,
                                          MessageCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID))
    else:
        simulator = WeChatServerSimulator(account.token, f"gh_{account.community}",
                                          MessageCrypto(account.token, account.aes_key, account.appid))

    async def send(sender: str, text: str) -> Outcome:
        push = simulator.text_push(sender, text)
        async with session.post(url, params=push.query, data=push.body, headers={"Content-Type": "text/xml"}) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
        return Outcome(simulator.open_reply(body, push) is not None, None)

    return send


async def served(url: str, channel: str, messages: int, concurrency: int, rate: float = 0.0,
                 duration: Optional[float] = None, prefix: Optional[str] = None) -> Run:
    """One load run through the running stack over `channel` ("rest" or "wechat"); `duration`: seconds at most."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                     connector=aiohttp.TCPConnector(limit=max(100, 2 * concurrency))) as session:
        send = rest_send(session, url) if channel == "rest" else wechat_send(session, url)
        # WeChat OpenIDs contain no ':' and REST senders are namespaced apart: fresh senders every run.
        prefix = prefix or (f"o_bench_{int(time.time())}" if channel == "wechat" else f"bench-{int(time.time())}")
        return await play(send, channel, messages, concurrency, rate, prefix, duration)


# --- in-process -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def load_timings(into: Dict[str, float]) -> Iterator[None]:
    """While the block runs, add the seconds Rasa spends unpacking a model and loading each graph component
    (by component class) to `into`; Rasa's functions are only wrapped, and restored afterwards."""
    from rasa.engine.graph import GraphNode
    from rasa.engine.storage.local_model_storage import LocalModelStorage

    rasa_unpack = LocalModelStorage.__dict__["from_model_archive"]  # a classmethod object
    rasa_load_component = GraphNode._load_component

    def unpack(cls: type, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return rasa_unpack.__func__(cls, *args, **kwargs)
        finally:
            into["unpack_model"] = into.get("unpack_model", 0.0) + time.perf_counter() - started

    def load_component(node: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            rasa_load_component(node, **kwargs)
        finally:
            name = node._component_class.__name__
            into[name] = into.get(name, 0.0) + time.perf_counter() - started

    LocalModelStorage.from_model_archive = classmethod(unpack)  # type: ignore[assignment]
    GraphNode._load_component = load_component  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalModelStorage.from_model_archive = rasa_unpack
        GraphNode._load_component = rasa_load_component  # type: ignore[method-assign]


async def _inprocess(model: str, action_url: str, messages: int, concurrency: int) -> Dict[str, Any]:
    started = time.perf_counter()
    import rasa.utils.io
    from rasa.core.agent import Agent
    import rasa.utils.tensorflow.environment as tf_env
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.endpoints import EndpointConfig
    from rasa.utils.log_utils import configure_structlog

    from bot import identity, rasa_boot

    # Logging and TensorFlow set up as `rasa run` sets them up (rasa/__main__.py), at its default level:
    # without this Rasa logs every turn at debug level, which would slow this side down.
    configure_logging_and_warnings(None, None, warn_only_once=True, filter_repeated_logs=True)
    tf_env.setup_tf_environment()
    rasa.utils.io.configure_colored_logging(None)
    configure_structlog(None)
    rasa_boot.install()  # the same corrections as our served Rasa
    imported = time.perf_counter()
    parts: Dict[str, float] = {}
    with load_timings(parts):
        agent = Agent.load(model, action_endpoint=EndpointConfig(url=action_url))  # in-memory tracker, lock stores
    loaded = time.perf_counter()
    breakdown = {name: round(t, 2) for name, t in sorted(parts.items(), key=lambda kv: -kv[1]) if t >= 0.01}
    breakdown["rest_of_agent_load"] = round(loaded - imported - sum(parts.values()), 2)
    tracker_store = getattr(agent.tracker_store, "_tracker_store", agent.tracker_store)  # inside FailSafeTrackerStore

    async def send(sender: str, text: str) -> Outcome:
        try:
            replies = await agent.handle_text(text, sender_id=identity.rest_sender(sender))
        except Exception as exc:  # noqa: BLE001 - any failure of a turn is counted as an error by name
            raise RuntimeError(f"{type(exc).__name__}: {exc}") from exc
        return Outcome(None, [str(m.get("text") or m.get("image") or "") for m in replies or []])

    await send("inprocess-warm-up", "你好")  # as start_stack warms the served Rasa with one round trip
    warmed = time.perf_counter()
    try:
        run = await play(send, "rest", messages, concurrency, prefix=f"inprocess-{int(time.time())}")
    finally:
        await rasa_boot.close_sessions()
    return {**run_figures(run), "tracker_store": type(tracker_store).__name__,
            "lock_store": type(agent.lock_store).__name__, "corrections_installed": rasa_boot.installed(),
            "import_s": round(imported - started, 1), "agent_load_s": round(loaded - imported, 1),
            "agent_load_breakdown_s": breakdown, "first_turn_s": round(warmed - loaded, 2)}


def inprocess(model: Path, action_url: str, messages: int, concurrency: int, workdir: Path) -> Dict[str, Any]:
    """Run the in-process measurement in its own process (so the bench's own process stays light)."""
    from bot.config import rasa_env

    out = workdir / "inprocess.json"
    log = workdir / "logs" / "inprocess.log"
    with open(log, "ab") as log_file:
        done = subprocess.run([sys.executable, "-m", "bot.bench", "inprocess", "--model", str(model),
                               "--action-url", action_url, "--messages", str(messages),
                               "--concurrency", str(concurrency), "--out", str(out)],
                              cwd=PROJECT_ROOT, env=rasa_env(), stdout=log_file, stderr=subprocess.STDOUT,
                              timeout=1800, check=False)
    if done.returncode != 0 or not out.is_file():
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"the in-process measurement failed (exit {done.returncode}):\n{tail}")
    return json.loads(out.read_text(encoding="utf-8"))


# --- the summary ----------------------------------------------------------------------------------------------


def _verdict(value: Optional[bool]) -> str:
    return "not measured" if value is None else ("met" if value else "NOT met")


def targets(summary: Dict[str, Any]) -> Dict[str, str]:
    """Issue 7's targets for this 2-core machine, each "met", "NOT met" or "not measured"."""
    half = summary.get("half_load") or {}
    rest, wechat = half.get("rest"), half.get("wechat")
    runs = [r for r in (summary.get("inprocess"), summary.get("served"), rest, wechat) if r]
    real = all(r["replies"]["ok"] for r in (summary.get("inprocess"), summary.get("served")) if r and "replies" in r)
    ratio = summary.get("served_over_inprocess")
    rss = summary.get("rasa_peak_rss_mb")
    ready = summary.get("ready_s")
    return {
        "served_over_inprocess ≥ 1.0": _verdict(None if ratio is None or not real else ratio >= 1.0),
        "half-load REST p95 ≤ 300 ms": _verdict(None if not rest else rest["p95_ms"] <= 300),
        "half-load WeChat p95 ≤ 300 ms": _verdict(None if not wechat else wechat["p95_ms"] <= 300),
        "0 errors": _verdict(None if len(runs) < 4 else all(r["errors"] == 0 for r in runs)),
        "WeChat ≥ 99.5 % answered passively within 4.5 s (half load)":
            _verdict(None if not wechat else wechat["passive_within_4_5s_pct"] >= 99.5),
        "ready ≤ 30 s": _verdict(None if ready is None else ready <= 30),
        "Rasa RSS ≤ 1.2 GB per worker": _verdict(None if rss is None else rss <= 1200),
    }


def assemble(inprocess_figures: Optional[Dict[str, Any]], served_figures: Optional[Dict[str, Any]],
             half_rest: Optional[Dict[str, Any]], half_wechat: Optional[Dict[str, Any]],
             memory: List[ProcessMemory], startup: Dict[str, Any], **context: Any) -> Dict[str, Any]:
    """The JSON summary: headline figures first, then each run, memory, start-up, and the targets' verdicts."""
    in_rate = inprocess_figures["msgs_per_s"] if inprocess_figures else None
    served_rate = served_figures["msgs_per_s"] if served_figures else None
    summary: Dict[str, Any] = {
        "inprocess_msgs_per_s": in_rate,
        "served_msgs_per_s": served_rate,
        "served_over_inprocess": round(served_rate / in_rate, 2) if in_rate and served_rate is not None else None,
        **memory_figures(memory),
        "ready_s": startup.get("rasa_first_answer_s"),
        **context,
        "inprocess": inprocess_figures,
        "served": served_figures,
        "half_load": {"offered_msgs_per_s": (half_rest or half_wechat or {}).get("offered_msgs_per_s"),
                      "rest": half_rest, "wechat": half_wechat},
        "startup": startup,
    }
    summary["targets"] = targets(summary)
    return summary


# --- the run --------------------------------------------------------------------------------------------------


def train_time() -> float:
    """Seconds to train the model from scratch into a scratch folder."""
    from bot.training import ensure_model

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        ensure_model(models_dir=Path(scratch))
        return time.perf_counter() - started


def _load_average() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _profiled_unpaced(stack: Any, process: Optional[str], messages: int, concurrency: int
                      ) -> Tuple[Run, Optional[Dict[str, Any]]]:
    if process is None:
        return asyncio.run(served(stack.rest_url, "rest", messages, concurrency)), None
    from bot.devtools.profiling import Recording, summary as profile_summary

    with Recording(stack.supervisor.procs[process].pid, f"bench-{process}") as recording:
        run = asyncio.run(served(stack.rest_url, "rest", messages, concurrency))
    return run, {"process": process, "part": "served (unpaced REST)", **profile_summary(recording.path)}


def bench(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole run (see the module docstring); returns the summary."""
    from bot.devtools.stack import start_stack
    from bot.training import ensure_model

    context: Dict[str, Any] = {"command": "make bench" + (f" BENCH_ARGS='{' '.join(args.argv)}'" if args.argv else ""),
                               "messages": args.messages, "concurrency": args.concurrency, "cpus": os.cpu_count(),
                               "load_average": {"start": _load_average()}}
    if not args.skip_train:
        context["training_s"] = round(train_time(), 1)
        print(f"training from scratch: {context['training_s']} s", flush=True)
    model = ensure_model(quiet=True)
    clock = StartupClock()
    with tempfile.TemporaryDirectory(prefix="hg-bench-") as scratch:
        work = Path(scratch)
        called = time.monotonic()
        stack = start_stack(model, work, webchat=True, before_spawn=clock)  # webchat: the demo WeChat account
        started = time.monotonic()
        startup: Dict[str, Any] = clock.finish()
        assert clock.spawned_at is not None
        startup.update(database_setup_s=round(clock.spawned_at - called, 1),
                       start_stack_s=round(started - clock.spawned_at, 1))
        print(f"stack ready: {startup}", flush=True)
        try:
            with MemoryWatch(stack.supervisor.procs["rasa"].pid) as memory:
                context["load_average"]["inprocess"] = _load_average()
                in_figures = inprocess(model, stack.settings.action_endpoint_url, args.messages,
                                       args.concurrency, work)
                print(f"in-process: {in_figures['msgs_per_s']} msg/s", flush=True)
                context["load_average"]["served"] = _load_average()
                unpaced, profile = _profiled_unpaced(stack, args.profile, args.messages, args.concurrency)
                served_figures = run_figures(unpaced)
                print(f"served: {served_figures['msgs_per_s']} msg/s", flush=True)
                rate = half_load_rate(served_figures["msgs_per_s"])
                half_rest = half_wechat = None
                if rate:
                    context["load_average"]["half_load"] = _load_average()
                    half_rest = run_figures(asyncio.run(served(stack.rest_url, "rest", args.messages,
                                                               args.concurrency, rate)))
                    wechat_url = f"{stack.settings.rasa_url}/webhooks/wechat/webhook"
                    half_wechat = run_figures(asyncio.run(served(wechat_url, "wechat", args.messages,
                                                                 args.concurrency, rate)))
        finally:
            stack.stop()
    startup["agent_load_s"] = in_figures["agent_load_s"]  # in-process, while the stack idled
    startup["agent_load_breakdown_s"] = in_figures["agent_load_breakdown_s"]
    startup["rasa_import_s"] = in_figures["import_s"]
    startup["cli_imports"] = import_costs()
    context["load_average"]["end"] = _load_average()
    summary = assemble(in_figures, served_figures, half_rest, half_wechat, list(memory.peaks.values()), startup,
                       **context)
    if profile is not None:
        summary["profile"] = profile
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    """`make bench`, or (`inprocess …`) the in-process measurement the bench runs in its own process."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["inprocess"]:
        parser = argparse.ArgumentParser(prog="python -m bot.bench inprocess")
        parser.add_argument("--model", required=True)
        parser.add_argument("--action-url", required=True)
        parser.add_argument("--messages", type=int, required=True)
        parser.add_argument("--concurrency", type=int, required=True)
        parser.add_argument("--out", type=Path, required=True)
        sub = parser.parse_args(argv[1:])
        figures = asyncio.run(_inprocess(sub.model, sub.action_url, sub.messages, sub.concurrency))
        sub.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
        return 0
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--messages", type=int, default=500, help="messages in each run")
    parser.add_argument("--concurrency", type=int, default=20, help="simulated residents, in every run")
    parser.add_argument("--skip-train", action="store_true", help="do not time a training from scratch")
    parser.add_argument("--profile", choices=("rasa", "actions"),
                        help="record this process with py-spy during the unpaced served run")
    args = parser.parse_args(argv)
    args.argv = argv
    summary = bench(args)
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(text + "\n", encoding="utf-8")
    for name, verdict in summary["targets"].items():
        print(f"target {name}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
