"""The bench's own logic, without a model: percentiles, pacing, memory read from /proc, reply checks, verdicts."""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Iterator, List, Tuple

import pytest

from bot.bench import (
    PHONE_STEP,
    SCRIPT,
    Outcome,
    ProcessMemory,
    Run,
    StartupClock,
    assemble,
    check_replies,
    descendants,
    half_load_rate,
    memory_figures,
    parse_importtime,
    percentile,
    play,
    rasa_memory,
    run_figures,
    script_text,
)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # unsorted on purpose
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50.0, 95.0, 99.0)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


@pytest.mark.parametrize("served,rate", [(12.4, 6.2), (40.0, 20.0), (0.1, 0.1), (0.0, 0.0), (float("nan"), 0.0)])
def test_half_load_offers_half_the_served_capacity(served: float, rate: float) -> None:
    assert half_load_rate(served) == rate


# --- memory ---------------------------------------------------------------------------------------------------


def _fake_process(proc: Path, pid: int, ppid: int, cmd: bytes, peak_kb: int, comm: str = "python") -> None:
    folder = proc / str(pid)
    folder.mkdir()
    (folder / "stat").write_text(f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560")
    (folder / "cmdline").write_bytes(cmd)
    (folder / "status").write_text(f"Name:\t{comm}\nVmPeak:\t{peak_kb + 5000} kB\nVmHWM:\t{peak_kb} kB\n"
                                   f"VmRSS:\t{peak_kb - 100} kB\n")


def test_forked_children_with_the_servers_command_line_are_its_workers(tmp_path: Path) -> None:
    rasa = b"python\0-m\0bot.rasa_boot\0run\0"
    _fake_process(tmp_path, 100, 1, rasa, 300 * 1024, comm="python (main) x")  # parentheses in comm
    _fake_process(tmp_path, 101, 100, rasa, 900 * 1024)
    _fake_process(tmp_path, 102, 100, rasa, 1000 * 1024)
    _fake_process(tmp_path, 103, 100, b"python\0-c\0from multiprocessing.resource_tracker import main\0", 10 * 1024)
    _fake_process(tmp_path, 104, 103, b"sh\0", 1024)  # a grandchild
    _fake_process(tmp_path, 200, 1, rasa, 5000 * 1024)  # another Rasa, not ours
    (tmp_path / "self").mkdir()  # non-numeric entries are not processes

    assert descendants(100, tmp_path) == [101, 102, 103, 104]
    found = rasa_memory(100, tmp_path)
    assert [(p.pid, p.role, p.peak_mb) for p in found] == [
        (100, "main", 300.0), (101, "worker", 900.0), (102, "worker", 1000.0), (103, "helper", 10.0),
        (104, "helper", 1.0)]
    figures = memory_figures(found)
    assert figures["rasa_peak_rss_mb"] == 1000.0
    assert figures["rasa_rss"]["workers"] == 2
    assert figures["rasa_rss"]["total_mb"] == 2211.0
    assert [p["role"] for p in figures["rasa_rss"]["per_process"]] == ["main", "worker", "worker", "helper", "helper"]


def test_a_server_without_worker_children_is_its_own_worker(tmp_path: Path) -> None:
    _fake_process(tmp_path, 100, 1, b"python\0-m\0bot.rasa_boot\0run\0", 1500 * 1024)
    found = rasa_memory(100, tmp_path)
    assert [(p.role, p.peak_mb) for p in found] == [("worker", 1500.0)]
    assert memory_figures(found)["rasa_peak_rss_mb"] == 1500.0
    assert rasa_memory(999, tmp_path) == []  # a server that is gone


def _wait_for(stop: "multiprocessing.synchronize.Event") -> None:
    stop.wait(30)


def test_memory_of_real_processes_is_read_from_proc() -> None:
    stop = multiprocessing.get_context("fork").Event()
    forked = multiprocessing.get_context("fork").Process(target=_wait_for, args=(stop,))  # as Sanic forks workers
    forked.start()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while forked.pid not in descendants(os.getpid()) or other.pid not in descendants(os.getpid()):
            assert time.monotonic() < deadline, "children did not show up in /proc"
            time.sleep(0.05)
        roles = {p.pid: p.role for p in rasa_memory(os.getpid())}
        assert roles[os.getpid()] == "main"
        assert roles[forked.pid] == "worker"
        assert roles[other.pid] == "helper"
        assert all(p.peak_mb > 1 for p in rasa_memory(os.getpid()) if p.pid in (os.getpid(), forked.pid))
    finally:
        stop.set()
        other.kill()
        forked.join(10)
        other.wait(10)


# --- start-up -------------------------------------------------------------------------------------------------


def test_importtime_lines_give_module_depth_and_cumulative_time() -> None:
    stderr = ("import time: self [us] | cumulative | imported package\n"
              "import time:       120 |        120 |   _io\n"
              "import time:      2000 |    1500000 | rasa\n"
              "import time:       300 |    1200000 |   tensorflow\n"
              "import time:        50 |         50 |     tensorflow.python\n"
              "some other line\n")
    assert parse_importtime(stderr) == [("_io", 1, 120), ("rasa", 0, 1500000), ("tensorflow", 1, 1200000),
                                        ("tensorflow.python", 2, 50)]


class _FakeStack(BaseHTTPRequestHandler):
    rest_calls = 0

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        type(self).rest_calls += 1
        body = [] if type(self).rest_calls < 3 else [{"recipient_id": "x", "text": "您好"}]  # model not ready yet
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def fake_stack() -> Iterator[SimpleNamespace]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeStack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield SimpleNamespace(action_port=port, console_base_url=f"http://127.0.0.1:{port}",
                          rasa_url=f"http://127.0.0.1:{port}")
    server.shutdown()


def test_startup_clock_waits_for_a_rest_answer_that_says_something(fake_stack: SimpleNamespace) -> None:
    _FakeStack.rest_calls = 0
    clock = StartupClock(poll=0.05, give_up=10)
    clock(fake_stack)
    times = clock.finish(timeout=10)
    assert set(times) == {"actions_health_s", "console_health_s", "rasa_root_s", "rasa_first_answer_s"}
    assert all(t is not None and 0 <= t < 10 for t in times.values())  # "/" answers 404: it is listening
    assert _FakeStack.rest_calls == 3  # the two empty answers did not count


def test_startup_clock_reports_what_never_answered() -> None:
    nobody = SimpleNamespace(action_port=1, console_base_url="http://127.0.0.1:1", rasa_url="http://127.0.0.1:1")
    clock = StartupClock(poll=0.05, give_up=0.3)
    clock(nobody)
    assert clock.finish(timeout=5) == {"actions_health_s": None, "console_health_s": None, "rasa_root_s": None,
                                       "rasa_first_answer_s": None}


# --- residents and replies ------------------------------------------------------------------------------------


def _fake_bot(log: List[Tuple[str, str]]):
    async def send(sender: str, text: str) -> Outcome:
        log.append((sender, text))
        await asyncio.sleep(0.001)
        return Outcome(None, ["已受理，工单号 HG-20250101-0001" if text.startswith("138") else "好的"])
    return send


def test_residents_interleave_and_each_follows_the_script_in_order() -> None:
    log: List[Tuple[str, str]] = []
    run = asyncio.run(play(_fake_bot(log), "rest", messages=25, concurrency=2, prefix="t"))
    assert len(log) == len(run.latencies) == 25 and not run.errors
    assert log[0][0] != log[1][0]  # both residents talk at once
    by_sender: Dict[str, List[str]] = {}
    for sender, text in log:
        by_sender.setdefault(sender, []).append(text)
    assert sorted(by_sender) == ["t-0-1", "t-0-2", "t-1-1", "t-1-2"]  # a new conversation each round
    assert by_sender["t-0-1"] == [script_text(i, 0, 1) for i in range(len(SCRIPT))]
    assert by_sender["t-1-2"][0] == SCRIPT[0]
    assert script_text(PHONE_STEP, 0, 1) != script_text(PHONE_STEP, 0, 2)  # each round reports with a new phone
    assert check_replies(run.replies)["ok"]


def test_paced_residents_offer_the_asked_rate() -> None:
    log: List[Tuple[str, str]] = []
    run = asyncio.run(play(_fake_bot(log), "rest", messages=12, concurrency=3, rate=40.0))
    # 12 messages at 40 msg/s: the last leaves about 11/40 s after the first
    assert 0.25 <= run.elapsed < 3.0
    assert run_figures(run)["offered_msgs_per_s"] == 40.0


def test_errors_are_counted_and_a_failed_wechat_push_is_not_passive() -> None:
    calls = []

    async def flaky(sender: str, text: str) -> Outcome:
        calls.append(text)
        if len(calls) % 2 == 0:
            raise RuntimeError("HTTP 502")
        return Outcome(True, None)

    figures = run_figures(asyncio.run(play(flaky, "wechat", messages=10, concurrency=1)))
    assert figures["errors"] == 5 and figures["error_samples"] == ["RuntimeError: HTTP 502"]
    assert figures["passive_within_4_5s_pct"] == 50.0
    assert "replies" not in figures  # WeChat replies are not read


def test_replies_are_real_only_when_every_leak_report_ends_with_a_ticket() -> None:
    good = {"a": [(0, ["您好"]), (PHONE_STEP, ["已为您登记，工单号 HG-20250101-0007"])]}
    assert check_replies(good) == {"turns": 2, "unanswered": 0, "leak_reports": 1, "leak_reports_with_ticket": 1,
                                   "ok": True}
    no_ticket = {**good, "b": [(PHONE_STEP, ["抱歉，系统繁忙"])]}
    assert not check_replies(no_ticket)["ok"]
    silent = {"a": good["a"] + [(1, [])]}
    assert check_replies(silent)["unanswered"] == 1 and not check_replies(silent)["ok"]
    assert not check_replies({"a": [(0, ["您好"])]})["ok"]  # no leak report reached: nothing proves the actions ran


def test_run_figures_give_the_rate_and_percentiles() -> None:
    run = Run(channel="rest", concurrency=4, latencies=[float(v) for v in range(1, 101)], elapsed=10.0)
    figures = run_figures(run)
    assert figures["msgs_per_s"] == 10.0 and figures["offered_msgs_per_s"] == "unpaced"
    assert (figures["p50_ms"], figures["p95_ms"], figures["p99_ms"]) == (50.0, 95.0, 99.0)


# --- the summary ----------------------------------------------------------------------------------------------


def _run(msgs_per_s: float, p95: float = 100.0, errors: int = 0, replies_ok: bool = True, **extra: object) -> dict:
    return {"msgs_per_s": msgs_per_s, "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 1.2, "errors": errors,
            "offered_msgs_per_s": extra.pop("offered", "unpaced"),
            **({"replies": {"ok": replies_ok}} if replies_ok is not None else {}), **extra}


def _summary(**changes: object) -> dict:
    parts = dict(inprocess=_run(10.0), served=_run(12.0),
                 half_rest=_run(6.0, p95=200.0, offered=6.0, replies_ok=None),
                 half_wechat=_run(6.0, p95=250.0, offered=6.0, replies_ok=None, passive_within_4_5s_pct=100.0),
                 memory=[ProcessMemory(1, "main", 300.0), ProcessMemory(2, "worker", 1100.0),
                         ProcessMemory(3, "worker", 1150.0)],
                 startup={"rasa_first_answer_s": 25.0, "actions_health_s": 3.0})
    parts.update(changes)
    return assemble(parts["inprocess"], parts["served"], parts["half_rest"], parts["half_wechat"], parts["memory"],
                    parts["startup"], command="make bench")


def test_summary_puts_the_headline_figures_first_and_meets_every_target() -> None:
    summary = _summary()
    assert list(summary)[:6] == ["inprocess_msgs_per_s", "served_msgs_per_s", "served_over_inprocess",
                                 "rasa_peak_rss_mb", "rasa_rss", "ready_s"]
    assert summary["served_over_inprocess"] == 1.2
    assert summary["rasa_peak_rss_mb"] == 1150.0 and summary["rasa_rss"]["total_mb"] == 2550.0
    assert summary["ready_s"] == 25.0 and summary["half_load"]["offered_msgs_per_s"] == 6.0
    assert set(summary["targets"].values()) == {"met"}
    json.dumps(summary)  # it is written as JSON


@pytest.mark.parametrize("changes,target", [
    (dict(served=_run(9.0)), "served_over_inprocess ≥ 1.0"),
    (dict(half_rest=_run(6.0, p95=301.0, offered=6.0, replies_ok=None)), "half-load REST p95 ≤ 300 ms"),
    (dict(half_wechat=_run(6.0, p95=900.0, offered=6.0, replies_ok=None, passive_within_4_5s_pct=100.0)),
     "half-load WeChat p95 ≤ 300 ms"),
    (dict(served=_run(12.0, errors=1)), "0 errors"),
    (dict(half_wechat=_run(6.0, offered=6.0, replies_ok=None, passive_within_4_5s_pct=99.4)),
     "WeChat ≥ 99.5 % answered passively within 4.5 s (half load)"),
    (dict(startup={"rasa_first_answer_s": 30.5}), "ready ≤ 30 s"),
    (dict(memory=[ProcessMemory(1, "worker", 1201.0)]), "Rasa RSS ≤ 1.2 GB per worker"),
])
def test_each_target_missed_is_reported_not_met(changes: dict, target: str) -> None:
    verdicts = _summary(**changes)["targets"]
    assert verdicts[target] == "NOT met"
    assert [name for name, v in verdicts.items() if v != "met"] == [target]


def test_a_ratio_from_replies_that_are_not_real_is_not_a_measurement() -> None:
    summary = _summary(inprocess=_run(50.0, replies_ok=False))
    assert summary["targets"]["served_over_inprocess ≥ 1.0"] == "not measured"


def test_parts_that_did_not_run_are_not_measured() -> None:
    verdicts = _summary(half_rest=None, half_wechat=None, startup={}, memory=[])["targets"]
    assert verdicts["half-load REST p95 ≤ 300 ms"] == "not measured"
    assert verdicts["0 errors"] == "not measured"
    assert verdicts["ready ≤ 30 s"] == "not measured"
    assert verdicts["Rasa RSS ≤ 1.2 GB per worker"] == "not measured"
    assert verdicts["served_over_inprocess ≥ 1.0"] == "met"
