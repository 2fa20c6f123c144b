"""Who may see and do what in the console: one table over every role × ticket × ticket route, page and API, and
one over every role × handoff and admin route.

The expected answers come from the scope rules written out below in their own words (SCOPE, LEADS), not
from bot/services/scope.py, so a change there that widens or narrows anyone's view makes this fail.
"""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Dict, List, Optional, Tuple

import pytest
from sqlalchemy.orm import sessionmaker

from bot.address import Address
from bot.config import Settings
from bot.services import accounts
from bot.services.tickets import TicketRequest, open_ticket
from tests.console_kit import Browser, ServedConsole, serve_console
from tests.helpers import community_db

SECRET = "test-console-secret-0123456789"


@dataclass(frozen=True)
class Case:
    """A ticket of the table: what it is and where."""

    label: str
    kind: str
    description: str
    address: Address
    phone: str
    grid: str
    estate: str
    urgent: bool


TICKETS: Tuple[Case, ...] = (
    Case("repair-grid1", "repair", "楼道灯坏了，晚上看不见", Address("吉利花园", 2, 1, 301), "13900000001",
         "grid-1", "吉利花园", False),
    Case("leak-grid1", "leak", "卫生间漏水，楼下也在滴", Address("吉利花园", 5, 2, 602), "13900000002",
         "grid-1", "吉利花园", True),
    Case("help-grid3", "help", "想请人帮忙代买药品", Address("和顺里", 1, 1, 101), "13900000003",
         "grid-3", "和顺里", False),
    Case("repair-grid4", "repair", "单元门禁坏了", Address("金穗园", 2, 1, 202), "13900000004",
         "grid-4", "金穗园", False),
)

# The scope rules, as the product describes them: (how the role sees, what), per account.
SCOPE: Dict[Optional[str], Tuple[str, str]] = {
    "zhouming": ("grid", "grid-1"),         # 网格员 of grid-1
    "lishufen": ("grid", "grid-2"),         # 网格长 of another grid
    "chenjing": ("estate", "吉利花园"),      # 物业管家 of this estate
    "liuyang": ("estate", "金穗园"),         # 物业管家 of another estate
    "maguilan": ("urgent", ""),             # 值班: urgent tickets only
    "gaohong": ("all", ""),                 # 社区书记
    "admin": ("all", ""),                   # 管理员
    "hexiaoyu": ("kind", "help"),           # 志愿队队长: help tickets
    None: ("signed_out", ""),
}
ROLE_OF = {"zhouming": "grid_member", "lishufen": "grid_leader", "chenjing": "property_manager",
           "liuyang": "property_manager", "maguilan": "duty", "gaohong": "secretary", "admin": "admin",
           "hexiaoyu": "team_lead"}
# Roles that hand out work and may act on a ticket someone else holds (so "start" on an open ticket is a
# state conflict for them, but simply not theirs to do for everyone else).
LEADS = {"grid_leader", "property_manager", "secretary", "admin"}


def in_scope(account: Optional[str], case: Case) -> bool:
    """Whether `account` sees `case`, read off SCOPE."""
    how, what = SCOPE[account]
    return {"grid": case.grid == what, "estate": case.estate == what, "urgent": case.urgent,
            "kind": case.kind == what, "all": True, "signed_out": False}[how]


ROUTES = ("GET /", "GET /tickets/N", "POST /tickets/N/note", "POST /tickets/N/start",
          "GET /api/tickets", "GET /api/tickets/N", "POST /api/tickets/N/actions/note",
          "POST /api/tickets/N/actions/start")


def expected(account: Optional[str], case: Case, route: str) -> int:
    """The status `account` should get for `route` on `case`."""
    api = "/api/" in route
    if account is None:
        return 401 if api else 302
    if route in ("GET /", "GET /api/tickets"):
        return 200
    if not in_scope(account, case):
        return 404
    if route.endswith("/note"):
        return 200 if api else 303
    if route.endswith("/start"):  # every ticket is open: only leads get as far as the state check
        return 409 if ROLE_OF[account] in LEADS else 403
    return 200


