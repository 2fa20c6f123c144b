"""No row of one community is visible from another, seen from the outside: every console page a staff member can
reach by following links, every GET route of the API and the CSV exports, crawled as each of two communities'
staff, with both communities' tickets, handoffs, volunteers, announcements, review items and edits in the
database. Nothing of the other community — its name, estates, staff, residents, phones, ticket numbers — appears
anywhere; the street office's crawl finds both.

The markers are read off the two community files (names, estates, staff) and the rows the test writes, not
from the pages, so a page that starts showing another community's rows makes this fail.
"""

from __future__ import annotations

import html
import re
from collections import deque
from pathlib import Path
from typing import AsyncIterator, Dict, List, Set, Tuple
from urllib.parse import urljoin, urlsplit

import pytest
import yaml
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.config import PROJECT_ROOT, Settings
from bot.console import api
from bot.services import accounts, announcements, community_edits, handoff, tickets, volunteers
from bot.services.community import load_community
from bot.store.db import unit_of_work
from bot.store.models import DEFAULT_COMMUNITY, ReviewItem, utcnow
from tests.console_kit import DEMO_PASSWORD, Browser, ServedConsole, serve_console
from tests.helpers import community_db
from tests.integration.test_communities import LANXING

DEMO_FILE = yaml.safe_load((PROJECT_ROOT / "data" / "community" / "community.yml").read_text(encoding="utf-8"))
# Staff names that are words of the console's own texts, not only a person's name.
GENERIC = {"社区管理员", "街道主任"}
SECRET = "test-console-isolation-secret-0123"
MAX_PAGES = 200  # per account: far more than the console has, so a loop of links cannot run away

# The residents the test writes: (community, estate, building, sender, contact name, phone, review text)
RESIDENTS = {
    DEFAULT_COMMUNITY: ("吉利花园", 3, "oISO_demo", "陈国强", "13911112222", "楼道里总有一股怪味吉利花园"),
    "lanxing": ("蓝湾花园", 2, "oISO_lanxing", "林晓蓝", "13733334444", "蓝湾花园门口的地砖翘起来了"),
}


def _markers(info: Dict, community: str) -> Set[str]:
    """What only `community` has: its name, estates (and aliases), staff names, resident, phone, review text."""
    estate, _, _, name, phone, said = RESIDENTS[community]
    found = {info["community"]["name"], estate, name, phone, said}
    found |= {e["name"] for e in info["estates"]} | {a for e in info["estates"] for a in e.get("aliases") or []}
    found |= {s["name"] for s in info["staff"]} - GENERIC
    return found


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:  # the crawl only reads: nothing is written to var/
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path), "HG_CONSOLE_SECRET": SECRET})


@pytest.fixture
def seeded(sqlite_url: str, clock) -> Tuple[sessionmaker, Dict[str, Set[str]]]:
    """Both communities with rows of every kind; the markers of each (ticket numbers included)."""
    factory = community_db(sqlite_url)
    with unit_of_work(factory) as session:
        load_community(session, {**LANXING, "console": {"demo_password": DEMO_PASSWORD}}, clock.now.date())
    markers = {DEFAULT_COMMUNITY: _markers(DEMO_FILE, DEFAULT_COMMUNITY), "lanxing": _markers(LANXING, "lanxing")}
    for community, (estate, building, sender, name, phone, said) in RESIDENTS.items():
        for kind, text in (("leak", "卫生间漏水，往楼下渗"), ("repair", "单元门的闭门器坏了"), ("help", "想请人帮忙代买药品")):
            number = tickets.open_ticket(factory, tickets.TicketRequest(
                kind=kind, sender_id=sender, description=text, address=Address(estate, building, 1, 101),
                contact_name=name, contact_phone=phone), now=clock.now).number
            markers[community].add(number)
        assert handoff.start(factory, sender, "转人工")
        volunteers.sign_up(factory, sender, name, phone, 1)
        with unit_of_work(factory) as session:
            session.add(ReviewItem(key=f"iso-{community}", text=said, examples=[said], suggestion="nlu_fallback",
                                   confidence=0.2, count=1, flags={"fallback": 1}, source="对话记录",
                                   status="pending", entities=[], communities=[community], version=1,
                                   created_at=utcnow(), updated_at=utcnow()))
    announcements.create(factory, "admin", kind="water_stop", title="吉利花园停水通知", body="明天停水",
                         audience=[{"estate": "吉利花园", "buildings": []}])
    announcements.create(factory, "lx-admin", kind="water_stop", title="蓝湾花园停水通知", body="明天停水",
                         audience=[{"estate": "蓝湾花园", "buildings": []}])
    community_edits.update_staff(factory, "admin", "maguilan", on_duty=False)  # an edit in each audit log
    community_edits.update_staff(factory, "lx-admin", "lx-duty", on_duty=False)
    return factory, markers


