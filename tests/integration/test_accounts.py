"""Console accounts on real databases: hashes, lock-out, sessions, bearer tokens, demo passwords, the staff CLI."""

from __future__ import annotations

import copy
import datetime as dt
import io
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import sessionmaker

from bot import cli
from bot.config import PROJECT_ROOT
from bot.errors import AccountLocked, AuthFailed, InvalidInput, NotFound
from bot.services import accounts
from bot.services.community import load_community, read_community
from bot.store.db import unit_of_work
from bot.store.models import Staff, StaffSession
from tests.helpers import NOW, community_db

DEMO = "hongxing-demo"
POLICY = accounts.AccountPolicy()


@pytest.fixture
def community(session_factory: sessionmaker) -> sessionmaker:
    """The demo community loaded into the parametrised database (SQLite and PostgreSQL)."""
    with unit_of_work(session_factory) as session:
        load_community(session, read_community(PROJECT_ROOT / "data" / "community"), NOW.date())
    return session_factory


def _staff(factory: sessionmaker, key: str) -> Staff:
    with factory() as session:
        return session.query(Staff).filter_by(key=key).one()


def _set_hash(factory: sessionmaker, key: str, encoded: str) -> None:
    with unit_of_work(factory) as session:
        session.query(Staff).filter_by(key=key).one().password_hash = encoded


def test_hashes_are_argon2id_and_neither_passwords_nor_session_ids_are_stored(community: sessionmaker) -> None:
    accounts.set_password(community, "zhouming", "a-real-secret-9", NOW)
    new = accounts.login(community, "zhouming", "a-real-secret-9", NOW)
    token = accounts.issue_api_token(community, "zhouming")
    row = _staff(community, "zhouming")
    assert row.password_hash.startswith("$argon2id$")
    assert _staff(community, "wuxia").password_hash.startswith("$argon2id$")  # the demo one too
    stored = []
    with community() as session:
        for model in (Staff, StaffSession):
            for obj in session.query(model).all():
                stored += [str(getattr(obj, c.key)) for c in sa_inspect(model).columns]
    for secret in ("a-real-secret-9", DEMO, new.sid, token):
        assert not any(secret in value for value in stored), secret


def test_a_good_login_opens_a_session_that_session_for_finds(community: sessionmaker) -> None:
    new = accounts.login(community, "wangjianguo", DEMO, NOW)
    found = accounts.session_for(community, new.sid, NOW)
    assert found is not None
    assert (found.staff.key, found.staff.name, found.staff.role) == ("wangjianguo", "王建国", "grid_leader")
    assert found.csrf_token == new.csrf_token and found.staff.demo_password
    assert accounts.session_for(community, new.sid + "x", NOW) is None
    assert accounts.session_for(community, "", NOW) is None


def test_account_keys_are_matched_without_regard_to_case_or_spaces(community: sessionmaker) -> None:
    assert accounts.login(community, "  WangJianGuo ", DEMO, NOW).staff.key == "wangjianguo"


def test_unknown_inactive_and_passwordless_accounts_fail_like_a_wrong_password(community: sessionmaker) -> None:
    with unit_of_work(community) as session:
        session.query(Staff).filter_by(key="wuxia").one().active = False
        session.query(Staff).filter_by(key="zhouming").one().password_hash = None
    for key, password in [("wangjianguo", "wrong-password"), ("nobody", DEMO), ("wuxia", DEMO), ("zhouming", DEMO),
                          ("wangjianguo", ""), ("wangjianguo", "x" * 10_000)]:
        with pytest.raises(AuthFailed) as caught:
            accounts.login(community, key, password, NOW)
        assert type(caught.value) is AuthFailed and caught.value.message == "wrong account or password"


