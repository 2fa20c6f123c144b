"""`make bench`: load the REST and WeChat channels with simulated residents; report latency, throughput, memory."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Awaitable, Callable, Dict, List, Optional, Tuple

import aiohttp

from bot.config import PROJECT_ROOT
from bot.wechat.crypto import MessageCrypto
from bot.wechat.demo import DEMO_ACCOUNT, DEMO_AES_KEY, DEMO_APPID, DEMO_TOKEN
from bot.wechat.simulator import WeChatServerSimulator

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


def percentile(values: List[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, in MB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


Send = Callable[[aiohttp.ClientSession, str, str, str], Awaitable[Optional[bool]]]


async def rest_send(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> Optional[bool]:
    """One message over the REST channel; returns None (REST has no passive/async distinction)."""
    async with session.post(url, json={"sender": sender, "message": text}) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200 or not isinstance(body, list):
            raise RuntimeError(f"HTTP {resp.status}")
    return None


def wechat_sender(simulator: WeChatServerSimulator) -> Send:
    """One message as WeChat would push it (signed, AES-encrypted); returns True when answered passively."""
    async def send(session: aiohttp.ClientSession, url: str, sender: str, text: str) -> Optional[bool]:
        push = simulator.text_push(sender, text)
        async with session.post(url, params=push.query, data=push.body,
                                headers={"Content-Type": "text/xml"}) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
        return simulator.open_reply(body, push) is not None

    return send


async def resident(session: aiohttp.ClientSession, url: str, number: int, budget: "Budget",
                   latencies: List[float], errors: List[str], interval: float = 0.0,
                   send: Optional[Send] = None,
                   passive: Optional[List[bool]] = None, prefix: str = "bench") -> None:
    """One simulated resident talking until the shared budget is used up.

    With `interval` > 0 the resident sends one message every `interval` seconds (waiting for each
    reply first, as a person would); with 0 it sends the next message as soon as a reply arrives.
    """
    step = 0
    conversation = 0
    loop = asyncio.get_running_loop()
    next_at = loop.time() + (interval * number / 20 if interval else 0.0)
    while budget.take():
        if interval:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += interval
        template = SCRIPT[step % len(SCRIPT)]
        if step % len(SCRIPT) == 0:
            conversation += 1
        text = template.format(building=1 + number % 6, unit=1 + number % 3, room=101 + (number % 6) * 100,
                               tail=number * 1000 + conversation)
        sender = f"{prefix}-{number}-{conversation}"
        started = time.perf_counter()
        try:
            answered_passively = await (send or rest_send)(session, url, sender, text)
            elapsed_ms = (time.perf_counter() - started) * 1000
            if passive is not None:
                passive.append(bool(answered_passively) and elapsed_ms <= 4500)
        except (aiohttp.ClientError, asyncio.TimeoutError, RuntimeError, ValueError) as exc:
            errors.append(type(exc).__name__)
            elapsed_ms = (time.perf_counter() - started) * 1000
        latencies.append(elapsed_ms)
        step += 1


class Budget:
    """A shared count of messages still to send."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self) -> bool:
        """Take one message from the budget; False when none is left."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def load(url: str, messages: int, concurrency: int, rate: float = 0.0,
               send: Optional[Send] = None,
               passive: Optional[List[bool]] = None, prefix: str = "bench") -> Tuple[List[float], List[str], float]:
    """Send `messages` messages from `concurrency` residents (offering `rate` msg/s in all, 0 = as fast as
    replies come); returns latencies (ms), errors and seconds."""
    interval = concurrency / rate if rate else 0.0
    latencies: List[float] = []
    errors: List[str] = []
    budget = Budget(messages)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(resident(session, url, n, budget, latencies, errors, interval, send, passive, prefix)
                                 for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


def train_time() -> float:
    """Seconds to train the model from scratch into a scratch folder."""
    from bot.training import ensure_model

    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        ensure_model(models_dir=Path(scratch))
        return time.perf_counter() - started


def report_rest(stack, messages: int, concurrency: int, rate: float = 0.0, channel: str = "rest") -> Dict[str, float]:
    """Run the load over REST or over the WeChat channel (signed, encrypted XML) and return the figures."""
    rasa_pid = stack.supervisor.procs["rasa"].pid
    peak = [0.0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], peak_rss_mb(rasa_pid))
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    passive: List[bool] = []
    if channel == "wechat":
        simulator = WeChatServerSimulator(DEMO_TOKEN, DEMO_ACCOUNT, MessageCrypto(DEMO_TOKEN, DEMO_AES_KEY, DEMO_APPID))
        url = f"{stack.settings.rasa_url}/webhooks/wechat/webhook"
        latencies, errors, elapsed = asyncio.run(load(url, messages, concurrency, rate, wechat_sender(simulator),
                                                      passive, prefix=f"o_bench_{int(time.time())}"))
    else:
        latencies, errors, elapsed = asyncio.run(load(stack.rest_url, messages, concurrency, rate,
                                                      prefix=f"bench-{int(time.time())}"))
    stop.set()
    watcher.join()
    return {"messages": len(latencies), "concurrency": concurrency, "offered_msgs_per_s": rate or "unpaced", "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95), "p99_ms": percentile(latencies, 99),
            "mean_ms": statistics.fmean(latencies) if latencies else float("nan"),
            "msgs_per_s": len(latencies) / elapsed if elapsed else 0.0, "errors": len(errors),
            "rasa_peak_rss_mb": max(peak[0], peak_rss_mb(rasa_pid)),
            **({"passive_within_4_5s_pct": 100.0 * sum(passive) / len(passive) if passive else 0.0}
               if channel == "wechat" else {})}


def main(argv: Optional[List[str]] = None) -> int:
    """Train (timed), start the stack, run the load, print and save the figures."""
    from bot.devtools.stack import start_stack
    from bot.training import ensure_model

    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--rate", type=float, default=40.0,
                        help="messages per second offered by all residents together in the paced run")
    parser.add_argument("--skip-train", action="store_true", help="do not time a training from scratch")
    args = parser.parse_args(argv)

    figures: Dict[str, object] = {}
    if not args.skip_train:
        figures["training_s"] = round(train_time(), 1)
        print(f"training from scratch: {figures['training_s']} s", flush=True)
    model = ensure_model(quiet=True)
    with tempfile.TemporaryDirectory() as work:
        stack = start_stack(model, Path(work), webchat=True)  # webchat: the demo WeChat account
        try:
            # Paced: the target scenario (residents wait for each reply, 40 msg/s offered in all).
            paced = report_rest(stack, args.messages, args.concurrency, args.rate)
            # The same load as signed, encrypted WeChat pushes through the WeChat channel.
            wechat = report_rest(stack, args.messages, args.concurrency, args.rate, channel="wechat")
            # Unpaced: each resident sends again as soon as it is answered, to find the capacity.
            unpaced = report_rest(stack, args.messages, args.concurrency)
        finally:
            stack.stop()
    figures["rest_paced"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in paced.items()}
    figures["rest_unpaced"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in unpaced.items()}
    figures["wechat_paced"] = {k: round(v, 1) if isinstance(v, float) else v for k, v in wechat.items()}
    figures["wechat_over_rest"] = {q: round(wechat[q] / paced[q], 2) if paced[q] else None
                                   for q in ("p50_ms", "p95_ms", "p99_ms")}
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    out = PROJECT_ROOT / "reports" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, ensure_ascii=False, indent=2), encoding="utf-8")
    targets = {
        "p95 ≤ 150 ms at 40 msg/s offered": paced["p95_ms"] <= 150,
        "capacity ≥ 40 msg/s (unpaced)": unpaced["msgs_per_s"] >= 40,
        "0 errors": paced["errors"] == 0 and unpaced["errors"] == 0,
        "Rasa RSS ≤ 1.2 GB": max(paced["rasa_peak_rss_mb"], unpaced["rasa_peak_rss_mb"]) <= 1200,
        "WeChat ≥ 99% answered passively within 4.5 s": wechat["passive_within_4_5s_pct"] >= 99,
        "WeChat latency ≤ 1.3 × REST (p95)": wechat["p95_ms"] <= 1.3 * paced["p95_ms"],
    }
    for name, met in targets.items():
        print(f"target {name}: {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