@pytest.fixture
async def console(settings: Settings, seeded, clock) -> AsyncIterator[ServedConsole]:
    async with serve_console(settings, seeded[0], clock) as served:
        yield served


START = ("/", "/handoffs", "/admin/stats", "/admin/review", "/admin/community", "/admin/volunteers",
         "/admin/announcements", "/admin/clinics", "/admin/models", "/admin/community/layout")
LINK = re.compile(r'''(?:href|src|action)="([^"#]+)"''')


def _followable(path: str) -> bool:
    parts = urlsplit(path)
    return (not parts.scheme and not parts.netloc and parts.path.startswith("/")
            and not parts.path.startswith(("/static/", "/logout", "/login", "/api/")))


async def _crawl(browser: Browser) -> Dict[str, Tuple[int, str]]:
    """Every GET page reachable from START by links (forms' GET actions included): path -> (status, text)."""
    seen: Dict[str, Tuple[int, str]] = {}
    todo = deque(START)
    while todo and len(seen) < MAX_PAGES:
        path = todo.popleft()
        if path in seen:
            continue
        reply = await browser.get(path)
        seen[path] = (reply.status, reply.text)
        if reply.status == 200 and "html" in reply.headers.get("Content-Type", ""):
            for link in LINK.findall(reply.text):
                target = urljoin(path, html.unescape(link))
                if _followable(target) and target not in seen:
                    todo.append(target)
    return seen


async def _api(browser: Browser, token: str, factory: sessionmaker) -> Dict[str, Tuple[int, str]]:
    """Every GET route of the API, with each community's ticket numbers and handoff ids filled in."""
    from bot.store.models import Handoff, Ticket

    with unit_of_work(factory) as session:
        values = {"number": [n for (n,) in session.query(Ticket.number)],
                  "id": [str(i) for (i,) in session.query(Handoff.id)]}
    seen: Dict[str, Tuple[int, str]] = {}
    headers = {"Authorization": f"Bearer {token}"}
    for route in api.ROUTES:
        if route.method != "GET":
            continue
        names = re.findall(r"{(\w+)}", route.path)
        paths: List[str] = [route.path]
        for name in names:
            paths = [p.replace("{" + name + "}", v) for p in paths for v in values[name]]
        for path in paths:
            reply = await browser.get(path, headers=headers)
            seen[path] = (reply.status, reply.text)
    return seen


def _leaks(pages: Dict[str, Tuple[int, str]], markers: Set[str]) -> List[str]:
    return [f"{path} ({status}) shows {sorted(m for m in markers if m in text)}"
            for path, (status, text) in pages.items() if any(m in text for m in markers)]


async def _everything(console: ServedConsole, factory: sessionmaker, key: str) -> Dict[str, Tuple[int, str]]:
    browser = await console.signed_in(key)
    pages = await _crawl(browser)
    pages.update(await _api(console.browser(), accounts.issue_api_token(factory, key), factory))
    failed = {p: s for p, (s, _) in pages.items() if s >= 500}
    assert not failed, failed
    return pages


# Each community's staff of every role the console serves, and the street office.
OWN = [(key, "lanxing", DEFAULT_COMMUNITY) for key in
       ("lx-admin", "lx-secretary", "lx-duty", "lx-pm", "lx-leader", "lx-lead")] + \
      [(key, DEFAULT_COMMUNITY, "lanxing") for key in ("admin", "gaohong", "maguilan", "chenjing", "wangjianguo")]


@pytest.mark.parametrize("key, home, other", OWN, ids=[k for k, _, _ in OWN])
async def test_nothing_of_another_community_is_on_any_page_or_api_route(console, seeded, key, home, other) -> None:
    factory, markers = seeded
    pages = await _everything(console, factory, key)
    assert len(pages) >= len(START), sorted(pages)
    assert not _leaks(pages, markers[other]), "\n".join(_leaks(pages, markers[other]))
    # the crawl did reach this community's own rows (so an empty crawl cannot pass)
    own_numbers = {m for m in markers[home] if m.startswith("HG-")}
    assert any(n in text for _, text in pages.values() for n in own_numbers), key


async def test_the_street_office_sees_every_communitys_rows(console, seeded) -> None:
    factory, markers = seeded
    pages = await _everything(console, factory, "street")
    everything = " ".join(text for _, text in pages.values())
    for community in (DEFAULT_COMMUNITY, "lanxing"):
        estate, _, _, name, _, said = RESIDENTS[community]
        numbers = {m for m in markers[community] if m.startswith("HG-")}
        assert numbers and all(n in everything for n in numbers), community
        assert said in everything and estate in everything, community