TABLE: List[Tuple[Optional[str], str, str, int]] = [
    (account, case.label, route, expected(account, case, route))
    for account in SCOPE for case in TICKETS for route in ROUTES
]


def test_the_table_covers_every_outcome_the_routes_can_answer() -> None:
    assert {status for *_, status in TABLE} == {200, 302, 303, 401, 403, 404, 409}
    assert len(TABLE) == len(SCOPE) * len(TICKETS) * len(ROUTES)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Console settings over SQLite; Rasa points at a closed port (the excerpt is then unavailable)."""
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path), "HG_CONSOLE_SECRET": SECRET,
                              "HG_CONSOLE_BASE_URL": "http://console.test", "HG_RASA_PORT": str(_closed_port())})


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    """The demo community in the database."""
    return community_db(sqlite_url)


@pytest.fixture
def numbers(factory: sessionmaker, clock) -> Dict[str, str]:
    """The table's four tickets, opened a minute apart; label → ticket number."""
    out = {}
    for i, case in enumerate(TICKETS):
        view = open_ticket(factory, TicketRequest(kind=case.kind, sender_id=f"rest:authz-{i}",
                                                  description=case.description, address=case.address,
                                                  contact_name=f"居民{i}", contact_phone=case.phone),
                           now=clock() - dt.timedelta(minutes=5 - i))
        assert (view.priority == "urgent") == case.urgent
        out[case.label] = view.number
    return out


@pytest.fixture
async def console(settings: Settings, factory: sessionmaker, numbers: Dict[str, str], clock
                  ) -> AsyncIterator[ServedConsole]:
    """The console over the ticketed database."""
    async with serve_console(settings, factory, clock) as served:
        yield served


async def _ask(browser: Browser, route: str, number: str, token: Optional[str], csrf: str) -> Tuple[int, str]:
    method, path = route.split(" ", 1)
    path = path.replace("/N", f"/{number}")
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {token}"} if token else None
        if method == "GET":
            reply = await browser.get(path, headers=headers)
        else:
            body = {"note": "已电话联系居民"} if path.endswith("/note") else {}
            reply = await browser.request("POST", path, headers=headers, json_body=body)
    elif method == "GET":
        reply = await browser.get(path)
    else:
        reply = await browser.post(path, {"csrf_token": csrf, "note": "已电话联系居民"})
    return reply.status, reply.text


