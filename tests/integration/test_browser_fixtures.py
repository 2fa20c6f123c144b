"""The browser fixtures give every test a fresh phone- or desktop-shaped page on Debian's Chromium."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, Route, expect

from tests.browser import DESKTOP, PHONE, REPORTS, open_page, save_screenshot

pytestmark = pytest.mark.slow

SITE = "http://hg.test/"  # answered by the page's own route below: no request leaves the browser
HTML = ("<!DOCTYPE html><html lang='zh-CN'><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>测试</title><h1>红管家</h1></html>")
SCREEN = """() => ({width: innerWidth, height: innerHeight, touch: navigator.maxTouchPoints > 0,
  language: navigator.language, zone: Intl.DateTimeFormat().resolvedOptions().timeZone})"""


async def _serve(page: Page) -> None:
    async def answer(route: Route) -> None:
        await route.fulfill(body=HTML, content_type="text/html; charset=utf-8")

    await page.route(f"{SITE}**", answer)
    await page.goto(SITE)


async def test_a_phone_page_is_a_390_pixel_touch_screen_in_chinese(phone_page: Page) -> None:
    await _serve(phone_page)
    await expect(phone_page.get_by_role("heading")).to_have_text("红管家")
    assert await phone_page.evaluate(SCREEN) == {"width": 390, "height": 844, "touch": True, "language": "zh-CN",
                                                 "zone": "Asia/Shanghai"}


async def test_a_desktop_page_is_a_1280_pixel_screen_without_touch(desktop_page: Page) -> None:
    await _serve(desktop_page)
    assert await desktop_page.evaluate(SCREEN) == {"width": 1280, "height": 800, "touch": False,
                                                   "language": "zh-CN", "zone": "Asia/Shanghai"}


async def test_two_people_at_once_keep_their_own_storage(browser: Browser) -> None:
    async with open_page(browser, PHONE) as resident, open_page(browser, DESKTOP) as staff:
        await _serve(resident)
        await _serve(staff)
        await resident.evaluate("localStorage.setItem('who', 'resident')")
        assert await staff.evaluate("localStorage.getItem('who')") is None
        assert await resident.evaluate("localStorage.getItem('who')") == "resident"
    assert browser.is_connected() and browser.contexts == []


async def test_a_screenshot_is_a_png_under_reports(phone_page: Page) -> None:
    await _serve(phone_page)
    path = await save_screenshot(phone_page, "browser_fixtures")
    assert path == REPORTS / "browser_fixtures.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
