"""The staff console served for real: sign-in, lock-out, CSRF, session cookies, the API's bearer tokens, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import AsyncIterator, Callable, Optional
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from itsdangerous import Signer
from sanic import Sanic
from sqlalchemy.orm import sessionmaker

from bot.config import Settings
from bot.console import api
from bot.console.api import ApiCall, ApiRoute, Param
from bot.console.auth import public
from bot.errors import InvalidInput, InvalidState, NotAllowed, NotFound
from bot.services import accounts
from bot.store.models import Staff, StaffSession
from tests.console_kit import DEMO_PASSWORD, ServedConsole, serve_console
from tests.helpers import community_db

SECRET = "test-console-secret-0123456789"


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    """Console settings over a migrated SQLite database, with a known cookie secret."""
    return Settings.from_env({"DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path),
                              "HG_CONSOLE_SECRET": SECRET, "HG_CONSOLE_BASE_URL": "http://console.test"})


@pytest.fixture
def factory(sqlite_url: str) -> sessionmaker:
    """The demo community in the database (every account on the demo password)."""
    return community_db(sqlite_url)


@pytest.fixture
async def console(settings: Settings, factory: sessionmaker, clock: Callable[[], dt.datetime]
                  ) -> AsyncIterator[ServedConsole]:
    """The console on a free port, with the test's clock."""
    async with serve_console(settings, factory, clock) as served:
        yield served


def _staff(factory: sessionmaker, key: str) -> Staff:
    with factory() as session:
        return session.query(Staff).filter_by(key=key).one()


def _sessions(factory: sessionmaker) -> list:
    with factory() as session:
        return session.query(StaffSession).order_by(StaffSession.id).all()


# ---- signing in and out -------------------------------------------------------------------------------------