@pytest.mark.parametrize("account", list(SCOPE), ids=lambda a: a or "signed_out")
async def test_every_route_answers_each_role_as_the_scope_table_says(
        console: ServedConsole, factory: sessionmaker, numbers: Dict[str, str], account: Optional[str]) -> None:
    browser = console.browser()
    token, csrf = None, ""
    if account is not None:
        assert (await browser.login(account)).status == 303
        csrf = await browser.csrf()
        token = accounts.issue_api_token(factory, account)
    wrong = []
    for who, label, route, status in TABLE:
        if who != account:
            continue
        got, text = await _ask(browser, route, numbers[label], token, csrf)
        if got != status:
            wrong.append(f"{route} on {label}: expected {status}, got {got} {text[:200]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("account", [a for a in SCOPE if a is not None])
async def test_the_queue_and_the_api_list_exactly_the_tickets_in_scope_without_full_phone_numbers(
        console: ServedConsole, factory: sessionmaker, numbers: Dict[str, str], account: str) -> None:
    browser = console.browser()
    assert (await browser.login(account)).status == 303
    token = accounts.issue_api_token(factory, account)
    mine = {numbers[c.label] for c in TICKETS if in_scope(account, c)}
    page = await browser.get("/")
    assert page.status == 200
    listed = await browser.get("/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert listed.status == 200
    assert {t["number"] for t in listed.json()["tickets"]} == mine
    assert listed.json()["total"] == len(mine)
    for case in TICKETS:
        number = numbers[case.label]
        assert (f'data-number="{number}"' in page.text) == (number in mine)
        assert case.phone not in page.text and case.phone not in listed.text
        if number in mine:
            masked = f"{case.phone[:3]}****{case.phone[-4:]}"
            assert any(t["contact_phone"] == masked for t in listed.json()["tickets"])
            detail = await browser.get(f"/tickets/{number}")
            assert f'href="tel:{case.phone}"' in detail.text
            api = await browser.get(f"/api/tickets/{number}", headers={"Authorization": f"Bearer {token}"})
            assert api.json()["contact_phone"] == case.phone


# The routes that are not about one ticket: the handoff inbox (duty staff, the secretary, admins) and the admin
# pages (the secretary and admins), pages and API alike. Ids that do not exist show that the role check comes
# first: a role without access is told 403 and learns nothing about what exists.
HANDOFF_DESK = {"duty", "secretary", "admin"}   # 值班、社区书记、管理员
ADMIN_DESK = {"secretary", "admin"}              # 社区书记、管理员
DESK_ROUTES: Tuple[Tuple[str, str, int], ...] = (
    # (route, who may use it, the status they get)
    ("GET /handoffs", "handoff", 200),
    ("GET /handoffs/999999", "handoff", 404),
    ("POST /handoffs/999999/release", "handoff", 404),
    ("GET /api/handoffs", "handoff", 200),
    ("GET /api/handoffs/999999", "handoff", 404),
    ("POST /api/handoffs/999999/release", "handoff", 404),
    ("GET /admin/stats", "admin", 200),
    ("GET /admin/stats.csv", "admin", 200),
    ("GET /admin/stats/weekly.svg", "admin", 200),
    ("GET /admin/announcements", "admin", 200),
    ("GET /admin/community", "admin", 200),
    ("GET /admin/volunteers.csv", "admin", 200),
    ("POST /admin/community/roster/999999/delete", "admin", 404),
    ("GET /admin/clinics", "admin", 200),
    ("POST /admin/clinics/999999/delete", "admin", 404),
    ("GET /admin/community/layout", "admin", 200),
    ("GET /admin/volunteers", "admin", 200),
    ("GET /admin/review", "admin", 200),
    ("POST /admin/review/999999", "admin", 400),  # no version on the form: refused before anything is looked up
    ("GET /api/admin/stats", "admin", 200),
    ("GET /api/admin/clinics", "admin", 200),
    ("POST /api/admin/clinics", "admin", 400),  # the body is not a clinic: only those who may add one learn that
    ("GET /api/admin/audit", "admin", 200),
)


def desk_expected(account: Optional[str], route: str, who: str, status: int) -> int:
    """The status `account` should get for a desk route."""
    if account is None:
        return 401 if "/api/" in route else 302
    desk = HANDOFF_DESK if who == "handoff" else ADMIN_DESK
    return status if ROLE_OF[account] in desk else 403


DESK_TABLE: List[Tuple[Optional[str], str, int]] = [
    (account, route, desk_expected(account, route, who, status))
    for account in SCOPE for route, who, status in DESK_ROUTES
]


def test_the_desk_table_covers_each_role_and_outcome() -> None:
    assert {status for *_, status in DESK_TABLE} == {200, 302, 400, 401, 403, 404}
    for route, *_ in DESK_ROUTES:  # every route is open to someone and closed to someone
        answers = {status for _, r, status in DESK_TABLE if r == route}
        assert 403 in answers and answers - {302, 401, 403}, route


@pytest.mark.parametrize("account", list(SCOPE), ids=lambda a: a or "signed_out")
async def test_the_handoff_inbox_and_admin_pages_answer_each_role_as_the_desk_table_says(
        console: ServedConsole, factory: sessionmaker, account: Optional[str]) -> None:
    browser = console.browser()
    token, csrf = None, ""
    if account is not None:
        assert (await browser.login(account)).status == 303
        csrf = await browser.csrf()
        token = accounts.issue_api_token(factory, account)
    wrong = []
    for who, route, status in DESK_TABLE:
        if who != account:
            continue
        got, text = await _ask(browser, route, "", token, csrf)
        if got != status:
            wrong.append(f"{route}: expected {status}, got {got} {text[:200]}")
    assert not wrong, "\n".join(wrong)
