"""Browser tests with Playwright (async API) on Debian's Chromium: one browser per session, a fresh context per test.

The fixtures are registered for the whole suite (``pytest_plugins`` in tests/conftest.py)::

    from playwright.async_api import Page, expect
    from tests.browser import save_screenshot

    async def test_a_grid_worker_logs_in_on_the_phone(phone_page: Page, stack: Stack) -> None:
        await phone_page.goto(stack.console_url)
        await phone_page.get_by_label("手机号").fill("13800000000")
        await phone_page.get_by_role("button", name="登录").click()
        await expect(phone_page.get_by_text("今日工单")).to_be_visible()
        await save_screenshot(phone_page, "console_login")

- ``browser``: the Chromium of this test session, launched on first use (``scripts/ensure_chromium.sh`` apt-get
  installs it when missing; Playwright never downloads a browser).
- ``phone_page``: a page in a new context sized like a phone (390x844, touch, ``zh-CN``, Asia/Shanghai).
- ``desktop_page``: the same on a 1280x800 desktop screen.
- ``open_page(browser, PHONE)``: an async context manager for tests that need more than one person at once,
  e.g. ``async with open_page(browser, PHONE) as resident, open_page(browser, DESKTOP) as staff:``.

Every context is new, so cookies and localStorage never leak between tests. When a test fails, each page it
still has open is saved under ``reports/failures/``.

Event loops: Playwright objects belong to the event loop that created them, and the session's browser lives on
pytest-asyncio's session loop. Tests that use these fixtures are moved to that loop automatically
(``pytest_collection_modifyitems`` below); nothing to mark by hand. A test that asks for another loop scope with
``pytest.mark.asyncio(loop_scope=...)``, or a synchronous test, is refused with a clear message.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import warnings
from contextlib import asynccontextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, AsyncIterator, Generator, List, Mapping

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright
from pytest_asyncio import is_async_test

from bot.config import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
ENSURE_SCRIPT = PROJECT_ROOT / "scripts" / "ensure_chromium.sh"
REPORTS = PROJECT_ROOT / "reports"
# Without the background-networking flags Chromium keeps calling home, which floods a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ACTION_TIMEOUT_MS = 10_000  # clicks, fills and locator waits
NAVIGATION_TIMEOUT_MS = 30_000

PHONE: Mapping[str, Any] = MappingProxyType({
    "viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
    "locale": "zh-CN", "timezone_id": "Asia/Shanghai"})
DESKTOP: Mapping[str, Any] = MappingProxyType({
    "viewport": {"width": 1280, "height": 800}, "locale": "zh-CN", "timezone_id": "Asia/Shanghai"})

BROWSER_FIXTURES = frozenset({"browser", "phone_page", "desktop_page"})
_FAILED = pytest.StashKey[bool]()


def ensure_chromium() -> Path:
    """Debian's Chromium, installed with apt-get by scripts/ensure_chromium.sh when missing."""
    if not CHROMIUM.exists():
        subprocess.run(["bash", str(ENSURE_SCRIPT)], check=True, timeout=900)
    return CHROMIUM


async def save_screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of `page` as reports/<name>.png (git-ignored) and return its path."""
    path = REPORTS / (name if name.endswith(".png") else f"{name}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=full_page)
    return path


@asynccontextmanager
async def open_page(browser: Browser, device: Mapping[str, Any] = PHONE) -> AsyncIterator[Page]:
    """A page in a new browser context (own cookies and storage) shaped like `device`; closed afterwards."""
    context = await browser.new_context(**device)
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium, launched once for the test session."""
    executable = await asyncio.to_thread(ensure_chromium)  # apt-get may take minutes when it is missing
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(executable), headless=True,
                                                    args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@asynccontextmanager
async def _test_page(request: pytest.FixtureRequest, browser: Browser,
                     device: Mapping[str, Any]) -> AsyncIterator[Page]:
    async with open_page(browser, device) as page:
        yield page
        if request.node.stash.get(_FAILED, False):
            await _save_failure_screenshots(request.node, page.context.pages)


async def _save_failure_screenshots(item: pytest.Item, pages: List[Page]) -> None:
    stem = re.sub(r"[^\w.-]+", "_", f"{item.path.stem}.{item.name}")
    for index, page in enumerate(pages):
        try:
            await save_screenshot(page, f"failures/{stem}{f'-{index}' if index else ''}")
        except Exception as exc:  # noqa: BLE001 - a crashed page must not hide the test's own failure
            warnings.warn(f"{item.nodeid}: could not save a screenshot of page {index}: {exc}", stacklevel=1)


@pytest_asyncio.fixture(loop_scope="session")
async def phone_page(request: pytest.FixtureRequest, browser: Browser) -> AsyncIterator[Page]:
    """A fresh phone-sized page (390x844, touch, zh-CN) for one test."""
    async with _test_page(request, browser, PHONE) as page:
        yield page


@pytest_asyncio.fixture(loop_scope="session")
async def desktop_page(request: pytest.FixtureRequest, browser: Browser) -> AsyncIterator[Page]:
    """A fresh desktop-sized page (1280x800, zh-CN) for one test."""
    async with _test_page(request, browser, DESKTOP) as page:
        yield page


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Run every test that uses a browser fixture on the session event loop, where the browser lives."""
    for item in items:
        if not BROWSER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            continue
        if not is_async_test(item):
            raise pytest.UsageError(f"{item.nodeid}: browser fixtures need an `async def` test")
        marker = item.get_closest_marker("asyncio")
        scope = (marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")) if marker else None
        if scope not in (None, "session"):
            raise pytest.UsageError(f"{item.nodeid}: browser fixtures run on the session event loop, "
                                    f"not loop_scope={scope!r}; drop the loop_scope argument")
        item.add_marker(pytest.mark.asyncio(loop_scope="session"), append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Remember a failed test body, so the page fixtures can save what the browser showed."""
    report = yield
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    return report
