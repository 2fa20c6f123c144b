"""`python -m bot console` with two worker processes on one port: a session signed in once holds on every connection."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from bot.config import PROJECT_ROOT
from tests.console_kit import DEMO_PASSWORD
from tests.helpers import community_db, free_socket, quiet_env

CSRF = 'name="csrf_token" value="'


def _children(pid: int) -> list:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _wait_health(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the console exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the console did not answer /health")


async def test_two_console_workers_serve_one_port_and_share_sessions(tmp_path: Path, sqlite_url: str) -> None:
    community_db(sqlite_url)
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = quiet_env(DATABASE_URL=sqlite_url, HG_VAR_DIR=str(tmp_path), HG_CONSOLE_WORKERS="2",
                    HG_CONSOLE_SECRET="test-console-secret-0123456789")
    proc = subprocess.Popen([sys.executable, "-m", "bot", "console", "--port", str(port)], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_health(base + "/health", proc)
        assert len(_children(proc.pid)) >= 2, "expected two worker processes"
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(base + "/login") as resp:
                page = await resp.text()
            token = page.split(CSRF, 1)[1].split('"', 1)[0]
            async with http.post(base + "/login", data={"key": "zhouming", "password": DEMO_PASSWORD,
                                                        "csrf_token": token, "next": "/"},
                                 allow_redirects=False) as resp:
                assert resp.status == 303
            # New connections each time, so the kernel spreads them over both workers.
            statuses = []
            for _ in range(30):
                async with aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(force_close=True)) as one:
                    async with one.get(base + "/", allow_redirects=False) as resp:
                        statuses.append(resp.status)
                        assert "周明" in await resp.text()
        assert statuses == [200] * 30
    finally:
        import os
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