def test_five_wrong_passwords_lock_the_account_until_the_lockout_is_over(community: sessionmaker) -> None:
    for attempt in range(4):
        with pytest.raises(AuthFailed) as caught:
            accounts.login(community, "sunli", f"wrong-{attempt}", NOW)
        assert type(caught.value) is AuthFailed
    with pytest.raises(AccountLocked) as locked:
        accounts.login(community, "sunli", "wrong-4", NOW)
    assert locked.value.until == NOW + dt.timedelta(minutes=15)
    with pytest.raises(AccountLocked):  # the right password, one second later
        accounts.login(community, "sunli", DEMO, NOW + dt.timedelta(seconds=1))
    with pytest.raises(AccountLocked):
        accounts.login(community, "sunli", DEMO, NOW + dt.timedelta(minutes=15) - dt.timedelta(seconds=1))
    later = NOW + dt.timedelta(minutes=15)
    assert accounts.login(community, "sunli", DEMO, later).staff.key == "sunli"
    row = _staff(community, "sunli")
    assert row.failed_logins == 0 and row.locked_until is None


def test_a_good_login_resets_the_count_of_failures(community: sessionmaker) -> None:
    for attempt in range(4):
        with pytest.raises(AuthFailed):
            accounts.login(community, "zhaogang", f"wrong-{attempt}", NOW)
    accounts.login(community, "zhaogang", DEMO, NOW)
    for attempt in range(4):  # four more in a row do not lock: the count started again
        with pytest.raises(AuthFailed) as caught:
            accounts.login(community, "zhaogang", f"wrong-{attempt}", NOW)
        assert type(caught.value) is AuthFailed
    assert _staff(community, "zhaogang").failed_logins == 4


def test_after_a_lockout_ran_out_failures_count_from_zero_again(community: sessionmaker) -> None:
    for attempt in range(5):
        with pytest.raises(AuthFailed):
            accounts.login(community, "zhaogang", f"wrong-{attempt}", NOW)
    later = NOW + dt.timedelta(minutes=16)
    with pytest.raises(AuthFailed) as caught:
        accounts.login(community, "zhaogang", "wrong-again", later)
    assert type(caught.value) is AuthFailed  # one failure after the lock, not a new lock
    assert _staff(community, "zhaogang").failed_logins == 1


def test_the_lockout_follows_the_policy(community: sessionmaker) -> None:
    strict = accounts.AccountPolicy(max_failed_logins=2, lockout=dt.timedelta(minutes=1))
    with pytest.raises(AuthFailed):
        accounts.login(community, "zhaogang", "wrong", NOW, strict)
    with pytest.raises(AccountLocked) as locked:
        accounts.login(community, "zhaogang", "wrong", NOW, strict)
    assert locked.value.until == NOW + dt.timedelta(minutes=1)


def test_sessions_end_after_the_idle_time_and_are_kept_alive_by_use(community: sessionmaker) -> None:
    new = accounts.login(community, "wangjianguo", DEMO, NOW)
    assert accounts.session_for(community, new.sid, NOW + dt.timedelta(hours=11)) is not None
    assert accounts.session_for(community, new.sid, NOW + dt.timedelta(hours=22)) is not None  # seen at 11 h
    assert accounts.session_for(community, new.sid, NOW + dt.timedelta(hours=34, seconds=1)) is None


def test_logout_revokes_the_session_on_the_server(community: sessionmaker) -> None:
    new = accounts.login(community, "wangjianguo", DEMO, NOW)
    assert accounts.logout(community, new.sid, NOW) is True
    assert accounts.session_for(community, new.sid, NOW) is None
    assert accounts.logout(community, new.sid, NOW) is False


def test_each_login_is_a_new_session_with_its_own_id_and_csrf_token(community: sessionmaker) -> None:
    first = accounts.login(community, "wangjianguo", DEMO, NOW)
    second = accounts.login(community, "wangjianguo", DEMO, NOW)
    assert first.sid != second.sid and first.csrf_token != second.csrf_token
    assert accounts.session_for(community, first.sid, NOW) is not None  # another device stays signed in


def test_a_switched_off_account_loses_its_sessions_and_its_token(community: sessionmaker) -> None:
    new = accounts.login(community, "wangjianguo", DEMO, NOW)
    token = accounts.issue_api_token(community, "wangjianguo")
    with unit_of_work(community) as session:
        session.query(Staff).filter_by(key="wangjianguo").one().active = False
    assert accounts.session_for(community, new.sid, NOW) is None
    assert accounts.staff_for_token(community, token) is None