async def test_signing_in_with_the_demo_password_shows_who_is_signed_in_and_their_role(console: ServedConsole) -> None:
    browser = console.browser()
    reply = await browser.login("wangjianguo")
    assert reply.status == 303 and reply.location == "/"
    assert "hg_login" not in reply.set_cookies
    cookie = reply.set_cookies["hg_sid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert not cookie["secure"]  # HG_CONSOLE_SECURE_COOKIES is off
    home = await browser.get("/")
    assert home.status == 200
    assert "王建国" in home.text and "网格长" in home.text
    assert "演示密码" in home.text  # told to get a real password


async def test_logging_out_ends_the_session_and_the_old_cookie_no_longer_works(
        console: ServedConsole, factory: sessionmaker) -> None:
    browser = await console.signed_in("wangjianguo")
    old_cookies = dict(browser.cookies)
    out = await browser.post("/logout", {"csrf_token": await browser.csrf()})
    assert out.status == 303 and out.location == "/login"
    assert "hg_sid" not in browser.cookies  # the browser was told to drop it
    assert all(s.revoked_at is not None for s in _sessions(factory))
    replay = console.browser()
    replay.cookies.update(old_cookies)
    again = await replay.get("/")
    assert again.status == 302 and again.location == "/login"


async def test_a_page_request_without_a_session_redirects_to_login_and_comes_back_after(
        console: ServedConsole) -> None:
    browser = console.browser()
    reply = await browser.get("/?tab=mine")
    assert reply.status == 302
    assert reply.location == "/login?next=" + quote("/?tab=mine", safe="")
    done = await browser.login("wangjianguo", next_path="/?tab=mine")
    assert done.status == 303 and done.location == "/?tab=mine"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"])
async def test_login_only_sends_people_on_to_local_paths(console: ServedConsole, target: str) -> None:
    browser = console.browser()
    page = await browser.get("/login?next=" + quote(target, safe=""))
    done = await browser.post("/login", {"csrf_token": page.csrf_token(), "key": "wangjianguo",
                                         "password": DEMO_PASSWORD, "next": target})
    assert done.status == 303 and done.location == "/"


async def test_a_wrong_password_and_an_unknown_account_get_the_same_answer(console: ServedConsole) -> None:
    browser = console.browser()
    page = await browser.get("/login")
    token = page.csrf_token()
    wrong = await browser.post("/login", {"csrf_token": token, "key": "wangjianguo", "password": "not-it-at-all"})
    unknown = await browser.post("/login", {"csrf_token": token, "key": "nobody", "password": "not-it-at-all"})
    assert wrong.status == unknown.status == 401
    assert "账号或密码不正确" in wrong.text
    assert wrong.text.replace("wangjianguo", "KEY") == unknown.text.replace("nobody", "KEY")
    assert "hg_sid" not in browser.cookies


async def test_the_sixth_try_after_five_failures_is_refused_even_with_the_right_password_until_the_lock_ends(
        console: ServedConsole, factory: sessionmaker, clock) -> None:
    browser = console.browser()
    token = (await browser.get("/login")).csrf_token()
    for attempt in range(5):
        reply = await browser.post("/login", {"csrf_token": token, "key": "lishufen", "password": f"guess-{attempt}"})
        assert reply.status == 401
    until = (clock() + dt.timedelta(minutes=15)).replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{until:%H:%M}" in reply.text and "锁定" in reply.text
    right = await browser.post("/login", {"csrf_token": token, "key": "lishufen", "password": DEMO_PASSWORD})
    assert right.status == 401 and "锁定" in right.text and f"{until:%H:%M}" in right.text
    assert "hg_sid" not in browser.cookies
    other = await console.signed_in("wangjianguo")  # only that account is locked
    assert (await other.get("/")).status == 200
    clock.advance(15 * 60 + 1)
    after = await browser.post("/login", {"csrf_token": token, "key": "lishufen", "password": DEMO_PASSWORD})
    assert after.status == 303
    assert _staff(factory, "lishufen").failed_logins == 0
    assert "李淑芬" in (await browser.get("/")).text


async def test_an_empty_form_is_asked_again_without_counting_a_failure(
        console: ServedConsole, factory: sessionmaker) -> None:
    browser = console.browser()
    token = (await browser.get("/login")).csrf_token()
    reply = await browser.post("/login", {"csrf_token": token, "key": "wangjianguo", "password": ""})
    assert reply.status == 400 and "请输入账号和密码" in reply.text
    assert _staff(factory, "wangjianguo").failed_logins == 0


# ---- CSRF ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [None, "", "wrong-token"])
async def test_logout_without_the_right_csrf_token_is_refused_and_the_session_lives_on(
        console: ServedConsole, factory: sessionmaker, token: Optional[str]) -> None:
    browser = await console.signed_in("wangjianguo")
    form = {} if token is None else {"csrf_token": token}
    reply = await browser.post("/logout", form)
    assert reply.status == 403
    assert "页面已过期或请求来源不明" in reply.text
    assert all(s.revoked_at is None for s in _sessions(factory))
    assert (await browser.get("/")).status == 200


async def test_another_sessions_csrf_token_does_not_count(console: ServedConsole, factory: sessionmaker) -> None:
    mine = await console.signed_in("wangjianguo")
    theirs = await console.signed_in("lishufen")
    reply = await mine.post("/logout", {"csrf_token": await theirs.csrf()})
    assert reply.status == 403
    assert all(s.revoked_at is None for s in _sessions(factory))


@pytest.mark.parametrize("token", [None, "forged"])
async def test_login_without_the_login_forms_token_is_refused_and_signs_nobody_in(
        console: ServedConsole, factory: sessionmaker, token: Optional[str]) -> None:
    browser = console.browser()
    await browser.get("/login")  # has the login cookie, but the post does not carry its token
    form = {"key": "wangjianguo", "password": DEMO_PASSWORD}
    if token is not None:
        form["csrf_token"] = token
    reply = await browser.post("/login", form)
    assert reply.status == 403
    assert _sessions(factory) == []
    assert "hg_sid" not in browser.cookies


async def test_a_login_token_without_its_cookie_is_refused(console: ServedConsole, factory: sessionmaker) -> None:
    token = (await console.browser().get("/login")).csrf_token()
    fresh = console.browser()  # another browser: the attacker's page knows a token but not the cookie
    reply = await fresh.post("/login", {"csrf_token": token, "key": "wangjianguo", "password": DEMO_PASSWORD})
    assert reply.status == 403
    assert _sessions(factory) == []


async def test_the_csrf_token_may_come_in_a_header(console: ServedConsole, factory: sessionmaker) -> None:
    browser = await console.signed_in("wangjianguo")
    reply = await browser.post("/logout", headers={"X-CSRF-Token": await browser.csrf()})
    assert reply.status == 303
    assert all(s.revoked_at is not None for s in _sessions(factory))


# ---- the session cookie ------------------------------------------------------------------------------------

async def test_a_session_cookie_planted_before_login_is_not_the_one_signed_in(
        console: ServedConsole, factory: sessionmaker) -> None:
    browser = console.browser()
    planted = "attacker-chosen-session-id"
    # Worst case: the attacker could even sign it; the server still never adopts a sid it did not make.
    browser.cookies["hg_sid"] = Signer(SECRET, salt="hongguanjia.console.hg_sid").sign(planted).decode()
    assert (await browser.get("/")).status == 302
    reply = await browser.login("wangjianguo")
    assert reply.status == 303
    assert browser.cookies["hg_sid"].split(".")[0] != planted
    attacker = console.browser()
    attacker.cookies["hg_sid"] = Signer(SECRET, salt="hongguanjia.console.hg_sid").sign(planted).decode()
    assert (await attacker.get("/")).status == 302
    assert accounts.session_for(factory, planted, dt.datetime.utcnow()) is None


async def test_every_login_gets_a_new_session_id_and_ends_the_browsers_previous_session(
        console: ServedConsole, factory: sessionmaker) -> None:
    browser = console.browser()
    token = (await browser.get("/login")).csrf_token()
    assert (await browser.post("/login", {"csrf_token": token, "key": "wangjianguo",
                                          "password": DEMO_PASSWORD})).status == 303
    first = dict(browser.cookies)
    # Another tab's login form, submitted while signed in: switches account, with a new session id.
    again = await browser.post("/login", {"csrf_token": token, "key": "lishufen", "password": DEMO_PASSWORD})
    assert again.status == 303
    assert browser.cookies["hg_sid"] != first["hg_sid"]
    assert "李淑芬" in (await browser.get("/")).text
    replay = console.browser()
    replay.cookies.update(first)
    assert (await replay.get("/")).status == 302  # the earlier session of this browser was ended


@pytest.mark.parametrize("mangle", [
    lambda value: value[:-2] + ("AA" if not value.endswith("AA") else "BB"),  # signature changed
    lambda value: value.split(".")[0],  # signature removed: the bare sid
    lambda value: "x" + value,  # sid changed under the signature
])
async def test_a_tampered_session_cookie_counts_as_signed_out(console: ServedConsole, mangle) -> None:
    browser = await console.signed_in("wangjianguo")
    browser.cookies["hg_sid"] = mangle(browser.cookies["hg_sid"])
    reply = await browser.get("/")
    assert reply.status == 302 and reply.location == "/login"


async def test_an_idle_session_expires_and_an_active_one_stays(console: ServedConsole, clock) -> None:
    active = await console.signed_in("wangjianguo")
    idle = await console.signed_in("lishufen")
    clock.advance(11 * 3600)
    assert (await active.get("/")).status == 200
    clock.advance(1.5 * 3600)  # 12.5 h since login: the idle one is over, the active one was seen 1.5 h ago
    assert (await idle.get("/")).status == 302
    assert (await active.get("/")).status == 200
    clock.advance(12 * 3600 + 1)
    assert (await active.get("/")).status == 302


async def test_a_signed_in_visit_to_the_login_page_goes_on(console: ServedConsole) -> None:
    browser = await console.signed_in("wangjianguo")
    reply = await browser.get("/login?next=/x")
    assert reply.status == 302 and reply.location == "/x"


# ---- pages, headers, static ---------------------------------------------------------------------------------

async def test_pages_carry_the_security_headers_and_are_not_cached(console: ServedConsole) -> None:
    browser = await console.signed_in("wangjianguo")
    for reply in (await browser.get("/"), await console.browser().get("/login"), await browser.get("/nowhere")):
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
        assert reply.headers["Referrer-Policy"] == "same-origin"
        assert reply.headers["Cache-Control"] == "no-store"


async def test_the_login_page_is_chinese_and_uses_only_local_assets(console: ServedConsole) -> None:
    page = await console.browser().get("/login")
    assert page.status == 200 and 'lang="zh-CN"' in page.text and "登录" in page.text
    assert "http://" not in page.text and "https://" not in page.text and "//" not in page.text.replace("<!--", "")
    css = await console.browser().get("/static/console.css")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "url(" not in css.text and "@import" not in css.text


@pytest.mark.parametrize("path", ["/static/app.js", "/static/..%2Fapp.py", "/static/../pages.py"])
async def test_static_serves_only_its_fixed_list(console: ServedConsole, path: str) -> None:
    reply = await console.browser().get(path)
    assert reply.status == 404


async def test_an_unknown_page_is_a_chinese_404_page(console: ServedConsole) -> None:
    browser = await console.signed_in("wangjianguo")
    reply = await browser.get("/no/such/page")
    assert reply.status == 404 and "页面不存在" in reply.text and "王建国" in reply.text


async def test_health_answers_when_the_database_does(console: ServedConsole) -> None:
    reply = await console.browser().get("/health")
    assert reply.status == 200 and reply.json() == {"status": "ok"}


async def test_user_supplied_text_is_escaped_on_the_login_page(console: ServedConsole) -> None:
    browser = console.browser()
    token = (await browser.get("/login")).csrf_token()
    reply = await browser.post("/login", {"csrf_token": token, "key": '<script>alert(1)</script>', "password": "x"})
    assert "<script>alert(1)</script>" not in reply.text and "&lt;script&gt;" in reply.text


# ---- the API ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer not-a-token", "Basic d2FuZzpwdw==", "hg_x"])
async def test_the_api_without_a_valid_bearer_token_answers_401_json(console: ServedConsole,
                                                                    header: Optional[str]) -> None:
    reply = await console.browser().get("/api/me", headers={"Authorization": header} if header else None)
    assert reply.status == 401
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"] and reply.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_api_with_a_bearer_token_says_who_it_belongs_to(console: ServedConsole,
                                                                 factory: sessionmaker) -> None:
    token = accounts.issue_api_token(factory, "chenjing")
    reply = await console.browser().get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert reply.status == 200
    assert reply.json() == {"key": "chenjing", "name": "陈静", "role": "property_manager", "role_label": "物业管家",
                            "estates": ["吉利花园"]}
    assert reply.headers["Cache-Control"] == "no-store"


