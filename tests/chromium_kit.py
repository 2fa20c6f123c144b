"""Headless Debian Chromium driven over the DevTools protocol (aiohttp websocket): no downloaded browser."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Optional

import aiohttp

from bot.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
ENSURE_SCRIPT = PROJECT_ROOT / "scripts" / "ensure_chromium.sh"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


def ensure_chromium() -> Path:
    """Debian's chromium, installed with apt-get by scripts/ensure_chromium.sh when missing."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(ENSURE_SCRIPT)], check=True, timeout=900)
    return CHROMIUM


class DevToolsError(RuntimeError):
    """A DevTools command failed, or a page script threw."""


class Page:
    """One page target: send DevTools commands, evaluate JavaScript, take screenshots."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: float = 30) -> Dict[str, Any]:
        """Send one command and wait for its result (events in between are skipped)."""
        ident = next(self._ids)
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = await self._ws.receive(timeout=max(0.1, deadline - time.monotonic()))
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise DevToolsError(f"DevTools connection ended during {method}: {msg.type}")
            data = json.loads(msg.data)
            if data.get("id") == ident:
                if "error" in data:
                    raise DevToolsError(f"{method}: {data['error']}")
                return data.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = await self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True})
        if "exceptionDetails" in result:
            raise DevToolsError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def navigate(self, url: str, ready: str = "document.readyState === 'complete'", timeout: float = 30) -> None:
        """Open `url` and wait until `ready` holds."""
        await self.call("Page.navigate", {"url": url})
        await self.wait_for(ready, timeout)

    async def wait_for(self, condition: str, timeout: float = 30, interval: float = 0.2) -> Any:
        """Poll a JavaScript condition until it is truthy; returns its value, DevToolsError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.evaluate(condition)
            except DevToolsError:
                value = None  # navigation in progress
            if value:
                return value
            if time.monotonic() > deadline:
                raise DevToolsError(f"timed out waiting for: {condition}")
            await asyncio.sleep(interval)

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the viewport."""
        data = await self.call("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path


async def _devtools_port(profile: Path, proc: asyncio.subprocess.Process, timeout: float = 30) -> int:
    marker = profile / "DevToolsActivePort"  # Chromium writes the port it bound (we asked for port 0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise DevToolsError(f"chromium exited with {proc.returncode}")
        if marker.is_file():
            first = marker.read_text().splitlines()[:1]
            if first and first[0].isdecimal():
                return int(first[0])
        await asyncio.sleep(0.1)
    raise DevToolsError("chromium did not open its DevTools port")


@asynccontextmanager
async def headless_page(width: int = 414, height: int = 860) -> AsyncIterator[Page]:
    """A fresh headless Chromium (new profile) with one blank page; closed afterwards."""
    binary = ensure_chromium()
    profile = Path(tempfile.mkdtemp(prefix="hg-chromium-"))
    proc = await asyncio.create_subprocess_exec(
        str(binary), *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        port = await _devtools_port(profile, proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json(content_type=None)
            target = next(t for t in targets if t.get("type") == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                await page.call("Runtime.enable")
                yield page
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