def test_a_new_password_signs_out_every_session_and_clears_a_lockout(community: sessionmaker) -> None:
    new = accounts.login(community, "lishufen", DEMO, NOW)
    for attempt in range(5):
        with pytest.raises(AuthFailed):
            accounts.login(community, "lishufen", f"wrong-{attempt}", NOW)
    staff = accounts.set_password(community, "lishufen", "better-secret-1", NOW)
    assert staff.key == "lishufen" and not staff.demo_password
    assert accounts.session_for(community, new.sid, NOW) is None
    assert accounts.login(community, "lishufen", "better-secret-1", NOW).staff.key == "lishufen"
    with pytest.raises(AuthFailed):
        accounts.login(community, "lishufen", DEMO, NOW)


@pytest.mark.parametrize("password", ["short", " padded-password ", DEMO])
def test_weak_or_public_passwords_are_refused(community: sessionmaker, password: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        accounts.set_password(community, "lishufen", password, NOW, demo_password=DEMO)
    assert caught.value.field == "password"
    assert accounts.is_demo_hash(_staff(community, "lishufen").password_hash)


def test_a_hash_made_with_old_parameters_is_upgraded_at_the_next_login(community: sessionmaker) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("an-older-secret")
    _set_hash(community, "zhouming", old)
    accounts.login(community, "zhouming", "an-older-secret", NOW)
    upgraded = _staff(community, "zhouming").password_hash
    assert upgraded != old and not accounts.password_hasher().check_needs_rehash(upgraded)
    assert accounts.login(community, "zhouming", "an-older-secret", NOW).staff.key == "zhouming"


def test_bearer_tokens_name_their_staff_and_a_new_one_replaces_the_old(community: sessionmaker) -> None:
    first = accounts.issue_api_token(community, "admin")
    staff = accounts.staff_for_token(community, first)
    assert staff is not None and (staff.key, staff.role) == ("admin", "admin")
    second = accounts.issue_api_token(community, "admin")
    assert second != first
    assert accounts.staff_for_token(community, first) is None
    assert accounts.staff_for_token(community, second).key == "admin"
    assert accounts.staff_for_token(community, "") is None
    assert accounts.revoke_api_token(community, "admin") is True
    assert accounts.staff_for_token(community, second) is None
    with pytest.raises(NotFound):
        accounts.issue_api_token(community, "nobody")


# ---- demo passwords and community load -------------------------------------------------------------------------

def _data(**console: object) -> dict:
    data = copy.deepcopy(read_community(PROJECT_ROOT / "data" / "community"))
    data["console"] = console
    return data


def test_community_load_gives_every_account_the_demo_password(sqlite_url: str) -> None:
    factory = community_db(sqlite_url)
    with factory() as session:
        rows = session.query(Staff).all()
    assert rows and all(accounts.is_demo_hash(r.password_hash) for r in rows)
    assert [s.key for s in accounts.demo_accounts(factory)] == [r.key for r in sorted(rows, key=lambda r: r.id)]
    assert accounts.login(factory, "gaohong", DEMO, NOW).staff.role == "secretary"


def test_community_load_never_overwrites_a_password_someone_set(sqlite_url: str) -> None:
    factory = community_db(sqlite_url)
    accounts.set_password(factory, "chenjing", "chenjing-own-pw", NOW)
    real = _staff(factory, "chenjing").password_hash
    for data in (_data(demo_password="another-demo"), _data()):
        with unit_of_work(factory) as session:
            load_community(session, data, NOW.date())
        assert _staff(factory, "chenjing").password_hash == real
    assert accounts.login(factory, "chenjing", "chenjing-own-pw", NOW).staff.key == "chenjing"
    assert "chenjing" not in [s.key for s in accounts.demo_accounts(factory)]


def test_a_changed_demo_password_replaces_the_old_one_and_a_removed_one_is_withdrawn(sqlite_url: str) -> None:
    factory = community_db(sqlite_url)
    with unit_of_work(factory) as session:
        counts = load_community(session, _data(demo_password="another-demo"), NOW.date())
    assert counts["demo accounts"] == len(accounts.demo_accounts(factory)) > 0
    assert accounts.login(factory, "maguilan", "another-demo", NOW).staff.key == "maguilan"
    with pytest.raises(AuthFailed):
        accounts.login(factory, "maguilan", DEMO, NOW)
    with unit_of_work(factory) as session:
        load_community(session, _data(), NOW.date())
    assert accounts.demo_accounts(factory) == []
    with pytest.raises(AuthFailed):
        accounts.login(factory, "maguilan", "another-demo", NOW)


# ---- the staff CLI -------------------------------------------------------------------------------------------

@pytest.fixture
def cli_env(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sessionmaker:
    """`python -m bot` pointed at a demo-community database."""
    factory = community_db(sqlite_url)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HG_VAR_DIR", str(tmp_path))
    monkeypatch.delenv("HG_COMMUNITY_DIR", raising=False)
    return factory


def test_staff_password_sets_a_real_password_read_from_stdin(cli_env: sessionmaker, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-brand-new-pw\n"))
    assert cli.main(["staff", "password", "wuxia"]) == 0
    assert "wuxia" in capsys.readouterr().out
    assert accounts.login(cli_env, "wuxia", "a-brand-new-pw", NOW).staff.name == "吴霞"
    with pytest.raises(AuthFailed):
        accounts.login(cli_env, "wuxia", DEMO, NOW)


@pytest.mark.parametrize("key, typed, code", [("wuxia", "short\n", 2), ("wuxia", f"{DEMO}\n", 2),
                                              ("nobody", "long-enough-pw\n", 1)])
def test_staff_password_refuses_weak_passwords_and_unknown_staff(cli_env: sessionmaker, monkeypatch, capsys,
                                                                 key: str, typed: str, code: int) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    assert cli.main(["staff", "password", key]) == code
    assert capsys.readouterr().err
    assert accounts.is_demo_hash(_staff(cli_env, "wuxia").password_hash)


def test_staff_password_asks_twice_on_a_terminal_and_stops_when_they_differ(cli_env: sessionmaker,
                                                                           monkeypatch) -> None:
    import getpass

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter(["first-password", "second-password"])
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert cli.main(["staff", "password", "wuxia"]) == 2
    assert accounts.is_demo_hash(_staff(cli_env, "wuxia").password_hash)


def test_staff_token_prints_a_token_that_the_api_accepts(cli_env: sessionmaker, capsys) -> None:
    assert cli.main(["staff", "token", "admin"]) == 0
    token = capsys.readouterr().out.strip()
    staff = accounts.staff_for_token(cli_env, token)
    assert staff is not None and staff.key == "admin"


def test_the_generated_cookie_secret_is_kept_private_and_reused(tmp_path: Path) -> None:
    from bot.config import Settings
    from bot.console.security import console_secret

    settings = Settings.from_env({"HG_VAR_DIR": str(tmp_path / "var")})
    first = console_secret(settings)
    path = tmp_path / "var" / "console_secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert console_secret(settings) == first and len(first) >= 32
    assert console_secret(Settings.from_env({"HG_VAR_DIR": str(tmp_path / "var"),
                                             "HG_CONSOLE_SECRET": "x" * 20})) == "x" * 20
    with pytest.raises(ValueError):
        console_secret(Settings.from_env({"HG_CONSOLE_SECRET": "short"}))


def test_building_console_apps_touches_no_database_and_names_each_app_apart() -> None:
    from sanic import Sanic

    from bot.config import Settings
    from bot.console.app import create_app

    settings = Settings.from_env({"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                                  "HG_CONSOLE_SECRET": "s" * 32})
    first, second = create_app(settings), create_app(settings)
    try:
        assert first.name != second.name
        assert first.ctx.console.session_factory is None and first.ctx.console.engine is None
    finally:
        for app in (first, second):
            Sanic._app_registry.pop(app.name, None)