async def test_the_api_does_not_accept_the_session_cookie(console: ServedConsole) -> None:
    browser = await console.signed_in("wangjianguo")
    assert (await browser.get("/api/me")).status == 401


async def test_openapi_document_is_openapi_3_and_lists_the_routes_of_the_table(console: ServedConsole) -> None:
    reply = await console.browser().get("/api/openapi.json")
    assert reply.status == 200
    doc = reply.json()
    _check_openapi(doc)
    assert doc["servers"] == [{"url": "http://console.test"}]
    me = doc["paths"]["/api/me"]["get"]
    assert me["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Staff"}
    assert "401" in me["responses"] and "security" not in me  # the global bearer requirement applies
    assert doc["paths"]["/api/openapi.json"]["get"]["security"] == []
    assert {r.path for r in api.ROUTES} == set(doc["paths"])


def _check_openapi(doc: dict) -> None:
    """Structural checks of an OpenAPI 3.0 document (what a validator would reject first)."""
    assert doc["openapi"].startswith("3.0.")
    assert doc["info"]["title"] and doc["info"]["version"]
    schemes = doc["components"]["securitySchemes"]
    assert any(s == {**s, "type": "http", "scheme": "bearer"} for s in schemes.values())
    for requirement in doc["security"]:
        assert set(requirement) <= set(schemes)
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith("/")
        declared_in_path = {seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")}
        for method, op in item.items():
            assert method in {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
            operation_ids.append(op["operationId"])
            assert op["summary"] and op["responses"]
            for status, answer in op["responses"].items():
                assert status == "default" or (status.isdigit() and len(status) == 3)
                assert "$ref" in answer or "description" in answer
            params = op.get("parameters", [])
            assert {p["name"] for p in params if p["in"] == "path"} == declared_in_path
            for param in params:
                assert param["in"] in {"path", "query", "header", "cookie"} and "schema" in param
                assert param["in"] != "path" or param["required"] is True
    assert len(operation_ids) == len(set(operation_ids))

    def refs(node: object) -> list:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for target in refs(doc):
        assert target.startswith("#/")
        node: object = doc
        for part in target[2:].split("/"):
            assert isinstance(node, dict) and part in node, f"unresolved $ref {target}"
            node = node[part]


# ---- one error handler for pages and the API ---------------------------------------------------------------

def _failing(exc: Exception):
    def handler(call: ApiCall) -> dict:
        raise exc
    handler.__name__ = f"fail_{type(exc).__name__}"
    return handler


def _echo(call: ApiCall) -> dict:
    return {"params": call.params, "body": call.body, "by": call.staff.key if call.staff else None}


EXTRA_ROUTES = [
    ApiRoute("GET", "/api/test/missing", "missing", _failing(NotFound("ticket HG-1 not found")), errors=(404,)),
    ApiRoute("GET", "/api/test/forbidden", "forbidden", _failing(NotAllowed("not your grid")), errors=(403,)),
    ApiRoute("GET", "/api/test/conflict", "conflict", _failing(InvalidState("already closed")), errors=(409,)),
    ApiRoute("GET", "/api/test/invalid", "invalid", _failing(InvalidInput("bad phone", field="phone"))),
    ApiRoute("GET", "/api/test/crash", "crash", _failing(RuntimeError("secret internals"))),
    ApiRoute("POST", "/api/test/echo/{number}", "echo", _echo, status=201,
             parameters=(Param("number", "path", {"type": "integer"}), Param("q", "query", {"type": "string",
                                                                                          "maxLength": 5})),
             request={"type": "object", "required": ["note"], "additionalProperties": False,
                      "properties": {"note": {"type": "string", "minLength": 1, "maxLength": 20},
                                     "urgent": {"type": "boolean"}}}),
]


def _add_test_routes(app: Sanic) -> None:
    api.register(app, EXTRA_ROUTES)

    @public
    async def page_missing(request):
        raise NotFound("no ticket")

    async def page_conflict(request):
        raise InvalidState("already closed")

    app.add_route(page_missing, "/test/missing", name="page_missing")
    app.add_route(page_conflict, "/test/conflict", name="page_conflict")


@pytest.fixture
async def extended(settings: Settings, factory: sessionmaker, clock) -> AsyncIterator[ServedConsole]:
    """The console with extra test routes that raise each kind of error."""
    async with serve_console(settings, factory, clock, prepare=_add_test_routes) as served:
        yield served


@pytest.mark.parametrize("path, status, code, field", [
    ("/api/test/missing", 404, "not_found", None),
    ("/api/test/forbidden", 403, "not_allowed", None),
    ("/api/test/conflict", 409, "invalid_state", None),
    ("/api/test/invalid", 400, "invalid_input", "phone"),
    ("/api/test/crash", 500, "server_error", None),
])
async def test_service_errors_become_api_statuses_with_a_json_reason(
        extended: ServedConsole, factory: sessionmaker, path: str, status: int, code: str, field: str) -> None:
    token = accounts.issue_api_token(factory, "admin")
    reply = await extended.browser().get(path, headers={"Authorization": f"Bearer {token}"})
    assert reply.status == status
    body = reply.json()
    assert body["code"] == code and body["error"]
    assert body.get("field") == field
    assert "secret internals" not in reply.text


async def test_service_errors_on_pages_become_chinese_message_pages(extended: ServedConsole) -> None:
    missing = await extended.browser().get("/test/missing")
    assert missing.status == 404 and "没有找到" in missing.text
    browser = await extended.signed_in("wangjianguo")
    conflict = await browser.get("/test/conflict")
    assert conflict.status == 409 and "状态已经变化" in conflict.text and "王建国" in conflict.text


async def test_api_parameters_and_bodies_are_checked_against_the_table(extended: ServedConsole,
                                                                      factory: sessionmaker) -> None:
    auth = {"Authorization": f"Bearer {accounts.issue_api_token(factory, 'admin')}"}
    browser = extended.browser()
    ok = await browser.request("POST", "/api/test/echo/7?q=abc", headers=auth, json_body={"note": "好", "urgent": True})
    assert ok.status == 201
    assert ok.json() == {"params": {"number": 7, "q": "abc"}, "body": {"note": "好", "urgent": True}, "by": "admin"}
    for path, body, field in [("/api/test/echo/7", {}, "note"),
                              ("/api/test/echo/7", {"note": 3}, "note"),
                              ("/api/test/echo/7", {"note": "x", "extra": 1}, "extra"),
                              ("/api/test/echo/7", {"note": "x", "urgent": "yes"}, "urgent"),
                              ("/api/test/echo/7?q=toolong", {"note": "x"}, "q"),
                              ("/api/test/echo/7", [1], "body")]:
        bad = await browser.request("POST", path, headers=auth, json_body=body)
        assert bad.status == 400, (path, body, bad.text)
        assert bad.json()["field"] == field
    not_json = await browser.request("POST", "/api/test/echo/7", headers={**auth, "Content-Type": "application/json"},
                                     data="{nope")
    assert not_json.status == 400 and not_json.json()["field"] == "body"
    assert (await browser.request("POST", "/api/test/echo/x", headers=auth, json_body={"note": "x"})).status == 404


def test_adding_a_route_to_the_table_documents_it() -> None:
    doc = api.openapi(api.ROUTES + EXTRA_ROUTES, "http://console.test")
    _check_openapi(doc)
    echo = doc["paths"]["/api/test/echo/{number}"]["post"]
    assert echo["summary"] == "echo" and "201" in echo["responses"] and "400" in echo["responses"]
    assert echo["requestBody"]["content"]["application/json"]["schema"]["required"] == ["note"]
    assert [p["name"] for p in echo["parameters"]] == ["number", "q"]
    assert doc["paths"]["/api/test/missing"]["get"]["responses"]["404"] == {"$ref": "#/components/responses/E404"}


# ---- running it -----------------------------------------------------------------------------------------------

def test_python_m_bot_console_serves_the_console_as_its_own_process(tmp_path: Path, sqlite_url: str,
                                                                    factory: sessionmaker) -> None:
    import os
    import urllib.request

    from bot.config import rasa_env
    from bot.devtools.stack import free_port
    from bot.runner import Supervisor, _wait_http, console_command

    port = free_port()
    env = rasa_env({**os.environ, "DATABASE_URL": sqlite_url, "HG_VAR_DIR": str(tmp_path)})
    env.pop("HG_CONSOLE_SECRET", None)
    sup = Supervisor()
    sup.start("console", console_command(port), env, tmp_path / "console.log")
    try:
        assert _wait_http(f"http://127.0.0.1:{port}/health", 60, list(sup.procs.values())), \
            (tmp_path / "console.log").read_text(errors="replace")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as resp:  # noqa: S310
            assert resp.status == 200 and "登录" in resp.read().decode("utf-8")
    finally:
        sup.stop()
    assert (tmp_path / "console_secret").stat().st_mode & 0o777 == 0o600  # generated, kept for restarts


def test_the_start_up_banner_lists_the_accounts_still_on_the_demo_password(sqlite_url: str,
                                                                           factory: sessionmaker) -> None:
    from bot.runner import console_banner

    accounts.set_password(factory, "admin", "admins-own-password", dt.datetime.utcnow())
    banner = console_banner(Settings.from_env({"DATABASE_URL": sqlite_url, "HG_CONSOLE_PORT": "5123"}))
    assert "http://127.0.0.1:5123/" in banner and DEMO_PASSWORD in banner
    assert "wangjianguo" in banner and "王建国" in banner and "网格长" in banner
    assert "社区管理员" not in banner  # has a real password now
